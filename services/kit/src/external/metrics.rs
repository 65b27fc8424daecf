//! Per-provider counters, read by the metrics layer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Request outcomes in the order [`ProviderCounters::by_outcome`] reports them.
pub const OUTCOMES: [&str; 10] = [
    "ok",
    "auth",
    "rate_limited",
    "invalid",
    "moderated",
    "transient",
    "timeout",
    "breaker_open",
    "request_error",
    "unexpected_response",
];

/// Monotonic counters of one provider client.
#[derive(Debug, Default)]
pub struct ProviderCounters {
    /// Finished requests by final outcome, indexed like [`OUTCOMES`].
    requests: [AtomicU64; OUTCOMES.len()],
    /// HTTP attempts sent (first tries and retries).
    pub attempts: AtomicU64,
    /// Retries (attempts after the first).
    pub retries: AtomicU64,
    /// Sum of request latencies (all attempts and waits), in microseconds.
    pub latency_micros_sum: AtomicU64,
    /// Number of latencies summed.
    pub latency_count: AtomicU64,
}

impl ProviderCounters {
    /// `(outcome, finished requests)` for every outcome label of [`OUTCOMES`].
    pub fn by_outcome(&self) -> [(&'static str, u64); OUTCOMES.len()] {
        let mut out = [("", 0); OUTCOMES.len()];
        for (slot, (name, count)) in out.iter_mut().zip(OUTCOMES.iter().zip(&self.requests)) {
            *slot = (*name, count.load(Ordering::Relaxed));
        }
        out
    }

    /// Finished requests with `outcome` (0 for an unknown label).
    pub fn requests(&self, outcome: &str) -> u64 {
        OUTCOMES.iter().position(|o| *o == outcome).map_or(0, |i| self.requests[i].load(Ordering::Relaxed))
    }

    /// Mean request latency so far, if any request finished.
    pub fn mean_latency(&self) -> Option<Duration> {
        let count = self.latency_count.load(Ordering::Relaxed);
        (count > 0).then(|| Duration::from_micros(self.latency_micros_sum.load(Ordering::Relaxed) / count))
    }

    pub(super) fn record(&self, outcome: &str, latency: Duration) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            Self::bump(&self.requests[i]);
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_micros_sum.fetch_add(micros, Ordering::Relaxed);
        Self::bump(&self.latency_count);
    }

    pub(super) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_by_label() {
        let c = ProviderCounters::default();
        c.record("ok", Duration::from_millis(10));
        c.record("ok", Duration::from_millis(30));
        c.record("timeout", Duration::from_millis(50));
        assert_eq!((c.requests("ok"), c.requests("timeout"), c.requests("nope")), (2, 1, 0));
        assert_eq!(c.mean_latency(), Some(Duration::from_millis(30)));
        assert_eq!(c.by_outcome().iter().map(|(_, n)| n).sum::<u64>(), 3);
    }
}
