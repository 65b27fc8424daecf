//! A channel to one mesh peer that follows the workload's certificate rotation.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::pki_types::ServerName;
use tokio::sync::watch;
use tonic::transport::Channel;

use super::connect::{OnConnect, tls_channel_observed};
use crate::identity::{SpiffeId, WorkloadIdentity};
use crate::telemetry::Registry;
use crate::telemetry::layer::RpcObservation;
use crate::telemetry::registry::RpcMetrics;
use crate::telemetry::trace;
use crate::tls;

/// Why a mesh channel could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// TLS configuration failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsConfigError),
    /// The address is not a valid endpoint.
    #[error("invalid endpoint {addr}: {source}")]
    Endpoint {
        /// The address.
        addr: String,
        /// Underlying error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The peer identity has no usable DNS form for SNI.
    #[error("cannot derive a TLS server name from {0}")]
    ServerName(SpiffeId),
}

/// A tonic-compatible channel to `peer` at `addr` over mTLS.
///
/// After each renewal of the local certificate, and before the server's certificate on the
/// current connection expires, a new connection is dialled and new RPCs use it; RPCs in flight
/// finish on the previous connection, which closes once unused. That is how rotation reaches
/// established connections without dropping an RPC (servers close connections whose
/// certificates expire, so a client that did not move in time would see its connection go away).
///
/// Every call is measured per route and target (outbound golden metrics) and gets a client span
/// whose context travels as `traceparent`, continuing the trace of the inbound call it serves.
#[derive(Clone)]
pub struct MeshChannel {
    current: Arc<ArcSwap<Channel>>,
    metrics: Arc<Registry>,
    routes: Arc<RouteSeries>,
    target: Arc<str>,
}

/// The outbound series of the routes this channel has called, so a call finds its series
/// without the registry's lock and hash (a read lock is a write to a shared cache line, which
/// every worker thread contends for on every call).
#[derive(Default)]
struct RouteSeries(ArcSwap<Vec<(Box<str>, Arc<RpcMetrics>)>>);

impl RouteSeries {
    /// Routes remembered per channel: a channel reaches one service, which has a handful of
    /// methods; past this, calls simply go to the registry.
    const LIMIT: usize = 64;

    fn series(&self, registry: &Registry, route: &str, target: &str) -> Arc<RpcMetrics> {
        if let Some((_, metrics)) = self.0.load().iter().find(|(known, _)| known.as_ref() == route) {
            return metrics.clone();
        }
        let metrics = registry.outbound(route, target);
        self.0.rcu(|routes| {
            let mut routes = Vec::clone(routes);
            if routes.len() < Self::LIMIT && !routes.iter().any(|(known, _)| known.as_ref() == route) {
                routes.push((Box::from(route), metrics.clone()));
            }
            routes
        });
        metrics
    }
}

