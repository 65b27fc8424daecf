//! Shared fixtures: the content service started on a fresh PostgreSQL database and Redis prefix (or
//! embedded SQLite), an in-test event service over real mTLS that records job reports and answers
//! publication lookups, message builders and waits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kem_content::{ContentApi, ContentConfig, ContentServiceServer};
pub use kem_kit::clock::{Clock as _, SystemClock};
use kem_kit::queue::OutgoingMessage;
use kem_kit::queue::names::CONTENT_GENERATION;
use kem_kit::runtime::{Peers, ServiceContext, with_owner};
use kem_mesh::Shutdown;
use kem_mesh::authz::Policy;
use kem_mesh::client::MeshChannel;
use kem_mesh::identity::WorkloadIdentity;
use kem_mesh::server::{RoleServer, Transport};
use kem_mesh::telemetry::Registry;
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_proto::google::rpc::Status as RpcStatus;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::content::v1 as content;
use kem_proto::kem::content::v1::content_service_client::ContentServiceClient;
use kem_proto::kem::content::v1::content_service_server::ContentService;
use kem_proto::kem::event::v1 as event;
use kem_proto::kem::event::v1::event_service_server::{EventService, EventServiceServer};
use kem_proto::kem::messaging::v1 as msg;
use kem_testkit::eventually_holds;
use kem_testkit::service::{Backing, TestService};
/// `domain/reason` of a job outcome's `google.rpc.Status` (`reason`) or of a tonic status.
pub use kem_testkit::status::{domain_reason as status_reason, rpc_domain_reason as reason};
use prost::Message;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

pub const OWNER: &str = "owner-1";
pub const OTHER: &str = "owner-2";
pub const HOUR: Duration = Duration::from_secs(3600);

pub fn ts(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

// ---- messages -----------------------------------------------------------------------------------

/// A GenerateImages request for `event_id` of `owner`, due in 5 minutes.
pub fn request(job_id: &str, event_id: &str, owner: &str) -> msg::GenerateImages {
    let start = SystemClock.now_ms() + 86_400_000;
    msg::GenerateImages {
        job_id: job_id.to_owned(),
        event_id: event_id.to_owned(),
        owner_id: owner.to_owned(),
        recommendation: Some(event::Recommendation {
            recommendation_id: "rec-1".into(),
            title: "가을 신메뉴 출시 기념 이벤트".into(),
            concept: "평일 점심 직장인을 위한 Americano 1+1".into(),
            ..Default::default()
        }),
        title: "가을 신메뉴 출시 기념 경품 이벤트".into(),
        description: "점심 손님을 늘리는 이벤트".into(),
        prize: Some(common::Prize { name: "아메리카노 1잔".into(), winner_count: 10, ..Default::default() }),
        period: Some(common::Period { start_time: Some(ts(start)), end_time: Some(ts(start + 30 * 86_400_000)) }),
        channels: vec![common::Channel::Instagram as i32],
        sizes: Vec::new(),
        styles: Vec::new(),
        store: Some(msg::StoreProfile {
            store_name: "카페 온기".into(),
            business_category: common::BusinessCategory::Cafe as i32,
            region: "서울 강남구".into(),
        }),
        request_time: Some(ts(SystemClock.now_ms())),
        deadline: Some(ts(SystemClock.now_ms() + 300_000)),
    }
}

/// An explicit small size (fast to render and fit).
pub fn size(channel: common::Channel, width: i32, height: i32) -> msg::ImageSize {
    msg::ImageSize { channel: channel as i32, width, height }
}

pub fn styles(list: &[common::ImageStyle]) -> Vec<i32> {
    list.iter().map(|s| *s as i32).collect()
}

// ---- the event service --------------------------------------------------------------------------

/// What the in-test event service was told about one job.
#[derive(Debug, Clone, Default)]
pub struct JobLog {
    /// `started` reports.
    pub started: u32,
    /// Terminal reports received (first one applied).
    pub terminal_reports: u32,
    /// The applied outcome.
    pub outcome: Option<event::report_job_result_request::Outcome>,
}

/// A job's applied outcome.
#[derive(Debug, Clone)]
pub enum Outcome {
    Images(event::ImagesResult),
    Failed(RpcStatus),
}

impl Outcome {
    pub fn images(&self) -> &event::ImagesResult {
        match self {
            Outcome::Images(images) => images,
            Outcome::Failed(status) => panic!("the job failed: {status:?}"),
        }
    }

    pub fn failure(&self) -> &RpcStatus {
        match self {
            Outcome::Failed(status) => status,
            Outcome::Images(images) => panic!("the job succeeded: {images:?}"),
        }
    }
}

#[derive(Default)]
struct EventState {
    jobs: HashMap<String, JobLog>,
    gone: HashSet<String>,
    unavailable: u32,
    calls: u32,
    /// Events `GetEventForDistribution` knows: status and selected image.
    events: HashMap<String, (event::EventStatus, String)>,
    lookups: u32,
    lookups_down: bool,
}

/// The event service's `ReportJobResult` (first terminal report wins), recording every report,
/// and its `GetEventForDistribution` over the events a test sets.
#[derive(Clone, Default)]
pub struct FakeEvents {
    state: Arc<Mutex<EventState>>,
}

impl FakeEvents {
    fn lock(&self) -> std::sync::MutexGuard<'_, EventState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn log(&self, job_id: &str) -> JobLog {
        self.lock().jobs.get(job_id).cloned().unwrap_or_default()
    }

    pub fn outcome(&self, job_id: &str) -> Option<Outcome> {
        use event::report_job_result_request::Outcome as O;
        match self.log(job_id).outcome? {
            O::Images(images) => Some(Outcome::Images(images)),
            O::Error(status) => Some(Outcome::Failed(status)),
            other => panic!("not a terminal outcome: {other:?}"),
        }
    }

    /// Jobs of which the event was deleted: NOT_FOUND.
    pub fn delete_job(&self, job_id: &str) {
        self.lock().gone.insert(job_id.to_owned());
    }

    /// The next `n` calls answer UNAVAILABLE.
    pub fn fail_next(&self, n: u32) {
        self.lock().unavailable = n;
    }

    pub fn calls(&self) -> u32 {
        self.lock().calls
    }

    /// `event_id` is now in `status` with `selected_image_id` selected ("" for none).
    pub fn set_event(&self, event_id: &str, status: event::EventStatus, selected_image_id: &str) {
        self.lock().events.insert(event_id.to_owned(), (status, selected_image_id.to_owned()));
    }

    /// While `down`, every `GetEventForDistribution` answers UNAVAILABLE.
    pub fn lookups_down(&self, down: bool) {
        self.lock().lookups_down = down;
    }

    /// `GetEventForDistribution` calls received.
    pub fn lookups(&self) -> u32 {
        self.lock().lookups
    }
}

