//! Default-deny authorization by peer identity, over real mTLS connections.

use kem_mesh::Shutdown;
use kem_mesh::authz::Policy;
use kem_mesh::server::{RoleServer, Transport};
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa, echo};
use kem_proto::kem::event::v1::GetEventForParticipationRequest;
use kem_proto::kem::event::v1::event_service_client::EventServiceClient;
use kem_proto::kem::event::v1::event_service_server::{EventService, EventServiceServer};
use tokio::net::TcpListener;
use tonic::Code;

use crate::support::{HOUR, channel, echo_policy, echo_server};

/// The event service's real contract with every method left at its UNIMPLEMENTED default:
/// reaching a handler at all proves authorization let the call through.
struct Unimplemented;
impl EventService for Unimplemented {}

#[tokio::test]
async fn internal_methods_admit_only_their_declared_callers() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let event = ca.identity("event", HOUR).await;
    let service = "kem.event.v1.EventService";
    let policy = Policy::from_contracts(kem_proto::descriptor_pool(), &[service], TRUST_DOMAIN, NAMESPACE, "gateway");
    let stats = policy.stats();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = RoleServer::new("event")
        .transport(Transport::MutualTls(event.clone()))
        .policy(policy, Some(TestCa::id("gateway")))
        .add_service(EventServiceServer::new(Unimplemented))
        .serve(listener, shutdown.clone())
        .await
        .expect("serve");

    let request = || GetEventForParticipationRequest { event_id: "e1".into() };
    let participation = ca.identity("participation", HOUR).await;
    let mut allowed = EventServiceClient::new(channel(&participation, &server, &TestCa::id("event")));
    let status = allowed.get_event_for_participation(request()).await.expect_err("handler is unimplemented");
    assert_eq!(status.code(), Code::Unimplemented, "participation passes authorization: {status:?}");

    for intruder in ["user", "gateway", "analytics"] {
        let identity = ca.identity(intruder, HOUR).await;
        let mut denied = EventServiceClient::new(channel(&identity, &server, &TestCa::id("event")));
        let status = denied.get_event_for_participation(request()).await.expect_err("denied");
        assert_eq!(status.code(), Code::PermissionDenied, "{intruder}: {status:?}");
        assert!(status.message().contains("GetEventForParticipation"), "names the method: {}", status.message());
        assert!(!status.message().contains("participation\""), "no policy internals: {}", status.message());
    }
    assert_eq!(stats.denied.load(std::sync::atomic::Ordering::Relaxed), 3);
    shutdown.trigger();
}

#[tokio::test]
async fn end_user_metadata_is_trusted_only_from_the_gateway() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let server = echo_server(&ca.identity("event", HOUR).await, echo_policy(), &shutdown).await;
    let gateway = ca.identity("gateway", HOUR).await;
    let echoed =
        echo::call_as(channel(&gateway, &server, &TestCa::id("event")), "x", Some("owner-1")).await.expect("echo");
    assert_eq!(echoed.text, "x|user=owner-1", "the gateway's claim arrives");
    let spoofer = ca.identity("participation", HOUR).await;
    let echoed =
        echo::call_as(channel(&spoofer, &server, &TestCa::id("event")), "x", Some("owner-1")).await.expect("echo");
    assert_eq!(echoed.text, "x|user=", "a non-gateway peer's claim is stripped");
    shutdown.trigger();
}
