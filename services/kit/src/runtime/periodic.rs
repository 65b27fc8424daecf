//! The one loop of a service's periodic background tasks (purges, sweepers, schedulers,
//! notifiers, maintenance): one tick every interval until the process shuts down.
//!
//! A task states its policy once, on a [`Periodic`], instead of writing the
//! `loop { select! { tick, shutdown } … }` by hand:
//!
//! - **First tick**: at once ([`FirstTick::Immediately`], the default) or one interval after the
//!   start ([`FirstTick::AfterOneInterval`]).
//! - **Spacing**: ticks on a fixed rate measured from each tick's start, with tokio's
//!   [`MissedTickBehavior`] for a tick that overran ([`Spacing::Rate`]; the default is
//!   `Delay`: a late tick is delayed, never bunched up), or one full interval of rest after each
//!   tick ends ([`Spacing::AfterEach`]).
//! - **Shutdown**: stops waiting at once, and no tick starts after it. A tick in progress is either dropped
//!   ([`InFlight::Drop`], the default: the tick's work must be safe to interrupt — a transaction
//!   rolls back, a lease expires) or allowed to finish ([`InFlight::Finish`]).
//! - **A panicking tick** does not end the loop: the panic is caught, logged at `error` with the
//!   task's name, and the next tick runs as scheduled. (Left alone, a panic would end the spawned
//!   task and with it the purge or the scheduler, silently, for the rest of the process.) A tick
//!   that can fail returns its error to the log itself; the loop never sees it.
//!
//! The interval runs on `tokio::time`, so tests move it with `tokio::time::pause`/`advance`;
//! what a tick compares with stored rows it reads from the service's [`Clock`](crate::clock::Clock).
//!
//! ```
//! # async fn example(shutdown: kem_mesh::Shutdown) {
//! use std::time::Duration;
//! use kem_kit::runtime::periodic::{FirstTick, InFlight, Periodic};
//!
//! let task = Periodic::new("inbox purge", Duration::from_secs(3_600))
//!     .first_tick(FirstTick::AfterOneInterval)
//!     .in_flight(InFlight::Finish);
//! shutdown.clone().spawn(task.run(shutdown, || async {
//!     // one round of work; log its own errors
//! }));
//! # }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use kem_mesh::Shutdown;
pub use tokio::time::MissedTickBehavior;
use tokio::time::{Instant, Interval};

/// When the first tick runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FirstTick {
    /// As soon as the loop starts.
    #[default]
    Immediately,
    /// One interval after the loop starts.
    AfterOneInterval,
}

/// How the ticks are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spacing {
    /// A fixed rate from each tick's start; a tick that overran the interval is handled by the
    /// given behaviour.
    Rate(MissedTickBehavior),
    /// One full interval of rest after each tick ends (the rate slows with slow ticks).
    AfterEach,
}

impl Default for Spacing {
    fn default() -> Self {
        Spacing::Rate(MissedTickBehavior::Delay)
    }
}

/// What happens to a tick in progress when the shutdown comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InFlight {
    /// The tick's future is dropped at once (its work must be safe to interrupt).
    #[default]
    Drop,
    /// The tick runs to its end, then the loop stops.
    Finish,
}

/// A periodic background task's policy; [`Periodic::run`] is its loop.
#[derive(Debug, Clone)]
pub struct Periodic {
    name: &'static str,
    every: Duration,
    first: FirstTick,
    spacing: Spacing,
    in_flight: InFlight,
}

impl Periodic {
    /// A task called `name` (in its log lines) ticking every `every`: first tick at once, late
    /// ticks delayed, a tick in progress dropped on shutdown.
    ///
    /// # Panics
    /// When `every` is zero (as `tokio::time::interval` does).
    pub fn new(name: &'static str, every: Duration) -> Periodic {
        assert!(!every.is_zero(), "periodic task {name}: the interval must be positive");
        Periodic {
            name,
            every,
            first: FirstTick::default(),
            spacing: Spacing::default(),
            in_flight: InFlight::default(),
        }
    }

