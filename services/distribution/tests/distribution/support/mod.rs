//! Shared fixtures: a started distribution service on a fresh PostgreSQL database and Redis
//! prefix, reaching fake user, event and participation services over mesh mTLS; contract servers
//! for every channel; job builders; status and queue readers.

pub mod events;
pub mod media;
/// The Instagram Graph and Instagram Login contract server, shared with the end-to-end tests.
pub use kem_testkit::contracts::instagram;
/// The Naver Login and Cafe contract server, shared with the end-to-end tests.
pub use kem_testkit::contracts::naver;
pub mod participation;
pub mod partner;
/// The SENS Biz Message (친구톡) contract server, shared with the end-to-end tests, with this
/// harness's channels.
pub mod sens;
pub mod user;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kem_distribution::DistributionApi;
use kem_distribution::config::{ChannelPolicy, DistributionConfig, NaverLoginConfig, PartnerConfig};
use kem_distribution::domain::{Channel, RetryPolicy};
use kem_distribution::infra::channels::{self, form_decode};
use kem_distribution::infra::connections as login;
use kem_kit::Secret;
pub use kem_kit::clock::{Clock as _, SystemClock};
use kem_kit::external::{Backoff, ProviderConfig, ProviderMode};
use kem_kit::outbox::Outbox;
use kem_kit::queue::store::{StoreQueue, StoreQueueOptions};
use kem_kit::queue::{OutgoingMessage, names};
use kem_kit::runtime::{Peers, ServiceContext, with_owner};
use kem_kit::store::{self, Store};
use kem_mesh::Shutdown;
use kem_mesh::identity::WorkloadIdentity;
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::distribution::v1 as pb;
use kem_proto::kem::distribution::v1::distribution_service_server::DistributionService;
use kem_proto::kem::event::v1::ChannelCopy;
use kem_proto::kem::event::v1::event_service_server::EventServiceServer;
use kem_proto::kem::messaging::v1 as msg;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationServiceServer;
use kem_proto::kem::user::v1::user_service_server::UserServiceServer;
use kem_testkit::eventually;
use kem_testkit::service::{Backing, TestService};
pub use kem_testkit::status::{expect_code, reason, violations};
use prost::Message;
use tonic::{Request, Status};

pub use events::FakeEvents;
pub use participation::FakeParticipation;
pub use user::{FakeUsers, OTHER, OWNER};

pub const HOUR: Duration = Duration::from_secs(3_600);
const DAY_MS: i64 = 86_400_000;

/// Client settings for a contract server: quick retries, the default breaker, and 5 s per
/// request (10 s in all) — generous, because a loaded CI machine answers slowly; the tests of
/// hangs and timeouts set their own short deadlines.
pub fn fast(mut config: ProviderConfig) -> ProviderConfig {
    config.timeout = Duration::from_secs(5);
    config.connect_timeout = Duration::from_secs(2);
    config.deadline = Duration::from_secs(10);
    config.backoff = Backoff { initial: Duration::from_millis(5), max: Duration::from_millis(20) };
    config
}

/// Production rules at test speed: short deadlines, backoffs and poll intervals; Kakao's night
/// restriction off (tests run at any hour). Every channel is still local until
/// [`Providers::configure`] points it at a contract server.
pub fn fast_config() -> DistributionConfig {
    let mut config =
        DistributionConfig { public_base_url: "https://kem.example".into(), ..DistributionConfig::default() };
    for channel in Channel::ALL {
        config.policies.insert(
            channel,
            ChannelPolicy {
                deadline: Duration::from_secs(10),
                retry: RetryPolicy {
                    max_attempts: 3,
                    backoff_initial: Duration::from_millis(100),
                    backoff_max: Duration::from_millis(400),
                    min_poll: Duration::from_millis(20),
                    max_poll: Duration::from_millis(200),
                },
                concurrency: 4,
            },
        );
    }
    config.kakao.settings.quiet_hours = false;
    // A fixed media key, the image host's too, so the tests can read the links distribution signs.
    config.media_keys.key = Some(media::media_key_setting());
    config.instagram.settings.container_poll = Duration::from_millis(20);
    config.instagram.settings.container_wait = Duration::from_millis(300);
    config.instagram.settings.processing_poll = Duration::from_millis(50);
    config.instagram.settings.quota_recheck = Duration::from_millis(300);
    config.local_partner.review_step = Duration::from_millis(1);
    config.local_partner.retry_after = Duration::ZERO;
    config.scan_interval = Duration::from_millis(50);
    config.lease_margin = Duration::from_secs(1);
    config.owner_lookup_timeout = Duration::from_secs(2);
    config.drain_timeout = Duration::from_secs(1);
    config.connections.refresh_interval = Duration::from_millis(50);
    config
}