#[tonic::async_trait]
impl EventService for FakeEvents {
    async fn report_job_result(
        &self,
        request: Request<event::ReportJobResultRequest>,
    ) -> Result<Response<event::ReportJobResultResponse>, Status> {
        use event::report_job_result_request::Outcome as O;
        let r = request.into_inner();
        let mut state = self.lock();
        state.calls += 1;
        if state.unavailable > 0 {
            state.unavailable -= 1;
            return Err(Status::unavailable("event database restarting"));
        }
        if state.gone.contains(&r.job_id) {
            return Err(Status::not_found(format!("job {} not found", r.job_id)));
        }
        let log = state.jobs.entry(r.job_id.clone()).or_default();
        match r.outcome {
            Some(O::Started(_)) => log.started += 1,
            Some(O::Images(images)) => {
                if images.image_ids.is_empty() {
                    return Err(Status::invalid_argument("images.imageIds: at least one image id is required"));
                }
                log.terminal_reports += 1;
                log.outcome.get_or_insert(O::Images(images));
            }
            Some(O::Error(status)) => {
                log.terminal_reports += 1;
                log.outcome.get_or_insert(O::Error(status));
            }
            _ => return Err(Status::invalid_argument("outcome: set exactly one")),
        }
        Ok(Response::new(event::ReportJobResultResponse {
            job: Some(event::Job { job_id: r.job_id, ..Default::default() }),
        }))
    }

    async fn get_event_for_distribution(
        &self,
        request: Request<event::GetEventForDistributionRequest>,
    ) -> Result<Response<event::GetEventForDistributionResponse>, Status> {
        let event_id = request.into_inner().event_id;
        let mut state = self.lock();
        state.lookups += 1;
        if state.lookups_down {
            return Err(Status::unavailable("event database restarting"));
        }
        let Some((status, selected)) = state.events.get(&event_id).cloned() else {
            return Err(Status::not_found(format!("event {event_id} not found")));
        };
        let published = matches!(status, event::EventStatus::Published | event::EventStatus::Ended);
        Ok(Response::new(event::GetEventForDistributionResponse {
            event_id,
            owner_id: OWNER.to_owned(),
            status: status as i32,
            channels: if published { vec![common::Channel::Instagram as i32] } else { Vec::new() },
            publish_time: published.then(|| ts(SystemClock.now_ms())),
            selected_image_id: selected,
        }))
    }
}

