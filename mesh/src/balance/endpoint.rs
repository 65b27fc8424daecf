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
    /// The latency a failed call counts as in the endpoint's load (at least): a replica that fails
    /// fast must not look like the fastest one and attract the traffic (Finagle and Linkerd
    /// penalise errors the same way).
    pub failure_penalty: Duration,
    /// How often ejected endpoints are probed with a gRPC health check; one that answers SERVING
    /// is back in rotation at once.
    pub probe_interval: Duration,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            failure_accrual: 7,
            min_ejection: Duration::from_secs(1),
            max_ejection: Duration::from_secs(60),
            ewma_decay: Duration::from_secs(10),
            concurrency_limit: 256,
            failure_penalty: Duration::from_secs(1),
            probe_interval: Duration::from_millis(500),
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
    /// A connection to it broke: its health probe decides whether it is ejected (probe fails)
    /// or forgiven (probe answers SERVING). Without this, the failure penalty alone would keep a
    /// replica that died and came back idle for as long as the penalty takes to decay.
    suspect: bool,
}

/// What an outcome did to the endpoint, for the balancer's log and the health prober.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing the balancer needs to act on.
    Unchanged,
    /// Needs a health probe now.
    Suspect,
    /// Taken out of rotation.
    Ejected,
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
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Outcome {
    /// An answer (any status but UNAVAILABLE), with its latency.
    Answered(Duration),
    /// A failure that says the endpoint may be unhealthy (a lost connection, the mesh's own
    /// UNAVAILABLE): counts towards failure accrual and is penalised in the load.
    Failed,
    /// Nothing listens there (connect or TLS failed): ejected at once, since no call can succeed
    /// until it comes back, which the health probe notices.
    Unreachable,
    /// The endpoint answered, but with a failure it owns up to without being broken (the
    /// application's UNAVAILABLE, a refused stream): penalised in the load, not accrued.
    Penalised,
    /// A failure of this request alone (a stream error): says nothing about the endpoint.
    Neutral,
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
                suspect: false,
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

    /// Whether the health prober should check the endpoint: ejected, or suspect.
    pub(crate) fn needs_probe(&self) -> bool {
        let state = self.state.lock();
        state.ejected_until.is_some() || state.suspect
    }

    /// The result of a health probe. SERVING puts an ejected endpoint back in rotation and clears
    /// a suspect one, with failures, backoff and penalty forgotten (its latency is borrowed from
    /// its peers again). A failed probe ejects a suspect endpoint. Returns what changed.
    pub(crate) fn probed(&self, serving: bool, now: Instant) -> Verdict {
        let mut state = self.state.lock();
        match (serving, state.ejected_until.is_some(), state.suspect) {
            (true, ejected, suspect) if ejected || suspect => {
                state.ejected_until = None;
                state.suspect = false;
                state.consecutive_failures = 0;
                state.backoff = self.config.min_ejection;
                state.cost_ns = None;
                Verdict::Unchanged
            }
            (false, false, true) => {
                self.eject(&mut state, now);
                Verdict::Ejected
            }
            _ => Verdict::Unchanged,
        }
    }

    fn eject(&self, state: &mut State, now: Instant) {
        let backoff = state.backoff;
        // Jitter in [½, 1] × backoff so ejected endpoints are not probed in lockstep.
        let jittered = backoff / 2 + backoff.mul_f64(rand::random::<f64>() / 2.0);
        state.ejected_until = Some(now + jittered);
        state.backoff = (backoff * 2).min(self.config.max_ejection);
        state.suspect = false;
        // A revived endpoint starts from its peers' latency again.
        state.cost_ns = None;
    }

    /// Raises the load estimate to at least the failure penalty. Not while ejected: an ejected
    /// endpoint takes no traffic anyway, and it must come back level with its peers (a penalty
    /// left over from calls that were in flight at the ejection would keep it idle for a minute).
    fn penalise(&self, state: &mut State, now: Instant) {
        if state.ejected_until.is_some() {
            return;
        }
        let penalty = self.config.failure_penalty.as_nanos() as f64;
        let decayed = state.cost_ns.map_or(0.0, |c| c * self.decay(now, state.stamp));
        state.cost_ns = Some(decayed.max(penalty));
        state.stamp = now;
    }

    /// Records an outcome.
    pub(crate) fn finish(&self, outcome: Outcome) -> Verdict {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        if outcome == Outcome::Neutral {
            return Verdict::Unchanged;
        }
        let now = Instant::now();
        let mut state = self.state.lock();
        match outcome {
            Outcome::Neutral => Verdict::Unchanged,
            Outcome::Penalised => {
                self.penalise(&mut state, now);
                Verdict::Unchanged
            }
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
                state.suspect = false;
                state.backoff = self.config.min_ejection;
                Verdict::Unchanged
            }
            Outcome::Failed | Outcome::Unreachable => {
                self.penalise(&mut state, now);
                state.consecutive_failures = state.consecutive_failures.saturating_add(1);
                let probing = state.ejected_until.is_some_and(|until| until <= now);
                let newly = state.ejected_until.is_none();
                let threshold = if outcome == Outcome::Unreachable { 1 } else { self.config.failure_accrual.max(1) };
                if state.consecutive_failures >= threshold && (newly || probing) {
                    self.eject(&mut state, now);
                    Verdict::Ejected
                } else if newly && !state.suspect {
                    state.suspect = true;
                    Verdict::Suspect
                } else {
                    Verdict::Unchanged
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
        e.finish(Outcome::Failed) == Verdict::Ejected
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
        assert_eq!(e.finish(Outcome::Answered(Duration::from_millis(1))), Verdict::Unchanged);
        assert_eq!(e.state.lock().backoff, Duration::from_secs(1), "a success resets the backoff");
    }
}
