//! Admission control: shed excess load fast instead of queueing it until its deadline.
//!
//! A server that accepts everything under overload makes every request slow: in-flight work
//! grows, each request waits behind more of it, latency climbs past the callers' deadlines, and
//! the server spends its capacity on requests nobody waits for any more (goodput collapses while
//! throughput looks fine). The cure is to bound the work in flight and refuse the rest at once,
//! so the admitted requests keep their normal latency and the refused ones can go elsewhere or
//! come back later.
//!
//! [`Admission`] combines two mechanisms, as Netflix's concurrency-limits and Envoy's adaptive
//! concurrency filter do:
//!
//! - **An adaptive concurrency limit** (additive increase, multiplicative decrease on latency):
//!   each completed request's latency is compared with the latency the server shows when it is
//!   not congested (the minimum seen over the last ~10 s). When more than a tenth of a window's
//!   requests take longer than `max(tolerance × that minimum, latency_floor)`, the limit shrinks
//!   by 10%; when a window ran at the limit without congestion, it grows by about √limit. So the
//!   limit settles where the server is busy but not yet queueing internally, whatever the machine.
//! - **A short queue** in front of it (CoDel's idea, as Facebook's RPC servers apply it): a
//!   request that finds the limit reached waits at most `max_queue_wait` for a slot (the queue
//!   holds at most `queue_factor × limit`), then is refused. Once the queue has not been empty for
//!   [`OVERLOAD_INTERVAL`], that is sustained overload, not a burst: waits shrink to
//!   `overload_queue_wait` and the newest waiter is served first, so admitted requests keep their
//!   latency and the refused ones learn it in milliseconds.
//!
//! A refusal costs the caller one fast answer ([`Rejected`]): the mesh server answers
//! UNAVAILABLE marked `kem-mesh-error: overloaded` (the request provably did not run, so the
//! mesh client sends it to another endpoint), the edge answers 503 with `Retry-After`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Tuning of an [`Admission`].
#[derive(Debug, Clone, Copy)]
pub struct AdmissionConfig {
    /// The limit before any adaptation.
    pub initial_limit: usize,
    /// The limit never goes below this (a server always does some work).
    pub min_limit: usize,
    /// Nor above this.
    pub max_limit: usize,
    /// Longest wait for a slot before the request is refused, while the queue drains now and
    /// then (a burst).
    pub max_queue_wait: Duration,
    /// Longest wait once the queue has not been empty for [`OVERLOAD_INTERVAL`] (sustained
    /// overload): waiting longer would only add latency to the requests that get in.
    pub overload_queue_wait: Duration,
    /// Queue capacity as a multiple of the current limit.
    pub queue_factor: f64,
    /// A request is "congested" when it takes longer than this multiple of the uncongested
    /// latency...
    pub tolerance: f64,
    /// ...and longer than this (short requests vary a lot in relative terms on a busy machine).
    pub latency_floor: Duration,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            initial_limit: 64,
            // A burst of a few dozen requests is normal traffic, not overload: it runs at once.
            min_limit: 32,
            max_limit: 1024,
            max_queue_wait: Duration::from_millis(50),
            overload_queue_wait: Duration::from_millis(5),
            queue_factor: 4.0,
            tolerance: 2.0,
            // Chosen with `kem load` at 1×, 2× and 4× the sustainable entry rate (README,
            // "Hostile input and overload"): it keeps admitted entries' p99 near 100 ms at the edge.
            latency_floor: Duration::from_millis(25),
        }
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("overloaded: {in_flight} requests in flight at a limit of {limit}; retry shortly")]
pub struct Rejected {
    /// Requests running when this one was refused.
    pub in_flight: usize,
    /// The limit then.
    pub limit: usize,
}

/// Counters of an [`Admission`], monotonic since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionSnapshot {
    /// The current limit.
    pub limit: usize,
    /// Requests running now.
    pub in_flight: usize,
    /// Requests admitted (at once or after queueing).
    pub admitted: u64,
    /// Requests that waited in the queue before admission.
    pub queued: u64,
    /// Requests refused.
    pub rejected: u64,
}

struct Waiter {
    grant: oneshot::Sender<()>,
}

/// A queue that has not been empty for this long means sustained overload, not a burst (CoDel's
/// interval): waits get short and the newest waiter goes first (adaptive LIFO), so the requests
/// that get in are the ones with the most of their deadline left.
pub const OVERLOAD_INTERVAL: Duration = Duration::from_millis(100);

