//! The role server: one listener per role serving its gRPC services together with
//! `grpc.health.v1` and server reflection, over mTLS with per-method authorization.
//!
//! The accept loop is ours rather than tonic's so that each connection can be managed: the TLS
//! handshake runs with a timeout and its failures are counted by reason; the verified peer
//! identity is attached to every request; a connection is closed gracefully (HTTP/2 GOAWAY)
//! before either side's certificate expires, so no connection outlives the identity it was
//! authenticated with; and shutdown drains connections with a bound.
//!
//! Health is per service name. During shutdown, or while the workload's certificate is expired,
//! every status is NOT_SERVING so balancers and probes stop sending work.

mod accept;
pub mod bound;
mod panic;
pub mod shed;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::Shutdown;
use crate::authz::{AuthzLayer, Policy};
use crate::identity::{IdentityStatus, SpiffeId, WorkloadIdentity};
use crate::telemetry::{Registry, TelemetryLayer};

/// What the peer of a request is, attached to every request's extensions.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The peer's socket address.
    pub remote_addr: SocketAddr,
    /// The peer's verified SPIFFE ID (`None` on plaintext or server-only TLS listeners).
    pub identity: Option<SpiffeId>,
    /// Serial number of the certificate the peer presented.
    pub certificate_serial: Arc<[u8]>,
}

/// How a listener secures its connections.
#[derive(Clone, Debug)]
pub enum Transport {
    /// No TLS: admin/probe listeners and comparison benchmarks only.
    Plaintext,
    /// Mesh mTLS: both sides present and verify workload certificates.
    MutualTls(WorkloadIdentity),
    /// TLS without client certificates: the identity CA, whose callers have none yet.
    ServerTls(WorkloadIdentity),
}

impl Transport {
    fn identity(&self) -> Option<&WorkloadIdentity> {
        match self {
            Transport::Plaintext => None,
            Transport::MutualTls(id) | Transport::ServerTls(id) => Some(id),
        }
    }
}

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
    /// TLS configuration failed.
    #[error("role {role}: {source}")]
    Tls {
        /// Role name.
        role: String,
        /// Underlying error.
        #[source]
        source: crate::tls::TlsConfigError,
    },
}