    /// A task that rests `every` before each tick — after the start and after each tick ends —
    /// and lets a tick in progress finish on shutdown: the shape of a service's maintenance.
    pub fn resting(name: &'static str, every: Duration) -> Periodic {
        Periodic::new(name, every)
            .first_tick(FirstTick::AfterOneInterval)
            .spacing(Spacing::AfterEach)
            .in_flight(InFlight::Finish)
    }

    /// When the first tick runs.
    pub fn first_tick(mut self, first: FirstTick) -> Periodic {
        self.first = first;
        self
    }

    /// How the ticks are spaced.
    pub fn spacing(mut self, spacing: Spacing) -> Periodic {
        self.spacing = spacing;
        self
    }

    /// What happens to a tick in progress on shutdown.
    pub fn in_flight(mut self, in_flight: InFlight) -> Periodic {
        self.in_flight = in_flight;
        self
    }

    /// Runs `tick` on this policy until `shutdown`; returns once stopped.
    pub async fn run<F, Fut>(self, shutdown: Shutdown, mut tick: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut ticks = self.interval();
        loop {
            // Shutdown first: once triggered, no further tick starts (a missed tick that is
            // ready at the same time does not get to run).
            tokio::select! {
                biased;
                _ = shutdown.wait() => break,
                _ = ticks.tick() => {}
            }
            // The closure call is inside the guarded future too: a panic while building the
            // tick's future is caught like one while running it.
            let round = AssertUnwindSafe(async { tick().await }).catch_unwind();
            let outcome = match self.in_flight {
                InFlight::Finish => round.await,
                InFlight::Drop => tokio::select! {
                    outcome = round => outcome,
                    _ = shutdown.wait() => break,
                },
            };
            if let Err(panic) = outcome {
                let message = panic_message(panic.as_ref());
                tracing::error!(task = self.name, panic = %message, "periodic task panicked in a tick; it runs again at the next one");
            }
            if self.spacing == Spacing::AfterEach {
                ticks.reset();
            }
        }
        tracing::debug!(task = self.name, "periodic task stopped");
    }

