//! Wall-clock time, injected: the one `Clock` every service's time-dependent rules read "now"
//! from (lockout windows, token and job expiry, retention cut-offs, entry periods, schedules).
//!
//! Production code holds an `Arc<dyn Clock>` (the [`ServiceContext`](crate::runtime::ServiceContext)
//! carries the process's [`SystemClock`]); tests pass a [`ManualClock`] (feature `testing`) and
//! move it forward instead of sleeping, so a test about a two-second lockout takes no two seconds
//! and cannot flake on a slow machine.
//!
//! Only wall-clock time lives here: it is what is stored (milliseconds since the Unix epoch, see
//! [`store::millis`](crate::store::millis)) and compared with stored rows, and `tokio::time::pause`
//! cannot move it. Monotonic waits (timeouts, poll intervals, backoff sleeps) stay on
//! `tokio::time`, whose own `pause`/`advance` already controls them in tests.
//!
//! ```
//! use std::sync::Arc;
//! use kem_kit::clock::{Clock, SystemClock};
//!
//! let clock: Arc<dyn Clock> = Arc::new(SystemClock);
//! assert!(clock.now_ms() > 1_700_000_000_000);
//! ```

use std::fmt;
use std::time::SystemTime;

use crate::store::millis;

/// Where "now" comes from.
pub trait Clock: fmt::Debug + Send + Sync + 'static {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;

    /// The current time in milliseconds since the Unix epoch, the representation every kem table
    /// stores (saturating, never negative).
    fn now_ms(&self) -> i64 {
        millis(self.now())
    }
}

/// The operating system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

#[cfg(any(test, feature = "testing"))]
pub use manual::ManualClock;

#[cfg(any(test, feature = "testing"))]
mod manual {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::time::{Duration, SystemTime};

    use super::Clock;
    use crate::store::{from_millis, millis};

    /// A clock that stands still until the test moves it. Clones share one time, so a test keeps
    /// a clone and advances the clock the service under test reads.
    ///
    /// Millisecond resolution, like everything kem stores.
    ///
    /// ```
    /// # #[cfg(feature = "testing")] {
    /// use std::time::Duration;
    /// use kem_kit::clock::{Clock, ManualClock};
    ///
    /// let clock = ManualClock::at_ms(1_000);
    /// clock.advance(Duration::from_millis(2_500));
    /// assert_eq!(clock.now_ms(), 3_500);
    /// # }
    /// ```
    #[derive(Debug, Clone)]
    pub struct ManualClock {
        now_ms: Arc<AtomicI64>,
    }

    impl ManualClock {
        /// A clock reading `ms` milliseconds since the Unix epoch.
        pub fn at_ms(ms: i64) -> ManualClock {
            ManualClock { now_ms: Arc::new(AtomicI64::new(ms)) }
        }

        /// A clock reading the current system time (rows written through it sort among real
        /// ones, and tokens it stamps verify against the real clock).
        pub fn starting_now() -> ManualClock {
            ManualClock::at_ms(millis(SystemTime::now()))
        }

        /// Moves the clock forward by `by` (saturating).
        pub fn advance(&self, by: Duration) {
            let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            // fetch_update cannot fail with a closure that always returns Some.
            let _ = self.now_ms.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |now| Some(now.saturating_add(by)));
        }

        /// Sets the clock to `ms` milliseconds since the Unix epoch (backwards too: tests of
        /// clock skew).
        pub fn set_ms(&self, ms: i64) {
            self.now_ms.store(ms, Ordering::SeqCst);
        }
    }

    impl Default for ManualClock {
        fn default() -> Self {
            ManualClock::starting_now()
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> SystemTime {
            from_millis(self.now_ms())
        }

        fn now_ms(&self) -> i64 {
            self.now_ms.load(Ordering::SeqCst)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn the_system_clock_reads_the_system_time() {
        let before = millis(SystemTime::now());
        let now = SystemClock.now_ms();
        assert!(now >= before && now <= millis(SystemTime::now()));
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::at_ms(1_700_000_000_000);
        let shared: Arc<dyn Clock> = Arc::new(clock.clone());
        assert_eq!(shared.now_ms(), 1_700_000_000_000);
        assert_eq!(shared.now(), UNIX_EPOCH + Duration::from_millis(1_700_000_000_000));
        clock.advance(Duration::from_millis(2_100));
        assert_eq!(shared.now_ms(), 1_700_000_002_100, "the service's clone sees the test's advance");
        clock.set_ms(5);
        assert_eq!(shared.now_ms(), 5);
        clock.advance(Duration::MAX);
        assert_eq!(shared.now_ms(), i64::MAX, "saturates");
    }

    #[test]
    fn a_clock_starting_now_starts_at_the_system_time() {
        let before = SystemClock.now_ms();
        let clock = ManualClock::starting_now();
        assert!(clock.now_ms() >= before && clock.now_ms() <= SystemClock.now_ms());
    }
}
