//! The load generator shared by every benchmark: closed-loop saturation and open-loop fixed rate.
//!
//! Fixed-rate latency is measured from each request's *intended* send time, not from when it was
//! actually sent, so a stalled server shows up as latency instead of silently lowering the rate
//! (no coordinated omission).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Latency percentiles of a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Latency {
    /// Percentiles of `samples` (sorted in place).
    pub fn of(samples: &mut [Duration]) -> Latency {
        samples.sort_unstable();
        let at = |q: f64| {
            if samples.is_empty() {
                return Duration::ZERO;
            }
            let index = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1;
            samples[index]
        };
        Latency { p50: at(0.50), p95: at(0.95), p99: at(0.99), max: samples.last().copied().unwrap_or_default() }
    }
}

/// Outcome of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunResult {
    /// Successful calls per second.
    pub rps: f64,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Latency of successful calls.
    pub latency: Latency,
}

/// Runs `concurrency` workers calling `call` back to back for `duration` (bounded by
/// `max_calls`), returning throughput and latency.
pub async fn saturate<F, Fut>(call: F, concurrency: usize, duration: Duration, max_calls: u64) -> RunResult
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let issued = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let deadline = start + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (call, ok, failed, issued, samples) =
                (call.clone(), ok.clone(), failed.clone(), issued.clone(), samples.clone());
            tokio::spawn(async move {
                let mut local = Vec::new();
                while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max_calls {
                    let sent = Instant::now();
                    match call().await {
                        Ok(()) => {
                            local.push(sent.elapsed());
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                samples.lock().await.extend(local);
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut samples = samples.lock().await;
    let ok = ok.load(Ordering::Relaxed);
    RunResult {
        rps: ok as f64 / elapsed,
        ok,
        failed: failed.load(Ordering::Relaxed),
        latency: Latency::of(&mut samples),
    }
}

/// Sends `rate` calls per second for `duration`, each at its scheduled time regardless of how
/// earlier calls are doing, and measures latency from the scheduled time.
pub async fn fixed_rate<F, Fut>(call: F, rate: u32, duration: Duration) -> RunResult
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as u64;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let samples = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let intended = start + period.mul_f64(i as f64);
        tokio::time::sleep_until(intended).await;
        let (call, samples, failed) = (call.clone(), samples.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            match call().await {
                Ok(()) => samples.lock().await.push(intended.elapsed()),
                Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut samples = samples.lock().await;
    let ok = samples.len() as u64;
    RunResult {
        rps: ok as f64 / elapsed,
        ok,
        failed: failed.load(Ordering::Relaxed),
        latency: Latency::of(&mut samples),
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let l = Latency::of(&mut samples);
        assert_eq!(
            (l.p50, l.p99, l.max),
            (Duration::from_millis(50), Duration::from_millis(99), Duration::from_millis(100))
        );
        assert_eq!(Latency::of(&mut []).p99, Duration::ZERO);
    }

    #[tokio::test]
    async fn fixed_rate_charges_stalls_to_latency() {
        // Every call takes 20 ms; at 200/s the open-loop generator keeps sending on schedule, so
        // the latency it reports is the service time, and throughput follows the schedule.
        let call = || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(())
        };
        let result = fixed_rate(call, 200, Duration::from_millis(500)).await;
        assert_eq!(result.ok, 100);
        assert!(result.latency.p50 >= Duration::from_millis(20), "{:?}", result.latency);
    }
}
