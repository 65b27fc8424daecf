//! `kem top`: live success rate, RPS and latency per route, read from the roles' `/metrics`
//! (like `linkerd viz stat`).
//!
//! Every interval each admin address is scraped; a table of the window's deltas is printed:
//! success rate (gRPC OK over all completed), requests per second, and p50/p95/p99 interpolated
//! from the latency histogram buckets.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

/// Arguments of `kem top`.
#[derive(clap::Args, Debug, Clone)]
pub struct TopArgs {
    /// Admin addresses to scrape (repeatable); default: every `kem up` role's admin port on
    /// 127.0.0.1 (admin base port + 0..=8).
    #[arg(long = "admin", value_name = "HOST:PORT")]
    pub admin: Vec<SocketAddr>,
    /// Refresh interval in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub interval_ms: u64,
    /// Print one table (after one interval) and exit.
    #[arg(long)]
    pub once: bool,
    /// Stop after this many tables (default: until Ctrl-C).
    #[arg(long)]
    pub iterations: Option<u64>,
}

/// Counters of one route summed over its peers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteStats {
    /// Completed requests with gRPC status OK.
    pub ok: f64,
    /// Completed requests.
    pub total: f64,
    /// Cumulative latency buckets by upper bound (seconds).
    pub buckets: BTreeMap<OrderedLe, f64>,
}

/// A bucket bound usable as a map key (`+Inf` included).
#[derive(Debug, Clone, Copy)]
pub struct OrderedLe(pub f64);

impl PartialEq for OrderedLe {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}

impl Eq for OrderedLe {}

impl PartialOrd for OrderedLe {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedLe {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Stats keyed by (role, route).
pub type Snapshot = BTreeMap<(String, String), RouteStats>;

fn labels_of(series: &str) -> (&str, BTreeMap<&str, String>) {
    let Some((name, rest)) = series.split_once('{') else { return (series, BTreeMap::new()) };
    let mut labels = BTreeMap::new();
    let mut rest = rest.strip_suffix('}').unwrap_or(rest);
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut end = after.len();
        let mut chars = after.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(if escaped == 'n' { '\n' } else { escaped });
                    }
                }
                '"' => {
                    end = i;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(','), value);
        rest = after.get(end + 1..).unwrap_or_default();
    }
    (name, labels)
}

/// Adds the inbound golden metrics of one scrape to `into`.
pub fn accumulate(text: &str, into: &mut Snapshot) {
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let (name, labels) = labels_of(series);
        let (Some(server), Some(route)) = (labels.get("server"), labels.get("route")) else { continue };
        let key = (server.clone(), route.clone());
        match name {
            "kem_inbound_requests_total" => {
                let stats = into.entry(key).or_default();
                stats.total += value;
                if labels.get("grpc_status").map(String::as_str) == Some("0") {
                    stats.ok += value;
                }
            }
            "kem_inbound_request_duration_seconds_bucket" => {
                let le = match labels.get("le").map(String::as_str) {
                    Some("+Inf") => f64::INFINITY,
                    Some(le) => match le.parse() {
                        Ok(le) => le,
                        Err(_) => continue,
                    },
                    None => continue,
                };
                *into.entry(key).or_default().buckets.entry(OrderedLe(le)).or_default() += value;
            }
            _ => {}
        }
    }
}

/// The process instance a scrape comes from (several admin ports of one `kem up` share one).
fn instance_of(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("kem_registry_info{instance=\"")).and_then(|r| r.split('"').next())
}

/// `q` quantile (0..1) of cumulative buckets, interpolating linearly inside the bucket.
pub fn quantile(buckets: &BTreeMap<OrderedLe, f64>, q: f64) -> Option<f64> {
    let total = buckets.values().copied().fold(0.0, f64::max);
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (le, count) in buckets {
        if *count >= rank {
            if le.0.is_infinite() {
                return Some(lower);
            }
            let width = count - below;
            let fraction = if width > 0.0 { (rank - below) / width } else { 1.0 };
            return Some(lower + (le.0 - lower) * fraction);
        }
        lower = le.0;
        below = *count;
    }
    Some(lower)
}

fn delta(now: &RouteStats, before: Option<&RouteStats>) -> RouteStats {
    let Some(before) = before else { return now.clone() };
    RouteStats {
        ok: now.ok - before.ok,
        total: now.total - before.total,
        buckets: now
            .buckets
            .iter()
            .map(|(le, c)| (*le, c - before.buckets.get(le).copied().unwrap_or_default()))
            .collect(),
    }
}

fn millis(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "-".to_owned(), |s| format!("{:.1}ms", s * 1000.0))
}

