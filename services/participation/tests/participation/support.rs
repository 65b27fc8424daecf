//! The participation service started the way a role starts it — a fresh PostgreSQL database, a
//! Redis prefix and the store-backed queue (or embedded SQLite, as `kem up`), mTLS identities from
//! a test CA — next to a small event service (only GetEventForParticipation) served over the real
//! mesh with the contracts' authorization policy.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use kem_kit::cache::MemoryCache;
pub use kem_kit::clock::{Clock as _, SystemClock};
use kem_kit::outbox::Outbox;
use kem_kit::runtime::{Peers, ServiceContext, with_owner};
use kem_kit::store::{self, Store};
use kem_mesh::Shutdown;
use kem_mesh::authz::Policy;
use kem_mesh::balance::Resolver;
use kem_mesh::client::{BalancedChannel, ClientConfig, MeshChannel};
use kem_mesh::identity::WorkloadIdentity;
use kem_mesh::server::{RoleServer, Transport};
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_participation::{ParticipationApi, ParticipationConfig};
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1::event_service_server::{EventService, EventServiceServer};
use kem_proto::kem::event::v1::{
    EventStatus, GetEventForParticipationRequest, GetEventForParticipationResponse, Terms,
};
use kem_proto::kem::messaging::v1 as msg;
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_client::ParticipationServiceClient;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use kem_testkit::eventually;
use kem_testkit::service::{Backing, TestService};
pub use kem_testkit::status::{expect_code, metadata, reason, violations};
use prost::Message;
use tokio::net::TcpListener;
use tonic::codegen::{Service, http};
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

pub const OWNER: &str = "owner-1";
pub const OTHER: &str = "owner-2";
pub const HOUR_MS: i64 = 3_600_000;
/// The version of the terms every test event carries: what entries consent to.
pub const TERMS_VERSION: &str = "terms-5f2c0e9a7b1d3c48";
/// Their SHA-256, recorded with every consent.
pub const TERMS_SHA256: &str = "5f2c0e9a7b1d3c48a6e0f1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7";
const HOUR: Duration = Duration::from_secs(3_600);

pub fn ts(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

// ---- the event service side ----

#[derive(Default)]
struct EventsState {
    events: Mutex<HashMap<String, GetEventForParticipationResponse>>,
    refusals: Mutex<HashMap<String, Status>>,
    calls: AtomicU32,
    unavailable: AtomicU32,
}

/// GetEventForParticipation from a scriptable table; every other method is UNIMPLEMENTED.
#[derive(Clone, Default)]
pub struct FakeEvents {
    state: Arc<EventsState>,
}

impl FakeEvents {
    /// Adds or replaces an event.
    pub fn put(&self, event: GetEventForParticipationResponse) {
        let mut events = self.state.events.lock().unwrap_or_else(|p| p.into_inner());
        events.insert(event.event_id.clone(), event);
    }

    /// Changes an event's status.
    pub fn set_status(&self, event_id: &str, status: EventStatus) {
        let mut events = self.state.events.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(event) = events.get_mut(event_id) {
            event.status = status as i32;
        }
    }

    /// Calls answered so far.
    pub fn calls(&self) -> u32 {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// The next `n` calls answer UNAVAILABLE.
    pub fn fail_next(&self, n: u32) {
        self.state.unavailable.store(n, Ordering::SeqCst);
    }

    /// Every lookup of `event_id` answers `status` (e.g. what the event service says about an id
    /// its database cannot even look up).
    pub fn refuse(&self, event_id: &str, status: Status) {
        self.state.refusals.lock().unwrap_or_else(|p| p.into_inner()).insert(event_id.to_owned(), status);
    }
}

#[tonic::async_trait]
impl EventService for FakeEvents {
    async fn get_event_for_participation(
        &self,
        request: Request<GetEventForParticipationRequest>,
    ) -> Result<Response<GetEventForParticipationResponse>, Status> {
        self.state.calls.fetch_add(1, Ordering::SeqCst);
        let failing = self.state.unavailable.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            return Err(Status::unavailable("event database is down"));
        }
        let id = &request.get_ref().event_id;
        if id.is_empty() {
            return Err(Status::invalid_argument("event_id is required"));
        }
        if let Some(status) = self.state.refusals.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Err(status.clone());
        }
        let events = self.state.events.lock().unwrap_or_else(|p| p.into_inner());
        events.get(id).cloned().map(Response::new).ok_or_else(|| Status::not_found("event not found"))
    }
}