struct State {
    limit: f64,
    in_flight: usize,
    queue: VecDeque<Waiter>,
    /// Minimum latency of the current and the previous 5 s bucket: the uncongested latency.
    min_current: Duration,
    min_previous: Duration,
    bucket_started: Instant,
    /// The current adaptation window.
    window_samples: u32,
    window_congested: u32,
    window_peak_in_flight: usize,
    /// The last moment the queue was seen empty.
    last_empty: Instant,
    counters: AdmissionSnapshot,
}

impl State {
    /// Drops waiters that gave up from both ends of the queue (amortised O(1)), noting when it
    /// runs empty: a queue of abandoned waiters is not a sign of load.
    fn prune(&mut self, now: Instant) {
        while self.queue.front().is_some_and(|w| w.grant.is_closed()) {
            self.queue.pop_front();
        }
        while self.queue.back().is_some_and(|w| w.grant.is_closed()) {
            self.queue.pop_back();
        }
        if self.queue.is_empty() {
            self.last_empty = now;
        }
    }

    fn overloaded(&mut self, now: Instant) -> bool {
        self.prune(now);
        !self.queue.is_empty() && now.saturating_duration_since(self.last_empty) > OVERLOAD_INTERVAL
    }
}

/// An adaptive concurrency limit with a short queue; see the module documentation.
#[derive(Clone)]
pub struct Admission {
    state: Arc<Mutex<State>>,
    config: AdmissionConfig,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").field("config", &self.config).field("now", &self.snapshot()).finish()
    }
}

/// Held while an admitted request runs; dropping it records the latency and frees the slot.
#[must_use = "the slot is freed when the permit is dropped"]
pub struct Permit {
    admission: Admission,
    started: Instant,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.admission.complete(self.started.elapsed());
    }
}

const BUCKET: Duration = Duration::from_secs(5);

impl Admission {
    /// An admission controller with `config`.
    pub fn new(config: AdmissionConfig) -> Admission {
        let min_limit = config.min_limit.max(1);
        let config = AdmissionConfig {
            min_limit,
            max_limit: config.max_limit.max(min_limit),
            initial_limit: config.initial_limit.clamp(min_limit, config.max_limit.max(min_limit)),
            ..config
        };
        Admission {
            state: Arc::new(Mutex::new(State {
                limit: config.initial_limit as f64,
                in_flight: 0,
                queue: VecDeque::new(),
                min_current: Duration::MAX,
                min_previous: Duration::MAX,
                bucket_started: Instant::now(),
                window_samples: 0,
                window_congested: 0,
                window_peak_in_flight: 0,
                last_empty: Instant::now(),
                counters: AdmissionSnapshot::default(),
            })),
            config,
        }
    }

    /// Writes this controller's limit, in-flight count and counters as metrics labelled with
    /// `labels` (e.g. `server="participation"` or `edge_service="kem.event.v1.EventService"`).
    pub fn write_metrics(&self, out: &mut crate::telemetry::MetricWriter, labels: &[(&str, &str)]) {
        let now = self.snapshot();
        out.gauge("kem_admission_limit", "adaptive concurrency limit", labels, now.limit as f64);
        out.gauge("kem_admission_in_flight", "requests running under the limit", labels, now.in_flight as f64);
        out.counter("kem_admission_admitted_total", "requests admitted", labels, now.admitted);
        out.counter("kem_admission_queued_total", "requests that waited for a slot", labels, now.queued);
        out.counter("kem_admission_rejected_total", "requests refused as overload", labels, now.rejected);
    }

    /// The current limit and counters.
    pub fn snapshot(&self) -> AdmissionSnapshot {
        let state = self.state.lock();
        AdmissionSnapshot { limit: state.limit as usize, in_flight: state.in_flight, ..state.counters }
    }

    /// Admits a request at once if a slot is free and nobody is waiting (the common case, with
    /// no allocation and no await).
    pub fn try_admit(&self) -> Option<Permit> {
        let mut state = self.state.lock();
        self.admit_now(&mut state).then(|| self.permit())
    }

    fn admit_now(&self, state: &mut State) -> bool {
        // Waiters first (FIFO); then this request, if a slot is still free.
        Self::dispatch(state);
        if state.in_flight < state.limit as usize && state.queue.is_empty() {
            state.in_flight += 1;
            state.window_peak_in_flight = state.window_peak_in_flight.max(state.in_flight);
            state.counters.admitted += 1;
            return true;
        }
        false
    }

