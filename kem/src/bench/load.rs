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
///
/// The schedule is kept by a dedicated OS thread sleeping to each send time (tens of
/// microseconds late at worst), not by the async timer, whose one-millisecond granularity would
/// add up to a millisecond of pacing error to every sample and drown the differences a
/// benchmark is after.
pub async fn fixed_rate<F, Fut>(call: F, rate: u32, duration: Duration) -> RunResult
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    fixed_rate_samples(call, rate, duration).await.0
}

/// [`fixed_rate`], also returning the raw latency samples (so rounds can be pooled).
async fn fixed_rate_samples<F, Fut>(call: F, rate: u32, duration: Duration) -> (RunResult, Vec<Duration>)
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let total = (f64::from(rate) * duration.as_secs_f64()).round() as u64;
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let samples = Arc::new(std::sync::Mutex::new(Vec::with_capacity(total as usize)));
    let failed = Arc::new(AtomicU64::new(0));
    let runtime = tokio::runtime::Handle::current();
    let start = std::time::Instant::now();
    let pacer = {
        let (samples, failed) = (samples.clone(), failed.clone());
        std::thread::spawn(move || {
            let mut tasks = Vec::with_capacity(total as usize);
            for i in 0..total {
                let intended = start + period.mul_f64(i as f64);
                if let Some(wait) = intended.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(wait);
                }
                let (call, samples, failed) = (call.clone(), samples.clone(), failed.clone());
                tasks.push(runtime.spawn(async move {
                    match call().await {
                        Ok(()) => {
                            let latency = intended.elapsed();
                            if let Ok(mut samples) = samples.lock() {
                                samples.push(latency);
                            }
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
            tasks
        })
    };
    let tasks = tokio::task::spawn_blocking(move || pacer.join().unwrap_or_default()).await.unwrap_or_default();
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut samples = samples.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default();
    let ok = samples.len() as u64;
    let result = RunResult {
        rps: ok as f64 / elapsed,
        ok,
        failed: failed.load(Ordering::Relaxed),
        latency: Latency::of(&mut samples),
    };
    (result, samples)
}

/// A boxed call, so contenders of different types can be compared in one loop.
pub type BoxedCall = Arc<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Boxes `call` as a [`BoxedCall`].
pub fn boxed<F, Fut>(call: F) -> BoxedCall
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move || Box::pin(call()))
}

/// How a comparison is run.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Closed-loop callers for the saturation measurement.
    pub concurrency: usize,
    /// Open-loop rate for the latency measurement.
    pub rate: u32,
    /// Length of each measurement.
    pub seconds: Duration,
    /// Rounds: every contender is measured once per round, contenders interleaved, so a slow
    /// spell of a noisy machine hits all of them instead of deciding the comparison.
    pub rounds: usize,
}

/// One contender's results over all rounds.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Contender name.
    pub name: String,
    /// Saturation throughput of each round.
    pub rounds_rps: Vec<f64>,
    /// Failed calls, all measurements.
    pub failed: u64,
    /// Latency at the fixed rate, samples of all rounds together.
    pub latency: Latency,
}

impl Outcome {
    /// Median saturation throughput over the rounds.
    pub fn rps(&self) -> f64 {
        median(self.rounds_rps.clone())
    }

