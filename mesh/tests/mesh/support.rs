//! Starting mesh servers and clients the way roles do.

use std::time::Duration;

use kem_mesh::Shutdown;
use kem_mesh::authz::{DefaultPolicy, Policy, Rule};
use kem_mesh::client::MeshChannel;
use kem_mesh::identity::{SpiffeId, WorkloadIdentity};
use kem_mesh::server::{RoleServer, Serving, Transport};
use kem_mesh::testing::echo::{self, EchoServer};
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use tokio::net::TcpListener;

pub const HOUR: Duration = Duration::from_secs(3600);

/// How often [`eventually`] checks its condition: a test waits at most this much longer than it must.
const POLL: Duration = Duration::from_millis(10);

/// Waits until `check` answers true, for at most `within`; panics naming `what` otherwise.
/// The mesh's own `kem_testkit::eventually` (that crate depends on this one, so it is not
/// available here): wait for the event itself, never for a guessed time.
pub async fn eventually(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out after {within:?} waiting until {what}");
        // The poll interval: the condition changes on other tasks and sockets, which notify nobody.
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually`] for a condition that needs no `await`.
pub async fn eventually_holds(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    eventually(what, within, async || check()).await;
}

/// A policy where Echo and health checks may be called by any mesh peer.
pub fn echo_policy() -> Policy {
    Policy::new(TRUST_DOMAIN, NAMESPACE, DefaultPolicy::Deny)
        .allow_service(echo::SERVICE, Rule::AllAuthenticated)
        .allow_service("grpc.health.v1.Health", Rule::AllAuthenticated)
}

/// An mTLS echo server for `identity`.
pub async fn echo_server(identity: &WorkloadIdentity, policy: Policy, shutdown: &Shutdown) -> Serving {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    RoleServer::new("echo")
        .transport(Transport::MutualTls(identity.clone()))
        .policy(policy, Some(TestCa::id("gateway")))
        .drain_timeout(Duration::from_secs(2))
        .add_service(EchoServer::default())
        .serve(listener, shutdown.clone())
        .await
        .expect("serve")
}

/// A client channel from `identity` to the server at `addr` that must be `peer`.
pub fn channel(identity: &WorkloadIdentity, serving: &Serving, peer: &SpiffeId) -> MeshChannel {
    MeshChannel::new(identity, &serving.addr.to_string(), peer).expect("channel")
}