/// The terms of the test events ([`TERMS_VERSION`], [`TERMS_SHA256`]).
pub fn terms() -> Terms {
    Terms {
        version: TERMS_VERSION.to_owned(),
        sha256: TERMS_SHA256.to_owned(),
        controller: "카페 테스트".into(),
        items: vec!["이름".into(), "휴대전화번호".into()],
        purpose: "경품 추첨 및 당첨자 연락".into(),
        retention_days: 30,
        text: "개인정보 수집·이용 동의".into(),
        text_en: "Consent to the collection and use of personal information".into(),
        create_time: None,
    }
}

/// An event of [`OWNER`] with `status`, running from an hour ago for a day, a prize of 3
/// winners, published to Instagram and Kakao, with [`terms`].
pub fn event(status: EventStatus) -> GetEventForParticipationResponse {
    let now = SystemClock.now_ms();
    let event_id = uuid::Uuid::new_v4().to_string();
    GetEventForParticipationResponse {
        event_id: event_id.clone(),
        owner_id: OWNER.to_owned(),
        status: status as i32,
        period: Some(common::Period { start_time: Some(ts(now - HOUR_MS)), end_time: Some(ts(now + 24 * HOUR_MS)) }),
        participation_method: common::ParticipationMethod::Draw as i32,
        prize: Some(common::Prize {
            name: "아메리카노 1잔".into(),
            description: String::new(),
            winner_count: 3,
            unit_value: Some(common::Money { amount_krw: 4_500 }),
        }),
        title: "점심 이벤트".into(),
        channels: vec![common::Channel::Instagram as i32, common::Channel::KakaoChannel as i32],
        terms: Some(terms()),
        entry_rules: None,
        claim_days: 7,
        retention_days: 30,
        store_name: "카페 온기".into(),
        entry_url: format!("https://kem.example/e/{event_id}"),
    }
}

// ---- the harness ----

/// The participation service, its fake event service, and clients for each mesh identity.
pub struct Harness {
    pub ctx: ServiceContext,
    pub api: ParticipationApi,
    pub events: FakeEvents,
    backing: Backing,
    ca: TestCa,
    participation: WorkloadIdentity,
    servers: Shutdown,
    served: Option<SocketAddr>,
}

/// Test settings: a short event cache, so status changes show quickly.
pub fn test_config() -> ParticipationConfig {
    ParticipationConfig { event_cache_ttl: Duration::from_millis(300), ..ParticipationConfig::default() }
}

impl Harness {
    /// On PostgreSQL and Redis.
    pub async fn new() -> Harness {
        Harness::with_config(test_config()).await
    }

    pub async fn with_config(config: ParticipationConfig) -> Harness {
        let (ca, participation, events, servers, peers) = mesh().await;
        let svc = TestService::with_peers("participation", peers).await;
        let ctx = svc.ctx.clone();
        Harness::start(ctx, config, Backing::Postgres(Box::new(svc)), ca, participation, events, servers).await
    }

    /// On PostgreSQL and Redis with `clock` as the service's clock (a `ManualClock` for claim
    /// deadlines and code expiries).
    pub async fn with_clock(config: ParticipationConfig, clock: Arc<dyn kem_kit::clock::Clock>) -> Harness {
        let (ca, participation, events, servers, peers) = mesh().await;
        let svc = TestService::with_peers("participation", peers).await;
        let ctx = ServiceContext { clock, ..svc.ctx.clone() };
        Harness::start(ctx, config, Backing::Postgres(Box::new(svc)), ca, participation, events, servers).await
    }

    /// On embedded SQLite with the in-process cache, as `kem up` runs.
    pub async fn sqlite() -> Harness {
        let (ca, participation, events, servers, peers) = mesh().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = kem_testkit::service::embedded_context("participation", peers, dir.path()).await;
        Harness::start(ctx.clone(), test_config(), Backing::Sqlite(dir), ca, participation, events, servers).await
    }

    /// On embedded SQLite with `clock` as the service's clock.
    pub async fn sqlite_with_clock(clock: Arc<dyn kem_kit::clock::Clock>) -> Harness {
        let (ca, participation, events, servers, peers) = mesh().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = kem_testkit::service::embedded_context("participation", peers, dir.path()).await;
        let ctx = ServiceContext { clock, ..ctx };
        Harness::start(ctx, test_config(), Backing::Sqlite(dir), ca, participation, events, servers).await
    }