/// A contract server per channel, and the public image route Instagram fetches from.
pub struct Providers {
    pub instagram: instagram::IgServer,
    /// The edge's public media route (`/media/{token}`, verified with [`media::MEDIA_KEY`]: real
    /// JPEG and PNG renditions), which [`Providers::configure`] makes the public base URL:
    /// Instagram's contract server fetches every `image_url` as Meta does.
    pub images: instagram::ImageHost,
    pub sens: sens::SensBizServer,
    pub naver: naver::NaverServer,
    pub partners: BTreeMap<Channel, partner::TestPartner>,
}

impl Providers {
    pub async fn start() -> Providers {
        let mut partners = BTreeMap::new();
        for channel in [Channel::UridongneTv, Channel::RingoBiz, Channel::GenieTv] {
            partners.insert(channel, partner::TestPartner::start(Duration::from_millis(1)).await);
        }
        Providers {
            instagram: instagram::IgServer::start().await,
            images: instagram::ImageHost::start_with_media_key(&media::MEDIA_KEY).await,
            sens: sens::start().await,
            naver: naver::NaverServer::start().await,
            partners,
        }
    }

    pub fn partner(&self, channel: Channel) -> &partner::TestPartner {
        &self.partners[&channel]
    }

    /// Requests each server has received, by channel.
    pub fn calls(&self) -> BTreeMap<Channel, u64> {
        let mut calls: BTreeMap<Channel, u64> = self.partners.iter().map(|(c, p)| (*c, p.calls())).collect();
        calls.insert(Channel::Instagram, self.instagram.calls());
        calls.insert(Channel::NaverBlog, self.naver.calls());
        calls.insert(Channel::KakaoChannel, self.sens.calls());
        calls
    }

    /// Registers the OAuth callback of a service whose public base URL is `base` with the
    /// Instagram app and the Naver application (providers match it exactly).
    pub fn allow_callback(&self, base: &str) {
        let callback = format!("{base}{}", kem_distribution::OAUTH_CALLBACK_PATH);
        self.instagram.allow_redirect(&callback);
        self.naver.allow_redirect(&callback);
    }

    /// Points every channel of `config` at these servers (the real clients, real credentials:
    /// the Meta app's and the Naver application's, each registering the OAuth callback), and the
    /// public base URL at the image host.
    pub fn configure(&self, config: &mut DistributionConfig) {
        config.public_base_url = self.images.base_url();
        let ig = self.instagram.base_url();
        let instagram = fast(channels::instagram::provider_config(ig.clone()));
        config.instagram.mode =
            ProviderMode::Real { config: instagram, credentials: Secret::new(instagram::APP_SECRET) };
        config.instagram.app_id = instagram::APP_ID.into();
        config.instagram.oauth_url = ig.clone();
        config.instagram.authorize_url = ig;
        config.instagram.settings.api_version = instagram::VERSION.into();
        config.naver = Some(NaverLoginConfig {
            client_id: naver::CLIENT_ID.into(),
            client_secret: Secret::new(naver::CLIENT_SECRET),
            auth: fast(login::naver::provider_config(self.naver.base_url())),
            api: fast(channels::naver::provider_config(self.naver.base_url())),
        });
        self.allow_callback(&self.images.base_url());
        let sens = fast(channels::kakao::provider_config(self.sens.base_url()));
        config.kakao.mode = ProviderMode::Real { config: sens, credentials: Secret::new(sens::SECRET) };
        config.kakao.settings.access_key = sens::ACCESS_KEY.into();
        config.kakao.settings.service_id = sens::SERVICE_ID.into();
        for (channel, server) in &self.partners {
            let provider = fast(channels::partner::provider_config(*channel, server.base_url()));
            config.partners.insert(
                *channel,
                PartnerConfig {
                    mode: ProviderMode::Real { config: provider, credentials: Secret::new(partner::CLIENT_SECRET) },
                    client_id: partner::CLIENT_ID.into(),
                },
            );
        }
    }
}

