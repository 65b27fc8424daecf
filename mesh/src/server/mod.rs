//! The role server: one gRPC listener per role exposing its services together with
//! `grpc.health.v1` and server reflection (`grpc.reflection.v1`), with a bounded graceful drain.
//!
//! Health is per service name, so Kubernetes probes and mesh health checks can ask about exactly
//! the service they need; during shutdown every status turns NOT_SERVING before the drain starts,
//! so balancers stop sending new work while in-flight RPCs finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::Shutdown;

/// Why a role server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The reflection service could not be built from the embedded descriptors.
    #[error("role {role}: cannot build gRPC reflection from the embedded descriptors: {source}")]
    Reflection {
        /// Role name.
        role: String,
        /// Underlying error.
        #[source]
        source: tonic_reflection::server::Error,
    },
    /// The listener's local address could not be read.
    #[error("role {role}: cannot read the listener address: {source}")]
    LocalAddr {
        /// Role name.
        role: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The transport failed while serving.
    #[error("role {role}: gRPC server failed on {addr}: {source}")]
    Transport {
        /// Role name.
        role: String,
        /// Listening address.
        addr: SocketAddr,
        /// Underlying error.
        #[source]
        source: tonic::transport::Error,
    },
}

/// Builder for one role's gRPC server.
pub struct RoleServer {
    role: String,
    routes: RoutesBuilder,
    services: Vec<&'static str>,
    drain_timeout: Duration,
}

/// A running role server.
pub struct Serving {
    /// The address actually bound (useful when the port was 0).
    pub addr: SocketAddr,
    /// Health statuses of this role's services; set NOT_SERVING when the role cannot do its job.
    pub health: HealthReporter,
    /// Names of the business services served (excluding health and reflection).
    pub services: Vec<&'static str>,
    /// Completes when the server has drained after shutdown.
    pub task: JoinHandle<Result<(), ServerError>>,
}

impl RoleServer {
    /// A server for `role` with the default 10 s drain bound.
    pub fn new(role: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            routes: RoutesBuilder::default(),
            services: Vec::new(),
            drain_timeout: Duration::from_secs(10),
        }
    }

    /// How long in-flight RPCs may run after shutdown before the server stops regardless.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Adds a generated tonic service; its name is reported by health and reflection.
    pub fn add_service<S>(mut self, service: S) -> Self
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
        self.services.push(S::NAME);
        self.routes.add_service(service);
        self
    }

    /// Starts serving on `listener` until `shutdown` fires, then drains (bounded).
    pub async fn serve(self, listener: TcpListener, shutdown: Shutdown) -> Result<Serving, ServerError> {
        let RoleServer { role, mut routes, services, drain_timeout } = self;
        let addr = listener.local_addr().map_err(|source| ServerError::LocalAddr { role: role.clone(), source })?;

        let (health, health_service) = tonic_health::server::health_reporter();
        for name in &services {
            health.set_service_status(*name, ServingStatus::Serving).await;
        }
        health.set_service_status("", ServingStatus::Serving).await;

        let mut reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(kem_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(
                tonic_health::pb::health_server::HealthServer::<tonic_health::server::HealthService>::NAME,
            )
            // Naming services restricts the listing, so reflection must name itself too.
            .with_service_name("grpc.reflection.v1.ServerReflection");
        for name in &services {
            reflection = reflection.with_service_name(*name);
        }
        let reflection =
            reflection.build_v1().map_err(|source| ServerError::Reflection { role: role.clone(), source })?;

        routes.add_service(health_service);
        routes.add_service(reflection);
        let routes = routes.routes();

        tracing::info!(%role, %addr, services = ?services, "gRPC server listening");
        let drain_health = health.clone();
        let drain_services = services.clone();
        let task = tokio::spawn(async move {
            let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
            let server = tonic::transport::Server::builder().add_routes(routes).serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                async move {
                    let _ = drain_rx.await;
                },
            );
            tokio::pin!(server);
            tokio::select! {
                result = &mut server => {
                    return result.map_err(|source| ServerError::Transport { role, addr, source });
                }
                _ = shutdown.wait() => {}
            }
            // Tell balancers and probes first, then stop accepting and let in-flight RPCs finish.
            for name in &drain_services {
                drain_health.set_service_status(*name, ServingStatus::NotServing).await;
            }
            drain_health.set_service_status("", ServingStatus::NotServing).await;
            let _ = drain_tx.send(());
            match tokio::time::timeout(drain_timeout, &mut server).await {
                Ok(result) => result.map_err(|source| ServerError::Transport { role, addr, source }),
                Err(_) => {
                    tracing::warn!(%role, %addr, ?drain_timeout, "drain timed out; abandoning the remaining in-flight RPCs");
                    Ok(())
                }
            }
        });
        Ok(Serving { addr, health, services, task })
    }
}
