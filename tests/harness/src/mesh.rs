//! A gRPC service served over the real mesh (mTLS, the contracts' authorization policy) as a
//! test workload — a service under test, or an in-test fake of a peer it calls.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use kem_mesh::authz::Policy;
use kem_mesh::identity::WorkloadIdentity;
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_mesh::{RoleServer, Shutdown, Transport};
use tonic::server::NamedService;

/// Serves `service` as `identity` on a free loopback port, authorized by the contracts exactly
/// as in production (the gateway plus the declared mesh callers), until `shutdown`.
pub async fn serve_as<S>(identity: WorkloadIdentity, service: S, shutdown: &Shutdown) -> SocketAddr
where
    S: tower_service::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let role = identity.id().service().to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("cannot bind a listener for the {role} service: {e}"));
    let policy = Policy::from_contracts(kem_proto::descriptor_pool(), &[S::NAME], TRUST_DOMAIN, NAMESPACE, "gateway");
    RoleServer::new(role.clone())
        .transport(Transport::MutualTls(identity))
        .policy(policy, Some(TestCa::id("gateway")))
        .drain_timeout(Duration::from_secs(1))
        .add_service(service)
        .serve(listener, shutdown.clone())
        .await
        .unwrap_or_else(|e| panic!("cannot serve the {role} service: {e}"))
        .addr
}

/// [`serve_as`] with a fresh hour-long identity for `workload` from `ca`.
pub async fn serve<S>(ca: &TestCa, workload: &str, service: S, shutdown: &Shutdown) -> SocketAddr
where
    S: tower_service::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    serve_as(ca.identity(workload, Duration::from_secs(3600)).await, service, shutdown).await
}
