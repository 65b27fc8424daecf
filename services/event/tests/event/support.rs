//! Shared fixtures: a started event service on a fresh PostgreSQL database and Redis prefix,
//! reaching a fake participation service (CloseEntries, DrawWinnersOnSchedule, CountEntries) and a
//! fake user service (GetOwner) over mesh mTLS; request builders, status-detail readers, queue
//! inspection and the test workers that stand in for the AI and content services.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kem_event::{EventApi, EventConfig};
use kem_kit::cache::MemoryCache;
use kem_kit::clock::ManualClock;
pub use kem_kit::clock::{Clock as _, SystemClock};
use kem_kit::outbox::{Consumer, ConsumerOptions, ConsumerReport, HandlerError, Outbox};
use kem_kit::queue::{Queue, ReceivedMessage};
use kem_kit::runtime::{Peers, ServiceContext, with_owner};
use kem_kit::store::{self, Store};
use kem_mesh::Shutdown;
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1 as proto;
use kem_proto::kem::event::v1::event_service_server::EventService;
use kem_proto::kem::messaging::v1 as msg;
use kem_proto::kem::participation::v1 as participation_pb;
use kem_proto::kem::participation::v1::participation_service_server::{
    ParticipationService, ParticipationServiceServer,
};
use kem_proto::kem::user::v1 as user_pb;
use kem_proto::kem::user::v1::user_service_server::{UserService, UserServiceServer};
use kem_testkit::eventually;
use kem_testkit::service::{Backing, TestService};
pub use kem_testkit::status::{expect_code, metadata, reason, violations};
use prost::Message;
use prost_types::Timestamp;
use tokio::sync::Mutex;
use tonic::{Code, Request, Status};

pub const OWNER: &str = "owner-1";
pub const OTHER: &str = "owner-2";
/// OWNER's store name (the controller of their events' terms).
pub const STORE_NAME: &str = "카페 온도";
/// The public base URL tests configure.
pub const PUBLIC_BASE: &str = "https://kem.example";
/// How often the scheduler ticks in tests.
pub const SCHEDULER_INTERVAL: Duration = Duration::from_millis(100);

/// Fast settings for tests (short sweeps and scheduler ticks; the default job timeout is long
/// enough for any test; the default auto-draw delay of 10 minutes, moved past with a
/// `ManualClock`).
pub fn test_config() -> EventConfig {
    EventConfig {
        job_sweep_interval: Duration::from_millis(100),
        scheduler_interval: SCHEDULER_INTERVAL,
        public_base_url: PUBLIC_BASE.to_owned(),
        ..EventConfig::default()
    }
}

/// The event service started on a test context.
pub struct Harness {
    /// The context the service runs on.
    pub ctx: ServiceContext,
    /// The gRPC adapter `start_api` returned.
    pub api: EventApi,
    /// The participation service EndEvent closes entries at.
    pub participation: FakeParticipation,
    /// The user service PublishEvent reads the store name from.
    pub users: FakeUsers,
    /// The settings the service started with.
    pub config: EventConfig,
    servers: Shutdown,
    backing: Backing,
}

impl Harness {
    pub async fn new() -> Harness {
        Harness::with_config(test_config()).await
    }

    pub async fn with_config(config: EventConfig) -> Harness {
        let (peers, servers) = peer_mesh().await;
        let svc = TestService::with_peers("event", peers.peers.clone()).await;
        let ctx = svc.ctx.clone();
        Harness::start(ctx, config, peers, servers, Backing::Postgres(Box::new(svc))).await
    }

    /// The service reading time from `clock`: a test about time moves it instead of sleeping.
    pub async fn with_clock(config: EventConfig, clock: ManualClock) -> Harness {
        let (peers, servers) = peer_mesh().await;
        let svc = TestService::with_peers("event", peers.peers.clone()).await;
        let ctx = ServiceContext { clock: Arc::new(clock), ..svc.ctx.clone() };
        Harness::start(ctx, config, peers, servers, Backing::Postgres(Box::new(svc))).await
    }

    /// The service on embedded SQLite (`kem up`): same migrations, same queries.
    pub async fn sqlite(config: EventConfig) -> Harness {
        Harness::sqlite_with_clock(config, None).await
    }