    /// Admits a request now, after a short wait, or refuses it.
    pub async fn admit(&self) -> Result<Permit, Rejected> {
        let granted = {
            let mut state = self.state.lock();
            if self.admit_now(&mut state) {
                return Ok(self.permit());
            }
            let limit = state.limit as usize;
            let capacity = ((limit as f64) * self.config.queue_factor).ceil() as usize;
            if state.queue.len() >= capacity {
                // Waiters that gave up still hold their place until a slot would reach them.
                state.queue.retain(|waiter| !waiter.grant.is_closed());
            }
            if state.queue.len() >= capacity || self.config.max_queue_wait.is_zero() {
                state.counters.rejected += 1;
                return Err(Rejected { in_flight: state.in_flight, limit });
            }
            let wait = if state.overloaded(Instant::now()) {
                self.config.overload_queue_wait.min(self.config.max_queue_wait)
            } else {
                self.config.max_queue_wait
            };
            let (grant, granted) = oneshot::channel();
            state.queue.push_back(Waiter { grant });
            state.counters.queued += 1;
            (granted, wait)
        };
        let (mut granted, wait) = granted;
        if tokio::time::timeout(wait, &mut granted).await.is_ok_and(|r| r.is_ok()) {
            return Ok(self.permit());
        }
        // Closing first makes the check below final: a grant sent before the close is received
        // here (and used), one attempted after it fails on the granting side and goes to the
        // next waiter. No slot is ever lost between the two.
        granted.close();
        if granted.try_recv().is_ok() {
            return Ok(self.permit());
        }
        let mut state = self.state.lock();
        state.counters.rejected += 1;
        Err(Rejected { in_flight: state.in_flight, limit: state.limit as usize })
    }

    fn permit(&self) -> Permit {
        Permit { admission: self.clone(), started: Instant::now() }
    }

    /// A request finished after `latency`: adapt the limit, then hand free slots to waiters.
    fn complete(&self, latency: Duration) {
        let mut state = self.state.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        self.adapt(&mut state, latency);
        Self::dispatch(&mut state);
    }

    /// Hands free slots to waiters, skipping those that gave up: oldest first, newest first
    /// under sustained overload.
    fn dispatch(state: &mut State) {
        let now = Instant::now();
        let lifo = state.overloaded(now);
        while state.in_flight < state.limit as usize {
            let next = if lifo { state.queue.pop_back() } else { state.queue.pop_front() };
            let Some(waiter) = next else {
                state.last_empty = now;
                break;
            };
            if waiter.grant.send(()).is_ok() {
                state.in_flight += 1;
                state.window_peak_in_flight = state.window_peak_in_flight.max(state.in_flight);
                state.counters.admitted += 1;
            }
        }
    }