    async fn start(
        ctx: ServiceContext,
        config: ParticipationConfig,
        backing: Backing,
        ca: TestCa,
        participation: WorkloadIdentity,
        events: FakeEvents,
        servers: Shutdown,
    ) -> Harness {
        let api = kem_participation::start_api(ctx.clone(), config)
            .await
            .unwrap_or_else(|e| panic!("the participation service does not start: {e}"));
        Harness { ctx, api, events, backing, ca, participation, servers, served: None }
    }

    /// Serves the service `start` returns over mTLS with the contracts' policy; returns its
    /// address.
    pub async fn serve(&mut self) -> SocketAddr {
        let service = kem_participation::start(self.ctx.clone(), test_config()).await.expect("start");
        let addr = self.role_server(service).await;
        self.served = Some(addr);
        addr
    }

    /// Another replica of the served service on the same database, as a role server runs it;
    /// returns its address and how many calls it has answered (counted when the handler is done,
    /// so an entry it counts is committed, whether or not its answer reaches the caller).
    pub async fn serve_replica(&self) -> (SocketAddr, Arc<AtomicU64>) {
        let service = kem_participation::start(self.ctx.clone(), test_config()).await.expect("start");
        let answered = Arc::new(AtomicU64::new(0));
        let addr = self.role_server(Answered { inner: service, answered: answered.clone() }).await;
        (addr, answered)
    }

    /// A balanced, retrying mesh client (the one the gateway's upstreams use) of the replicas at
    /// `addrs`, calling as the workload `who`.
    pub async fn balanced_client(
        &self,
        who: &str,
        addrs: &[SocketAddr],
    ) -> (ParticipationServiceClient<BalancedChannel>, BalancedChannel) {
        let identity = self.ca.identity(who, HOUR).await;
        let resolver = Resolver::fixed(addrs.iter().map(ToString::to_string));
        let channel = BalancedChannel::new(
            &identity,
            "participation",
            &TestCa::id("participation"),
            resolver,
            ClientConfig::default(),
        )
        .expect("balanced channel");
        (ParticipationServiceClient::new(channel.clone()), channel)
    }

    async fn role_server<S>(&self, service: S) -> SocketAddr
    where
        S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind participation");
        let pool = kem_proto::descriptor_pool();
        let serving = RoleServer::new("participation")
            .transport(Transport::MutualTls(self.participation.clone()))
            .policy(
                Policy::from_contracts(
                    pool,
                    &["kem.participation.v1.ParticipationService"],
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
            .expect("serve participation");
        serving.addr
    }

    /// A client of the served service calling as the workload `who` (`gateway`, `analytics`, …).
    pub async fn client(&self, who: &str) -> ParticipationServiceClient<MeshChannel> {
        let addr = self.served.expect("call serve() first");
        let identity = self.ca.identity(who, HOUR).await;
        let channel =
            MeshChannel::new(&identity, &addr.to_string(), &TestCa::id("participation")).expect("mesh channel");
        ParticipationServiceClient::new(channel)
    }

    pub async fn cleanup(self) {
        self.servers.trigger();
        self.backing.cleanup(&self.ctx).await;
    }

    pub fn store(&self) -> &Store {
        &self.ctx.store
    }

    /// Registers `event` with the fake event service and returns its id.
    pub fn add(&self, event: GetEventForParticipationResponse) -> String {
        let id = event.event_id.clone();
        self.events.put(event);
        id
    }

    pub async fn enter(&self, request: pb::EnterRequest) -> Result<pb::Entry, Status> {
        enter_via(&self.api, request).await
    }

    /// Enter's whole response (the entry and the receipt code), with the call's `x-request-id`
    /// when given.
    pub async fn enter_response(
        &self,
        request_id: Option<&str>,
        request: pb::EnterRequest,
    ) -> Result<pb::EnterResponse, Status> {
        let request = match request_id {
            Some(id) => with_request_id(request, id),
            None => Request::new(request),
        };
        Ok(self.api.enter(request).await?.into_inner())
    }

    /// Enter as the gateway sends it: with the call's `x-request-id`.
    pub async fn enter_as(&self, request_id: &str, request: pb::EnterRequest) -> Result<pb::Entry, Status> {
        enter_as_via(&self.api, request_id, request).await
    }

    /// The stored entries of `event_id` as (entry id, request id), straight from the table.
    pub async fn stored(&self, event_id: &str) -> Vec<(String, Option<String>)> {
        let rows = store::query("SELECT id, request_id FROM entries WHERE event_id = $1 ORDER BY id")
            .bind(event_id.to_owned())
            .fetch_all(self.store().primary())
            .await
            .expect("read the entries");
        rows.iter().map(|row| (row.get("id").expect("id"), row.get("request_id").expect("request_id"))).collect()
    }

    /// Another participation instance on the same database with its own in-process cache, as
    /// `kem up --processes` runs a second replica (nothing per-process is shared).
    pub async fn replica(&self, config: ParticipationConfig) -> ParticipationApi {
        let ctx = ServiceContext { cache: Arc::new(MemoryCache::new(10_000)), ..self.ctx.clone() };
        kem_participation::start_api(ctx, config)
            .await
            .unwrap_or_else(|e| panic!("the participation replica does not start: {e}"))
    }

    /// CloseEntries as the event service's EndEvent calls it; returns the recorded close time.
    pub async fn close(&self, event_id: &str) -> Result<i64, Status> {
        close_via(&self.api, event_id).await
    }

    pub async fn list(
        &self,
        owner: &str,
        event_id: &str,
        size: i32,
        token: &str,
    ) -> Result<pb::ListParticipantsResponse, Status> {
        let request = pb::ListParticipantsRequest {
            event_id: event_id.to_owned(),
            page_size: size,
            page_token: token.to_owned(),
        };
        Ok(self.api.list_participants(as_owner(owner, request)).await?.into_inner())
    }

    /// Every entry of the event, oldest first.
    pub async fn all_entries(&self, event_id: &str) -> Vec<pb::Entry> {
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let page = self.list(OWNER, event_id, 500, &token).await.expect("list participants");
            out.extend(page.entries);
            if page.next_page_token.is_empty() {
                return out;
            }
            token = page.next_page_token;
        }
    }