    /// [`sqlite`](Self::sqlite), reading time from `clock` when given.
    pub async fn sqlite_with_clock(config: EventConfig, clock: Option<ManualClock>) -> Harness {
        let (peers, servers) = peer_mesh().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ctx = kem_testkit::service::embedded_context("event", peers.peers.clone(), dir.path()).await;
        if let Some(clock) = clock {
            ctx.clock = Arc::new(clock);
        }
        Harness::start(ctx.clone(), config, peers, servers, Backing::Sqlite(dir)).await
    }

    async fn start(
        ctx: ServiceContext,
        config: EventConfig,
        peers: PeerFakes,
        servers: Shutdown,
        backing: Backing,
    ) -> Harness {
        let api = kem_event::start_api(ctx.clone(), config.clone())
            .await
            .unwrap_or_else(|e| panic!("the event service does not start: {e}"));
        let PeerFakes { participation, users, .. } = peers;
        participation.observe(ctx.store.clone());
        Harness { ctx, api, participation, users, config, servers, backing }
    }

    /// Another event service instance on the same database (and clock, and settings) with its own
    /// in-process cache, as `kem up --processes` runs a second replica: its own sweeper and
    /// scheduler run too.
    pub async fn replica(&self) -> EventApi {
        let ctx = ServiceContext { cache: Arc::new(MemoryCache::new(10_000)), ..self.ctx.clone() };
        kem_event::start_api(ctx, self.config.clone())
            .await
            .unwrap_or_else(|e| panic!("the event replica does not start: {e}"))
    }