    /// This contender's throughput relative to `base`'s, paired by round: the median of the
    /// per-round ratios, and those ratios. Both ran back to back within each round, so a
    /// minute-long slowdown of this shared VM hits both sides of one ratio; comparing the two
    /// medians instead lets one slow round on one side move the result.
    pub fn throughput_ratio(&self, base: &Outcome) -> (f64, Vec<f64>) {
        let ratios: Vec<f64> = self
            .rounds_rps
            .iter()
            .zip(&base.rounds_rps)
            .map(|(own, base)| if *base > 0.0 { own / base } else { 0.0 })
            .collect();
        (median(ratios.clone()), ratios)
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Per-round ratios, for the summary line: `0.84/0.86/0.85`.
fn ratios_text(ratios: &[f64]) -> String {
    ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join("/")
}

/// How `outcome` compares with `base`: `throughput 0.86x (rounds 0.84/0.86/0.88), p99 at
/// 1000/s +0.041 ms`, the paired throughput ratio and the added p99 at `rate`.
pub fn versus(outcome: &Outcome, base: &Outcome, rate: u32) -> String {
    let (ratio, rounds) = outcome.throughput_ratio(base);
    let added = outcome.latency.p99.as_secs_f64() - base.latency.p99.as_secs_f64();
    format!("throughput {ratio:.2}x (rounds {}), p99 at {rate}/s {:+.3} ms", ratios_text(&rounds), added * 1000.0)
}

/// Measures every contender `plan.rounds` times, interleaved: per round, each contender's
/// saturation throughput, then each contender's latency at the fixed rate. Everything is
/// warmed up once before the first round.
pub async fn compare(contenders: &[(&str, BoxedCall)], plan: Plan) -> Vec<Outcome> {
    let as_fn = |call: &BoxedCall| {
        let call = call.clone();
        move || call()
    };
    for (_, call) in contenders {
        let _ = saturate(as_fn(call), plan.concurrency, Duration::from_secs(1), u64::MAX).await;
    }
    let mut outcomes: Vec<Outcome> = contenders
        .iter()
        .map(|(name, _)| Outcome {
            name: (*name).to_owned(),
            rounds_rps: Vec::new(),
            failed: 0,
            latency: Latency::default(),
        })
        .collect();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
    for _ in 0..plan.rounds.max(1) {
        for ((_, call), outcome) in contenders.iter().zip(outcomes.iter_mut()) {
            let result = saturate(as_fn(call), plan.concurrency, plan.seconds, 50_000_000).await;
            outcome.rounds_rps.push(result.rps);
            outcome.failed += result.failed;
        }
        for (((_, call), outcome), samples) in contenders.iter().zip(outcomes.iter_mut()).zip(samples.iter_mut()) {
            let (result, mut latencies) = fixed_rate_samples(as_fn(call), plan.rate, plan.seconds).await;
            outcome.failed += result.failed;
            samples.append(&mut latencies);
        }
    }
    for (outcome, samples) in outcomes.iter_mut().zip(samples.iter_mut()) {
        outcome.latency = Latency::of(samples);
    }
    outcomes
}

/// Prints one row per contender: median saturation throughput, each round's, errors, and the
/// pooled fixed-rate latency; `first` names the first column.
pub fn print_table(first: &str, outcomes: &[Outcome]) {
    println!(
        "{first:<20} {:>14} {:>30} {:>8} {:>12} {:>12} {:>12}",
        "saturation/s", "rounds", "errors", "p50", "p99", "max"
    );
    for outcome in outcomes {
        println!(
            "{:<20} {:>14.0} {:>30} {:>8} {:>12} {:>12} {:>12}",
            outcome.name,
            outcome.rps(),
            rounds_text(&outcome.rounds_rps),
            outcome.failed,
            ms(outcome.latency.p50),
            ms(outcome.latency.p99),
            ms(outcome.latency.max)
        );
    }
}

/// Per-round throughputs, for the table: `41200/40100/39800`.
pub fn rounds_text(rounds: &[f64]) -> String {
    rounds.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join("/")
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

    #[test]
    fn throughput_is_the_median_of_the_rounds() {
        let outcome = |rounds: &[f64]| Outcome {
            name: "x".into(),
            rounds_rps: rounds.to_vec(),
            failed: 0,
            latency: Latency::default(),
        };
        assert_eq!(outcome(&[30.0, 10.0, 20.0]).rps(), 20.0);
        assert_eq!(outcome(&[40.0, 10.0, 20.0, 30.0]).rps(), 25.0);
        assert_eq!(outcome(&[]).rps(), 0.0);
        assert_eq!(rounds_text(&[1.4, 2.6]), "1/3");
    }

    #[test]
    fn throughput_ratio_pairs_the_rounds() {
        let outcome = |rounds: &[f64]| Outcome {
            name: "x".into(),
            rounds_rps: rounds.to_vec(),
            failed: 0,
            latency: Latency::default(),
        };
        // One slow round on the base side: the paired median ignores it, the ratio of medians
        // (20/15 = 1.33) would not.
        let (ratio, rounds) = outcome(&[20.0, 18.0, 22.0]).throughput_ratio(&outcome(&[25.0, 10.0, 27.5]));
        assert_eq!(rounds, vec![0.8, 1.8, 0.8]);
        assert_eq!(ratio, 0.8);
        assert_eq!(ratios_text(&rounds), "0.80/1.80/0.80");
        assert_eq!(
            versus(&outcome(&[20.0, 18.0, 22.0]), &outcome(&[25.0, 10.0, 27.5]), 1000),
            "throughput 0.80x (rounds 0.80/1.80/0.80), p99 at 1000/s +0.000 ms"
        );
        assert_eq!(outcome(&[1.0]).throughput_ratio(&outcome(&[0.0])).0, 0.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compare_measures_every_contender_in_every_round() {
        let calls = Arc::new(AtomicU64::new(0));
        let counted = {
            let calls = calls.clone();
            boxed(move || {
                calls.fetch_add(1, Ordering::Relaxed);
                async { Ok(()) }
            })
        };
        let failing = boxed(|| async { Err("no".to_owned()) });
        let plan = Plan { concurrency: 2, rate: 100, seconds: Duration::from_millis(200), rounds: 2 };
        let outcomes = compare(&[("ok", counted), ("failing", failing)], plan).await;
        assert_eq!(outcomes.len(), 2);
        assert_eq!(outcomes[0].rounds_rps.len(), 2);
        assert!(outcomes[0].rps() > 0.0 && outcomes[0].failed == 0);
        assert!(calls.load(Ordering::Relaxed) > 40, "{}", calls.load(Ordering::Relaxed));
        assert_eq!(outcomes[1].rps(), 0.0);
        // Open loop: 100/s for 0.2 s in each of 2 rounds, all failing.
        assert!(outcomes[1].failed >= 40, "{}", outcomes[1].failed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
