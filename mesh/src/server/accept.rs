//! The accept loop: TLS handshake, peer identity, HTTP/2 connection, graceful close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::{HandshakeFailures, PeerInfo, ServerError, set_all};
use crate::Shutdown;
use crate::client::connect::not_after_of;
use crate::identity::WorkloadIdentity;
use crate::tls::verify::{failure_reason, serial_of, spiffe_id_of};

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct AcceptLoop<S> {
    pub role: String,
    pub listener: TcpListener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub identity: Option<WorkloadIdentity>,
    pub service: S,
    pub shutdown: Shutdown,
    pub drain_timeout: Duration,
    pub health: HealthReporter,
    pub services: Vec<&'static str>,
    pub handshake_failures: Arc<HandshakeFailures>,
    pub metrics: Arc<crate::telemetry::Registry>,
    /// Also accept HTTP/1.1 (plaintext admin listener: Prometheus scrapes).
    pub http1: bool,
}

/// Converts hyper's body into tonic's, so layers written against tonic's body type fit.
pub(super) fn into_tonic_body(request: http::Request<hyper::body::Incoming>) -> http::Request<tonic::body::Body> {
    request.map(tonic::body::Body::new)
}

/// The type of [`into_tonic_body`] as a function pointer (nameable in [`Svc`]).
pub(super) type BodyMap = fn(http::Request<hyper::body::Incoming>) -> http::Request<tonic::body::Body>;

/// The type of [`super::bound::bound_status`] as a function pointer.
pub(super) type BoundStatus = fn(http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body>;

type Svc = crate::telemetry::Telemetry<super::shed::Shed<Bounded>>;

type Bounded = tower::util::MapResponse<
    crate::authz::layer::Authz<
        super::panic::CatchPanic<
            tower::util::MapRequest<crate::deadline::InboundDeadline<tonic::service::Routes>, BodyMap>,
        >,
    >,
    BoundStatus,
>;

pub(super) async fn run(this: AcceptLoop<Svc>) -> Result<(), ServerError> {
    let connections = TaskTracker::new();
    let closing = CancellationToken::new();
    let server: Arc<str> = Arc::from(this.role.as_str());
    loop {
        let accepted = tokio::select! {
            accepted = this.listener.accept() => accepted,
            _ = this.shutdown.wait() => break,
        };
        let (tcp, remote) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(role = %this.role, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(error) = crate::socket::tune(&tcp) {
            tracing::debug!(%remote, %error, "cannot set TCP options on an accepted connection");
        }
        let conn = Connection {
            tls: this.tls.clone(),
            identity: this.identity.clone(),
            service: this.service.clone(),
            closing: closing.clone(),
            handshake_failures: this.handshake_failures.clone(),
            role: this.role.clone(),
            metrics: this.metrics.clone(),
            server: server.clone(),
            http1: this.http1,
        };
        connections.spawn(conn.run(tcp, remote));
    }

    // Tell balancers and probes first, then stop accepting and let in-flight RPCs finish.
    set_all(&this.health, &this.services, ServingStatus::NotServing).await;
    drop(this.listener);
    closing.cancel();
    connections.close();
    if tokio::time::timeout(this.drain_timeout, connections.wait()).await.is_err() {
        tracing::warn!(role = %this.role, drain_timeout = ?this.drain_timeout, remaining = connections.len(),
            "drain timed out; abandoning the remaining connections");
    }
    Ok(())
}

struct Connection {
    tls: Option<Arc<rustls::ServerConfig>>,
    identity: Option<WorkloadIdentity>,
    service: Svc,
    closing: CancellationToken,
    handshake_failures: Arc<HandshakeFailures>,
    role: String,
    metrics: Arc<crate::telemetry::Registry>,
    server: Arc<str>,
    http1: bool,
}

impl Connection {
    async fn run(self, tcp: TcpStream, remote: SocketAddr) {
        let Some(tls) = self.tls.clone() else {
            let peer = PeerInfo { remote_addr: remote, identity: None, certificate_serial: Arc::from([]) };
            self.serve(tcp, peer, None).await;
            return;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                let reason = failure_reason(&error);
                self.handshake_failures.record(reason);
                self.metrics.handshake_failure(&self.server, reason);
                tracing::debug!(role = %self.role, %remote, reason, %error, "TLS handshake refused");
                return;
            }
            Err(_) => {
                self.handshake_failures.record("timeout");
                self.metrics.handshake_failure(&self.server, "timeout");
                return;
            }
        };
        let (_, session) = stream.get_ref();
        let leaf = session.peer_certificates().and_then(|c| c.first()).cloned();
        let identity = leaf.as_ref().and_then(|c| spiffe_id_of(c).ok());
        let serial = leaf.as_ref().map(serial_of).unwrap_or_default();
        // Close before either certificate on this connection expires, so a connection never
        // outlives the identity it was authenticated with.
        let own_expiry = self.identity.as_ref().map(|i| i.not_after());
        let peer_expiry = leaf.as_ref().and_then(not_after_of);
        let close_at = [own_expiry, peer_expiry].into_iter().flatten().min();
        let peer = PeerInfo { remote_addr: remote, identity, certificate_serial: Arc::from(serial) };
        self.serve(stream, peer, close_at).await;
    }

    async fn serve<I>(self, io: I, peer: PeerInfo, close_at: Option<SystemTime>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = Arc::new(peer);
        let service = tower::ServiceBuilder::new()
            .map_request(move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(PeerInfo::clone(&peer));
                request
            })
            .service(self.service);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http2()
            .timer(hyper_util::rt::TokioTimer::new())
            .max_concurrent_streams(1024)
            .max_header_list_size(super::bound::MAX_HEADER_LIST_SIZE)
            // Dead peers are found by TCP keepalive (see `crate::socket`), not HTTP/2 PINGs.
            .keep_alive_interval(None);
        let builder = if self.http1 { builder } else { builder.http2_only() };
        let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        tokio::pin!(connection);
        let expiry = async {
            match close_at.and_then(|t| t.duration_since(SystemTime::now()).ok()) {
                // Leave a margin so the GOAWAY round trip completes before expiry.
                Some(left) => tokio::time::sleep(left.mul_f64(0.95)).await,
                None if close_at.is_some() => {}
                None => std::future::pending::<()>().await,
            }
        };
        tokio::pin!(expiry);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::trace!(%error, "connection ended with an error");
                }
                return;
            }
            _ = self.closing.cancelled() => {}
            _ = &mut expiry => {}
        }
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}
