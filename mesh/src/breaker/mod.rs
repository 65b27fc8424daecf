//! The circuit breaker guarding calls to an external dependency (NTS, Claude, Stable Diffusion,
//! each distribution channel): the one implementation of the platform, configured per dependency.
//!
//! **Closed**: every call goes through; outcomes land in a time-based sliding window. When the
//! window holds at least [`minimum_calls`](BreakerConfig::minimum_calls) and the failure rate
//! reaches [`failure_rate_threshold`](BreakerConfig::failure_rate_threshold), it opens.
//! **Open**: every call fails fast with [`BreakerOpen`] until
//! [`open_duration`](BreakerConfig::open_duration) has passed. **Half-open**: up to
//! [`half_open_probes`](BreakerConfig::half_open_probes) calls go through; when all of them
//! succeed it closes (with an empty window), the first failure re-opens it.
//!
//! Why a time-based window rather than the last N calls: external APIs see very uneven traffic
//! (registration bursts by day, nothing at night). A count window would keep a failure from hours
//! ago at night and cover only a fraction of a second in a burst; a time window always answers "how
//! is the dependency doing *now*", and `minimum_calls` keeps a quiet period from tripping on one
//! failure.
//!
//! A caller takes a [`Permit`] with [`CircuitBreaker::acquire`] and reports the outcome with
//! [`Permit::success`] or [`Permit::failure`]. A permit **dropped without a verdict** (the call was
//! cancelled: the caller's deadline passed, the client went away, a panic) counts as neither: it
//! says nothing certain about the dependency, and counting it as a failure would let our own short
//! deadlines open the breaker of a healthy provider. A dropped half-open probe gives its slot back
//! so another call can probe; drops are counted in [`BreakerCounters::abandoned`]. Outcomes of
//! permits taken before the last state change (a slow call from the closed period finishing while
//! half-open) do not count towards the new state.
//!
//! Time is [`tokio::time::Instant`], so tests drive it with `tokio::time::pause`/`advance`.

mod config;
mod window;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

pub use config::{BreakerConfig, BreakerConfigError};
use window::Window;

/// Where a breaker is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through; outcomes are counted.
    Closed,
    /// Calls fail fast.
    Open,
    /// A limited number of probe calls go through.
    HalfOpen,
}

impl BreakerState {
    /// The value exported as the breaker-state gauge: 0 closed, 1 half-open, 2 open.
    pub fn as_gauge(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::HalfOpen => 1,
            BreakerState::Open => 2,
        }
    }

    /// `closed`, `open` or `half_open`, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A call refused because the breaker is open (or half-open with all probe slots taken).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker {name:?} is {state}: not calling the dependency; retry in {retry_after:?}")]
pub struct BreakerOpen {
    /// The breaker (dependency) name.
    pub name: Arc<str>,
    /// [`BreakerState::Open`] or [`BreakerState::HalfOpen`].
    pub state: BreakerState,
    /// When it is worth trying again: the rest of the open period, or (half-open) a short while
    /// for the probes in flight to decide.
    pub retry_after: Duration,
}

/// Monotonic counters of one breaker, read by the metrics layer.
#[derive(Debug, Default)]
pub struct BreakerCounters {
    /// Transitions to open (from closed or from a failed probe).
    pub opened: AtomicU64,
    /// Transitions from open to half-open.
    pub half_opened: AtomicU64,
    /// Transitions from half-open to closed.
    pub closed: AtomicU64,
    /// Calls refused without reaching the dependency.
    pub rejected: AtomicU64,
    /// Calls reported successful.
    pub successes: AtomicU64,
    /// Calls reported failed.
    pub failures: AtomicU64,
    /// Permits dropped without a verdict.
    pub abandoned: AtomicU64,
}

impl BreakerCounters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A circuit breaker for one dependency. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

struct Shared {
    name: Arc<str>,
    config: BreakerConfig,
    machine: Mutex<Machine>,
    counters: BreakerCounters,
}

struct Machine {
    phase: Phase,
    /// Incremented on every state change; permits carry the generation they were issued in.
    generation: u64,
    window: Window,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { admitted: u32, succeeded: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Failure,
    Abandoned,
}

impl CircuitBreaker {
    /// A closed breaker named after its dependency (the name appears in errors, logs and metrics).
    pub fn new(name: impl Into<Arc<str>>, config: BreakerConfig) -> Result<Self, BreakerConfigError> {
        config.validate()?;
        let window = Window::new(config.window, config.window_buckets, Instant::now());
        Ok(CircuitBreaker {
            shared: Arc::new(Shared {
                name: name.into(),
                config,
                machine: Mutex::new(Machine { phase: Phase::Closed, generation: 0, window }),
                counters: BreakerCounters::default(),
            }),
        })
    }

    /// The dependency this breaker guards.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Its configuration.
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }

    /// Its counters (transitions, rejected calls, outcomes).
    pub fn counters(&self) -> &BreakerCounters {
        &self.shared.counters
    }

