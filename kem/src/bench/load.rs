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

/// One side of a comparison: a name, the call to measure, and the other processes whose CPU
/// time the call costs (servers it reaches; this process is always counted).
#[derive(Clone)]
pub struct Contender {
    /// Name in the table.
    pub name: String,
    /// The call.
    pub call: BoxedCall,
    /// Process ids of the servers this call runs through.
    pub processes: Vec<u32>,
}

impl Contender {
    /// A contender served within this process.
    pub fn new(name: &str, call: BoxedCall) -> Contender {
        Contender { name: name.to_owned(), call, processes: Vec::new() }
    }

    /// Also counts the CPU time of process `pid` (a server the call reaches).
    pub fn counting(mut self, pid: Option<u32>) -> Contender {
        self.processes.extend(pid);
        self
    }

    /// CPU time used so far by this process and the contender's servers (0 for a process that
    /// cannot be read: gone, or not Linux).
    fn cpu_time(&self) -> Duration {
        let own = cpu_time_of("self");
        self.processes.iter().fold(own, |sum, pid| sum + cpu_time_of(&pid.to_string()))
    }
}

/// User + system CPU time of all threads of a process, from `/proc/<pid>/stat`.
///
/// The values are in clock ticks of `USER_HZ`, which the kernel ABI fixes at 100 per second on
/// every architecture kem runs on; 10 ms resolution against the seconds a measurement burns.
fn cpu_time_of(pid: &str) -> Duration {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map(|stat| parse_cpu_ticks(&stat)).unwrap_or_default()
}