// ---- the harness --------------------------------------------------------------------------------

/// Test settings: fast consumer, own metrics registry.
pub fn test_config() -> ContentConfig {
    let mut config = ContentConfig { metrics: Registry::new(), parallelism: 2, ..ContentConfig::default() };
    config.consumer.receive_wait = Duration::from_millis(200);
    config.consumer.retry_delay = Duration::from_millis(200);
    config.consumer.max_retry_delay = Duration::from_secs(2);
    config.consumer.lock_for = Duration::from_secs(10);
    config.consumer.drain_timeout = Duration::from_secs(2);
    config
}

/// The content service, the in-test event service, and the mesh between them.
pub struct Harness {
    pub ctx: ServiceContext,
    pub api: ContentApi,
    pub events: FakeEvents,
    backing: Backing,
    pub ca: TestCa,
    content_identity: WorkloadIdentity,
    pub servers: Shutdown,
}

impl Harness {
    /// On PostgreSQL and Redis.
    pub async fn start(config: ContentConfig) -> Harness {
        let ca = TestCa::new();
        let (events, peers, content_identity, servers) = event_service(&ca).await;
        let svc = TestService::with_peers("content", peers).await;
        let ctx = svc.ctx.clone();
        Harness::launch(ctx, config, events, Backing::Postgres(Box::new(svc)), ca, content_identity, servers).await
    }

    /// On embedded SQLite with the in-process cache, as `kem up` runs.
    pub async fn sqlite(config: ContentConfig) -> Harness {
        let ca = TestCa::new();
        let (events, peers, content_identity, servers) = event_service(&ca).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = kem_testkit::service::embedded_context("content", peers, dir.path()).await;
        Harness::launch(ctx, config, events, Backing::Sqlite(dir), ca, content_identity, servers).await
    }

    async fn launch(
        ctx: ServiceContext,
        config: ContentConfig,
        events: FakeEvents,
        backing: Backing,
        ca: TestCa,
        content_identity: WorkloadIdentity,
        servers: Shutdown,
    ) -> Harness {
        let api =
            kem_content::start_api(ctx.clone(), config).await.unwrap_or_else(|e| panic!("content does not start: {e}"));
        Harness { ctx, api, events, backing, ca, content_identity, servers }
    }

    /// A second instance of the service on the same database, cache and queue, with its own
    /// shutdown (a replica, or the crashed one restarted).
    pub async fn replica(&self, config: ContentConfig) -> (ContentApi, Shutdown) {
        self.replica_on(self.ctx.clone(), config).await
    }

    /// A replica (see [`replica`](Self::replica)) whose event peer is at `addr`: a port nothing
    /// listens on makes the event service unreachable.
    pub async fn replica_with_event_at(&self, addr: &str, config: ContentConfig) -> (ContentApi, Shutdown) {
        let mut ctx = self.ctx.clone();
        ctx.peers = Peers::new(self.content_identity.clone(), TRUST_DOMAIN, NAMESPACE).with_addr("event", addr);
        self.replica_on(ctx, config).await
    }

    async fn replica_on(&self, mut ctx: ServiceContext, config: ContentConfig) -> (ContentApi, Shutdown) {
        ctx.shutdown = Shutdown::new();
        let shutdown = ctx.shutdown.clone();
        let api = kem_content::start_api(ctx, config).await.expect("replica starts");
        (api, shutdown)
    }

    /// Serves `start`'s tonic service over mTLS with the contract policy; returns its address.
    pub async fn serve(&self, config: ContentConfig) -> SocketAddr {
        let mut ctx = self.ctx.clone();
        ctx.shutdown = self.servers.clone();
        let service: ContentServiceServer<ContentApi> = kem_content::start(ctx, config).await.expect("start");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind content");
        let serving = RoleServer::new("content")
            .transport(Transport::MutualTls(self.content_identity.clone()))
            .policy(
                Policy::from_contracts(
                    kem_proto::descriptor_pool(),
                    &["kem.content.v1.ContentService"],
                    TRUST_DOMAIN,
                    NAMESPACE,
                    "gateway",
                ),
                Some(TestCa::id("gateway")),
            )
            .drain_timeout(Duration::from_secs(1))
            .add_service(service)
            .serve(listener, self.servers.clone())
            .await
            .expect("serve content");
        serving.addr
    }