/// Renders the table of the window between `before` and `now`, `elapsed` apart.
pub fn render(before: &Snapshot, now: &Snapshot, elapsed: Duration) -> String {
    let mut out = format!(
        "{:<14} {:<60} {:>8} {:>9} {:>10} {:>10} {:>10}\n",
        "ROLE", "ROUTE", "SUCCESS", "RPS", "P50", "P95", "P99"
    );
    let seconds = elapsed.as_secs_f64().max(1e-3);
    for ((role, route), stats) in now {
        let window = delta(stats, before.get(&(role.clone(), route.clone())));
        let success = if window.total > 0.0 { format!("{:.2}%", 100.0 * window.ok / window.total) } else { "-".into() };
        out.push_str(&format!(
            "{:<14} {:<60} {:>8} {:>9.1} {:>10} {:>10} {:>10}\n",
            role,
            route,
            success,
            window.total / seconds,
            millis(quantile(&window.buckets, 0.5)),
            millis(quantile(&window.buckets, 0.95)),
            millis(quantile(&window.buckets, 0.99)),
        ));
    }
    out
}

async fn get_metrics(addr: SocketAddr) -> anyhow::Result<String> {
    crate::telemetry::scrape::metrics_text(&format!("http://{addr}/metrics")).await
}

/// Scrapes every address once; unreachable roles are skipped (and reported on stderr).
async fn scrape(targets: &[SocketAddr]) -> Snapshot {
    let mut snapshot = Snapshot::new();
    let mut seen = HashSet::new();
    for target in targets {
        match get_metrics(*target).await {
            Ok(text) => {
                // Roles of one process share one registry: count it once.
                if instance_of(&text).is_none_or(|i| seen.insert(i.to_owned())) {
                    accumulate(&text, &mut snapshot);
                }
            }
            Err(error) => eprintln!("kem top: {error:#}"),
        }
    }
    snapshot
}

/// The admin addresses of every `kem up` role on 127.0.0.1 (none when admin ports are random).
pub fn default_admin_addrs(settings: &crate::Settings) -> Vec<SocketAddr> {
    if settings.admin_base_port == 0 {
        return Vec::new();
    }
    crate::Role::all()
        .into_iter()
        .map(|role| SocketAddr::from(([127, 0, 0, 1], settings.admin_base_port + role.port_offset())))
        .collect()
}

/// Runs `kem top` against `args.admin`, or `defaults` when none was given.
pub async fn run(args: TopArgs, defaults: Vec<SocketAddr>) -> anyhow::Result<()> {
    let targets = if args.admin.is_empty() { defaults } else { args.admin.clone() };
    anyhow::ensure!(!targets.is_empty(), "no admin address to scrape (--admin HOST:PORT)");
    let interval = Duration::from_millis(args.interval_ms.max(100));
    let iterations = if args.once { Some(1) } else { args.iterations };
    let mut before = scrape(&targets).await;
    let mut at = tokio::time::Instant::now();
    let mut printed = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        let now = scrape(&targets).await;
        let elapsed = at.elapsed();
        at = tokio::time::Instant::now();
        print!("{}", render(&before, &now, elapsed));
        println!();
        before = now;
        printed += 1;
        if iterations.is_some_and(|n| printed >= n) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = "# TYPE kem_inbound_requests_total counter\n\
kem_inbound_requests_total{server=\"event\",route=\"/a.B/C\",peer=\"p\",grpc_status=\"0\"} 90\n\
kem_inbound_requests_total{server=\"event\",route=\"/a.B/C\",peer=\"p\",grpc_status=\"14\"} 10\n\
kem_inbound_request_duration_seconds_bucket{server=\"event\",route=\"/a.B/C\",peer=\"p\",le=\"0.001\"} 50\n\
kem_inbound_request_duration_seconds_bucket{server=\"event\",route=\"/a.B/C\",peer=\"p\",le=\"0.01\"} 99\n\
kem_inbound_request_duration_seconds_bucket{server=\"event\",route=\"/a.B/C\",peer=\"p\",le=\"+Inf\"} 100\n";

    #[test]
    fn top_reads_success_rate_rps_and_quantiles() {
        let mut now = Snapshot::new();
        accumulate(SCRAPE, &mut now);
        let stats = &now[&("event".to_owned(), "/a.B/C".to_owned())];
        assert_eq!((stats.ok, stats.total), (90.0, 100.0));
        let p50 = quantile(&stats.buckets, 0.5).expect("p50");
        assert!((p50 - 0.001).abs() < 1e-9, "{p50}");
        let p99 = quantile(&stats.buckets, 0.99).expect("p99");
        assert!((p99 - 0.01).abs() < 1e-9, "{p99}");
        let table = render(&Snapshot::new(), &now, Duration::from_secs(10));
        assert!(table.contains("90.00%") && table.contains("10.0"), "{table}");
    }
}
