//! The sliding window of call outcomes: a ring of time buckets.

use std::time::Duration;

use tokio::time::Instant;

/// Calls and failures of the last `window`, kept in `n` buckets of `window / n`.
///
/// A bucket is identified by its absolute index since `origin`; a slot whose index is older than
/// `n` buckets is stale and counts for nothing, so the window slides without a timer.
#[derive(Debug)]
pub(super) struct Window {
    origin: Instant,
    bucket_nanos: u128,
    buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    index: u64,
    calls: u32,
    failures: u32,
}

/// What the window holds right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Totals {
    pub(super) calls: u32,
    pub(super) failures: u32,
}

impl Window {
    pub(super) fn new(window: Duration, buckets: u32, now: Instant) -> Self {
        let n = buckets.max(1);
        Window {
            origin: now,
            bucket_nanos: (window.as_nanos() / u128::from(n)).max(1),
            buckets: vec![Bucket::default(); n as usize],
        }
    }

    fn index(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin).as_nanos() / self.bucket_nanos;
        u64::try_from(elapsed).unwrap_or(u64::MAX)
    }

    pub(super) fn record(&mut self, now: Instant, failure: bool) {
        let index = self.index(now);
        let n = self.buckets.len() as u64;
        let Some(slot) = self.buckets.get_mut((index % n) as usize) else { return };
        if slot.index != index {
            *slot = Bucket { index, calls: 0, failures: 0 };
        }
        slot.calls = slot.calls.saturating_add(1);
        if failure {
            slot.failures = slot.failures.saturating_add(1);
        }
    }

    pub(super) fn totals(&self, now: Instant) -> Totals {
        let index = self.index(now);
        let n = self.buckets.len() as u64;
        self.buckets.iter().filter(|b| b.index <= index && index - b.index < n).fold(Totals::default(), |t, b| Totals {
            calls: t.calls.saturating_add(b.calls),
            failures: t.failures.saturating_add(b.failures),
        })
    }

    pub(super) fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn outcomes_age_out_one_bucket_at_a_time() {
        let start = Instant::now();
        let mut w = Window::new(Duration::from_secs(10), 5, start);
        w.record(start, true);
        w.record(start + Duration::from_secs(3), false);
        assert_eq!(w.totals(start + Duration::from_secs(3)), Totals { calls: 2, failures: 1 });
        // The first bucket [0, 2 s) leaves the window at 10 s; the second [2, 4 s) at 12 s.
        assert_eq!(w.totals(start + Duration::from_millis(9_999)), Totals { calls: 2, failures: 1 });
        assert_eq!(w.totals(start + Duration::from_secs(10)), Totals { calls: 1, failures: 0 });
        assert_eq!(w.totals(start + Duration::from_secs(12)), Totals::default());
        // A slot reused after a full turn starts from zero.
        w.record(start + Duration::from_secs(20), true);
        assert_eq!(w.totals(start + Duration::from_secs(20)), Totals { calls: 1, failures: 1 });
        w.clear();
        assert_eq!(w.totals(start + Duration::from_secs(20)), Totals::default());
    }
}
