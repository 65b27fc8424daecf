//! The ai service started the way a role starts it — a fresh PostgreSQL database, a Redis
//! prefix, the store-backed queue, mTLS mesh identities from a test CA — next to a small event
//! service (only ReportJobResult) that records every report, served over the real mesh.

use kem_testkit::mesh::serve_as;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use kem_ai::AiConfig;
use kem_kit::Secret;
use kem_kit::external::{Backoff, ProviderConfig, ProviderMode};
use kem_kit::queue::OutgoingMessage;
use kem_kit::queue::names::AI_EVENT_GENERATION;
use kem_kit::runtime::{Peers, with_owner};
use kem_kit::store;
use kem_mesh::Shutdown;
use kem_mesh::client::MeshChannel;
use kem_mesh::identity::WorkloadIdentity;
use kem_mesh::telemetry::Registry;
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_proto::kem::ai::v1::ai_service_client::AiServiceClient;
use kem_proto::kem::ai::v1::{GenerateRecommendationsRequest, StoreProfile as AiStore};
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1::event_service_server::{EventService, EventServiceServer};
use kem_proto::kem::event::v1::report_job_result_request::Outcome;
use kem_proto::kem::event::v1::{Job, JobState, ReportJobResultRequest, ReportJobResultResponse};
use kem_proto::kem::messaging::v1::{GenerateRecommendations, StoreProfile};
use kem_testkit::service::TestService;
/// The `ErrorInfo` reason of a `google.rpc.Status` (`domain/reason`).
pub use kem_testkit::status::rpc_domain_reason as reason;
use prost::Message;
use tonic::{Request, Response, Status};

use kem_testkit::{eventually, eventually_holds};

use crate::claude::{API_KEY, ClaudeServer};

/// 2025-11-01T00:00:00+09:00.
pub const NOV_1_MS: i64 = 1_761_922_800_000;
const DAY_MS: i64 = 86_400_000;
const HOUR: Duration = Duration::from_secs(3_600);

// ---- the event service side ----

#[derive(Default)]
struct EventsState {
    reports: Mutex<Vec<ReportJobResultRequest>>,
    terminal: Mutex<HashMap<String, Outcome>>,
    unavailable: AtomicU32,
    gone: Mutex<HashSet<String>>,
}

