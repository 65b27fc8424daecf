//! Shared fixtures: the analytics service started on a fresh PostgreSQL database and Redis prefix
//! (or embedded SQLite), its real consumer on a store-backed queue, fact builders that encode
//! `kem.messaging.v1.AnalyticsEvent` messages exactly as producers do, and readers of the
//! answers and their `google.rpc` details.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kem_analytics::{AnalyticsApi, AnalyticsConfig};
pub use kem_kit::clock::{Clock as _, SystemClock};
use kem_kit::queue::store::{StoreQueue, StoreQueueOptions};
use kem_kit::queue::{OutgoingMessage, Queue, names};
use kem_kit::runtime::{Peers, ServiceContext, with_owner};
use kem_kit::store::Store;
use kem_proto::kem::analytics::v1 as pb;
use kem_proto::kem::analytics::v1::analytics_service_server::AnalyticsService;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::messaging::v1 as msg;
use kem_proto::kem::messaging::v1::analytics_event::Fact;
use kem_testkit::eventually;
use kem_testkit::service::{Backing, TestService};
pub use kem_testkit::status::{expect_code, reason, violations};
use prost::Message;
use tonic::{Request, Status};

pub const OWNER: &str = "owner-a";
pub const OTHER: &str = "owner-b";
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

pub const UNKNOWN: i32 = common::Channel::Unspecified as i32;
pub const GENIE: i32 = common::Channel::GenieTv as i32;
pub const INSTAGRAM: i32 = common::Channel::Instagram as i32;
pub const NAVER: i32 = common::Channel::NaverBlog as i32;
pub const KAKAO: i32 = common::Channel::KakaoChannel as i32;

/// Settings of the tests: a round value per entry so ROI figures are easy to check.
pub fn test_config() -> AnalyticsConfig {
    let mut config = AnalyticsConfig::default();
    config.values.default_krw = 50_000;
    config
}

/// The analytics service on a test context, consuming from a store-backed queue that forgets
/// completed ids at once, so sending an id again is a real redelivery.
pub struct Harness {
    pub ctx: ServiceContext,
    pub api: AnalyticsApi,
    pub queue: StoreQueue,
    backing: Backing,
}

impl Harness {
    pub async fn new() -> Harness {
        let svc = TestService::new("analytics").await;
        let ctx = svc.ctx.clone();
        Harness::start(ctx, Backing::Postgres(Box::new(svc))).await
    }

    /// The service on embedded SQLite with the in-process cache, as `kem up` runs it.
    pub async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = kem_testkit::service::embedded_context("analytics", Peers::none(), dir.path()).await;
        Harness::start(ctx, Backing::Sqlite(dir)).await
    }

    async fn start(mut ctx: ServiceContext, backing: Backing) -> Harness {
        let options = StoreQueueOptions { dedupe_window: Duration::ZERO, ..StoreQueueOptions::default() };
        let queue = StoreQueue::with_options(ctx.store.clone(), options);
        ctx.queue = Arc::new(queue.clone());
        let api = kem_analytics::start_api(ctx.clone(), test_config())
            .await
            .unwrap_or_else(|e| panic!("the analytics service does not start: {e}"));
        Harness { ctx, api, queue, backing }
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    /// The test's Redis keys (PostgreSQL backing only).
    pub async fn redis_keys(&self) -> Vec<String> {
        self.backing.redis_keys().await
    }

    pub async fn cleanup(self) {
        self.backing.cleanup(&self.ctx).await;
    }

    /// Sends `body` as a producer's outbox relay would.
    pub async fn send(&self, id: &str, body: &msg::AnalyticsEvent) {
        self.queue.send(envelope(id, body)).await.unwrap_or_else(|e| panic!("cannot send {id}: {e}"));
    }

    /// Sends every fact, then waits until the consumer has handled them all.
    pub async fn deliver(&self, facts: &[(String, msg::AnalyticsEvent)]) {
        for (id, body) in facts {
            self.send(id, body).await;
        }
        self.settle().await;
    }

    /// Waits until nothing is pending on `analytics-aggregation`.
    pub async fn settle(&self) {
        let queue = &self.queue;
        eventually("the consumer drains the queue", Duration::from_secs(30), || async {
            let depth = queue.depth(names::ANALYTICS_AGGREGATION).await.expect("queue depth");
            depth.ready + depth.locked + depth.scheduled == 0
        })
        .await;
    }

    pub async fn dead_letters(&self) -> Vec<String> {
        let letters = self.queue.dead_letters(names::ANALYTICS_AGGREGATION, 100).await.expect("dead letters");
        letters.into_iter().map(|d| d.message.id).collect()
    }

    pub async fn analytics(&self, owner: &str, event_id: &str) -> Result<pb::EventAnalytics, Status> {
        let request = pb::GetEventAnalyticsRequest { event_id: event_id.to_owned() };
        let response = self.api.get_event_analytics(with_owner(Request::new(request), owner)).await?;
        Ok(response.into_inner().analytics.expect("analytics in the response"))
    }

    pub async fn dashboard(&self, owner: &str) -> Result<pb::Dashboard, Status> {
        let response = self.api.get_dashboard(with_owner(Request::new(pb::GetDashboardRequest {}), owner)).await?;
        Ok(response.into_inner().dashboard.expect("dashboard in the response"))
    }

    pub async fn record(&self, request: pb::RecordChannelMetricsRequest) -> Result<(bool, bool), Status> {
        let response = self.api.record_channel_metrics(Request::new(request)).await?.into_inner();
        Ok((response.duplicate, response.stale))
    }

    /// Database computations of answers so far (cache misses that loaded).
    pub fn loads(&self) -> u64 {
        self.api.core().cache_stats().loads
    }
}