/// Handshake failures by reason (`expired`, `unknown_issuer`, `not_tls`, ...).
#[derive(Debug, Default)]
pub struct HandshakeFailures(Mutex<BTreeMap<&'static str, u64>>);

impl HandshakeFailures {
    pub(crate) fn record(&self, reason: &'static str) {
        if let Ok(mut map) = self.0.lock() {
            *map.entry(reason).or_default() += 1;
        }
    }

    /// A snapshot of the counters.
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// Builder for one role's gRPC server.
pub struct RoleServer {
    role: String,
    routes: RoutesBuilder,
    services: Vec<&'static str>,
    drain_timeout: Duration,
    transport: Transport,
    policy: Policy,
    gateway: Option<SpiffeId>,
    health:
        Option<(HealthReporter, tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>)>,
    reflection: bool,
    metrics: Arc<Registry>,
    admin_http: bool,
    admission: Option<crate::admission::Admission>,
}

/// A running role server.
pub struct Serving {
    /// The address actually bound (useful when the port was 0).
    pub addr: SocketAddr,
    /// Health statuses of this role's services.
    pub health: HealthReporter,
    /// The health service, to expose the same statuses on an admin listener.
    pub health_service: tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
    /// Names of the business services served (excluding health and reflection).
    pub services: Vec<&'static str>,
    /// TLS handshake failures by reason.
    pub handshake_failures: Arc<HandshakeFailures>,
    /// The registry this server records its metrics into.
    pub metrics: Arc<Registry>,
    /// Completes when the server has drained after shutdown.
    pub task: JoinHandle<Result<(), ServerError>>,
}

impl RoleServer {
    /// A plaintext server for `role` allowing every call, with the default 10 s drain bound.
    /// Use [`RoleServer::transport`] and [`RoleServer::policy`] to secure it.
    pub fn new(role: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            routes: RoutesBuilder::default(),
            services: Vec::new(),
            drain_timeout: Duration::from_secs(10),
            transport: Transport::Plaintext,
            policy: Policy::allow_all(),
            gateway: None,
            health: None,
            reflection: true,
            metrics: Registry::global(),
            admin_http: false,
            admission: None,
        }
    }

    /// Sheds calls beyond `admission`'s adaptive limit (see [`crate::admission`]); off unless
    /// set. Health checks and reflection are never shed.
    pub fn admission(mut self, admission: crate::admission::Admission) -> Self {
        self.admission = Some(admission);
        self
    }

    /// The registry inbound metrics and handshake failures are recorded into
    /// (default: [`Registry::global`]).
    pub fn metrics(mut self, registry: Arc<Registry>) -> Self {
        self.metrics = registry;
        self
    }

    /// How long in-flight RPCs may run after shutdown before the server stops regardless.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// How connections are secured.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The authorization policy, and the gateway identity whose end-user metadata is trusted.
    pub fn policy(mut self, policy: Policy, gateway: Option<SpiffeId>) -> Self {
        self.policy = policy;
        self.gateway = gateway;
        self
    }

    /// Shares an existing health service (an admin listener mirroring a role's health).
    pub fn with_health(
        mut self,
        reporter: HealthReporter,
        service: tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>,
    ) -> Self {
        self.health = Some((reporter, service));
        self
    }

    /// Admin listener: also accept HTTP/1.1 and serve `/metrics`.
    fn admin_http(mut self) -> Self {
        self.admin_http = true;
        self
    }

    /// Whether to serve reflection (on by default).
    pub fn reflection(mut self, enabled: bool) -> Self {
        self.reflection = enabled;
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
        let RoleServer {
            role,
            mut routes,
            services,
            drain_timeout,
            transport,
            policy,
            gateway,
            health,
            reflection,
            metrics,
            admin_http,
            admission,
        } = self;
        let addr = listener.local_addr().map_err(|source| ServerError::LocalAddr { role: role.clone(), source })?;

        let fresh_health = health.is_none();
        let (health, health_service) = health.unwrap_or_else(|| {
            let reporter = HealthReporter::new();
            let service = tonic_health::server::HealthService::from_health_reporter(reporter.clone());
            (reporter, tonic_health::pb::health_server::HealthServer::new(service))
        });
        if fresh_health {
            for name in &services {
                health.set_service_status(*name, ServingStatus::Serving).await;
            }
            health.set_service_status("", ServingStatus::Serving).await;
        }
        routes.add_service(health_service.clone());

        if reflection {
            let mut builder = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(kem_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health")
                // Naming services restricts the listing, so reflection must name itself too.
                .with_service_name("grpc.reflection.v1.ServerReflection");
            for name in &services {
                builder = builder.with_service_name(*name);
            }
            let reflection =
                builder.build_v1().map_err(|source| ServerError::Reflection { role: role.clone(), source })?;
            routes.add_service(reflection);
        }

        let tls = match &transport {
            Transport::Plaintext => None,
            Transport::MutualTls(identity) => Some(crate::tls::server_config(identity)),
            Transport::ServerTls(identity) => Some(crate::tls::server_config_without_client_auth(identity)),
        }
        .transpose()
        .map_err(|source| ServerError::Tls { role: role.clone(), source })?;

        if let Some(identity) = transport.identity() {
            watch_identity(identity.clone(), health.clone(), services.clone(), shutdown.clone());
        }

        if let Some(admission) = admission.clone() {
            let server = role.clone();
            metrics.register_collector(Arc::new(move |out: &mut crate::telemetry::MetricWriter| {
                admission.write_metrics(out, &[("server", &server)]);
            }));
        }
        let stats = policy.stats();
        let server = role.clone();
        metrics.register_collector(Arc::new(move |out: &mut crate::telemetry::MetricWriter| {
            let help = "authorization decisions, by outcome";
            for (decision, counter) in [("allow", &stats.allowed), ("deny", &stats.denied), ("audit", &stats.audited)] {
                let value = counter.load(std::sync::atomic::Ordering::Relaxed);
                out.counter("kem_authz_decisions_total", help, &[("server", &server), ("decision", decision)], value);
            }
        }));
        let mut routes = routes.routes();
        if admin_http {
            let registry = metrics.clone();
            let router = routes.into_axum_router().route(
                "/metrics",
                axum::routing::get(move || {
                    let registry = registry.clone();
                    async move { ([(http::header::CONTENT_TYPE, PROMETHEUS_TEXT)], registry.render()) }
                }),
            );
            routes = tonic::service::Routes::from(router);
        }
        // Outermost first: metrics see every call (denials and shed calls included), admission
        // control sheds what is over the limit, status metadata is bounded
        // (see `bound`), authorization decides, a panicking handler answers INTERNAL,
        // then the caller's deadline is enforced around the handler and inherited by its
        // outbound calls (see `crate::deadline`).
        let service = tower::ServiceBuilder::new()
            .layer(TelemetryLayer::new(metrics.clone(), &role))
            .layer(shed::ShedLayer::new(admission))
            .map_response(bound::bound_status as accept::BoundStatus)
            .layer(AuthzLayer::new(policy, gateway))
            .layer(panic::CatchPanicLayer)
            .map_request(accept::into_tonic_body as accept::BodyMap)
            .layer(crate::deadline::InboundDeadlineLayer)
            .service(routes);
        let handshake_failures = Arc::new(HandshakeFailures::default());
        tracing::info!(%role, %addr, tls = tls.is_some(), services = ?services, "gRPC server listening");
        let task = tokio::spawn(accept::run(accept::AcceptLoop {
            role,
            listener,
            tls,
            identity: transport.identity().cloned(),
            service,
            shutdown,
            drain_timeout,
            health: health.clone(),
            services: services.clone(),
            handshake_failures: handshake_failures.clone(),
            metrics: metrics.clone(),
            http1: admin_http,
        }));
        Ok(Serving { addr, health, health_service, services, handshake_failures, metrics, task })
    }
}

async fn set_all(health: &HealthReporter, services: &[&'static str], status: ServingStatus) {
    for name in services {
        health.set_service_status(*name, status).await;
    }
    health.set_service_status("", status).await;
}

/// Mirrors the workload certificate's validity into health: an expired identity cannot serve.
fn watch_identity(identity: WorkloadIdentity, health: HealthReporter, services: Vec<&'static str>, shutdown: Shutdown) {
    let mut status = identity.status();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = status.changed() => if changed.is_err() { return },
                _ = shutdown.wait() => return,
            }
            let now = *status.borrow_and_update();
            let serving = if now == IdentityStatus::Valid { ServingStatus::Serving } else { ServingStatus::NotServing };
            set_all(&health, &services, serving).await;
        }
    });
}

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Serves `grpc.health.v1` in plaintext for Kubernetes probes, mirroring `serving`'s health, and
/// `GET /metrics` (Prometheus text, HTTP/1.1 or h2c) from `serving`'s registry.
pub async fn serve_admin(
    role: &str,
    listener: TcpListener,
    serving: &Serving,
    shutdown: Shutdown,
) -> Result<Serving, ServerError> {
    RoleServer::new(format!("{role}-admin"))
        .with_health(serving.health.clone(), serving.health_service.clone())
        .reflection(false)
        .metrics(serving.metrics.clone())
        .admin_http()
        .serve(listener, shutdown)
        .await
}
