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
