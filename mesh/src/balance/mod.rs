//! Balancing one logical service over its endpoints: power of two choices over peak-EWMA load,
//! with failure accrual.
//!
//! Endpoints come from a [`Resolver`] (static list or DNS, re-resolved periodically and soon
//! after an ejection); each has its own [`MeshChannel`] (mTLS, rotation, 1 s connect timeout) and
//! concurrency limit. For every call two distinct available endpoints are drawn at random and the
//! one with the lower load — decayed peak-EWMA latency × (1 + calls in flight) — takes it, so a
//! slow endpoint loses traffic as soon as its latency shows, without herding onto one endpoint.
//! Latency is measured to response headers; unobserved endpoints (new, or revived after
//! ejection) borrow the best observed latency so they get traffic straight away.
//!
//! Failure accrual counts what says something about the endpoint, never what says something
//! about one request (see [`crate::client::failure`]): a refused connection ejects at once; a
//! connection that broke mid-call, or an UNAVAILABLE the mesh itself produced (marked with
//! [`MESH_ERROR_HEADER`]), counts towards `failure_accrual`
//! consecutive failures and makes the endpoint a suspect whose health probe decides at once. An
//! application's own UNAVAILABLE and a refused stream only raise the endpoint's load to the
//! failure penalty, so a replica that fails fast never looks like the fastest; stream errors
//! (an oversized response) and every other status count for nothing. Ejection lasts a jittered
//! backoff (1 s doubling to 60 s), and a background prober health-checks ejected endpoints every
//! `probe_interval` (500 ms): one that answers SERVING is back in rotation at once. With every
//! endpoint ejected, calls fail fast with UNAVAILABLE ("no healthy endpoints for <service>").
//! Endpoints in the request's [`Tried`] extension (set by the retry layer) are avoided when
//! another one is available.

mod endpoint;
mod resolve;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use rand::Rng;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tonic::Code;

pub use endpoint::EndpointConfig;
use endpoint::{Endpoint, Outcome, Verdict};
pub use resolve::Resolver;

use crate::client::MeshChannel;
use crate::client::balanced::ClientCounters;
use crate::client::channel::ChannelError;
use crate::client::failure::{Failure, OVERLOADED, classify, mesh_error};
use crate::identity::{SpiffeId, WorkloadIdentity};
use crate::retry::header_code;

/// Addresses of the endpoints earlier attempts of one call went to (shared across attempts).
#[derive(Debug, Clone, Default)]
pub struct Tried(Arc<parking_lot::Mutex<Vec<String>>>);

impl Tried {
    fn contains(&self, addr: &str) -> bool {
        self.0.lock().iter().any(|a| a == addr)
    }
    fn push(&self, addr: &str) {
        self.0.lock().push(addr.to_owned());
    }
    /// The addresses tried so far, in order.
    pub fn addresses(&self) -> Vec<String> {
        self.0.lock().clone()
    }
}

/// Marks the fail-fast UNAVAILABLE answered when every endpoint is ejected: retrying it at once
/// cannot help, so the retry layer returns it as is.
#[derive(Debug, Clone, Copy)]
pub struct NoHealthyEndpoints;

struct Shared {
    service: String,
    identity: WorkloadIdentity,
    peer: SpiffeId,
    config: EndpointConfig,
    counters: Arc<ClientCounters>,
    endpoints: ArcSwap<Vec<Arc<Endpoint>>>,
    resolve_now: Notify,
    /// Wakes the health prober after an ejection (and when the balancer is dropped).
    probe_now: Arc<Notify>,
    resolved: watch::Sender<bool>,
}

impl Shared {
    /// Replaces the endpoint set, keeping the state of endpoints still present.
    fn update(&self, addresses: &[String]) {
        let current = self.endpoints.load_full();
        let mut by_addr: HashMap<&str, &Arc<Endpoint>> = current.iter().map(|e| (e.addr.as_str(), e)).collect();
        let mut next = Vec::with_capacity(addresses.len());
        for addr in addresses {
            if let Some(existing) = by_addr.remove(addr.as_str()) {
                next.push(existing.clone());
                continue;
            }
            match MeshChannel::new(&self.identity, addr, &self.peer) {
                Ok(channel) => next.push(Arc::new(Endpoint::new(addr.clone(), channel, self.config))),
                Err(error) => tracing::warn!(service = %self.service, %addr, %error, "skipping endpoint"),
            }
        }
        if !next.is_empty() || current.is_empty() {
            self.endpoints.store(Arc::new(next));
        }
        self.resolved.send_replace(true);
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Ends the health prober, which may be waiting for an ejection that will never come.
        self.probe_now.notify_one();
    }
}

