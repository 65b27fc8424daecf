//! One endpoint's load (peak-EWMA latency × in-flight) and failure accrual.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::client::MeshChannel;

/// Failure-accrual and load parameters, shared by every endpoint of a balancer.
#[derive(Debug, Clone, Copy)]
pub struct EndpointConfig {
    /// Consecutive failures that eject an endpoint.
    pub failure_accrual: u32,
    /// First ejection backoff; doubles on every failed probe.
    pub min_ejection: Duration,
    /// Largest ejection backoff.
    pub max_ejection: Duration,
    /// Time constant of the latency EWMA's decay.
    pub ewma_decay: Duration,
    /// Calls in flight per endpoint at most.
    pub concurrency_limit: usize,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            failure_accrual: 7,
            min_ejection: Duration::from_secs(1),
            max_ejection: Duration::from_secs(60),
            ewma_decay: Duration::from_secs(10),
            concurrency_limit: 256,
        }
    }
}

#[derive(Debug)]
struct State {
    /// Peak-EWMA latency in nanoseconds; `None` until observed (new or revived endpoint).
    cost_ns: Option<f64>,
    stamp: Instant,
    consecutive_failures: u32,
    ejected_until: Option<Instant>,
    backoff: Duration,
}

/// An endpoint of a balanced service.
pub(crate) struct Endpoint {
    pub(crate) addr: String,
    pub(crate) channel: MeshChannel,
    pub(crate) permits: Arc<Semaphore>,
    in_flight: AtomicUsize,
    config: EndpointConfig,
    state: Mutex<State>,
}

/// What a call told us about its endpoint.
pub(crate) enum Outcome {
    /// An answer (any status but UNAVAILABLE), with its latency.
    Answered(Duration),
    /// UNAVAILABLE or a transport error.
    Failed,
}

impl Endpoint {
    pub(crate) fn new(addr: String, channel: MeshChannel, config: EndpointConfig) -> Endpoint {
        Endpoint {
            addr,
            channel,
            permits: Arc::new(Semaphore::new(config.concurrency_limit.max(1))),
            in_flight: AtomicUsize::new(0),
            config,
            state: Mutex::new(State {
                cost_ns: None,
                stamp: Instant::now(),
                consecutive_failures: 0,
                ejected_until: None,
                backoff: config.min_ejection,
            }),
        }
    }

    /// Whether the balancer may send a call here now: not ejected, and a probing endpoint (one
    /// whose ejection just ended) takes one call at a time.
    pub(crate) fn available(&self, now: Instant) -> bool {
        let state = self.state.lock();
        match state.ejected_until {
            Some(until) if until > now => false,
            Some(_) => self.in_flight.load(Ordering::Relaxed) == 0,
            None => true,
        }
    }

    /// The decayed peak-EWMA latency, if observed.
    pub(crate) fn cost(&self, now: Instant) -> Option<f64> {
        let state = self.state.lock();
        state.cost_ns.map(|cost| cost * self.decay(now, state.stamp))
    }

    fn decay(&self, now: Instant, since: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(since).as_secs_f64();
        (-elapsed / self.config.ewma_decay.as_secs_f64().max(1e-3)).exp()
    }

    /// Load for P2C: latency × (1 + in-flight); `reference` stands in for an unobserved latency
    /// so new and revived endpoints start level with the best of their peers.
    pub(crate) fn load(&self, now: Instant, reference: f64) -> f64 {
        let cost = self.cost(now).unwrap_or(reference);
        cost * (1 + self.in_flight.load(Ordering::Relaxed)) as f64
    }

    pub(crate) fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends a call cancelled before its outcome was known (the caller's deadline passed): not a
    /// failure, but its latency so far still raises the peak estimate, so an endpoint whose calls
    /// keep timing out does not look fast.
    pub(crate) fn cancelled(&self, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut state = self.state.lock();
        let rtt = elapsed.as_nanos() as f64;
        let decayed = state.cost_ns.map(|c| c * self.decay(now, state.stamp));
        if decayed.is_some_and(|cost| rtt > cost) {
            state.cost_ns = Some(rtt);
            state.stamp = now;
        }
    }

    /// Records an outcome; returns `true` when it ejected the endpoint.
    pub(crate) fn finish(&self, outcome: Outcome) -> bool {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut state = self.state.lock();
        match outcome {
            Outcome::Answered(rtt) => {
                let rtt = rtt.as_nanos() as f64;
                let decayed = state.cost_ns.map(|c| c * self.decay(now, state.stamp));
                state.cost_ns = Some(match decayed {
                    // Peak-sensitive: a slower answer takes over at once, faster ones blend in.
                    Some(cost) if rtt < cost => {
                        let w = self.decay(now, state.stamp);
                        cost * w + rtt * (1.0 - w)
                    }
                    _ => rtt,
                });
                state.stamp = now;
                state.consecutive_failures = 0;
                state.ejected_until = None;
                state.backoff = self.config.min_ejection;
                false
            }
            Outcome::Failed => {
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                let probing = state.ejected_until.is_some_and(|until| until <= now);
                let newly = state.ejected_until.is_none();
                if state.consecutive_failures >= self.config.failure_accrual.max(1) && (newly || probing) {
                    let backoff = state.backoff;
                    // Jitter in [½, 1] × backoff so ejected endpoints are not probed in lockstep.
                    let jittered = backoff / 2 + backoff.mul_f64(rand::random::<f64>() / 2.0);
                    state.ejected_until = Some(now + jittered);
                    state.backoff = (backoff * 2).min(self.config.max_ejection);
                    // A revived endpoint starts from its peers' latency again.
                    state.cost_ns = None;
                    true
                } else {
                    false
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint_config() -> EndpointConfig {
        EndpointConfig { failure_accrual: 3, ..EndpointConfig::default() }
    }

    fn fail(e: &Endpoint) -> bool {
        e.start();
        e.finish(Outcome::Failed)
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_eject_and_probes_back_off() {
        let ca = crate::testing::TestCa::new();
        let id = ca.identity("client", Duration::from_secs(3600)).await;
        let channel =
            MeshChannel::new(&id, "127.0.0.1:9", &crate::testing::TestCa::id("server")).unwrap_or_else(|_| {
                unreachable!("a literal address is valid");
            });
        let e = Endpoint::new("127.0.0.1:9".into(), channel, endpoint_config());
        assert!(!fail(&e) && !fail(&e));
        assert!(fail(&e), "the third consecutive failure ejects");
        assert!(!e.available(Instant::now()));
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert!(e.available(Instant::now()), "probed after at most 1 s");
        assert!(fail(&e), "a failed probe ejects again");
        tokio::time::advance(Duration::from_millis(999)).await;
        assert!(!e.available(Instant::now()), "the second backoff is at least 1 s (2 s jittered)");
        tokio::time::advance(Duration::from_millis(1002)).await;
        assert!(e.available(Instant::now()), "second backoff ≤ 2 s");
        e.start();
        assert!(!e.finish(Outcome::Answered(Duration::from_millis(1))));
        assert_eq!(e.state.lock().backoff, Duration::from_secs(1), "a success resets the backoff");
    }
}
