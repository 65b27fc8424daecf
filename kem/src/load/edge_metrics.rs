//! The edge's own view of a run: latency of the 2xx answers of one route, read from the
//! gateway's `/metrics` (`kem_edge_success_duration_seconds`).
//!
//! The load driver measures latency from each request's intended send time, which is what a
//! user sees, but on a machine the driver shares with the platform it also counts the driver's
//! own queueing when it is short of CPU. The edge's histogram counts only the platform's time.
//! Scraped when the load drops and at the end, the difference isolates each phase.

use std::collections::BTreeMap;
use std::time::Duration;

/// Cumulative bucket counts of one histogram series: upper bound (seconds) → count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets(BTreeMap<u64, u64>);

const SERIES: &str = "kem_edge_success_duration_seconds_bucket";

impl Buckets {
    /// The buckets of `route`'s 2xx latency in a Prometheus text exposition (empty when absent).
    pub fn parse(exposition: &str, route: &str) -> Buckets {
        let label = format!("route=\"{route}\"");
        let mut buckets = BTreeMap::new();
        for line in exposition.lines().filter(|l| l.starts_with(SERIES) && l.contains(&label)) {
            let Some(le) = line.split("le=\"").nth(1).and_then(|rest| rest.split('"').next()) else { continue };
            let Some(count) = line.rsplit(' ').next().and_then(|c| c.parse::<f64>().ok()) else { continue };
            let bound = if le == "+Inf" { u64::MAX } else { le.parse::<f64>().map_or(u64::MAX, |s| (s * 1e9) as u64) };
            buckets.insert(bound, count as u64);
        }
        Buckets(buckets)
    }

    /// These counts minus `earlier`'s (a later scrape minus an earlier one).
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        Buckets(self.0.iter().map(|(le, n)| (*le, n.saturating_sub(earlier.0.get(le).copied().unwrap_or(0)))).collect())
    }

    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.0.get(&u64::MAX).copied().unwrap_or(0)
    }

    /// The `q` quantile, interpolated linearly inside its bucket (the usual Prometheus estimate).
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut lower = (0u64, 0u64);
        for (&le, &cumulative) in &self.0 {
            if cumulative as f64 >= rank {
                if le == u64::MAX {
                    return Some(Duration::from_nanos(lower.0));
                }
                let in_bucket = (cumulative - lower.1).max(1) as f64;
                let fraction = (rank - lower.1 as f64) / in_bucket;
                return Some(Duration::from_nanos(lower.0 + ((le - lower.0) as f64 * fraction) as u64));
            }
            lower = (le, cumulative);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "\
kem_edge_success_duration_seconds_bucket{route=\"/a/B\",le=\"0.001\"} 10
kem_edge_success_duration_seconds_bucket{route=\"/a/B\",le=\"0.01\"} 90
kem_edge_success_duration_seconds_bucket{route=\"/a/B\",le=\"0.1\"} 100
kem_edge_success_duration_seconds_bucket{route=\"/a/B\",le=\"+Inf\"} 100
kem_edge_success_duration_seconds_bucket{route=\"/other\",le=\"+Inf\"} 7
";

    #[test]
    fn quantiles_interpolate_within_buckets_and_differences_isolate_a_phase() {
        let buckets = Buckets::parse(EXPOSITION, "/a/B");
        assert_eq!(buckets.count(), 100);
        assert_eq!(buckets.quantile(0.5), Some(Duration::from_nanos(1_000_000 + 9_000_000 * 40 / 80)));
        assert_eq!(buckets.quantile(0.99), Some(Duration::from_nanos(10_000_000 + 90_000_000 * 9 / 10)));
        let earlier = Buckets::parse(&EXPOSITION.replace("} 100", "} 50").replace("} 90", "} 45"), "/a/B");
        assert_eq!(buckets.since(&earlier).count(), 50);
        assert_eq!(Buckets::parse(EXPOSITION, "/missing").quantile(0.5), None);
    }
}