/// The event service's ReportJobResult, with its contract: the first terminal report of a job
/// wins, later ones change nothing; a recommendations result must hold exactly three.
#[derive(Clone, Default)]
pub struct FakeEvents {
    state: Arc<EventsState>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeEvents {
    /// Every report of `job_id` received (including `started` and refused ones).
    pub fn reports(&self, job_id: &str) -> Vec<ReportJobResultRequest> {
        lock(&self.state.reports).iter().filter(|r| r.job_id == job_id).cloned().collect()
    }

    /// Terminal (non-`started`) reports of `job_id` received.
    pub fn terminal_reports(&self, job_id: &str) -> Vec<Outcome> {
        self.reports(job_id)
            .into_iter()
            .filter_map(|r| r.outcome)
            .filter(|o| !matches!(o, Outcome::Started(_)))
            .collect()
    }

    /// The outcome the job ended with (the first terminal report), if any.
    pub fn outcome(&self, job_id: &str) -> Option<Outcome> {
        lock(&self.state.terminal).get(job_id).cloned()
    }

    /// The next `n` outcome reports (not `started`) fail with UNAVAILABLE.
    pub fn fail_next_outcomes(&self, n: u32) {
        self.state.unavailable.store(n, Ordering::SeqCst);
    }

    /// Reports of `job_id` answer NOT_FOUND (its event was deleted).
    pub fn forget(&self, job_id: &str) {
        lock(&self.state.gone).insert(job_id.to_owned());
    }
}

#[tonic::async_trait]
impl EventService for FakeEvents {
    async fn report_job_result(
        &self,
        request: Request<ReportJobResultRequest>,
    ) -> Result<Response<ReportJobResultResponse>, Status> {
        let report = request.into_inner();
        lock(&self.state.reports).push(report.clone());
        let started = matches!(report.outcome, Some(Outcome::Started(_)));
        if !started
            && self.state.unavailable.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        {
            return Err(Status::unavailable("event service restarting"));
        }
        if lock(&self.state.gone).contains(&report.job_id) {
            return Err(Status::not_found("no such job"));
        }
        let outcome = report.outcome.ok_or_else(|| Status::invalid_argument("outcome is required"))?;
        if let Outcome::Recommendations(result) = &outcome
            && result.recommendations.len() != 3
        {
            return Err(Status::invalid_argument("a recommendations result holds exactly three"));
        }
        let state = match outcome {
            Outcome::Started(_) => JobState::Running,
            terminal => {
                let mut jobs = lock(&self.state.terminal);
                let first = jobs.entry(report.job_id.clone()).or_insert(terminal);
                if matches!(first, Outcome::Error(_)) { JobState::Failed } else { JobState::Succeeded }
            }
        };
        Ok(Response::new(ReportJobResultResponse {
            job: Some(Job { job_id: report.job_id, state: state as i32, ..Job::default() }),
        }))
    }
}

// ---- configuration ----

/// Test settings with the local stand-in: quick consumer backoff and drain, a private registry.
pub fn test_config() -> AiConfig {
    let mut config = AiConfig { metrics: Registry::new(), ..AiConfig::default() };
    config.consumer.retry_delay = Duration::from_millis(100);
    config.consumer.max_retry_delay = Duration::from_millis(500);
    config.consumer.receive_wait = Duration::from_millis(200);
    config.consumer.drain_timeout = Duration::from_secs(1);
    config.consumer.lock_for = Duration::from_secs(10);
    config.jobs.min_retry_window = Duration::from_secs(1);
    config.jobs.report_reserve = Duration::from_secs(1);
    config.jobs.generation_budget = Duration::from_secs(20);
    config
}

/// Test settings talking to `server` as the real Claude: 5 s per attempt, quick backoff; `tune`
/// adjusts the client per test.
pub fn claude_config(server: &ClaudeServer, tune: impl FnOnce(&mut ProviderConfig)) -> AiConfig {
    let mut provider = kem_ai::infra::claude::provider_config(server.base_url());
    provider.timeout = Duration::from_secs(5);
    provider.connect_timeout = Duration::from_secs(1);
    provider.backoff = Backoff { initial: Duration::from_millis(10), max: Duration::from_millis(50) };
    provider.deadline = Duration::from_secs(20);
    tune(&mut provider);
    let mut config = test_config();
    config.claude = ProviderMode::Real { config: provider, credentials: Secret::new(API_KEY) };
    config
}

// ---- inputs ----

/// A job message for a cafe in 강남구, budget ₩300,000, 14 days from 1 November, due in a minute.
pub fn job(job_id: &str) -> GenerateRecommendations {
    let deadline = SystemTime::now() + Duration::from_secs(60);
    let deadline_ms = deadline.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    GenerateRecommendations {
        job_id: job_id.to_owned(),
        event_id: format!("event-of-{job_id}"),
        owner_id: "owner-1".to_owned(),
        objective: common::EventObjective::NewCustomers as i32,
        store: Some(StoreProfile {
            store_name: "카페 온기".to_owned(),
            business_category: common::BusinessCategory::Cafe as i32,
            region: "서울 강남구 역삼동".to_owned(),
        }),
        title: "신규 손님 이벤트".to_owned(),
        budget: Some(common::Money { amount_krw: 300_000 }),
        period: Some(period(NOV_1_MS, 14)),
        channels: vec![common::Channel::Instagram as i32, common::Channel::KakaoChannel as i32],
        request_time: Some(kem_ai::api::convert::timestamp(deadline_ms - 60_000)),
        deadline: Some(kem_ai::api::convert::timestamp(deadline_ms)),
        ..GenerateRecommendations::default()
    }
}

/// `days` days from `start_ms`.
pub fn period(start_ms: i64, days: i64) -> common::Period {
    common::Period {
        start_time: Some(kem_ai::api::convert::timestamp(start_ms)),
        end_time: Some(kem_ai::api::convert::timestamp(start_ms + days * DAY_MS)),
    }
}

/// A GenerateRecommendations request for a cafe in 강남구 with `budget`.
pub fn recommendations_request(budget: i64) -> GenerateRecommendationsRequest {
    GenerateRecommendationsRequest {
        event_id: "event-1".to_owned(),
        objective: common::EventObjective::NewCustomers as i32,
        store: Some(AiStore {
            store_name: "카페 온기".to_owned(),
            business_category: common::BusinessCategory::Cafe as i32,
            region: "서울 강남구".to_owned(),
        }),
        budget: Some(common::Money { amount_krw: budget }),
        period: Some(period(NOV_1_MS, 14)),
        ..GenerateRecommendationsRequest::default()
    }
}

// ---- the harness ----

/// The ai service and its surroundings.
pub struct Harness {
    /// Database, Redis prefix, queue and context.
    pub svc: TestService,
    /// The event service's report log.
    pub events: FakeEvents,
    /// Where the ai service's metrics go.
    pub registry: Arc<Registry>,
    ca: TestCa,
    gateway: WorkloadIdentity,
    event: WorkloadIdentity,
    ai_addr: SocketAddr,
    servers: Shutdown,
}

impl Harness {
    /// Starts the event service, then the ai service with `config` (its consumer included), and
    /// serves the ai service over mTLS.
    pub async fn start(config: AiConfig) -> Harness {
        let ca = TestCa::new();
        let ai = ca.identity("ai", HOUR).await;
        let event = ca.identity("event", HOUR).await;
        let gateway = ca.identity("gateway", HOUR).await;
        let servers = Shutdown::new();
        let events = FakeEvents::default();
        let event_addr = serve_as(event.clone(), EventServiceServer::new(events.clone()), &servers).await;
        let peers = Peers::new(ai.clone(), TRUST_DOMAIN, NAMESPACE).with_addr("event", event_addr.to_string());
        let svc = TestService::with_peers("ai", peers).await;
        let registry = config.metrics.clone();
        let service = kem_ai::start(svc.ctx.clone(), config).await.expect("the ai service starts");
        let ai_addr = serve_as(ai, service, &servers).await;
        Harness { svc, events, registry, ca, gateway, event, ai_addr, servers }
    }