/// The distribution service and its surroundings.
pub struct Harness {
    pub ctx: ServiceContext,
    /// The store-backed queue the context uses (depth checks).
    pub queue: StoreQueue,
    pub api: DistributionApi,
    pub users: FakeUsers,
    /// The event service GetStatus asks about publications whose job has not arrived.
    pub events: FakeEvents,
    /// The participation service Kakao deliveries read their recipients from.
    pub participation: FakeParticipation,
    pub ca: TestCa,
    pub identity: WorkloadIdentity,
    pub servers: Shutdown,
    backing: Backing,
}

/// The fake user service over mesh mTLS, with the policy of the contracts.
pub async fn user_service(ca: &TestCa, servers: &Shutdown) -> (FakeUsers, SocketAddr) {
    let users = FakeUsers::new();
    let addr = kem_testkit::mesh::serve(ca, "user", UserServiceServer::new(users.clone()), servers).await;
    (users, addr)
}

/// The fake peers distribution calls.
type Fakes = (FakeUsers, FakeEvents, FakeParticipation);

/// The fake user, event and participation services over mesh mTLS, and the distribution
/// workload's peers.
async fn peer_services(ca: &TestCa, identity: &WorkloadIdentity, servers: &Shutdown) -> (Fakes, Peers) {
    let (users, user_addr) = user_service(ca, servers).await;
    let events = FakeEvents::default();
    let event_addr = kem_testkit::mesh::serve(ca, "event", EventServiceServer::new(events.clone()), servers).await;
    let participation = FakeParticipation::new();
    let participation_addr =
        kem_testkit::mesh::serve(ca, "participation", ParticipationServiceServer::new(participation.clone()), servers)
            .await;
    let peers = Peers::new(identity.clone(), TRUST_DOMAIN, NAMESPACE)
        .with_addr("user", user_addr.to_string())
        .with_addr("event", event_addr.to_string())
        .with_addr("participation", participation_addr.to_string());
    ((users, events, participation), peers)
}

impl Harness {
    /// The service, with [`OWNER`] having connected every channel that takes their account
    /// (Instagram through Instagram Login, Naver with the contract server's cafe board), as an
    /// owner who set up their channels does.
    pub async fn start(config: DistributionConfig) -> Harness {
        Harness::start_with_queue(config, None).await
    }

    /// The service with no channel connected by anyone.
    pub async fn start_unconnected(config: DistributionConfig) -> Harness {
        Harness::start_tuned(config, None).await
    }

    /// The service on `clock` (shared with the contract servers, so one `advance` moves both),
    /// nothing connected.
    pub async fn start_with_clock(config: DistributionConfig, clock: kem_kit::clock::ManualClock) -> Harness {
        let ca = TestCa::new();
        let identity = ca.identity("distribution", HOUR).await;
        let servers = Shutdown::new();
        let (fakes, peers) = peer_services(&ca, &identity, &servers).await;
        let mut svc = TestService::with_peers("distribution", peers).await;
        svc.ctx.clock = Arc::new(clock);
        let (ctx, queue) = (svc.ctx.clone(), svc.queue.clone());
        Harness::launch(ctx, queue, config, fakes, ca, identity, servers, Backing::Postgres(Box::new(svc))).await
    }

