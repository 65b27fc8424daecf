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
//! The one conversion between that stored representation and the wire's
//! `google.protobuf.Timestamp` lives here too: [`timestamp_from_ms`] and [`ms_from_timestamp`]
//! (total and saturating), and [`timestamp_from_time`].
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

/// Milliseconds since the Unix epoch (the stored representation) as a protobuf `Timestamp`.
///
/// Total: every `i64` has an exact timestamp (`nanos` is always `0..=999_000_000`, negative
/// times count `seconds` down and `nanos` up, as the protobuf contract asks), so
/// `ms_from_timestamp(&timestamp_from_ms(ms)) == ms` for every `ms`.
pub fn timestamp_from_ms(ms: i64) -> prost_types::Timestamp {
    // rem_euclid(1000) * 1e6 < 1e9 fits an i32.
    prost_types::Timestamp { seconds: ms.div_euclid(1_000), nanos: (ms.rem_euclid(1_000) * 1_000_000) as i32 }
}

/// A protobuf `Timestamp` in milliseconds since the Unix epoch: sub-millisecond precision is
/// dropped, out-of-range `nanos` are clamped to `0..=999_999_999`, and a time beyond the `i64`
/// range saturates. Never panics. (A service that must refuse an invalid timestamp checks it
/// first, then converts with this.)
pub fn ms_from_timestamp(timestamp: &prost_types::Timestamp) -> i64 {
    let ms = i128::from(timestamp.seconds) * 1_000 + i128::from(timestamp.nanos.clamp(0, 999_999_999) / 1_000_000);
    // Clamped into range first, so the conversion cannot fail.
    i64::try_from(ms.clamp(i128::from(i64::MIN), i128::from(i64::MAX))).unwrap_or_default()
}

/// A wall-clock time as a protobuf `Timestamp` at millisecond precision (a time before the epoch
/// reads as the epoch, like [`millis`]).
pub fn timestamp_from_time(time: SystemTime) -> prost_types::Timestamp {
    timestamp_from_ms(millis(time))
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
    fn timestamps_convert_at_millisecond_precision() {
        use prost_types::Timestamp;
        assert_eq!(timestamp_from_ms(1_234), Timestamp { seconds: 1, nanos: 234_000_000 });
        assert_eq!(timestamp_from_ms(-1), Timestamp { seconds: -1, nanos: 999_000_000 });
        assert_eq!(timestamp_from_ms(i64::MIN), Timestamp { seconds: -9_223_372_036_854_776, nanos: 192_000_000 });
        assert_eq!(timestamp_from_ms(i64::MAX), Timestamp { seconds: 9_223_372_036_854_775, nanos: 807_000_000 });
        assert_eq!(ms_from_timestamp(&Timestamp { seconds: 1_700_000_000, nanos: 123_456_789 }), 1_700_000_000_123);
        assert_eq!(ms_from_timestamp(&Timestamp { seconds: -2, nanos: 999_000_000 }), -1_001);
        assert_eq!(ms_from_timestamp(&Timestamp { seconds: 0, nanos: -5 }), 0, "negative nanos clamp to 0");
        assert_eq!(ms_from_timestamp(&Timestamp { seconds: 0, nanos: i32::MAX }), 999, "nanos clamp below a second");
        assert_eq!(ms_from_timestamp(&Timestamp { seconds: i64::MAX, nanos: i32::MAX }), i64::MAX);
        assert_eq!(ms_from_timestamp(&Timestamp { seconds: i64::MIN, nanos: i32::MIN }), i64::MIN);
        assert_eq!(timestamp_from_time(UNIX_EPOCH + Duration::from_millis(5_250)), timestamp_from_ms(5_250));
        assert_eq!(timestamp_from_time(UNIX_EPOCH - Duration::from_secs(1)), timestamp_from_ms(0));
    }

    mod properties {
        use proptest::prelude::*;
        use prost_types::Timestamp;

        use super::super::{ms_from_timestamp, timestamp_from_ms};

        proptest! {
            #[test]
            fn every_millisecond_round_trips(ms in any::<i64>()) {
                let timestamp = timestamp_from_ms(ms);
                prop_assert!((0..1_000_000_000).contains(&timestamp.nanos) && timestamp.nanos % 1_000_000 == 0);
                prop_assert_eq!(ms_from_timestamp(&timestamp), ms);
            }

            #[test]
            fn a_valid_timestamp_round_trips_to_its_millisecond(
                seconds in (i64::MIN / 1_000 + 1)..=(i64::MAX / 1_000 - 1),
                nanos in 0..1_000_000_000i32,
            ) {
                let ms = ms_from_timestamp(&Timestamp { seconds, nanos });
                prop_assert_eq!(timestamp_from_ms(ms), Timestamp { seconds, nanos: nanos - nanos % 1_000_000 });
            }

            #[test]
            fn any_timestamp_converts_without_panicking_and_monotonically(
                seconds in any::<i64>(),
                nanos in any::<i32>(),
                later in 0..1_000i64,
            ) {
                let ms = ms_from_timestamp(&Timestamp { seconds, nanos });
                let after = ms_from_timestamp(&Timestamp { seconds: seconds.saturating_add(later), nanos });
                prop_assert!(after >= ms);
            }
        }
    }

    #[test]
    fn a_clock_starting_now_starts_at_the_system_time() {
        let before = SystemClock.now_ms();
        let clock = ManualClock::starting_now();
        assert!(clock.now_ms() >= before && clock.now_ms() <= SystemClock.now_ms());
    }
}
