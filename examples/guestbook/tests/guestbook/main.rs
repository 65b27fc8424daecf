//! The guestbook as a role runs it: started through `KemService` on a test context (real
//! PostgreSQL and Redis, or embedded SQLite as `kem up` runs it), served by a mesh role server
//! over mTLS with the policy derived from its own contract, and called by mesh clients with
//! test workload identities.

use std::net::SocketAddr;
use std::time::Duration;

use kem_example_guestbook::pb::guestbook_service_client::GuestbookServiceClient;
use kem_example_guestbook::pb::{Entry, ListEntriesRequest, SignRequest};
use kem_example_guestbook::{Guestbook, GuestbookConfig, descriptor_pool};
use kem_kit::runtime::{KemService, Peers, ServiceContext};
use kem_mesh::authz::Policy;
use kem_mesh::client::MeshChannel;
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_mesh::{RoleServer, Transport};
use kem_testkit::service::Backing;
use kem_testkit::status::{domain_reason, expect_code, expect_invalid_field, violations};
use tokio::net::TcpListener;
use tonic::server::NamedService;
use tonic::{Code, Request, Status};

const HOUR: Duration = Duration::from_secs(3600);
/// The message limit the tests configure, short enough to cross it cheaply.
const MAX_MESSAGE_CHARS: usize = 20;

/// A guestbook role: the service on its context, behind an mTLS role server.
struct Running {
    ca: TestCa,
    addr: SocketAddr,
    ctx: ServiceContext,
    backing: Backing,
}

impl Running {
    async fn postgres() -> Running {
        let (ctx, backing) = Backing::postgres(Guestbook::NAME, Peers::none()).await;
        Running::start(ctx, backing).await
    }

    async fn sqlite() -> Running {
        let (ctx, backing) = Backing::sqlite(Guestbook::NAME, Peers::none()).await;
        Running::start(ctx, backing).await
    }

    /// Starts the service exactly as `kem/src/roles.rs` mounts one, with the authorization
    /// policy derived from the guestbook's own descriptors (kem's pool does not know it).
    async fn start(ctx: ServiceContext, backing: Backing) -> Running {
        let config = GuestbookConfig { max_message_chars: MAX_MESSAGE_CHARS };
        let server = Guestbook::start(ctx.clone(), config).await.expect("the guestbook starts");
        let service = <<Guestbook as KemService>::Server as NamedService>::NAME;
        let policy = Policy::from_contracts(descriptor_pool(), &[service], TRUST_DOMAIN, NAMESPACE, "gateway");
        let ca = TestCa::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let serving = RoleServer::new(Guestbook::NAME)
            .transport(Transport::MutualTls(ca.identity(Guestbook::NAME, HOUR).await))
            .policy(policy, Some(TestCa::id("gateway")))
            .drain_timeout(Duration::from_secs(1))
            .add_service(server)
            .serve(listener, ctx.shutdown.clone())
            .await
            .expect("serve");
        Running { ca, addr: serving.addr, ctx, backing }
    }

    /// A client calling as mesh workload `workload`, which must reach the guestbook identity.
    async fn client(&self, workload: &str) -> GuestbookServiceClient<MeshChannel> {
        let identity = self.ca.identity(workload, HOUR).await;
        let channel = MeshChannel::new(&identity, &self.addr.to_string(), &TestCa::id(Guestbook::NAME));
        GuestbookServiceClient::new(channel.expect("channel"))
    }

    /// Stops the server and the service, then drops the database and Redis keys.
    async fn finish(self) {
        self.backing.cleanup(&self.ctx).await;
    }
}

fn sign(event_id: &str, name: &str, message: &str) -> SignRequest {
    SignRequest { event_id: event_id.into(), name: name.into(), message: message.into() }
}

/// A Sign carrying `x-request-id`, as the edge sends every call.
fn with_request_id(request: SignRequest, id: &str) -> Request<SignRequest> {
    let mut request = Request::new(request);
    request.metadata_mut().insert("x-request-id", id.parse().expect("ascii"));
    request
}

async fn list_all(client: &mut GuestbookServiceClient<MeshChannel>, event_id: &str) -> Result<Vec<Entry>, Status> {
    let (mut entries, mut token) = (Vec::new(), String::new());
    loop {
        let request = ListEntriesRequest { event_id: event_id.into(), page_size: 1, page_token: token };
        let page = client.list_entries(request).await?.into_inner();
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return Ok(entries);
        }
        token = page.next_page_token;
    }
}

async fn round_trip(running: &Running) {
    let mut gateway = running.client("gateway").await;
    let first = gateway
        .sign(sign("evt-1", "김민수", "축하해요!\n또 올게요"))
        .await
        .expect("sign")
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!((first.event_id.as_str(), first.name.as_str()), ("evt-1", "김민수"));
    assert_eq!(first.entry_id.len(), 36, "a UUID: {}", first.entry_id);
    assert!(first.create_time.is_some_and(|t| t.seconds > 1_700_000_000), "{:?}", first.create_time);
    let second = gateway.sign(sign("evt-1", "Ada", "hello")).await.expect("sign").into_inner().entry.expect("entry");
    gateway.sign(sign("evt-2", "Other", "elsewhere")).await.expect("sign");

    // One entry per page, so the page token is followed; signing order, this event only.
    let listed = list_all(&mut gateway, "evt-1").await.expect("list");
    assert_eq!(listed, [first, second]);
    let empty = gateway.list_entries(ListEntriesRequest { event_id: "evt-none".into(), ..Default::default() });
    assert_eq!(empty.await.expect("list").into_inner(), Default::default());
}