/// A balancer over the endpoints of one logical service.
#[derive(Clone)]
pub struct Balancer {
    shared: Arc<Shared>,
}

impl Balancer {
    /// Balances calls to `service` (endpoints from `resolver`, each presenting `peer`).
    /// A static list is used at once; DNS is resolved in the background (calls made before
    /// the first answer wait for it, within their deadline).
    pub fn new(
        identity: &WorkloadIdentity,
        service: &str,
        peer: &SpiffeId,
        resolver: Resolver,
        config: EndpointConfig,
        counters: Arc<ClientCounters>,
    ) -> Result<Balancer, ChannelError> {
        let shared = Arc::new(Shared {
            service: service.to_owned(),
            identity: identity.clone(),
            peer: peer.clone(),
            config,
            counters,
            endpoints: ArcSwap::from_pointee(Vec::new()),
            resolve_now: Notify::new(),
            probe_now: Arc::new(Notify::new()),
            resolved: watch::Sender::new(false),
        });
        tokio::spawn(probe_loop(Arc::downgrade(&shared)));
        match resolver {
            Resolver::Static(ref list) => {
                let mut list = list.clone();
                list.sort();
                list.dedup();
                // Fail on a malformed static address rather than run with fewer endpoints.
                let endpoints = list
                    .iter()
                    .map(|addr| {
                        Ok(Arc::new(Endpoint::new(addr.clone(), MeshChannel::new(identity, addr, peer)?, config)))
                    })
                    .collect::<Result<Vec<_>, ChannelError>>()?;
                shared.endpoints.store(Arc::new(endpoints));
                shared.resolved.send_replace(true);
            }
            Resolver::Dns { refresh, .. } => {
                tokio::spawn(resolve_loop(Arc::downgrade(&shared), resolver, refresh));
            }
        }
        Ok(Balancer { shared })
    }

    /// Addresses of the current endpoints.
    pub fn endpoints(&self) -> Vec<String> {
        self.shared.endpoints.load().iter().map(|e| e.addr.clone()).collect()
    }

    fn pick(&self, tried: Option<&Tried>) -> Option<Arc<Endpoint>> {
        let now = Instant::now();
        let all = self.shared.endpoints.load();
        let available: Vec<&Arc<Endpoint>> = all.iter().filter(|e| e.available(now)).collect();
        let fresh: Vec<&Arc<Endpoint>> = match tried {
            Some(tried) => available.iter().copied().filter(|e| !tried.contains(&e.addr)).collect(),
            None => Vec::new(),
        };
        let candidates = if fresh.is_empty() { available } else { fresh };
        match candidates.len() {
            0 => None,
            1 => Some(candidates[0].clone()),
            n => {
                let reference = all.iter().filter_map(|e| e.cost(now)).fold(f64::INFINITY, f64::min);
                let reference = if reference.is_finite() { reference } else { 1.0 };
                let mut rng = rand::rng();
                let a = rng.random_range(0..n);
                let b = (a + rng.random_range(1..n)) % n;
                let (ea, eb) = (candidates[a], candidates[b]);
                // Prefer endpoints with free concurrency permits.
                let key = |e: &Endpoint| (e.permits.available_permits() == 0, e.load(now, reference));
                let (ka, kb) = (key(ea), key(eb));
                let a_wins = ka <= kb;
                Some(if a_wins { ea.clone() } else { eb.clone() })
            }
        }
    }
}

/// Health-checks ejected and suspect endpoints every `probe_interval` while there are any. One
/// that answers SERVING is back in rotation at once; a suspect one that does not is ejected.
/// Without probes an ejected endpoint would come back only through real calls, one at a time
/// after each backoff, while callers bursting during the backoff get "no healthy endpoints".
async fn probe_loop(shared: Weak<Shared>) {
    loop {
        let Some(strong) = shared.upgrade() else { return };
        let due: Vec<Arc<Endpoint>> = strong.endpoints.load().iter().filter(|e| e.needs_probe()).cloned().collect();
        let interval = strong.config.probe_interval;
        if due.is_empty() {
            // Sleep until an ejection, without keeping the balancer alive (dropping it wakes us).
            let wake = strong.probe_now.clone();
            drop(strong);
            wake.notified().await;
            continue;
        }
        // The server's overall health (""), which it reports NOT_SERVING while draining or
        // while its certificate is expired.
        let timeout = interval.max(Duration::from_millis(200));
        let probes = due.iter().map(|endpoint| async move { (endpoint, endpoint.channel.probe("", timeout).await) });
        for (endpoint, serving) in futures_util::future::join_all(probes).await {
            match endpoint.probed(serving, Instant::now()) {
                Verdict::Ejected => {
                    strong.counters.ejections.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(service = %strong.service, addr = %endpoint.addr, "endpoint failed its health probe; ejected");
                }
                _ if serving => {
                    tracing::debug!(service = %strong.service, addr = %endpoint.addr, "endpoint answered its health probe")
                }
                _ => {}
            }
        }
        drop(strong);
        tokio::time::sleep(interval).await;
    }
}

