//! Who gets through the handshake.

use std::sync::Arc;
use std::time::Duration;

use kem_mesh::Shutdown;
use kem_mesh::identity::SpiffeId;
use kem_mesh::identity::WorkloadIdentity;
use kem_mesh::identity::workload::{CertificateSource, IdentityError, IdentityStatus, LocalSource, Obtained};
use kem_mesh::testing::TestCa;
use kem_mesh::testing::echo;
use tonic::Code;

use crate::support::{HOUR, channel, echo_policy, echo_server, eventually, eventually_holds};

#[tokio::test]
async fn a_valid_peer_gets_through_and_its_certificate_is_seen() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let server_id = ca.identity("event", HOUR).await;
    let client_id = ca.identity("participation", HOUR).await;
    let server = echo_server(&server_id, echo_policy(), &shutdown).await;
    let echoed =
        echo::call_reporting_peer(channel(&client_id, &server, &TestCa::id("event")), "hi").await.expect("echo");
    let expected = kem_mesh::hex::encode(client_id.serial());
    assert_eq!(echoed.serial, expected, "the server saw the client's current certificate");
    shutdown.trigger();
}

#[tokio::test]
async fn plaintext_clients_are_refused_at_the_handshake() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let server = echo_server(&ca.identity("event", HOUR).await, echo_policy(), &shutdown).await;
    let plain = kem_mesh::client::connect::plaintext_channel(&server.addr.to_string(), Duration::from_secs(1))
        .expect("channel");
    let err = echo::call(plain, "hi").await.expect_err("plaintext must fail");
    assert!(matches!(err.code(), Code::Unavailable | Code::Unknown | Code::Internal), "{err:?}");
    eventually_holds("the server counts a not_tls handshake failure", Duration::from_secs(5), || {
        server.handshake_failures.snapshot().get("not_tls").copied().unwrap_or(0) >= 1
    })
    .await;
    assert!(
        server.handshake_failures.snapshot().get("not_tls").copied().unwrap_or(0) >= 1,
        "{:?}",
        server.handshake_failures.snapshot()
    );
    shutdown.trigger();
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let ca = TestCa::new();
    let foreign = TestCa::new();
    let shutdown = Shutdown::new();
    let server = echo_server(&ca.identity("event", HOUR).await, echo_policy(), &shutdown).await;
    // The foreign client also distrusts our server, so both sides refuse; the server records why.
    let intruder = foreign.identity("participation", HOUR).await;
    let err = echo::call(channel(&intruder, &server, &TestCa::id("event")), "hi").await.expect_err("foreign CA");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    shutdown.trigger();
}

/// Issues exactly one certificate, then behaves like an unreachable CA.
struct OneShot(LocalSource, std::sync::atomic::AtomicBool);

impl CertificateSource for OneShot {
    fn obtain<'a>(&'a self, identity: &'a SpiffeId) -> Obtained<'a> {
        Box::pin(async move {
            if self.1.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Err(IdentityError::Issuance {
                    identity: identity.clone(),
                    reason: "CA unreachable (test)".into(),
                });
            }
            self.0.obtain(identity).await
        })
    }
}

#[tokio::test]
async fn an_expired_leaf_is_refused_and_its_owner_reports_expired() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let server = echo_server(&ca.identity("event", HOUR).await, echo_policy(), &shutdown).await;
    let source = Arc::new(OneShot(LocalSource::new(ca.ca.clone(), Some(Duration::from_secs(1))), Default::default()));
    let client = WorkloadIdentity::start(TestCa::id("participation"), source, Duration::from_secs(5), shutdown.clone())
        .await
        .expect("first certificate");
    let mut status = client.status();
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| *s == IdentityStatus::Expired))
        .await
        .expect("expiry is noticed")
        .expect("status channel open");
    // X.509 validity has one-second resolution and `notAfter` itself is still valid: wait it out.
    // Real time by design: the server checks the leaf's validity against the wall clock.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let err = echo::call(channel(&client, &server, &TestCa::id("event")), "hi").await.expect_err("expired leaf");
    // TLS 1.3 clients learn of the refusal from the server's alert after their side finished.
    assert!(matches!(err.code(), Code::Unavailable | Code::Unknown), "{err:?}");
    eventually_holds("the server counts an expired handshake failure", Duration::from_secs(5), || {
        server.handshake_failures.snapshot().get("expired").copied().unwrap_or(0) >= 1
    })
    .await;
    assert!(
        server.handshake_failures.snapshot().get("expired").copied().unwrap_or(0) >= 1,
        "{:?}",
        server.handshake_failures.snapshot()
    );
    shutdown.trigger();
}

#[tokio::test]
async fn a_server_with_the_wrong_identity_is_refused_by_the_client() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let server = echo_server(&ca.identity("analytics", HOUR).await, echo_policy(), &shutdown).await;
    let client = ca.identity("participation", HOUR).await;
    // We meant to reach `event`; whoever listens there is `analytics`.
    let err =
        echo::call(channel(&client, &server, &TestCa::id("event")), "hi").await.expect_err("wrong server identity");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    shutdown.trigger();
}

#[tokio::test]
async fn expired_identity_turns_the_server_not_serving() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let source = Arc::new(OneShot(LocalSource::new(ca.ca.clone(), Some(Duration::from_secs(1))), Default::default()));
    let server_id = WorkloadIdentity::start(TestCa::id("event"), source, Duration::from_secs(5), shutdown.clone())
        .await
        .expect("first certificate");
    let server = echo_server(&server_id, echo_policy(), &shutdown).await;
    let mut status = server_id.status();
    tokio::time::timeout(Duration::from_secs(10), status.wait_for(|s| *s == IdentityStatus::Expired))
        .await
        .expect("expiry is noticed")
        .expect("status channel open");
    // Probes read health on the plaintext admin listener, as kubelet does.
    let admin_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let admin = kem_mesh::server::serve_admin("event", admin_listener, &server, shutdown.clone()).await.expect("admin");
    let plain =
        kem_mesh::client::connect::plaintext_channel(&admin.addr.to_string(), Duration::from_secs(1)).expect("channel");
    let mut client = tonic_health::pb::health_client::HealthClient::new(plain);
    let mut last = None;
    eventually("the admin listener reports NOT_SERVING", Duration::from_millis(2_500), async || {
        let response =
            client.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.expect("health check");
        last = Some(response.into_inner().status);
        last == Some(ServingStatus::NotServing as i32)
    })
    .await;
    assert_eq!(last, Some(ServingStatus::NotServing as i32));
    shutdown.trigger();
}
