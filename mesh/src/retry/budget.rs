//! The retry budget: retries may add at most `ratio` of live traffic plus a small floor, so a total
//! outage of a dependency cannot multiply the load sent to it (linkerd / finagle semantics).

use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Parameters of a [`RetryBudget`].
#[derive(Debug, Clone, Copy)]
pub struct BudgetConfig {
    /// Retries allowed per original request in the window (0.2 = at most 20% extra load).
    pub ratio: f64,
    /// Retries per second always allowed, so low-traffic clients can still retry.
    pub min_per_sec: u32,
    /// How far back requests and retries are counted.
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig { ratio: 0.2, min_per_sec: 10, window: Duration::from_secs(10) }
    }
}

const BUCKETS: usize = 10;

/// A sliding-window retry budget shared by every clone of one client.
///
/// The window is split into ten buckets; a retry is allowed while
/// `retries_in_window < min_per_sec × window + ratio × requests_in_window`.
#[derive(Debug)]
pub struct RetryBudget {
    config: BudgetConfig,
    state: Mutex<Buckets>,
}

#[derive(Debug)]
struct Buckets {
    /// (requests, retries) per bucket.
    counts: [(u64, u64); BUCKETS],
    /// Start of the bucket `head` counts into.
    head_start: Instant,
    head: usize,
}

impl RetryBudget {
    /// An empty budget.
    pub fn new(config: BudgetConfig) -> RetryBudget {
        RetryBudget {
            config,
            state: Mutex::new(Buckets { counts: [(0, 0); BUCKETS], head_start: Instant::now(), head: 0 }),
        }
    }

    fn bucket_len(&self) -> Duration {
        (self.config.window / BUCKETS as u32).max(Duration::from_millis(1))
    }

    fn advance(&self, buckets: &mut Buckets) {
        let len = self.bucket_len();
        let now = Instant::now();
        let mut steps = 0;
        while now.saturating_duration_since(buckets.head_start) >= len && steps <= BUCKETS {
            buckets.head = (buckets.head + 1) % BUCKETS;
            buckets.counts[buckets.head] = (0, 0);
            buckets.head_start += len;
            steps += 1;
        }
        if steps > BUCKETS {
            // Idle for longer than the window: everything is stale.
            buckets.head_start = now;
        }
    }

    /// Records an original (non-retry) request.
    pub fn deposit(&self) {
        let mut buckets = self.state.lock();
        self.advance(&mut buckets);
        let head = buckets.head;
        buckets.counts[head].0 += 1;
    }

    /// Takes one retry from the budget; `false` when it is exhausted.
    pub fn withdraw(&self) -> bool {
        let mut buckets = self.state.lock();
        self.advance(&mut buckets);
        let (requests, retries) = buckets.counts.iter().fold((0u64, 0u64), |(a, b), (r, t)| (a + r, b + t));
        let floor = f64::from(self.config.min_per_sec) * self.config.window.as_secs_f64();
        let allowed = floor + self.config.ratio * requests as f64;
        if (retries as f64) < allowed {
            let head = buckets.head;
            buckets.counts[head].1 += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_floor_and_the_ratio_bound_retries_and_refill_over_time() {
        let budget = RetryBudget::new(BudgetConfig { ratio: 0.2, min_per_sec: 1, window: Duration::from_secs(10) });
        for _ in 0..100 {
            budget.deposit();
        }
        let granted = (0..1000).filter(|_| budget.withdraw()).count();
        assert_eq!(granted, 10 + 20, "floor 1/s × 10 s + 20% of 100");
        tokio::time::advance(Duration::from_secs(11)).await;
        let granted = (0..1000).filter(|_| budget.withdraw()).count();
        assert_eq!(granted, 10, "old traffic left the window");
    }
}