async fn resolve_loop(shared: Weak<Shared>, resolver: Resolver, refresh: Duration) {
    loop {
        let result = resolver.resolve().await;
        let Some(strong) = shared.upgrade() else { return };
        match result {
            Ok(addresses) if !addresses.is_empty() => strong.update(&addresses),
            Ok(_) => tracing::warn!(service = %strong.service, "DNS returned no endpoints; keeping the last set"),
            Err(error) => {
                tracing::warn!(service = %strong.service, %error, "DNS resolution failed; keeping the last set")
            }
        }
        let wait = async {
            // On failure, re-resolve soon, but at most once a second.
            strong.resolve_now.notified().await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let timer = tokio::time::sleep(refresh);
        tokio::select! {
            _ = wait => {}
            _ = timer => {}
        }
        // Do not keep the balancer alive while sleeping.
        drop(strong);
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Balancer {
    type Response = http::Response<tonic::body::Body>;
    type Error = tonic::transport::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness is per endpoint and decided per call (the endpoint's permit).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let balancer = self.clone();
        Box::pin(async move {
            let shared = &balancer.shared;
            let mut resolved = shared.resolved.subscribe();
            if !*resolved.borrow_and_update() {
                let _ = resolved.changed().await;
            }
            let tried = request.extensions().get::<Tried>().cloned();
            let Some(endpoint) = balancer.pick(tried.as_ref()) else {
                shared.resolve_now.notify_one();
                let mut response =
                    tonic::Status::unavailable(format!("no healthy endpoints for {}", shared.service)).into_http();
                response.extensions_mut().insert(NoHealthyEndpoints);
                return Ok(response);
            };
            if let Some(tried) = &tried {
                tried.push(&endpoint.addr);
            }
            let Ok(_permit) = endpoint.permits.clone().acquire_owned().await else {
                return Ok(tonic::Status::unavailable("endpoint closed").into_http());
            };
            endpoint.start();
            let started = Instant::now();
            let guard = FinishGuard(Some(endpoint.clone()), started);
            let mut channel = endpoint.channel.clone();
            let result = tower::Service::call(&mut channel, request).await;
            let outcome = match &result {
                Err(error) => match classify(error) {
                    Failure::NotConnected => Outcome::Unreachable,
                    Failure::ConnectionLost => Outcome::Failed,
                    Failure::Refused => Outcome::Penalised,
                    Failure::Stream => Outcome::Neutral,
                },
                // Only the mesh's own UNAVAILABLE (draining, shedding) is the endpoint's failure;
                // the application's (its database is down) makes it less attractive, no more.
                Ok(response) if header_code(response) == Some(Code::Unavailable) => match mesh_error(response) {
                    // Shed by admission control: busy, not broken.
                    Some(OVERLOADED) | None => Outcome::Penalised,
                    Some(_) => Outcome::Failed,
                },
                Ok(_) => Outcome::Answered(started.elapsed()),
            };
            match guard.finish(outcome) {
                Verdict::Ejected => {
                    shared.counters.ejections.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(service = %shared.service, addr = %endpoint.addr, ?outcome, "endpoint ejected");
                    shared.resolve_now.notify_one();
                    shared.probe_now.notify_one();
                }
                Verdict::Suspect => shared.probe_now.notify_one(),
                Verdict::Unchanged => {}
            }
            result
        })
    }
}

/// Ends an endpoint's in-flight call exactly once: with an outcome, or — when the caller dropped
/// the call (deadline, cancellation) — as neither success nor failure.
struct FinishGuard(Option<Arc<Endpoint>>, Instant);

impl FinishGuard {
    fn finish(mut self, outcome: Outcome) -> Verdict {
        self.0.take().map_or(Verdict::Unchanged, |e| e.finish(outcome))
    }
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        if let Some(endpoint) = self.0.take() {
            endpoint.cancelled(self.1.elapsed());
        }
    }
}