    pub async fn cleanup(self) {
        self.servers.trigger();
        self.backing.cleanup(&self.ctx).await;
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    pub async fn create(&self, owner: &str, event: proto::Event) -> proto::Event {
        let request = proto::CreateEventRequest { event: Some(event), request_id: String::new() };
        created(self.api.create_event(req(owner, request)).await)
    }

    pub async fn get(&self, owner: &str, id: &str) -> Result<proto::Event, Status> {
        let request = proto::GetEventRequest { event_id: id.to_owned() };
        Ok(self.api.get_event(req(owner, request)).await?.into_inner().event.unwrap_or_default())
    }

    pub async fn get_job(&self, owner: &str, id: &str) -> Result<proto::Job, Status> {
        let request = proto::GetJobRequest { job_id: id.to_owned() };
        Ok(self.api.get_job(req(owner, request)).await?.into_inner().job.unwrap_or_default())
    }

    pub async fn request_recommendations(&self, owner: &str, id: &str) -> Result<proto::Job, Status> {
        let request = proto::RequestRecommendationsRequest {
            event_id: id.to_owned(),
            additional_instructions: "평일 점심 위주로".into(),
        };
        Ok(self.api.request_recommendations(req(owner, request)).await?.into_inner().job.unwrap_or_default())
    }

    pub async fn request_images(&self, owner: &str, id: &str) -> Result<proto::Job, Status> {
        let request = proto::RequestImagesRequest { event_id: id.to_owned(), ..Default::default() };
        Ok(self.api.request_images(req(owner, request)).await?.into_inner().job.unwrap_or_default())
    }

    pub async fn report(
        &self,
        job_id: &str,
        outcome: proto::report_job_result_request::Outcome,
    ) -> Result<proto::Job, Status> {
        let request = proto::ReportJobResultRequest { job_id: job_id.to_owned(), outcome: Some(outcome) };
        Ok(self.api.report_job_result(Request::new(request)).await?.into_inner().job.unwrap_or_default())
    }

    pub async fn select_recommendation(&self, owner: &str, id: &str, rec: &str) -> Result<proto::Event, Status> {
        let request = proto::SelectRecommendationRequest {
            event_id: id.to_owned(),
            recommendation_id: rec.to_owned(),
            etag: String::new(),
        };
        Ok(self.api.select_recommendation(req(owner, request)).await?.into_inner().event.unwrap_or_default())
    }

    pub async fn select_image(&self, owner: &str, id: &str, image: &str) -> Result<proto::Event, Status> {
        let request =
            proto::SelectImageRequest { event_id: id.to_owned(), image_id: image.to_owned(), etag: String::new() };
        Ok(self.api.select_image(req(owner, request)).await?.into_inner().event.unwrap_or_default())
    }

    pub async fn publish(&self, owner: &str, id: &str, channels: &[common::Channel]) -> Result<proto::Event, Status> {
        let request = proto::PublishEventRequest {
            event_id: id.to_owned(),
            channels: channels.iter().map(|c| *c as i32).collect(),
            etag: String::new(),
        };
        Ok(self.api.publish_event(req(owner, request)).await?.into_inner().event.unwrap_or_default())
    }

    /// GetPublicEvent, as anyone (no owner).
    pub async fn public(&self, id: &str) -> Result<proto::PublicEvent, Status> {
        let request = proto::GetPublicEventRequest { event_id: id.to_owned() };
        Ok(self.api.get_public_event(Request::new(request)).await?.into_inner().event.unwrap_or_default())
    }

    /// GetEventForParticipation, as participation would call it.
    pub async fn for_participation(&self, id: &str) -> Result<proto::GetEventForParticipationResponse, Status> {
        let request = proto::GetEventForParticipationRequest { event_id: id.to_owned() };
        Ok(self.api.get_event_for_participation(Request::new(request)).await?.into_inner())
    }

    /// … → PUBLISHED on Instagram and Kakao Channel.
    pub async fn published(&self, owner: &str, title: &str) -> proto::Event {
        let ready = self.content_ready(owner, title).await;
        let channels = [common::Channel::Instagram, common::Channel::KakaoChannel];
        self.publish(owner, &ready.event_id, &channels).await.expect("publish")
    }

    pub async fn end(&self, owner: &str, id: &str) -> Result<proto::Event, Status> {
        let request = proto::EndEventRequest { event_id: id.to_owned(), etag: String::new() };
        Ok(self.api.end_event(req(owner, request)).await?.into_inner().event.unwrap_or_default())
    }

    pub async fn update(
        &self,
        owner: &str,
        id: &str,
        event: proto::Event,
        paths: &[&str],
    ) -> Result<proto::Event, Status> {
        let request = proto::UpdateEventRequest {
            event_id: id.to_owned(),
            event: Some(event),
            update_mask: Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
        };
        Ok(self.api.update_event(req(owner, request)).await?.into_inner().event.unwrap_or_default())
    }

    /// DRAFT → RECOMMENDED without a worker: requests recommendations, reports them, selects one.
    pub async fn recommended(&self, owner: &str, title: &str) -> proto::Event {
        self.recommended_from(owner, sample_event(title)).await
    }

    /// [`recommended`](Self::recommended) for an event of one's own.
    pub async fn recommended_from(&self, owner: &str, event: proto::Event) -> proto::Event {
        let event = self.create(owner, event).await;
        let job = self.request_recommendations(owner, &event.event_id).await.expect("request recommendations");
        self.report(&job.job_id, recommendations_outcome(&["rec-1", "rec-2", "rec-3"])).await.expect("report");
        self.select_recommendation(owner, &event.event_id, "rec-1").await.expect("select recommendation")
    }

    /// … → CONTENT_READY without a worker.
    pub async fn content_ready(&self, owner: &str, title: &str) -> proto::Event {
        self.content_ready_from(owner, sample_event(title)).await
    }

    /// [`content_ready`](Self::content_ready) for an event of one's own.
    pub async fn content_ready_from(&self, owner: &str, event: proto::Event) -> proto::Event {
        let event = self.recommended_from(owner, event).await;
        let job = self.request_images(owner, &event.event_id).await.expect("request images");
        self.report(&job.job_id, images_outcome(&["img-a", "img-b", "img-c"])).await.expect("report images");
        self.select_image(owner, &event.event_id, "img-b").await.expect("select image")
    }

    /// Waits until the outbox relay has published everything committed so far.
    pub async fn settle(&self) {
        let store = self.store().clone();
        eventually("the outbox to drain", Duration::from_secs(15), || {
            let store = store.clone();
            async move { Outbox::pending(&store).await.map(|n| n == 0).unwrap_or(false) }
        })
        .await;
    }

    /// Every message ever sent to `queue` (delivered or not), oldest first.
    pub async fn messages(&self, queue: &str) -> Vec<QueuedMessage> {
        self.settle().await;
        queued(self.store(), queue).await
    }

    /// The analytics facts about `event_id`, by message id, in the order they happened (the
    /// outbox relay publishes a batch concurrently, so queue order is not commit order).
    pub async fn analytics(&self, event_id: &str) -> Vec<(String, msg::AnalyticsEvent)> {
        let mut facts: Vec<(String, msg::AnalyticsEvent)> = self
            .messages("analytics-aggregation")
            .await
            .into_iter()
            .filter(|m| m.properties.get("event_id").map(String::as_str) == Some(event_id))
            .map(|m| {
                let body = msg::AnalyticsEvent::decode(m.body.as_slice()).expect("analytics body decodes");
                (m.id, body)
            })
            .collect();
        facts.sort_by_key(|(_, fact)| fact.occur_time.map(|t| (t.seconds, t.nanos)));
        facts
    }
}

/// A message as stored by the store-backed queue.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub id: String,
    pub body: Vec<u8>,
    pub content_type: String,
    pub properties: BTreeMap<String, String>,
}