fn parse_cpu_ticks(stat: &str) -> Duration {
    // The command name (field 2) is parenthesised and may contain spaces: count fields from the
    // last ')'. utime and stime are fields 14 and 15, i.e. the 12th and 13th after it.
    let Some((_, rest)) = stat.rsplit_once(')') else { return Duration::ZERO };
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let ticks = |field: Option<&str>| field.and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    let (user, system) = (ticks(fields.next()), ticks(fields.next()));
    Duration::from_millis((user + system) * 10)
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
    /// CPU time (this process and the contender's servers) per successful call during each
    /// round's saturation measurement: the cost of a call, which a slow spell of the machine
    /// moves far less than it moves throughput.
    pub rounds_cpu: Vec<Duration>,
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

    /// Median CPU time per call over the rounds.
    pub fn cpu_per_call(&self) -> Duration {
        Duration::from_secs_f64(median(self.rounds_cpu.iter().map(Duration::as_secs_f64).collect()))
    }

    /// `base`'s CPU time per call divided by this contender's, paired by round: like the
    /// throughput ratio, above 1 means cheaper than the base.
    pub fn cpu_ratio(&self, base: &Outcome) -> f64 {
        let ratios = self
            .rounds_cpu
            .iter()
            .zip(&base.rounds_cpu)
            .filter(|(own, _)| !own.is_zero())
            .map(|(own, base)| base.as_secs_f64() / own.as_secs_f64())
            .collect();
        median(ratios)
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
    format!(
        "throughput {ratio:.2}x (rounds {}), cpu per call {:.2}x, p99 at {rate}/s {:+.3} ms",
        ratios_text(&rounds),
        outcome.cpu_ratio(base),
        added * 1000.0
    )
}

/// Measures every contender `plan.rounds` times, interleaved: per round, each contender's
/// saturation throughput (and CPU per call), then each contender's latency at the fixed rate.
/// Everything is warmed up once before the first round. Odd rounds run the contenders in
/// reverse order, so that whatever drifts during a round (a neighbour's load, caches, the
/// latency phase just before) falls on the first and the last contender alike.
pub async fn compare(contenders: &[Contender], plan: Plan) -> Vec<Outcome> {
    let as_fn = |call: &BoxedCall| {
        let call = call.clone();
        move || call()
    };
    for contender in contenders {
        let _ = saturate(as_fn(&contender.call), plan.concurrency, Duration::from_secs(1), u64::MAX).await;
    }
    let mut outcomes: Vec<Outcome> = contenders
        .iter()
        .map(|contender| Outcome {
            name: contender.name.clone(),
            rounds_rps: Vec::new(),
            rounds_cpu: Vec::new(),
            failed: 0,
            latency: Latency::default(),
        })
        .collect();
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
    for round in 0..plan.rounds.max(1) {
        for index in round_order(contenders.len(), round) {
            let (contender, outcome) = (&contenders[index], &mut outcomes[index]);
            let cpu_before = contender.cpu_time();
            let result = saturate(as_fn(&contender.call), plan.concurrency, plan.seconds, 50_000_000).await;
            let cpu = contender.cpu_time().saturating_sub(cpu_before);
            outcome.rounds_rps.push(result.rps);
            outcome.rounds_cpu.push(if result.ok == 0 { Duration::ZERO } else { cpu.div_f64(result.ok as f64) });
            outcome.failed += result.failed;
        }
        for index in round_order(contenders.len(), round) {
            let (result, mut latencies) =
                fixed_rate_samples(as_fn(&contenders[index].call), plan.rate, plan.seconds).await;
            outcomes[index].failed += result.failed;
            samples[index].append(&mut latencies);
        }
    }
    for (outcome, samples) in outcomes.iter_mut().zip(samples.iter_mut()) {
        outcome.latency = Latency::of(samples);
    }
    outcomes
}

/// The order of the contenders in `round`: as given in even rounds, reversed in odd ones.
fn round_order(contenders: usize, round: usize) -> Vec<usize> {
    let order = 0..contenders;
    if round.is_multiple_of(2) { order.collect() } else { order.rev().collect() }
}

/// Prints one row per contender: median saturation throughput, each round's, errors, and the
/// pooled fixed-rate latency; `first` names the first column.
pub fn print_table(first: &str, outcomes: &[Outcome]) {
    println!(
        "{first:<20} {:>14} {:>30} {:>10} {:>8} {:>12} {:>12} {:>12}",
        "saturation/s", "rounds", "cpu/call", "errors", "p50", "p99", "max"
    );
    for outcome in outcomes {
        println!(
            "{:<20} {:>14.0} {:>30} {:>10} {:>8} {:>12} {:>12} {:>12}",
            outcome.name,
            outcome.rps(),
            rounds_text(&outcome.rounds_rps),
            format!("{:.1} us", outcome.cpu_per_call().as_secs_f64() * 1e6),
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

    /// An outcome with these per-round throughputs and CPU times per call (microseconds).
    fn outcome(rounds_rps: &[f64], cpu_us: &[u64]) -> Outcome {
        Outcome {
            name: "x".into(),
            rounds_rps: rounds_rps.to_vec(),
            rounds_cpu: cpu_us.iter().map(|us| Duration::from_micros(*us)).collect(),
            failed: 0,
            latency: Latency::default(),
        }
    }

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
        let outcome = |rounds: &[f64]| outcome(rounds, &[]);
        assert_eq!(outcome(&[30.0, 10.0, 20.0]).rps(), 20.0);
        assert_eq!(outcome(&[40.0, 10.0, 20.0, 30.0]).rps(), 25.0);
        assert_eq!(outcome(&[]).rps(), 0.0);
        assert_eq!(rounds_text(&[1.4, 2.6]), "1/3");
    }

    #[test]
    fn throughput_ratio_pairs_the_rounds() {
        let outcome = |rounds: &[f64]| outcome(rounds, &[]);
        // One slow round on the base side: the paired median ignores it, the ratio of medians
        // (20/15 = 1.33) would not.
        let (ratio, rounds) = outcome(&[20.0, 18.0, 22.0]).throughput_ratio(&outcome(&[25.0, 10.0, 27.5]));
        assert_eq!(rounds, vec![0.8, 1.8, 0.8]);
        assert_eq!(ratio, 0.8);
        assert_eq!(ratios_text(&rounds), "0.80/1.80/0.80");
        assert_eq!(
            versus(&outcome(&[20.0, 18.0, 22.0]), &outcome(&[25.0, 10.0, 27.5]), 1000),
            "throughput 0.80x (rounds 0.80/1.80/0.80), cpu per call 0.00x, p99 at 1000/s +0.000 ms"
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
        let outcomes = compare(&[Contender::new("ok", counted), Contender::new("failing", failing)], plan).await;
        assert_eq!(outcomes.len(), 2);
        assert_eq!(outcomes[0].rounds_rps.len(), 2);
        assert_eq!(outcomes[0].rounds_cpu.len(), 2);
        assert!(!outcomes[0].cpu_per_call().is_zero(), "calls cost CPU time");
        assert_eq!(outcomes[1].cpu_per_call(), Duration::ZERO, "no successful call, no cost per call");
        assert!(outcomes[0].rps() > 0.0 && outcomes[0].failed == 0);
        assert!(calls.load(Ordering::Relaxed) > 40, "{}", calls.load(Ordering::Relaxed));
        assert_eq!(outcomes[1].rps(), 0.0);
        // Open loop: 100/s for 0.2 s in each of 2 rounds, all failing.
        assert!(outcomes[1].failed >= 40, "{}", outcomes[1].failed);
    }

    #[test]
    fn rounds_alternate_the_order_of_the_contenders() {
        assert_eq!(round_order(3, 0), vec![0, 1, 2]);
        assert_eq!(round_order(3, 1), vec![2, 1, 0]);
        assert_eq!(round_order(3, 2), vec![0, 1, 2]);
    }

    #[test]
    fn cpu_time_comes_from_proc_stat() {
        // A command name with spaces and parentheses, utime 250 and stime 50 ticks.
        let stat = "4242 (kem (bench) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 3 0 100";
        assert_eq!(parse_cpu_ticks(stat), Duration::from_secs(3));
        assert_eq!(parse_cpu_ticks("garbage"), Duration::ZERO);
        // This process, after burning at least a tick of CPU (bounded: two seconds at most).
        let start = std::time::Instant::now();
        let mut spin = 0u64;
        while cpu_time_of("self") < Duration::from_millis(20) && start.elapsed() < Duration::from_secs(2) {
            spin = std::hint::black_box(spin.wrapping_mul(31).wrapping_add(7));
        }
        assert!(cpu_time_of("self") >= Duration::from_millis(20), "/proc/self/stat reports CPU time");
    }

    #[test]
    fn cpu_ratio_pairs_the_rounds() {
        let outcome = |cpu: &[u64]| outcome(&[], cpu);
        // Base 20 us per call; this one 25 us: it does 0.8 of the work per CPU second.
        assert_eq!(outcome(&[25, 50, 25]).cpu_ratio(&outcome(&[20, 40, 20])), 0.8);
        assert_eq!(outcome(&[25, 50, 25]).cpu_per_call(), Duration::from_micros(25));
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