    /// A mesh client of the content service at `addr` as workload `as_service`.
    pub async fn client(&self, addr: SocketAddr, as_service: &str) -> ContentServiceClient<MeshChannel> {
        let identity = self.ca.identity(as_service, HOUR).await;
        let channel = MeshChannel::new(&identity, &addr.to_string(), &TestCa::id("content")).expect("channel");
        ContentServiceClient::new(channel)
    }

    /// Enqueues `message` on `content-generation` as the event service's outbox does.
    pub async fn send(&self, message: &msg::GenerateImages) {
        self.send_raw(
            &format!("job:{}", message.job_id),
            message.encode_to_vec(),
            Some("kem.messaging.v1.GenerateImages"),
        )
        .await;
    }

    pub async fn send_raw(&self, id: &str, body: Vec<u8>, message_type: Option<&str>) {
        let mut properties = BTreeMap::new();
        if let Some(t) = message_type {
            properties.insert("type".to_owned(), t.to_owned());
        }
        properties.insert("event_id".to_owned(), "e".to_owned());
        let message = OutgoingMessage {
            queue: CONTENT_GENERATION.to_owned(),
            id: id.to_owned(),
            body,
            content_type: "application/protobuf".to_owned(),
            traceparent: None,
            delay: None,
            properties,
        };
        self.ctx.queue.send(message).await.expect("enqueue");
    }

    /// Waits for the job's applied outcome.
    pub async fn outcome(&self, job_id: &str, within: Duration) -> Outcome {
        let events = self.events.clone();
        eventually_holds(&format!("job {job_id} is reported"), within, || events.outcome(job_id).is_some()).await;
        self.events.outcome(job_id).expect("reported")
    }

    pub async fn list(&self, owner: &str, event_id: &str) -> Result<content::ListImagesResponse, Status> {
        let request =
            with_owner(Request::new(content::ListImagesRequest { event_id: event_id.into(), style: 0 }), owner);
        Ok(self.api.list_images(request).await?.into_inner())
    }

    pub async fn bytes(&self, owner: &str, image_id: &str) -> Result<content::GetImageContentResponse, Status> {
        let request = with_owner(Request::new(content::GetImageContentRequest { image_id: image_id.into() }), owner);
        Ok(self.api.get_image_content(request).await?.into_inner())
    }

    /// The public bytes of `image_id` (no owner, as the gateway calls it for anyone).
    pub async fn public_bytes(&self, image_id: &str) -> Result<content::GetPublicImageContentResponse, Status> {
        public_bytes(&self.api, image_id).await
    }

    /// Dead-lettered messages of `content-generation`.
    pub async fn dead_letters(&self) -> usize {
        self.ctx.queue.dead_letters(CONTENT_GENERATION, 100).await.expect("dead letters").len()
    }

    pub async fn cleanup(self) {
        self.servers.trigger();
        self.backing.cleanup(&self.ctx).await;
    }
}

/// Starts the in-test event service over mTLS; returns it, the content service's peers, the
/// content workload's identity and the servers' shutdown.
async fn event_service(ca: &TestCa) -> (FakeEvents, Peers, WorkloadIdentity, Shutdown) {
    let content = ca.identity("content", HOUR).await;
    let servers = Shutdown::new();
    let events = FakeEvents::default();
    let addr = kem_testkit::mesh::serve(ca, "event", EventServiceServer::new(events.clone()), &servers).await;
    let peers = Peers::new(content.clone(), TRUST_DOMAIN, NAMESPACE).with_addr("event", addr.to_string());
    (events, peers, content, servers)
}

/// `GetPublicImageContent` of `image_id` on `api`, without an owner.
pub async fn public_bytes(api: &ContentApi, image_id: &str) -> Result<content::GetPublicImageContentResponse, Status> {
    public_in(api, image_id, content::ImageFormat::Unspecified as i32).await
}

/// `GetPublicImageContent` of `image_id` on `api` in `format` (a raw enum number), without an owner.
pub async fn public_in(
    api: &ContentApi,
    image_id: &str,
    format: i32,
) -> Result<content::GetPublicImageContentResponse, Status> {
    let request = Request::new(content::GetPublicImageContentRequest { image_id: image_id.into(), format });
    Ok(api.get_public_image_content(request).await?.into_inner())
}