    /// Connects every channel `owner` has NOT_CONNECTED through the full OAuth flow.
    pub async fn connect_all(&self, owner: &str) {
        for c in self.connections(owner).await.expect("list connections") {
            if c.state == pb::ConnectionState::NotConnected as i32 {
                let channel = Channel::from_number(c.channel).expect("a channel");
                self.connect(owner, channel).await;
            }
        }
    }

    pub async fn connections(&self, owner: &str) -> Result<Vec<pb::ChannelConnection>, Status> {
        let request = with_owner(Request::new(pb::ListChannelConnectionsRequest {}), owner);
        Ok(self.api.list_channel_connections(request).await?.into_inner().connections)
    }

    /// `owner`'s connection of `channel` as listed.
    pub async fn connection(&self, owner: &str, channel: Channel) -> pb::ChannelConnection {
        let all = self.connections(owner).await.expect("list connections");
        all.into_iter().find(|c| c.channel == channel.number()).expect("every channel is listed")
    }

    pub async fn start_connection(
        &self,
        owner: &str,
        channel: i32,
        cafe: Option<(&str, &str)>,
    ) -> Result<pb::StartChannelConnectionResponse, Status> {
        let naver_cafe = cafe.map(|(club, menu)| pb::NaverCafe { club_id: club.to_owned(), menu_id: menu.to_owned() });
        let request = pb::StartChannelConnectionRequest { channel, naver_cafe, kakao_channel_id: String::new() };
        Ok(self.api.start_channel_connection(with_owner(Request::new(request), owner)).await?.into_inner())
    }

    /// StartChannelConnection of KAKAO_CHANNEL with `kakao_channel_id`.
    pub async fn start_kakao(
        &self,
        owner: &str,
        kakao_channel_id: &str,
    ) -> Result<pb::StartChannelConnectionResponse, Status> {
        let request = pb::StartChannelConnectionRequest {
            channel: Channel::KakaoChannel.number(),
            naver_cafe: None,
            kakao_channel_id: kakao_channel_id.to_owned(),
        };
        Ok(self.api.start_channel_connection(with_owner(Request::new(request), owner)).await?.into_inner())
    }

    /// The callback as the browser brings it: the redirect's query, sent with `caller`'s
    /// credentials when given (the route is public).
    pub async fn complete(
        &self,
        caller: Option<&str>,
        query: &HashMap<String, String>,
    ) -> Result<pb::ChannelConnection, Status> {
        let get = |k: &str| query.get(k).cloned().unwrap_or_default();
        let request = pb::CompleteChannelConnectionRequest {
            state: get("state"),
            code: get("code"),
            error: get("error"),
            error_description: get("error_description"),
            error_reason: get("error_reason"),
        };
        let request = match caller {
            Some(owner) => with_owner(Request::new(request), owner),
            None => Request::new(request),
        };
        let answer = self.api.complete_channel_connection(request).await?.into_inner();
        Ok(answer.connection.expect("the connection"))
    }