/// Every message of `queue` in the store-backed queue, completed ones included.
pub async fn queued(store: &Store, queue: &str) -> Vec<QueuedMessage> {
    let rows =
        store::query("SELECT id, body, content_type, properties FROM kem_queue_messages WHERE queue = $1 ORDER BY seq")
            .bind(queue)
            .fetch_all(store.primary())
            .await
            .expect("read the queue table");
    rows.iter()
        .map(|row| QueuedMessage {
            id: row.get("id").expect("id"),
            body: row.get("body").expect("body"),
            content_type: row.get("content_type").expect("content_type"),
            properties: serde_json::from_str(&row.get::<String>("properties").expect("properties")).expect("json"),
        })
        .collect()
}

pub fn req<T>(owner: &str, message: T) -> Request<T> {
    with_owner(Request::new(message), owner)
}

pub fn created(result: Result<tonic::Response<proto::CreateEventResponse>, Status>) -> proto::Event {
    result.unwrap_or_else(|s| panic!("create failed: {s:?}")).into_inner().event.unwrap_or_default()
}

pub fn ts(ms: i64) -> Timestamp {
    Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

pub fn ts_ms(t: &Option<Timestamp>) -> i64 {
    t.as_ref().map(|t| t.seconds * 1000 + i64::from(t.nanos / 1_000_000)).unwrap_or(0)
}

const DAY: i64 = 24 * 60 * 60 * 1000;

/// A valid event running from tomorrow for 30 days.
pub fn sample_event(title: &str) -> proto::Event {
    let start = SystemClock.now_ms() + DAY;
    proto::Event {
        title: title.to_owned(),
        description: "점심 손님을 늘리는 이벤트".into(),
        objective: common::EventObjective::NewCustomers as i32,
        target_audience: "인근 직장인 20-30대".into(),
        budget: Some(common::Money { amount_krw: 300_000 }),
        period: Some(common::Period { start_time: Some(ts(start)), end_time: Some(ts(start + 30 * DAY)) }),
        prize: Some(common::Prize {
            name: "아메리카노 1잔".into(),
            description: String::new(),
            winner_count: 10,
            unit_value: Some(common::Money { amount_krw: 4_500 }),
        }),
        participation_method: common::ParticipationMethod::Draw as i32,
        channels: vec![common::Channel::Instagram as i32, common::Channel::KakaoChannel as i32],
        ..Default::default()
    }
}

/// A recommendation as the AI service would produce it.
pub fn recommendation(id: &str) -> proto::Recommendation {
    proto::Recommendation {
        recommendation_id: id.to_owned(),
        title: format!("추천 이벤트 {id}"),
        concept: format!("{id}: 점심 스탬프 적립 이벤트"),
        participation_method: common::ParticipationMethod::FirstCome as i32,
        participation_mechanic: "영수증 지참 후 QR 응모".into(),
        prize_suggestion: Some(common::Prize {
            name: format!("{id} 경품"),
            description: String::new(),
            winner_count: 20,
            unit_value: None,
        }),
        expected_participants: 250,
        expected_cost_per_entry: Some(common::Money { amount_krw: 1_200 }),
        recommended_channels: vec![common::Channel::Instagram as i32, common::Channel::NaverBlog as i32],
        channel_copies: vec![
            proto::ChannelCopy {
                channel: common::Channel::Instagram as i32,
                text: format!("{id} 인스타 문구"),
                hashtags: vec!["점심".into(), "이벤트".into()],
            },
            proto::ChannelCopy {
                channel: common::Channel::KakaoChannel as i32,
                text: format!("{id} 카카오 문구"),
                hashtags: Vec::new(),
            },
        ],
    }
}

pub fn recommendations_outcome(ids: &[&str]) -> proto::report_job_result_request::Outcome {
    proto::report_job_result_request::Outcome::Recommendations(proto::RecommendationsResult {
        recommendations: ids.iter().map(|id| recommendation(id)).collect(),
        trend_summary: "평일 점심 할인 수요 증가".into(),
        provider: Some(common::ProviderInfo {
            kind: common::ProviderKind::Local as i32,
            name: "local".into(),
            ..Default::default()
        }),
    })
}

pub fn images_outcome(ids: &[&str]) -> proto::report_job_result_request::Outcome {
    proto::report_job_result_request::Outcome::Images(proto::ImagesResult {
        image_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        ..proto::ImagesResult::default()
    })
}

pub fn error_outcome(code: Code, message: &str) -> proto::report_job_result_request::Outcome {
    proto::report_job_result_request::Outcome::Error(kem_proto::google::rpc::Status {
        code: code as i32,
        message: message.to_owned(),
        details: Vec::new(),
    })
}

/// Polls GetJob until the job is SUCCEEDED or FAILED.
pub async fn finished_job(h: &Harness, owner: &str, job_id: &str) -> proto::Job {
    let finished = std::sync::Mutex::new(None);
    eventually(&format!("job {job_id} finishes"), Duration::from_secs(20), || async {
        let job = h.get_job(owner, job_id).await.expect("get job");
        let done = job.state == proto::JobState::Succeeded as i32 || job.state == proto::JobState::Failed as i32;
        *finished.lock().expect("job") = done.then_some(job);
        done
    })
    .await;
    finished.into_inner().expect("job").expect("the finished job")
}

fn consumer_options(queue: &str, name: &str) -> ConsumerOptions {
    let mut options = ConsumerOptions::new(queue);
    options.name = name.to_owned();
    options.receive_wait = Duration::from_millis(200);
    options.retry_delay = Duration::from_millis(100);
    options.max_retry_delay = Duration::from_secs(1);
    options.drain_timeout = Duration::from_secs(5);
    options
}

fn check_envelope(m: &ReceivedMessage, want_type: &str) -> Result<(), HandlerError> {
    if m.content_type != "application/protobuf" {
        return Err(HandlerError::Reject(format!("content type {}", m.content_type)));
    }
    match m.properties.get("type") {
        Some(t) if t == want_type => Ok(()),
        other => Err(HandlerError::Reject(format!("type {other:?}"))),
    }
}

fn settle_report(result: Result<tonic::Response<proto::ReportJobResultResponse>, Status>) -> Result<(), HandlerError> {
    match result {
        Ok(_) => Ok(()),
        // The event is gone: drop the work (the documented worker behaviour).
        Err(status) if status.code() == Code::NotFound => Ok(()),
        Err(status) => Err(HandlerError::Retry(status.to_string())),
    }
}

/// Stands in for the AI service: consumes `ai-event-generation`, reports `started`, then three
/// recommendations (`rec-1` … `rec-3`). Records every decoded request.
pub fn spawn_ai_worker(
    queue: Arc<dyn Queue>,
    api: EventApi,
    seen: Arc<Mutex<Vec<msg::GenerateRecommendations>>>,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<ConsumerReport> {
    let handler = move |m: ReceivedMessage| {
        let (api, seen) = (api.clone(), seen.clone());
        async move {
            check_envelope(&m, "kem.messaging.v1.GenerateRecommendations")?;
            let work = msg::GenerateRecommendations::decode(m.body.as_slice())
                .map_err(|e| HandlerError::Reject(format!("undecodable: {e}")))?;
            if m.id != format!("job:{}", work.job_id) {
                return Err(HandlerError::Reject(format!("message id {} does not name job {}", m.id, work.job_id)));
            }
            seen.lock().await.push(work.clone());
            let started = proto::report_job_result_request::Outcome::Started(proto::JobStarted::default());
            let request = proto::ReportJobResultRequest { job_id: work.job_id.clone(), outcome: Some(started) };
            settle_report(api.report_job_result(Request::new(request)).await)?;
            let request = proto::ReportJobResultRequest {
                job_id: work.job_id.clone(),
                outcome: Some(recommendations_outcome(&["rec-1", "rec-2", "rec-3"])),
            };
            settle_report(api.report_job_result(Request::new(request)).await)
        }
    };
    let options = consumer_options("ai-event-generation", "test-ai");
    tokio::spawn(Consumer::run(queue, handler, options, shutdown))
}

/// Stands in for the content service: consumes `content-generation` and reports one image per
/// (channel, style), with ids `<job>-<channel>-<style>`.
pub fn spawn_content_worker(
    queue: Arc<dyn Queue>,
    api: EventApi,
    seen: Arc<Mutex<Vec<msg::GenerateImages>>>,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<ConsumerReport> {
    let handler = move |m: ReceivedMessage| {
        let (api, seen) = (api.clone(), seen.clone());
        async move {
            check_envelope(&m, "kem.messaging.v1.GenerateImages")?;
            let work = msg::GenerateImages::decode(m.body.as_slice())
                .map_err(|e| HandlerError::Reject(format!("undecodable: {e}")))?;
            seen.lock().await.push(work.clone());
            let mut ids = Vec::new();
            for channel in &work.channels {
                for style in &work.styles {
                    ids.push(format!("{}-{channel}-{style}", work.job_id));
                }
            }
            let outcome = proto::report_job_result_request::Outcome::Images(proto::ImagesResult {
                image_ids: ids,
                ..proto::ImagesResult::default()
            });
            let request = proto::ReportJobResultRequest { job_id: work.job_id.clone(), outcome: Some(outcome) };
            settle_report(api.report_job_result(Request::new(request)).await)
        }
    };
    let options = consumer_options("content-generation", "test-content");
    tokio::spawn(Consumer::run(queue, handler, options, shutdown))
}

// ---- the participation service side ----

/// One CloseEntries call as the fake participation service received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The event.
    pub event_id: String,
    /// The close time sent (ms).
    pub close_time_ms: i64,
    /// The event's status in the event database at that moment (the close must come first).
    pub stored_status: String,
}

#[derive(Default)]
struct ParticipationState {
    closes: std::sync::Mutex<Vec<Close>>,
    failures: std::sync::Mutex<Vec<Status>>,
    store: std::sync::OnceLock<Store>,
    /// DrawWinnersOnSchedule calls received (event ids, in order, failed ones included).
    scheduled_draws: std::sync::Mutex<Vec<String>>,
    draw_failures: std::sync::Mutex<Vec<Status>>,
    /// The draw time of each drawn event (ms).
    drawn: std::sync::Mutex<HashMap<String, i64>>,
    /// Events nobody entered (a draw answers NO_ENTRIES).
    empty: std::sync::Mutex<HashSet<String>>,
    count_calls: AtomicU64,
    counts_unavailable: AtomicBool,
    /// AnonymizeEntries calls received (event ids, in order, failed ones included).
    anonymizations: std::sync::Mutex<Vec<String>>,
    anonymize_failures: std::sync::Mutex<Vec<Status>>,
}

/// A scriptable participation service: CloseEntries, DrawWinnersOnSchedule, CountEntries
/// (counting calls) and AnonymizeEntries; every other method is UNIMPLEMENTED.
#[derive(Clone, Default)]
pub struct FakeParticipation {
    state: Arc<ParticipationState>,
}

fn locked<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The first of the scripted failures, taken off the list.
fn next_failure(failures: &std::sync::Mutex<Vec<Status>>) -> Option<Status> {
    let mut failures = locked(failures);
    (!failures.is_empty()).then(|| failures.remove(0))
}

impl FakeParticipation {
    /// Lets the fake read the event database, to record what was committed when a close came.
    fn observe(&self, store: Store) {
        let _ = self.state.store.set(store);
    }

    /// The closes received so far, in order.
    pub fn closes(&self) -> Vec<Close> {
        locked(&self.state.closes).clone()
    }

    /// The next CloseEntries calls answer these statuses, one each, in order.
    pub fn fail_with(&self, statuses: Vec<Status>) {
        *locked(&self.state.failures) = statuses;
    }

    /// The next DrawWinnersOnSchedule calls answer these statuses, one each, in order.
    pub fn fail_draws_with(&self, statuses: Vec<Status>) {
        *locked(&self.state.draw_failures) = statuses;
    }

    /// DrawWinnersOnSchedule failures not answered yet.
    pub fn draw_failures_left(&self) -> usize {
        locked(&self.state.draw_failures).len()
    }

    /// CloseEntries failures not answered yet.
    pub fn close_failures_left(&self) -> usize {
        locked(&self.state.failures).len()
    }

    /// The DrawWinnersOnSchedule calls received so far (event ids, failed calls included).
    pub fn scheduled_draws(&self) -> Vec<String> {
        locked(&self.state.scheduled_draws).clone()
    }

    /// Makes `event_id` drawn (as the owner's DrawWinners would), now.
    pub fn record_draw(&self, event_id: &str) {
        locked(&self.state.drawn).insert(event_id.to_owned(), SystemClock.now_ms());
    }

    /// Makes `event_id` drawn at `at_ms` (a test about the retention moves a `ManualClock`).
    pub fn record_draw_at(&self, event_id: &str, at_ms: i64) {
        locked(&self.state.drawn).insert(event_id.to_owned(), at_ms);
    }

    /// The AnonymizeEntries calls received so far (event ids, failed calls included).
    pub fn anonymizations(&self) -> Vec<String> {
        locked(&self.state.anonymizations).clone()
    }

    /// The next AnonymizeEntries calls answer these statuses, one each, in order.
    pub fn fail_anonymize_with(&self, statuses: Vec<Status>) {
        *locked(&self.state.anonymize_failures) = statuses;
    }

    /// AnonymizeEntries failures not answered yet.
    pub fn anonymize_failures_left(&self) -> usize {
        locked(&self.state.anonymize_failures).len()
    }

    /// When `event_id` was drawn, if it was.
    pub fn draw_time(&self, event_id: &str) -> Option<i64> {
        locked(&self.state.drawn).get(event_id).copied()
    }

    /// Nobody entered `event_id`: a draw answers FAILED_PRECONDITION NO_ENTRIES.
    pub fn without_entries(&self, event_id: &str) {
        locked(&self.state.empty).insert(event_id.to_owned());
    }

    /// CountEntries calls received so far.
    pub fn count_calls(&self) -> u64 {
        self.state.count_calls.load(Ordering::SeqCst)
    }

    /// While set, CountEntries answers UNAVAILABLE.
    pub fn counts_unavailable(&self, unavailable: bool) {
        self.state.counts_unavailable.store(unavailable, Ordering::SeqCst);
    }
}

#[tonic::async_trait]
impl ParticipationService for FakeParticipation {
    async fn close_entries(
        &self,
        request: Request<participation_pb::CloseEntriesRequest>,
    ) -> Result<tonic::Response<participation_pb::CloseEntriesResponse>, Status> {
        if let Some(status) = next_failure(&self.state.failures) {
            return Err(status);
        }
        let r = request.into_inner();
        let stored_status = match self.state.store.get() {
            Some(store) => store::query("SELECT status FROM events WHERE id = $1")
                .bind(r.event_id.clone())
                .fetch_optional(store.primary())
                .await
                .ok()
                .flatten()
                .and_then(|row| row.get::<String>("status").ok())
                .unwrap_or_default(),
            None => String::new(),
        };
        let close_time_ms = ts_ms(&r.close_time);
        let mut closes = locked(&self.state.closes);
        let first = closes.iter().find(|c| c.event_id == r.event_id).map_or(close_time_ms, |c| c.close_time_ms);
        closes.push(Close { event_id: r.event_id, close_time_ms, stored_status });
        Ok(tonic::Response::new(participation_pb::CloseEntriesResponse { close_time: Some(ts(first)) }))
    }

    async fn draw_winners_on_schedule(
        &self,
        request: Request<participation_pb::DrawWinnersOnScheduleRequest>,
    ) -> Result<tonic::Response<participation_pb::DrawWinnersOnScheduleResponse>, Status> {
        let event_id = request.into_inner().event_id;
        locked(&self.state.scheduled_draws).push(event_id.clone());
        if let Some(status) = next_failure(&self.state.draw_failures) {
            return Err(status);
        }
        if locked(&self.state.empty).contains(&event_id) {
            let info = kem_kit::status::error_info("kem.participation", "NO_ENTRIES", &[]);
            return Err(kem_proto::status::with_details(Code::FailedPrecondition, "nobody entered", vec![info]));
        }
        let mut drawn = locked(&self.state.drawn);
        let drawn_now = !drawn.contains_key(&event_id);
        drawn.entry(event_id).or_insert_with(|| SystemClock.now_ms());
        Ok(tonic::Response::new(participation_pb::DrawWinnersOnScheduleResponse { audit: None, drawn_now }))
    }

    async fn anonymize_entries(
        &self,
        request: Request<participation_pb::AnonymizeEntriesRequest>,
    ) -> Result<tonic::Response<participation_pb::AnonymizeEntriesResponse>, Status> {
        let r = request.into_inner();
        locked(&self.state.anonymizations).push(r.event_id);
        if let Some(status) = next_failure(&self.state.anonymize_failures) {
            return Err(status);
        }
        // Every entry of the event, as the scheduler asks: none is left out by a create_before.
        assert!(r.create_before.is_none(), "the retention job anonymizes every entry");
        Ok(tonic::Response::new(participation_pb::AnonymizeEntriesResponse { anonymized_count: 3 }))
    }

    async fn count_entries(
        &self,
        request: Request<participation_pb::CountEntriesRequest>,
    ) -> Result<tonic::Response<participation_pb::CountEntriesResponse>, Status> {
        self.state.count_calls.fetch_add(1, Ordering::SeqCst);
        if self.state.counts_unavailable.load(Ordering::SeqCst) {
            return Err(Status::unavailable("participation database down"));
        }
        let drawn = locked(&self.state.drawn);
        let counts = request
            .into_inner()
            .event_ids
            .into_iter()
            .map(|event_id| participation_pb::EventEntryCount {
                draw_time: drawn.get(&event_id).map(|ms| ts(*ms)),
                event_id,
                ..Default::default()
            })
            .collect();
        Ok(tonic::Response::new(participation_pb::CountEntriesResponse { counts }))
    }
}

// ---- the user service side ----

#[derive(Default)]
struct UsersState {
    owners: std::sync::Mutex<HashMap<String, user_pb::Owner>>,
    failures: std::sync::Mutex<Vec<Status>>,
    lookups: AtomicU64,
}

/// GetOwner from a scriptable fake (OWNER runs 카페 온도); every other method is UNIMPLEMENTED.
#[derive(Clone, Default)]
pub struct FakeUsers {
    state: Arc<UsersState>,
}

impl FakeUsers {
    fn new() -> FakeUsers {
        let users = FakeUsers::default();
        users.put(OWNER, STORE_NAME);
        users.put(OTHER, "다른 가게");
        users
    }

    /// Registers (or replaces) `owner_id` with the store `store_name` (empty: none registered).
    pub fn put(&self, owner_id: &str, store_name: &str) {
        let owner = user_pb::Owner {
            owner_id: owner_id.to_owned(),
            name: "김사장".into(),
            store_name: store_name.to_owned(),
            business_category: common::BusinessCategory::Cafe as i32,
            region: "서울특별시 강남구 역삼동".into(),
            ..Default::default()
        };
        locked(&self.state.owners).insert(owner_id.to_owned(), owner);
    }

    /// The next GetOwner calls answer these statuses, one each, in order.
    pub fn fail_with(&self, statuses: Vec<Status>) {
        *locked(&self.state.failures) = statuses;
    }

    /// GetOwner calls received so far.
    pub fn lookups(&self) -> u64 {
        self.state.lookups.load(Ordering::SeqCst)
    }
}

#[tonic::async_trait]
impl UserService for FakeUsers {
    async fn get_owner(
        &self,
        request: Request<user_pb::GetOwnerRequest>,
    ) -> Result<tonic::Response<user_pb::GetOwnerResponse>, Status> {
        self.state.lookups.fetch_add(1, Ordering::SeqCst);
        if let Some(status) = next_failure(&self.state.failures) {
            return Err(status);
        }
        match locked(&self.state.owners).get(&request.get_ref().owner_id) {
            Some(owner) => Ok(tonic::Response::new(user_pb::GetOwnerResponse { owner: Some(owner.clone()) })),
            None => Err(Status::not_found("owner not found")),
        }
    }
}

/// The fakes the event workload reaches, and its peers pointing at them.
struct PeerFakes {
    participation: FakeParticipation,
    users: FakeUsers,
    peers: Peers,
}

/// The fake participation and user services over mTLS (the contracts' policy: the event workload
/// may call CloseEntries, DrawWinnersOnSchedule, CountEntries and GetOwner), and the event
/// workload's peers pointing at them.
async fn peer_mesh() -> (PeerFakes, Shutdown) {
    let ca = TestCa::new();
    let identity = ca.identity("event", Duration::from_secs(3_600)).await;
    let servers = Shutdown::new();
    let participation = FakeParticipation::default();
    let service = ParticipationServiceServer::new(participation.clone());
    let participation_addr = kem_testkit::mesh::serve(&ca, "participation", service, &servers).await;
    let users = FakeUsers::new();
    let user_addr = kem_testkit::mesh::serve(&ca, "user", UserServiceServer::new(users.clone()), &servers).await;
    let peers = Peers::new(identity, TRUST_DOMAIN, NAMESPACE)
        .with_addr("participation", participation_addr.to_string())
        .with_addr("user", user_addr.to_string());
    (PeerFakes { participation, users, peers }, servers)
}