    fn adapt(&self, state: &mut State, latency: Duration) {
        let now = Instant::now();
        if now.saturating_duration_since(state.bucket_started) >= BUCKET {
            state.min_previous = state.min_current;
            state.min_current = Duration::MAX;
            state.bucket_started = now;
        }
        state.min_current = state.min_current.min(latency);
        let uncongested = state.min_current.min(state.min_previous);
        let threshold = uncongested.mul_f64(self.config.tolerance).max(self.config.latency_floor);
        state.window_samples += 1;
        if latency > threshold {
            state.window_congested += 1;
        }
        // A window is about one limit's worth of requests (at least 10): long enough for a
        // verdict, short enough to follow a change within a few round trips.
        let window = (state.limit as u32).max(10);
        if state.window_samples < window {
            return;
        }
        let (min, max) = (self.config.min_limit as f64, self.config.max_limit as f64);
        if state.window_congested * 10 > state.window_samples {
            state.limit = (state.limit * 0.9).max(min);
        } else if state.window_peak_in_flight as f64 >= state.limit * 0.9 || !state.queue.is_empty() {
            state.limit = (state.limit + state.limit.sqrt().max(1.0)).min(max);
        }
        state.window_samples = 0;
        state.window_congested = 0;
        state.window_peak_in_flight = state.in_flight;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(limit: usize) -> AdmissionConfig {
        AdmissionConfig {
            initial_limit: limit,
            min_limit: 1,
            max_limit: limit,
            max_queue_wait: Duration::from_millis(50),
            queue_factor: 1.0,
            ..AdmissionConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn beyond_the_limit_requests_wait_briefly_then_are_refused() {
        let admission = Admission::new(config(2));
        let first = admission.admit().await.expect("slot 1");
        let _second = admission.admit().await.expect("slot 2");
        // The third waits for a slot; it gets the first one freed.
        let waiting = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await }
        });
        tokio::task::yield_now().await;
        drop(first);
        let _third = waiting.await.expect("join").expect("a freed slot goes to the waiter");
        // Nothing frees a slot now: a waiter gives up after max_queue_wait.
        let started = Instant::now();
        let refused = admission.admit().await;
        assert!(refused.is_err());
        assert_eq!(started.elapsed(), Duration::from_millis(50));
        let snapshot = admission.snapshot();
        assert_eq!((snapshot.admitted, snapshot.queued, snapshot.rejected), (3, 2, 1), "{snapshot:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn sustained_overload_shortens_waits_and_serves_the_newest_first() {
        let admission = Admission::new(AdmissionConfig { queue_factor: 10.0, ..config(1) });
        let held = admission.admit().await.expect("the only slot");
        let waiter = |admission: &Admission| {
            let admission = admission.clone();
            tokio::spawn(async move {
                let asked = Instant::now();
                (admission.admit().await.map(|_permit| ()), asked.elapsed())
            })
        };
        // A burst: the first waiter may wait the full 50 ms.
        let first = waiter(&admission);
        tokio::time::advance(Duration::from_millis(30)).await;
        // Keep the queue busy past the overload interval with fresh waiters.
        let mut later = Vec::new();
        for _ in 0..8 {
            later.push(waiter(&admission));
            tokio::time::advance(Duration::from_millis(15)).await;
        }
        let (outcome, waited) = first.await.expect("join");
        assert!(outcome.is_err() && waited >= Duration::from_millis(50), "a burst waits the full time: {waited:?}");
        // Now sustained: a new arrival waits 5 ms at most, and a freed slot goes to the newest.
        let newest = waiter(&admission);
        tokio::task::yield_now().await;
        drop(held);
        let (outcome, waited) = newest.await.expect("join");
        assert!(outcome.is_ok(), "the newest waiter got the slot");
        assert!(waited <= Duration::from_millis(5), "waited {waited:?}");
        for task in later {
            let _ = task.await.expect("join");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_refuses_at_once() {
        let admission = Admission::new(AdmissionConfig { queue_factor: 0.5, ..config(2) });
        let _a = admission.admit().await.expect("slot");
        let _b = admission.admit().await.expect("slot");
        let queued = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await.map(|_permit| ()) }
        });
        tokio::task::yield_now().await;
        let started = Instant::now();
        assert!(admission.admit().await.is_err());
        assert_eq!(started.elapsed(), Duration::ZERO, "refused without waiting");
        assert!(queued.await.expect("join").is_err(), "the queued one times out");
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_shrinks_under_congestion_and_grows_when_saturated_without_it() {
        let admission = Admission::new(AdmissionConfig {
            initial_limit: 20,
            min_limit: 2,
            max_limit: 100,
            latency_floor: Duration::from_millis(10),
            ..AdmissionConfig::default()
        });
        // Uncongested, at the limit: it grows.
        for _ in 0..5 {
            let permits: Vec<Permit> = futures_util::future::join_all((0..20).map(|_| admission.admit()))
                .await
                .into_iter()
                .filter_map(Result::ok)
                .collect();
            tokio::time::advance(Duration::from_millis(2)).await;
            drop(permits);
        }
        let grown = admission.snapshot().limit;
        assert!(grown > 20, "grew to {grown}");
        // Congested (latency ten times the uncongested one): it shrinks.
        for _ in 0..10 {
            let permits: Vec<Permit> = futures_util::future::join_all((0..10).map(|_| admission.admit()))
                .await
                .into_iter()
                .filter_map(Result::ok)
                .collect();
            tokio::time::advance(Duration::from_millis(40)).await;
            drop(permits);
        }
        let shrunk = admission.snapshot().limit;
        assert!(shrunk < grown, "shrank from {grown} to {shrunk}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_waiters_never_lose_or_duplicate_a_slot() {
        let admission = Admission::new(AdmissionConfig {
            max_queue_wait: Duration::from_millis(2),
            queue_factor: 4.0,
            ..config(4)
        });
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..200)
            .map(|_| {
                let (admission, peak, running) = (admission.clone(), peak.clone(), running.clone());
                tokio::spawn(async move {
                    let Ok(_permit) = admission.admit().await else { return };
                    let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_micros(300)).await;
                    running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("join");
        }
        let snapshot = admission.snapshot();
        assert!(peak.load(std::sync::atomic::Ordering::SeqCst) <= 4, "never more than the limit ran");
        assert_eq!(snapshot.in_flight, 0, "every slot came back: {snapshot:?}");
        assert_eq!(snapshot.admitted + snapshot.rejected, 200, "{snapshot:?}");
    }
}