    pub async fn draw(&self, owner: &str, request: pb::DrawWinnersRequest) -> Result<pb::DrawWinnersResponse, Status> {
        Ok(self.api.draw_winners(as_owner(owner, request)).await?.into_inner())
    }

    pub async fn winners(&self, owner: &str, event_id: &str) -> Result<pb::ListWinnersResponse, Status> {
        let request = pb::ListWinnersRequest { event_id: event_id.to_owned() };
        Ok(self.api.list_winners(as_owner(owner, request)).await?.into_inner())
    }

    /// GetPublicWinners, as the public calls it (no owner).
    pub async fn public_winners(&self, event_id: &str) -> Result<pb::GetPublicWinnersResponse, Status> {
        let request = pb::GetPublicWinnersRequest { event_id: event_id.to_owned() };
        Ok(self.api.get_public_winners(Request::new(request)).await?.into_inner())
    }

    /// DrawWinnersOnSchedule, as the event service's scheduler calls it.
    pub async fn draw_on_schedule(&self, event_id: &str) -> Result<pb::DrawWinnersOnScheduleResponse, Status> {
        let request = pb::DrawWinnersOnScheduleRequest { event_id: event_id.to_owned() };
        Ok(self.api.draw_winners_on_schedule(Request::new(request)).await?.into_inner())
    }

    pub async fn anonymize(&self, event_id: &str, before: Option<i64>) -> Result<i64, Status> {
        let request = pb::AnonymizeEntriesRequest { event_id: event_id.to_owned(), create_before: before.map(ts) };
        Ok(self.api.anonymize_entries(Request::new(request)).await?.into_inner().anonymized_count)
    }

    /// Enters `n` participants with phones 010-0000-0000 + i.
    pub async fn enter_many(&self, event_id: &str, n: usize) -> Vec<pb::Entry> {
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            entries.push(self.enter(entry(event_id, &format!("참가자{i}"), &phone(i))).await.expect("enter"));
        }
        entries
    }

    /// Waits until the outbox relay has published everything committed so far.
    pub async fn settle(&self) {
        let store = self.store();
        eventually("the outbox drains", Duration::from_secs(30), || async {
            Outbox::pending(store).await.is_ok_and(|n| n == 0)
        })
        .await;
    }

    /// The analytics facts about `event_id` sent so far: (message id, body).
    pub async fn analytics(&self, event_id: &str) -> Vec<(String, msg::AnalyticsEvent)> {
        self.settle().await;
        let rows = store::query(
            "SELECT id, body, content_type, properties FROM kem_queue_messages WHERE queue = $1 ORDER BY seq",
        )
        .bind("analytics-aggregation")
        .fetch_all(self.store().primary())
        .await
        .expect("read the queue table");
        rows.iter()
            .filter_map(|row| {
                let properties: BTreeMap<String, String> =
                    serde_json::from_str(&row.get::<String>("properties").expect("properties")).expect("json");
                assert_eq!(properties.get("type").map(String::as_str), Some("kem.messaging.v1.AnalyticsEvent"));
                assert_eq!(row.get::<String>("content_type").expect("content type"), "application/protobuf");
                (properties.get("event_id").map(String::as_str) == Some(event_id)).then(|| {
                    let body: Vec<u8> = row.get("body").expect("body");
                    (row.get("id").expect("id"), msg::AnalyticsEvent::decode(body.as_slice()).expect("decodes"))
                })
            })
            .collect()
    }
}