    /// Sends the callback `query` `n` times at once (no caller, as a browser arrives): how many
    /// connected and how many were told the state is unknown; any other answer fails the test.
    pub async fn race_completes(self: &Arc<Self>, query: &HashMap<String, String>, n: usize) -> (usize, usize) {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (h, query) = (self.clone(), query.clone());
            tasks.spawn(async move { h.complete(None, &query).await });
        }
        let (mut ok, mut not_found) = (0, 0);
        while let Some(result) = tasks.join_next().await {
            match result.expect("joined") {
                Ok(_) => ok += 1,
                Err(status) if status.code() == tonic::Code::NotFound => not_found += 1,
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        (ok, not_found)
    }

    /// Starts connecting `channel` for `owner`, follows the provider's consent screen and
    /// completes with its redirect; the connection. Kakao connects `owner`'s channel registered
    /// at the SENS contract server ([`sens::channel_of`]) at once.
    pub async fn connect(&self, owner: &str, channel: Channel) -> pb::ChannelConnection {
        if channel == Channel::KakaoChannel {
            let started = self.start_kakao(owner, sens::channel_of(owner)).await.expect("connect Kakao");
            return started.connection.expect("Kakao connects at once");
        }
        let cafe = (channel == Channel::NaverBlog).then_some((naver::CLUB, naver::MENU));
        let started = self.start_connection(owner, channel.number(), cafe).await.expect("start connecting");
        let redirect = consent(&started.authorization_url).await;
        self.complete(None, &redirect).await.unwrap_or_else(|e| panic!("complete connecting {channel}: {e:?}"))
    }

    pub async fn delete_connection(&self, owner: &str, channel: i32) -> Result<pb::ChannelConnection, Status> {
        let request = with_owner(Request::new(pb::DeleteChannelConnectionRequest { channel }), owner);
        Ok(self.api.delete_channel_connection(request).await?.into_inner().connection.expect("the connection"))
    }

    pub async fn check(&self, owner: &str, channels: &[Channel]) -> Result<Vec<pb::ChannelConnection>, Status> {
        let request = pb::CheckChannelConnectionsRequest {
            owner_id: owner.to_owned(),
            channels: channels.iter().map(|c| c.number()).collect(),
        };
        Ok(self.api.check_channel_connections(Request::new(request)).await?.into_inner().unusable)
    }

    /// Like [`start`](Self::start) with the store-backed queue tuned (e.g. a zero dedupe window,
    /// so a re-sent message id is delivered again, as Service Bus does once its window passed).
    /// [`OWNER`] has connected every channel that takes their account, as with [`start`](Self::start).
    pub async fn start_with_queue(config: DistributionConfig, queue: Option<StoreQueueOptions>) -> Harness {
        let h = Harness::start_tuned(config, queue).await;
        h.connect_all(OWNER).await;
        h
    }

    async fn start_tuned(config: DistributionConfig, queue: Option<StoreQueueOptions>) -> Harness {
        let ca = TestCa::new();
        let identity = ca.identity("distribution", HOUR).await;
        let servers = Shutdown::new();
        let (fakes, peers) = peer_services(&ca, &identity, &servers).await;
        let mut svc = TestService::with_peers("distribution", peers).await;
        if let Some(options) = queue {
            let tuned = StoreQueue::with_options(svc.ctx.store.clone(), options);
            svc.ctx.queue = Arc::new(tuned.clone());
            svc.queue = tuned;
        }
        let (ctx, queue) = (svc.ctx.clone(), svc.queue.clone());
        Harness::launch(ctx, queue, config, fakes, ca, identity, servers, Backing::Postgres(Box::new(svc))).await
    }

    /// The service on embedded SQLite with the in-process cache (`kem up`): the same migrations
    /// and queries.
    pub async fn sqlite(config: DistributionConfig) -> Harness {
        let ca = TestCa::new();
        let identity = ca.identity("distribution", HOUR).await;
        let servers = Shutdown::new();
        let (fakes, peers) = peer_services(&ca, &identity, &servers).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = kem_testkit::service::embedded_context("distribution", peers, dir.path()).await;
        let queue = StoreQueue::new(ctx.store.clone());
        Harness::launch(ctx, queue, config, fakes, ca, identity, servers, Backing::Sqlite(dir)).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn launch(
        ctx: ServiceContext,
        queue: StoreQueue,
        config: DistributionConfig,
        (users, events, participation): Fakes,
        ca: TestCa,
        identity: WorkloadIdentity,
        servers: Shutdown,
        backing: Backing,
    ) -> Harness {
        let api = kem_distribution::start_api(ctx.clone(), config)
            .await
            .unwrap_or_else(|e| panic!("the distribution service does not start: {e}"));
        Harness { ctx, queue, api, users, events, participation, ca, identity, servers, backing }
    }

    pub async fn cleanup(self) {
        self.servers.trigger();
        self.backing.cleanup(&self.ctx).await;
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    /// Publishes `event_id` to `channels` as event's PublishEvent does: the event service
    /// records it, and the job goes out on `distribution-jobs` (message id `dist:<event_id>`).
    pub async fn publish(&self, event_id: &str, channels: &[Channel]) -> msg::DistributionJob {
        let job = job(event_id, OWNER, channels);
        self.events.publish(event_id, OWNER, channels, SystemClock.now_ms());
        self.send(&job, &format!("dist:{event_id}")).await;
        job
    }

    pub async fn send(&self, job: &msg::DistributionJob, id: &str) {
        self.ctx.queue.send(job_message(job, id)).await.expect("send the distribution job");
    }

    pub async fn status(&self, owner: &str, event_id: &str) -> Result<pb::GetStatusResponse, Status> {
        let request = pb::GetStatusRequest { event_id: event_id.to_owned() };
        Ok(self.api.get_status(with_owner(Request::new(request), owner)).await?.into_inner())
    }

    pub async fn retry(&self, owner: &str, event_id: &str, channels: &[i32]) -> Result<pb::RetryResponse, Status> {
        let request = pb::RetryRequest { event_id: event_id.to_owned(), channels: channels.to_vec() };
        Ok(self.api.retry(with_owner(Request::new(request), owner)).await?.into_inner())
    }

    /// Polls GetStatus until `done` holds, or fails the test after `timeout`.
    pub async fn wait_until(
        &self,
        event_id: &str,
        timeout: Duration,
        what: &str,
        done: impl Fn(&pb::GetStatusResponse) -> bool,
    ) -> pb::GetStatusResponse {
        let reached = std::sync::Mutex::new(None);
        eventually(what, timeout, || async {
            let status = self.status(OWNER, event_id).await.ok().filter(|s| done(s));
            let found = status.is_some();
            *reached.lock().expect("status") = status;
            found
        })
        .await;
        reached.into_inner().expect("status").expect("the awaited status")
    }

    /// Waits until nothing is in progress any more.
    pub async fn settled(&self, event_id: &str) -> pb::GetStatusResponse {
        self.wait_until(event_id, Duration::from_secs(20), "the distribution to settle", |s| {
            s.state != pb::DistributionState::InProgress as i32 && s.state != 0
        })
        .await
    }

    /// The analytics outcomes reported for `event_id` (after the outbox drained), by message id.
    pub async fn outcomes(&self, event_id: &str) -> Vec<(String, msg::ChannelOutcome)> {
        let store = self.store().clone();
        eventually("the outbox to drain", Duration::from_secs(15), || {
            let store = store.clone();
            async move { Outbox::pending(&store).await.map(|n| n == 0).unwrap_or(false) }
        })
        .await;
        let rows = store::query(
            "SELECT id, body, content_type, properties FROM kem_queue_messages WHERE queue = $1 ORDER BY seq",
        )
        .bind(names::ANALYTICS_AGGREGATION)
        .fetch_all(store.primary())
        .await
        .expect("read the queue");
        rows.iter()
            .filter_map(|row| {
                let properties: HashMap<String, String> =
                    serde_json::from_str(&row.get::<String>("properties").expect("properties")).expect("json");
                assert_eq!(row.get::<String>("content_type").expect("content type"), "application/protobuf");
                assert_eq!(properties.get("type").map(String::as_str), Some("kem.messaging.v1.AnalyticsEvent"));
                if properties.get("event_id").map(String::as_str) != Some(event_id) {
                    return None;
                }
                let body =
                    msg::AnalyticsEvent::decode(row.get::<Vec<u8>>("body").expect("body").as_slice()).expect("decodes");
                assert_eq!((body.event_id.as_str(), body.owner_id.as_str()), (event_id, OWNER));
                match body.fact {
                    Some(msg::analytics_event::Fact::ChannelOutcome(outcome)) => {
                        Some((row.get("id").expect("id"), outcome))
                    }
                    other => panic!("unexpected fact {other:?}"),
                }
            })
            .collect()
    }
}

/// Opens `url` as the owner's browser would (the provider's consent screen) and reads the
/// redirect it answers: the query of its `Location` (Meta's `#_` fragment dropped, as browsers do).
pub async fn consent(url: &str) -> HashMap<String, String> {
    let tls = kem_kit::external::tls_client_config(None).expect("rustls with ring");
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = client.get(url).send().await.expect("the consent screen answers");
    assert_eq!(response.status().as_u16(), 302, "the consent screen redirects: {url}");
    let location = response.headers().get("location").and_then(|l| l.to_str().ok()).expect("a Location").to_owned();
    let location = location.split('#').next().unwrap_or_default();
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_decode(query).into_iter().collect()
}

/// A publication as the event service sends it: Instagram copy with hashtags, the others with
/// their own text, the selected image ([`media::image_id`]), a 30-day period that started an hour
/// ago, a prize.
pub fn job(event_id: &str, owner: &str, channels: &[Channel]) -> msg::DistributionJob {
    let start = SystemClock.now_ms() - 3_600_000;
    msg::DistributionJob {
        event_id: event_id.to_owned(),
        owner_id: owner.to_owned(),
        deliveries: channels
            .iter()
            .map(|c| msg::ChannelDelivery {
                channel: c.number(),
                copy: Some(ChannelCopy {
                    channel: c.number(),
                    text: format!("평일 점심 스탬프 이벤트 ({})", c.as_str()),
                    hashtags: if *c == Channel::Instagram {
                        vec!["점심".into(), "역삼카페".into()]
                    } else {
                        Vec::new()
                    },
                }),
                entry_url: String::new(),
            })
            .collect(),
        image_id: media::image_id(event_id),
        title: "평일 점심 스탬프 이벤트".into(),
        description: "점심 시간에 방문하고 스탬프를 모으세요".into(),
        period: Some(common::Period { start_time: Some(ts(start)), end_time: Some(ts(start + 30 * DAY_MS)) }),
        prize: Some(common::Prize {
            name: "아메리카노 1잔".into(),
            description: String::new(),
            winner_count: 10,
            unit_value: Some(common::Money { amount_krw: 4_500 }),
        }),
        participation_method: common::ParticipationMethod::Draw as i32,
        recommendation_id: "rec-1".into(),
        publish_time: Some(ts(SystemClock.now_ms())),
    }
}

/// The queue envelope of a job.
pub fn job_message(job: &msg::DistributionJob, id: &str) -> OutgoingMessage {
    OutgoingMessage {
        queue: names::DISTRIBUTION_JOBS.to_owned(),
        id: id.to_owned(),
        body: job.encode_to_vec(),
        content_type: "application/protobuf".into(),
        traceparent: None,
        delay: None,
        properties: [
            ("type".to_owned(), "kem.messaging.v1.DistributionJob".to_owned()),
            ("event_id".to_owned(), job.event_id.clone()),
        ]
        .into(),
    }
}

pub fn ts(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

/// The delivery of `channel`.
#[track_caller]
pub fn delivery(status: &pb::GetStatusResponse, channel: Channel) -> pb::ChannelDelivery {
    status
        .deliveries
        .iter()
        .find(|d| d.channel == channel.number())
        .cloned()
        .unwrap_or_else(|| panic!("no {channel} delivery in {status:#?}"))
}

pub fn state_of(status: &pb::GetStatusResponse, channel: Channel) -> pb::DeliveryState {
    pb::DeliveryState::try_from(delivery(status, channel).state).unwrap_or(pb::DeliveryState::Unspecified)
}