/// A queue message exactly as producers write it.
pub fn envelope(id: &str, body: &msg::AnalyticsEvent) -> OutgoingMessage {
    OutgoingMessage {
        queue: names::ANALYTICS_AGGREGATION.to_owned(),
        id: id.to_owned(),
        body: body.encode_to_vec(),
        content_type: "application/protobuf".to_owned(),
        traceparent: None,
        delay: None,
        properties: BTreeMap::from([
            ("type".to_owned(), "kem.messaging.v1.AnalyticsEvent".to_owned()),
            ("event_id".to_owned(), body.event_id.clone()),
        ]),
    }
}

pub fn ts(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: ms.div_euclid(1_000), nanos: (ms.rem_euclid(1_000) * 1_000_000) as i32 }
}

pub fn ms(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("timestamp set");
    t.seconds * 1_000 + i64::from(t.nanos / 1_000_000)
}

fn fact(event_id: &str, owner: &str, at_ms: i64, fact: Fact) -> msg::AnalyticsEvent {
    msg::AnalyticsEvent {
        event_id: event_id.to_owned(),
        owner_id: owner.to_owned(),
        occur_time: Some(ts(at_ms)),
        fact: Some(fact),
    }
}

/// What an event looks like in its state facts.
#[derive(Clone)]
pub struct EventSpec {
    pub id: String,
    pub owner: String,
    pub title: String,
    pub budget_krw: Option<i64>,
    pub channels: Vec<i32>,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl EventSpec {
    pub fn new(id: &str, owner: &str, budget_krw: Option<i64>, channels: &[i32], start_ms: i64, end_ms: i64) -> Self {
        EventSpec {
            id: id.to_owned(),
            owner: owner.to_owned(),
            title: format!("{id} 이벤트"),
            budget_krw,
            channels: channels.to_vec(),
            start_ms,
            end_ms,
        }
    }

    /// The event service's fact of the change `from` → `to` (message id `evt:<id>:<to>`).
    pub fn state(&self, from: EventStatus, to: EventStatus, at_ms: i64) -> (String, msg::AnalyticsEvent) {
        let change = msg::EventStateChanged {
            from_status: from as i32,
            to_status: to as i32,
            budget: self.budget_krw.map(|amount_krw| common::Money { amount_krw }),
            channels: self.channels.clone(),
            period: Some(common::Period { start_time: Some(ts(self.start_ms)), end_time: Some(ts(self.end_ms)) }),
            objective: common::EventObjective::NewCustomers as i32,
            title: self.title.clone(),
        };
        let name = if from == EventStatus::Unspecified {
            "created".to_owned()
        } else {
            to.as_str_name().trim_start_matches("EVENT_STATUS_").to_ascii_lowercase()
        };
        (format!("evt:{}:{name}", self.id), fact(&self.id, &self.owner, at_ms, Fact::StateChanged(change)))
    }

    /// Created, then every step up to PUBLISHED, one millisecond apart.
    pub fn lifecycle_to_published(&self, at_ms: i64) -> Vec<(String, msg::AnalyticsEvent)> {
        use EventStatus::*;
        [(Unspecified, Draft), (Draft, Recommended), (Recommended, ContentReady), (ContentReady, Published)]
            .iter()
            .enumerate()
            .map(|(i, (from, to))| self.state(*from, *to, at_ms + i as i64))
            .collect()
    }

    pub fn deleted(&self, at_ms: i64) -> (String, msg::AnalyticsEvent) {
        let body = fact(&self.id, &self.owner, at_ms, Fact::Deleted(msg::EventDeleted {}));
        (format!("evt:{}:deleted", self.id), body)
    }

    /// Participation's fact of one entry (message id `entry:<entry id>`).
    pub fn entry(&self, entry_id: &str, channel: i32, at_ms: i64) -> (String, msg::AnalyticsEvent) {
        let entry =
            msg::EntryRecorded { entry_id: entry_id.to_owned(), source_channel: channel, marketing_consent: false };
        (format!("entry:{entry_id}"), fact(&self.id, &self.owner, at_ms, Fact::EntryRecorded(entry)))
    }

    /// Distribution's fact of one delivery outcome (message id `dist:<event>:<channel>:<seq>`).
    pub fn outcome(&self, channel: i32, seq: u32, result: Outcome, at_ms: i64) -> (String, msg::AnalyticsEvent) {
        let outcome = msg::ChannelOutcome {
            channel,
            result: result.result as i32,
            attempts: result.attempts,
            failure_reason: result.failure.to_owned(),
            reach: result.reach,
            views: result.views,
            cost: None,
            provider: Some(common::ProviderInfo { kind: result.provider as i32, ..Default::default() }),
            failure_code: if result.failure.is_empty() { String::new() } else { "PROVIDER_UNAVAILABLE".to_owned() },
        };
        let id = format!("dist:{}:{channel}:{seq}", self.id);
        (id, fact(&self.id, &self.owner, at_ms, Fact::ChannelOutcome(outcome)))
    }

    /// Participation's fact of a draw (message id `draw:<draw id>`).
    pub fn draw(&self, draw_id: &str, redraw_of: &str, winners: i32, at_ms: i64) -> (String, msg::AnalyticsEvent) {
        let draw = msg::DrawCompleted {
            draw_id: draw_id.to_owned(),
            redraw_of: redraw_of.to_owned(),
            algorithm: "chacha20-fisher-yates".to_owned(),
            entry_count: 30,
            winner_count: winners,
            prize_cost: Some(common::Money { amount_krw: i64::from(winners) * 5_000 }),
        };
        (format!("draw:{draw_id}"), fact(&self.id, &self.owner, at_ms, Fact::DrawCompleted(draw)))
    }

    /// A RecordChannelMetrics request from distribution.
    pub fn metrics(
        &self,
        report_id: &str,
        channel: i32,
        views: i64,
        reach: i64,
        at_ms: i64,
    ) -> pb::RecordChannelMetricsRequest {
        pb::RecordChannelMetricsRequest {
            report_id: report_id.to_owned(),
            event_id: self.id.clone(),
            channel,
            views,
            reach,
            deliveries_published: 0,
            deliveries_failed: 0,
            observe_time: Some(ts(at_ms)),
            provider: Some(common::ProviderInfo {
                kind: common::ProviderKind::External as i32,
                name: "instagram-graph".to_owned(),
                ..Default::default()
            }),
        }
    }
}

/// How a delivery ended, for [`EventSpec::outcome`].
#[derive(Clone, Copy)]
pub struct Outcome {
    pub result: msg::DeliveryResult,
    pub attempts: i32,
    pub failure: &'static str,
    pub views: Option<i64>,
    pub reach: Option<i64>,
    pub provider: common::ProviderKind,
}

impl Outcome {
    pub fn published(attempts: i32) -> Outcome {
        Outcome {
            result: msg::DeliveryResult::Published,
            attempts,
            failure: "",
            views: None,
            reach: None,
            provider: common::ProviderKind::External,
        }
    }

    pub fn failed(attempts: i32, why: &'static str) -> Outcome {
        Outcome { result: msg::DeliveryResult::Failed, failure: why, ..Outcome::published(attempts) }
    }
}

/// One channel's figures, as a tuple easy to compare:
/// (channel, participants, views, reach, published, failed, source).
pub type Stats = (i32, i64, i64, i64, i64, i64, i32);

pub fn stats(channels: &[pb::ChannelStats]) -> Vec<Stats> {
    channels
        .iter()
        .map(|c| {
            (c.channel, c.participants, c.views, c.reach, c.deliveries_published, c.deliveries_failed, c.metrics_source)
        })
        .collect()
}

pub fn krw(money: &Option<common::Money>) -> Option<i64> {
    money.as_ref().map(|m| m.amount_krw)
}

/// The single `n` column of `sql`.
pub async fn count(store: &Store, sql: &'static str) -> i64 {
    let row = kem_kit::store::query(sql).fetch_one(store).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    row.get::<i64>("n").expect("an n column")
}

/// The start of the hour holding `at_ms`.
pub fn hour(at_ms: i64) -> i64 {
    at_ms.div_euclid(HOUR_MS) * HOUR_MS
}