/// The fake event service over mTLS, and the participation workload's peers pointing at it.
async fn mesh() -> (TestCa, WorkloadIdentity, FakeEvents, Shutdown, Peers) {
    let ca = TestCa::new();
    let participation = ca.identity("participation", HOUR).await;
    let servers = Shutdown::new();
    let events = FakeEvents::default();
    let addr = kem_testkit::mesh::serve(&ca, "event", EventServiceServer::new(events.clone()), &servers).await;
    let peers = Peers::new(participation.clone(), TRUST_DOMAIN, NAMESPACE).with_addr("event", addr.to_string());
    (ca, participation, events, servers, peers)
}

/// Enter on a given instance.
pub async fn enter_via(api: &ParticipationApi, request: pb::EnterRequest) -> Result<pb::Entry, Status> {
    Ok(api.enter(Request::new(request)).await?.into_inner().entry.unwrap_or_default())
}

/// Enter on a given instance with the call's `x-request-id`, as the edge sends every call.
pub async fn enter_as_via(
    api: &ParticipationApi,
    request_id: &str,
    request: pb::EnterRequest,
) -> Result<pb::Entry, Status> {
    Ok(api.enter(with_request_id(request, request_id)).await?.into_inner().entry.unwrap_or_default())
}

/// A request carrying `request_id` as its `x-request-id` metadata (what the edge adds).
pub fn with_request_id<T>(message: T, request_id: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("x-request-id", request_id.parse().expect("a request id is visible ASCII"));
    request
}

/// A served service counting the calls it has answered: when the handler's response is ready,
/// before it is written to the connection.
#[derive(Clone)]
struct Answered<S> {
    inner: S,
    answered: Arc<AtomicU64>,
}

impl<S: NamedService> NamedService for Answered<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<tonic::body::Body>> for Answered<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let answer = self.inner.call(request);
        let answered = self.answered.clone();
        Box::pin(async move {
            let response = answer.await;
            answered.fetch_add(1, Ordering::SeqCst);
            response
        })
    }
}

/// CloseEntries on a given instance; returns the recorded close time (ms).
pub async fn close_via(api: &ParticipationApi, event_id: &str) -> Result<i64, Status> {
    let request = pb::CloseEntriesRequest { event_id: event_id.to_owned(), close_time: Some(ts(SystemClock.now_ms())) };
    let closed = api.close_entries(Request::new(request)).await?.into_inner().close_time.unwrap_or_default();
    Ok(closed.seconds * 1000 + i64::from(closed.nanos / 1_000_000))
}

pub fn as_owner<T>(owner: &str, message: T) -> Request<T> {
    with_owner(Request::new(message), owner)
}

/// The i-th distinct mobile number, `010-0000-0000` + i, in national format.
pub fn phone(i: usize) -> String {
    let n = 10_000_000 + i;
    format!("010-{:04}-{:04}", n / 10_000 % 10_000, n % 10_000)
}

/// A valid entry to `event_id`: age confirmed, consenting to the test events' terms.
pub fn entry(event_id: &str, name: &str, phone: &str) -> pb::EnterRequest {
    pb::EnterRequest {
        event_id: event_id.to_owned(),
        name: name.to_owned(),
        phone: phone.to_owned(),
        privacy_consent: Some(pb::Consent {
            granted: true,
            consent_text_version: TERMS_VERSION.into(),
            consent_time: None,
            terms_sha256: String::new(),
        }),
        marketing_consent: None,
        source_channel: common::Channel::Instagram as i32,
        age_14_or_older: true,
        verification_code: String::new(),
    }
}

/// A granted consent to the store's marketing messages, text version `marketing-2025-01`.
pub fn marketing_consent() -> pb::Consent {
    pb::Consent {
        granted: true,
        consent_text_version: "marketing-2025-01".into(),
        consent_time: None,
        terms_sha256: String::new(),
    }
}

pub fn draw_request(event_id: &str, count: i32) -> pb::DrawWinnersRequest {
    pb::DrawWinnersRequest { event_id: event_id.to_owned(), count, ..Default::default() }
}
