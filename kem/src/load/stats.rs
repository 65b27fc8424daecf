//! Per-route outcome counters and latencies of a load run.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::bench::load::Latency;

/// What one route saw.
#[derive(Debug, Clone, Default)]
pub struct RouteStats {
    /// Responses by HTTP status (0 = no response: connection error or client timeout).
    pub by_status: BTreeMap<u16, u64>,
    /// Latency of every request, measured from its intended send time.
    pub latencies: Vec<Duration>,
    /// Latency of the 2xx answers alone: under overload, what an admitted request costs (the
    /// refused ones are fast by design and would flatter the percentiles).
    pub accepted: Vec<Duration>,
}

impl RouteStats {
    /// Requests sent.
    pub fn total(&self) -> u64 {
        self.by_status.values().sum()
    }

    /// 2xx responses.
    pub fn ok(&self) -> u64 {
        self.by_status.iter().filter(|(s, _)| (200..300).contains(*s)).map(|(_, n)| n).sum()
    }

    /// Responses that spend the error budget: no response, 5xx, and 429 (the platform could not
    /// serve a legitimate request). Expected 4xx (409 duplicate, 404, 400) do not.
    pub fn budget_errors(&self) -> u64 {
        self.by_status.iter().filter(|(s, _)| **s == 0 || **s == 429 || **s >= 500).map(|(_, n)| n).sum()
    }
}

/// Every route's stats, shared by the workers of a run.
#[derive(Debug, Default)]
pub struct Stats {
    routes: Mutex<BTreeMap<&'static str, RouteStats>>,
    last_budget_error: Mutex<Option<tokio::time::Instant>>,
}

impl Stats {
    /// Records one request of `route`.
    pub fn record(&self, route: &'static str, status: u16, latency: Duration) {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let entry = routes.entry(route).or_default();
        *entry.by_status.entry(status).or_default() += 1;
        entry.latencies.push(latency);
        if (200..300).contains(&status) {
            entry.accepted.push(latency);
        }
        drop(routes);
        if status == 0 || status == 429 || status >= 500 {
            *self.last_budget_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(tokio::time::Instant::now());
        }
    }

    /// When the latest request that spent the error budget completed.
    pub fn last_budget_error(&self) -> Option<tokio::time::Instant> {
        *self.last_budget_error.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of the current numbers.
    pub fn snapshot(&self) -> BTreeMap<&'static str, RouteStats> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Requests of every route so far and those that spent the error budget.
    pub fn totals(&self) -> (u64, u64) {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes.values().fold((0, 0), |(t, e), r| (t + r.total(), e + r.budget_errors()))
    }
}

/// The summary table: per route RPS, success rate, latency percentiles and status counts.
pub fn table(routes: &BTreeMap<&'static str, RouteStats>, elapsed: Duration) -> String {
    let mut out = format!(
        "{:<48} {:>7} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  statuses\n",
        "route", "reqs", "rps", "success", "p50", "p95", "p99", "max", "2xx p50", "2xx p99"
    );
    for (route, stats) in routes {
        let mut samples = stats.latencies.clone();
        let latency = Latency::of(&mut samples);
        let mut accepted = stats.accepted.clone();
        let accepted = Latency::of(&mut accepted);
        let total = stats.total();
        let success = if total == 0 { 0.0 } else { 100.0 * (total - stats.budget_errors()) as f64 / total as f64 };
        let statuses: Vec<String> = stats.by_status.iter().map(|(s, n)| format!("{s}:{n}")).collect();
        out.push_str(&format!(
            "{:<48} {:>7} {:>8.1} {:>7.2}% {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  {}\n",
            route,
            total,
            total as f64 / elapsed.as_secs_f64().max(0.001),
            success,
            ms(latency.p50),
            ms(latency.p95),
            ms(latency.p99),
            ms(latency.max),
            ms(accepted.p50),
            ms(accepted.p99),
            statuses.join(" ")
        ));
    }
    out
}

fn ms(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_client_errors_do_not_spend_the_error_budget() {
        let stats = Stats::default();
        for status in [200, 201, 409, 404, 400, 429, 503, 0] {
            stats.record("POST /x", status, Duration::from_millis(1));
        }
        let snapshot = stats.snapshot();
        let route = &snapshot["POST /x"];
        assert_eq!((route.total(), route.ok(), route.budget_errors()), (8, 2, 3));
        assert!(table(&snapshot, Duration::from_secs(1)).contains("POST /x"));
    }
}