    /// The current state (an open breaker whose open period has passed reports half-open).
    pub fn state(&self) -> BreakerState {
        let mut machine = self.lock();
        self.shared.expire_open(&mut machine, Instant::now());
        match machine.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to make one call. `Err` means: do not call the dependency, fail fast.
    pub fn acquire(&self) -> Result<Permit, BreakerOpen> {
        let now = Instant::now();
        let mut machine = self.lock();
        self.shared.expire_open(&mut machine, now);
        let generation = machine.generation;
        let refuse = |state, retry_after| {
            BreakerCounters::bump(&self.shared.counters.rejected);
            Err(BreakerOpen { name: self.shared.name.clone(), state, retry_after })
        };
        match &mut machine.phase {
            Phase::Closed => Ok(self.permit(generation, false)),
            Phase::Open { until } => refuse(BreakerState::Open, until.saturating_duration_since(now)),
            Phase::HalfOpen { admitted, .. } if *admitted < self.shared.config.half_open_probes => {
                *admitted += 1;
                Ok(self.permit(generation, true))
            }
            // The probes in flight decide soon; a caller may come back shortly.
            Phase::HalfOpen { .. } => {
                refuse(BreakerState::HalfOpen, HALF_OPEN_RETRY_AFTER.min(self.shared.config.open_duration))
            }
        }
    }

    fn permit(&self, generation: u64, probe: bool) -> Permit {
        Permit { shared: Some(self.shared.clone()), generation, probe }
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        self.shared.lock()
    }
}

/// What a caller refused during half-open is told to wait.
const HALF_OPEN_RETRY_AFTER: Duration = Duration::from_secs(1);

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.shared.name)
            .field("state", &self.state())
            .field("config", &self.shared.config)
            .finish()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Machine> {
        // No code path panics while holding the lock; if one ever did, the state is still
        // consistent enough to keep guarding calls.
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn expire_open(&self, machine: &mut Machine, now: Instant) {
        if let Phase::Open { until } = machine.phase
            && now >= until
        {
            self.transition(machine, Phase::HalfOpen { admitted: 0, succeeded: 0 });
            BreakerCounters::bump(&self.counters.half_opened);
            tracing::info!(breaker = %self.name, "circuit breaker half-open: letting probe calls through");
        }
    }

    fn transition(&self, machine: &mut Machine, phase: Phase) {
        machine.phase = phase;
        machine.generation += 1;
    }

    fn open(&self, machine: &mut Machine, now: Instant) {
        self.transition(machine, Phase::Open { until: now + self.config.open_duration });
        BreakerCounters::bump(&self.counters.opened);
    }

    fn record(&self, generation: u64, probe: bool, outcome: Outcome) {
        let counter = match outcome {
            Outcome::Success => &self.counters.successes,
            Outcome::Failure => &self.counters.failures,
            Outcome::Abandoned => &self.counters.abandoned,
        };
        BreakerCounters::bump(counter);
        let now = Instant::now();
        let mut guard = self.lock();
        let machine = &mut *guard;
        if machine.generation != generation {
            return; // issued before the last state change: says nothing about the current one
        }
        match (&mut machine.phase, probe) {
            (Phase::Closed, _) => {
                if outcome == Outcome::Abandoned {
                    return;
                }
                machine.window.record(now, outcome == Outcome::Failure);
                let totals = machine.window.totals(now);
                let rate = f64::from(totals.failures) / f64::from(totals.calls.max(1));
                if totals.calls >= self.config.minimum_calls && rate >= self.config.failure_rate_threshold {
                    machine.window.clear();
                    self.open(machine, now);
                    tracing::warn!(
                        breaker = %self.name,
                        failures = totals.failures,
                        calls = totals.calls,
                        threshold = self.config.failure_rate_threshold,
                        open_for = ?self.config.open_duration,
                        "circuit breaker opened: failure rate over the window reached the threshold; failing fast"
                    );
                }
            }
            (Phase::HalfOpen { admitted, succeeded }, true) => match outcome {
                Outcome::Abandoned => *admitted = admitted.saturating_sub(1),
                Outcome::Success => {
                    *succeeded += 1;
                    if *succeeded >= self.config.half_open_probes {
                        machine.window.clear();
                        self.transition(machine, Phase::Closed);
                        BreakerCounters::bump(&self.counters.closed);
                        tracing::info!(breaker = %self.name, "circuit breaker closed: probe calls succeeded");
                    }
                }
                Outcome::Failure => {
                    self.open(machine, now);
                    tracing::warn!(
                        breaker = %self.name,
                        open_for = ?self.config.open_duration,
                        "circuit breaker re-opened: a probe call failed"
                    );
                }
            },
            // Open, or a non-probe permit in half-open: cannot happen within one generation.
            _ => {}
        }
    }
}

/// Permission to make one call. Report its outcome with [`success`](Self::success) or
/// [`failure`](Self::failure); dropping it without either counts as neither (see the module docs).
#[must_use = "report the call's outcome with success() or failure()"]
pub struct Permit {
    shared: Option<Arc<Shared>>,
    generation: u64,
    probe: bool,
}

impl Permit {
    /// The call succeeded (the dependency did its job; a rejected invalid input is a success too).
    pub fn success(mut self) {
        self.finish(Outcome::Success);
    }

    /// The call failed because of the dependency (error, timeout, unavailable).
    pub fn failure(mut self) {
        self.finish(Outcome::Failure);
    }

    /// Whether this permit is one of the half-open probes.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(shared) = self.shared.take() {
            shared.record(self.generation, self.probe, outcome);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.finish(Outcome::Abandoned);
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("generation", &self.generation).field("probe", &self.probe).finish()
    }
}

#[cfg(test)]
mod tests;