impl MeshChannel {
    /// Connects (lazily) to `addr`, which must present `peer`'s identity.
    pub fn new(identity: &WorkloadIdentity, addr: &str, peer: &SpiffeId) -> Result<MeshChannel, ChannelError> {
        // Earliest moment the current channel should be replaced because the server's
        // certificate on its connection is running out (80% of its remaining validity).
        let (recycle_tx, mut recycle_rx) = watch::channel::<Option<SystemTime>>(None);
        let recycle_tx = Arc::new(recycle_tx);
        let build = {
            let identity = identity.clone();
            let addr = addr.to_owned();
            let peer = peer.clone();
            let recycle_tx = recycle_tx.clone();
            move || -> Result<Channel, ChannelError> {
                let config = tls::client_config(&identity, &peer)?;
                let name = ServerName::try_from(peer.dns_name()).map_err(|_| ChannelError::ServerName(peer.clone()))?;
                let tx = recycle_tx.clone();
                let on_connect: OnConnect = Arc::new(move |expiry: Option<SystemTime>| {
                    let Some(expiry) = expiry else { return };
                    let now = SystemTime::now();
                    let at = now + expiry.duration_since(now).unwrap_or_default().mul_f64(0.8);
                    tx.send_modify(|slot| *slot = Some(slot.map_or(at, |s| s.min(at))));
                });
                recycle_tx.send_replace(None);
                tls_channel_observed(&addr, config, name, Duration::from_secs(1), Some(on_connect))
                    .map_err(|source| ChannelError::Endpoint { addr: addr.clone(), source })
            }
        };
        let current = Arc::new(ArcSwap::from_pointee(build()?));
        let mut generations = identity.generations();
        let weak = Arc::downgrade(&current);
        tokio::spawn(async move {
            loop {
                let deadline = *recycle_rx.borrow_and_update();
                let wait = async {
                    match deadline {
                        Some(at) => tokio::time::sleep(at.duration_since(SystemTime::now()).unwrap_or_default()).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    changed = generations.changed() => if changed.is_err() { return },
                    changed = recycle_rx.changed() => { if changed.is_err() { return } continue }
                    _ = wait => {}
                }
                let Some(current) = weak.upgrade() else { return };
                match build() {
                    Ok(channel) => current.store(Arc::new(channel)),
                    Err(error) => {
                        tracing::warn!(%error, "cannot re-dial with fresh certificates; keeping the old connection")
                    }
                }
            }
        });
        Ok(MeshChannel {
            current,
            metrics: Registry::global(),
            routes: Arc::default(),
            target: Arc::from(peer.to_string()),
        })
    }

    /// Records outbound metrics into `registry` instead of [`Registry::global`].
    pub fn with_metrics(mut self, registry: Arc<Registry>) -> MeshChannel {
        self.metrics = registry;
        self.routes = Arc::default();
        self
    }

    fn channel(&self) -> Channel {
        Channel::clone(&self.current.load())
    }

    /// Whether the peer answers a `grpc.health.v1` check for `service` with SERVING within
    /// `timeout`. Not metered: probes are the balancer's, not the application's traffic.
    pub(crate) async fn probe(&self, service: &str, timeout: Duration) -> bool {
        use tonic_health::pb::health_check_response::ServingStatus;
        let mut client = tonic_health::pb::health_client::HealthClient::new(self.channel());
        let request = tonic_health::pb::HealthCheckRequest { service: service.to_owned() };
        match tokio::time::timeout(timeout, client.check(request)).await {
            Ok(Ok(response)) => response.get_ref().status == ServingStatus::Serving as i32,
            _ => false,
        }
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for MeshChannel {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call takes the then-current channel and waits for its readiness there.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let channel = self.channel();
        let metrics = self.routes.series(&self.metrics, request.uri().path(), &self.target);
        // The current context is the inbound call's server span when called from a handler.
        let cx = trace::client_context(request.uri().path(), &self.target);
        if let Some(cx) = &cx {
            trace::inject(cx, request.headers_mut());
        }
        let observation = RpcObservation::start(metrics, cx.filter(|_| trace::exporting()));
        Box::pin(async move {
            match tower::ServiceExt::oneshot(channel, request).await {
                Ok(response) => Ok(observation.observe(response)),
                Err(error) => {
                    let mut observation = observation;
                    observation.finish(tonic::Code::Unavailable);
                    Err(error)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_series_are_the_registrys_remembered_per_channel_and_bounded() {
        let registry = Registry::new();
        let routes = RouteSeries::default();
        let first = routes.series(&registry, "/s/A", "peer");
        assert!(Arc::ptr_eq(&first, &routes.series(&registry, "/s/A", "peer")));
        assert!(Arc::ptr_eq(&first, &registry.outbound("/s/A", "peer")), "the registry's own series");
        for i in 0..100 {
            routes.series(&registry, &format!("/s/M{i}"), "peer");
        }
        assert_eq!(routes.0.load().len(), RouteSeries::LIMIT);
        let late = routes.series(&registry, "/s/M99", "peer");
        assert!(Arc::ptr_eq(&late, &registry.outbound("/s/M99", "peer")), "past the limit: the registry");
    }
}