    /// [`Periodic::run`] on `shutdown`'s task set (so `Shutdown::drained` waits for it).
    pub fn spawn<F, Fut>(self, shutdown: Shutdown, tick: F) -> tokio::task::JoinHandle<()>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        shutdown.clone().spawn(self.run(shutdown, tick))
    }

    fn interval(&self) -> Interval {
        let start = match self.first {
            FirstTick::Immediately => Instant::now(),
            FirstTick::AfterOneInterval => Instant::now() + self.every,
        };
        let mut ticks = tokio::time::interval_at(start, self.every);
        ticks.set_missed_tick_behavior(match self.spacing {
            Spacing::Rate(missed) => missed,
            // Reset after every tick: the next one is always a full interval away, never missed.
            Spacing::AfterEach => MissedTickBehavior::Delay,
        });
        ticks
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&'static str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a non-string panic payload)")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// Starts `task` counting its ticks (each lasting `work`); the counter and the join handle.
    fn start(task: Periodic, shutdown: &Shutdown, work: Duration) -> (Arc<AtomicU32>, tokio::task::JoinHandle<()>) {
        let started = Arc::new(AtomicU32::new(0));
        let count = started.clone();
        let handle = tokio::spawn(task.run(shutdown.clone(), move || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(work).await;
            }
        }));
        (started, handle)
    }

    /// Lets the spawned loops run up to the (paused) time `by` from now (a loop spawned before
    /// has started first, at the current time).
    async fn advance(by: Duration) {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tokio::time::advance(by).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_tick_runs_at_once_or_after_one_interval() {
        let shutdown = Shutdown::new();
        let (now, _) = start(Periodic::new("now", 10 * SECOND), &shutdown, Duration::ZERO);
        let (later, _) = start(
            Periodic::new("later", 10 * SECOND).first_tick(FirstTick::AfterOneInterval),
            &shutdown,
            Duration::ZERO,
        );
        advance(Duration::ZERO).await;
        assert_eq!((now.load(Ordering::SeqCst), later.load(Ordering::SeqCst)), (1, 0));
        advance(10 * SECOND).await;
        assert_eq!((now.load(Ordering::SeqCst), later.load(Ordering::SeqCst)), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_counts_from_each_start_and_after_each_rests_a_full_interval() {
        let shutdown = Shutdown::new();
        // Ticks take 4s of a 10s interval.
        let (rate, _) = start(Periodic::new("rate", 10 * SECOND), &shutdown, 4 * SECOND);
        let (rest, _) = start(Periodic::new("rest", 10 * SECOND).spacing(Spacing::AfterEach), &shutdown, 4 * SECOND);
        advance(Duration::ZERO).await; // both loops start at t = 0
        for _ in 0..20 {
            advance(SECOND).await; // t = 20s
        }
        // rate: ticks at 0, 10, 20; rest: at 0, 14 (next at 28).
        assert_eq!((rate.load(Ordering::SeqCst), rest.load(Ordering::SeqCst)), (3, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_drops_or_finishes_the_tick_in_progress() {
        let finished = Arc::new(AtomicU32::new(0));
        for (in_flight, expected) in [(InFlight::Drop, 0), (InFlight::Finish, 1)] {
            finished.store(0, Ordering::SeqCst);
            let shutdown = Shutdown::new();
            let done = finished.clone();
            let task = Periodic::new("slow", SECOND).in_flight(in_flight);
            let handle = tokio::spawn(task.run(shutdown.clone(), move || {
                let done = done.clone();
                async move {
                    tokio::time::sleep(5 * SECOND).await;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }));
            advance(SECOND).await; // the first tick (at t = 0) is 1s into its 5s of work
            shutdown.trigger();
            handle.await.expect("the loop stops");
            assert_eq!(finished.load(Ordering::SeqCst), expected, "{in_flight:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_tick_is_logged_and_the_loop_goes_on() {
        let shutdown = Shutdown::new();
        let ticks = Arc::new(AtomicU32::new(0));
        let count = ticks.clone();
        let handle = tokio::spawn(Periodic::new("flaky", SECOND).run(shutdown.clone(), move || {
            let n = count.fetch_add(1, Ordering::SeqCst);
            if n == 1 {
                panic!("tick {n} breaks before its future exists");
            }
            async move {
                assert_ne!(n, 0, "the first tick's future panics");
            }
        }));
        advance(Duration::ZERO).await; // the loop starts at t = 0
        for _ in 0..3 {
            advance(SECOND).await;
        }
        assert_eq!(ticks.load(Ordering::SeqCst), 4, "ticks at 0, 1, 2, 3s despite two panics");
        shutdown.trigger();
        handle.await.expect("the loop itself never panics");
    }

    #[tokio::test(start_paused = true)]
    async fn a_resting_task_spawned_on_the_shutdown_rests_before_each_tick_and_is_drained() {
        let shutdown = Shutdown::new();
        let ticks = Arc::new(AtomicU32::new(0));
        let count = ticks.clone();
        Periodic::resting("maintenance", 10 * SECOND).spawn(shutdown.clone(), move || {
            let count = count.clone();
            async move {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(5 * SECOND).await;
            }
        });
        advance(Duration::ZERO).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 0, "rests first");
        for _ in 0..24 {
            advance(SECOND).await; // t = 24s: ticks at 10 and 25 (10 + 5 of work + 10 of rest)
        }
        assert_eq!(ticks.load(Ordering::SeqCst), 1);
        advance(SECOND).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 2);
        shutdown.trigger();
        assert!(shutdown.drained(60 * SECOND).await, "the tick in progress finishes, then the task ends");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stops_the_wait_at_once() {
        let shutdown = Shutdown::new();
        let (ticks, handle) = start(
            Periodic::new("idle", 3_600 * SECOND).first_tick(FirstTick::AfterOneInterval),
            &shutdown,
            Duration::ZERO,
        );
        shutdown.trigger();
        handle.await.expect("stops");
        assert_eq!(ticks.load(Ordering::SeqCst), 0);
    }
}