    /// A second ai service instance on the same database, cache and queue, with its own shutdown
    /// (a second replica, or the same one restarted). Its gRPC service is not served.
    pub async fn start_replica(&self, config: AiConfig) -> Shutdown {
        let mut ctx = self.svc.ctx.clone();
        ctx.shutdown = Shutdown::new();
        let shutdown = ctx.shutdown.clone();
        kem_ai::start(ctx, config).await.expect("the replica starts");
        shutdown
    }

    fn client(&self, from: &WorkloadIdentity) -> AiServiceClient<MeshChannel> {
        let channel = MeshChannel::new(from, &self.ai_addr.to_string(), &TestCa::id("ai")).expect("mesh channel");
        AiServiceClient::new(channel)
    }

    /// A client calling as the gateway (owner methods).
    pub fn gateway_client(&self) -> AiServiceClient<MeshChannel> {
        self.client(&self.gateway)
    }

    /// A client calling as the event service (internal methods).
    pub fn event_client(&self) -> AiServiceClient<MeshChannel> {
        self.client(&self.event)
    }

    /// `message` on the request of the signed-in owner `owner`.
    pub fn as_owner<T>(message: T, owner: &str) -> Request<T> {
        with_owner(Request::new(message), owner)
    }

    /// Enqueues `job` on `ai-event-generation` the way the event service's outbox does.
    pub async fn send(&self, job: &GenerateRecommendations) {
        self.send_raw(&format!("job:{}", job.job_id), job.encode_to_vec(), "application/protobuf", true).await;
    }

    /// Enqueues a message with the given id, body and content type (`typed`: with the `type`
    /// property).
    pub async fn send_raw(&self, id: &str, body: Vec<u8>, content_type: &str, typed: bool) {
        let mut properties = std::collections::BTreeMap::new();
        if typed {
            properties.insert("type".to_owned(), "kem.messaging.v1.GenerateRecommendations".to_owned());
        }
        let message = OutgoingMessage {
            queue: AI_EVENT_GENERATION.to_owned(),
            id: id.to_owned(),
            body,
            content_type: content_type.to_owned(),
            traceparent: None,
            delay: None,
            properties,
        };
        self.svc.ctx.queue.send(message).await.expect("enqueue");
    }

    /// Waits for the job's outcome (the first terminal report).
    pub async fn outcome(&self, job_id: &str, within: Duration) -> Outcome {
        let events = self.events.clone();
        eventually_holds(&format!("job {job_id} is reported"), within, || events.outcome(job_id).is_some()).await;
        self.events.outcome(job_id).expect("reported")
    }

    /// The job's state in the ai service's ledger.
    pub async fn ledger_state(&self, job_id: &str) -> Option<String> {
        let row = store::query("SELECT state FROM ai_jobs WHERE job_id = $1")
            .bind(job_id.to_owned())
            .fetch_optional(self.svc.ctx.store.primary())
            .await
            .expect("read the ledger");
        row.map(|r| r.get::<String>("state").expect("state"))
    }

    /// Waits until the queue holds no message that is ready, locked or scheduled.
    pub async fn drained(&self, within: Duration) {
        let queue = &self.svc.queue;
        eventually("the queue drains", within, || async {
            let depth = queue.depth(AI_EVENT_GENERATION).await.expect("depth");
            depth.ready + depth.locked + depth.scheduled == 0
        })
        .await;
    }

    /// The current value of a metric sample (`name{labels}`), 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        self.registry
            .render()
            .lines()
            .find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// Stops everything and removes the test's database and keys.
    pub async fn cleanup(self) {
        self.servers.trigger();
        self.ca.shutdown.trigger();
        self.svc.cleanup().await;
    }
}

/// The error of a FAILED outcome.
pub fn failure(outcome: &Outcome) -> kem_proto::google::rpc::Status {
    match outcome {
        Outcome::Error(status) => status.clone(),
        other => panic!("expected a FAILED report, got {other:?}"),
    }
}