#[tokio::test]
async fn sign_then_list_round_trips_over_mtls() {
    let running = Running::postgres().await;
    round_trip(&running).await;
    running.finish().await;
}

#[tokio::test]
async fn the_same_sql_runs_on_embedded_sqlite() {
    let running = Running::sqlite().await;
    round_trip(&running).await;
    running.finish().await;
}

#[tokio::test]
async fn invalid_input_is_invalid_argument_naming_the_field() {
    let running = Running::postgres().await;
    let mut gateway = running.client("gateway").await;
    let too_long = "가".repeat(MAX_MESSAGE_CHARS + 1);
    for (request, field) in [
        (sign("evt-1", "", "hi"), "name"),
        (sign("evt-1", "Ada\u{0}", "hi"), "name"),
        (sign("evt-1", "Ada\nLovelace", "hi"), "name"),
        (sign("evt-1", "Ada", "\u{1b}[31mred"), "message"),
        (sign("evt-1", "Ada", "bidi \u{202E}txet"), "message"),
        (sign("evt-1", "Ada", &too_long), "message"),
        (sign("evt/1", "Ada", "hi"), "eventId"),
    ] {
        let status = expect_invalid_field(gateway.sign(request.clone()).await, field);
        assert_eq!(domain_reason(&status), "kem.guestbook/INVALID_ARGUMENT", "{request:?}");
    }
    let negative = ListEntriesRequest { event_id: "evt-1".into(), page_size: -1, page_token: "?".into() };
    let status = expect_code(gateway.list_entries(negative).await, Code::InvalidArgument);
    assert_eq!(violations(&status), ["pageSize", "pageToken"], "every bad field at once");
    assert!(list_all(&mut gateway, "evt-1").await.expect("list").is_empty(), "nothing invalid was stored");
    running.finish().await;
}

#[tokio::test]
async fn a_retried_sign_with_the_same_request_id_stores_one_entry() {
    let running = Running::postgres().await;
    let mut gateway = running.client("gateway").await;
    let request = sign("evt-1", "Ada", "hello");
    let first =
        gateway.sign(with_request_id(request.clone(), "req-1")).await.expect("sign").into_inner().entry.expect("entry");
    let retried = gateway
        .sign(with_request_id(request.clone(), "req-1"))
        .await
        .expect("retry")
        .into_inner()
        .entry
        .expect("entry");
    assert_eq!(retried, first, "the retry answers with the stored entry");
    let concurrent = racing_signs(&running, &request, "req-2").await;
    assert!(concurrent.windows(2).all(|w| w[0] == w[1]), "racing retries agree: {concurrent:?}");

    // Another request id is another signature; the same id with other content is refused.
    gateway.sign(with_request_id(request.clone(), "req-3")).await.expect("sign");
    let reused = gateway.sign(with_request_id(sign("evt-1", "Ada", "changed"), "req-1")).await;
    assert_eq!(domain_reason(&expect_code(reused, Code::AlreadyExists)), "kem.guestbook/REQUEST_ID_REUSED");
    // Without a request id nothing is replayed: each call signs.
    gateway.sign(request.clone()).await.expect("sign");
    gateway.sign(request).await.expect("sign");
    assert_eq!(list_all(&mut gateway, "evt-1").await.expect("list").len(), 5, "req-1, req-2, req-3 and two without");
    running.finish().await;
}

/// Four Signs with one request id at once, from four connections.
async fn racing_signs(running: &Running, request: &SignRequest, id: &str) -> Vec<Entry> {
    let mut calls = Vec::new();
    for _ in 0..4 {
        let mut client = running.client("gateway").await;
        let request = with_request_id(request.clone(), id);
        calls.push(tokio::spawn(async move { client.sign(request).await.map(|r| r.into_inner().entry) }));
    }
    let mut entries = Vec::new();
    for call in calls {
        entries.push(call.await.expect("task").expect("sign").expect("entry"));
    }
    entries
}

#[tokio::test]
async fn callers_the_contract_does_not_allow_are_denied() {
    let running = Running::postgres().await;
    // ACCESS_PUBLIC methods are the gateway's alone; any other mesh identity is refused before
    // a handler runs.
    for intruder in ["participation", "event", "guestbook"] {
        let mut client = running.client(intruder).await;
        let status = expect_code(client.sign(sign("evt-1", "Mallory", "hi")).await, Code::PermissionDenied);
        assert!(status.message().contains("Sign"), "names the method: {}", status.message());
        let listed = client.list_entries(ListEntriesRequest { event_id: "evt-1".into(), ..Default::default() });
        expect_code(listed.await, Code::PermissionDenied);
    }
    let mut gateway = running.client("gateway").await;
    assert!(list_all(&mut gateway, "evt-1").await.expect("the gateway is allowed").is_empty(), "nothing was signed");
    running.finish().await;
}

#[test]
fn the_contract_follows_kem_rules() {
    // The checks every proto under proto/kem passes (kem_proto::contract), on this one, so a
    // service copied from it starts out conforming.
    let violations = kem_proto::contract::check(descriptor_pool(), &[]);
    assert!(violations.is_empty(), "{violations:?}");
}
