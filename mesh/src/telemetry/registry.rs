//! The process's metric registry, rendered in the Prometheus text exposition format.
//!
//! Golden metrics (requests by gRPC status, latency histograms, in-flight) are kept per route
//! and peer in atomics, so recording is lock-free once a route's series exist. Other modules add
//! their own counters with [`Registry::register_counter`] / [`Registry::register_gauge`], or
//! anything computed at scrape time with a [`Collector`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

/// Upper bounds (seconds) of the latency buckets: 0.1 ms to 10 s, roughly ×1.6 apart, so
/// p50/p95/p99 interpolate within a few tens of percent anywhere in that range.
pub const LATENCY_BUCKETS: [f64; 26] = [
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.004, 0.006, 0.01, 0.015, 0.025, 0.04, 0.06, 0.1, 0.15,
    0.25, 0.4, 0.6, 1.0, 1.5, 2.5, 4.0, 6.0, 8.0, 10.0,
];

/// Number of gRPC status codes (0 = OK … 16 = UNAUTHENTICATED).
const GRPC_CODES: usize = 17;

/// A fixed-bucket latency histogram of atomics.
#[derive(Debug)]
pub struct Histogram {
    /// Per-bucket (non-cumulative) counts; the last slot is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = LATENCY_BUCKETS.iter().position(|le| seconds <= *le).unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// The golden metrics of one route towards or from one peer.
#[derive(Debug, Default)]
pub struct RpcMetrics {
    by_code: [AtomicU64; GRPC_CODES],
    in_flight: AtomicI64,
    latency: Histogram,
}

impl RpcMetrics {
    pub(crate) fn started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn finished(&self, code: tonic::Code, elapsed: Duration) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let slot = usize::try_from(code as i32).unwrap_or(2).min(GRPC_CODES - 1);
        self.by_code[slot].fetch_add(1, Ordering::Relaxed);
        self.latency.observe(elapsed);
    }

    /// Completed requests that ended with `code`.
    pub fn requests(&self, code: tonic::Code) -> u64 {
        self.by_code.get(code as usize).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Requests started and not finished yet.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The latency histogram.
    pub fn latency(&self) -> &Histogram {
        &self.latency
    }
}

/// Something that writes samples at scrape time (breaker states, pool sizes, cache counters).
pub trait Collector: Send + Sync {
    /// Writes this collector's samples.
    fn collect(&self, out: &mut MetricWriter);
}

impl<F: Fn(&mut MetricWriter) + Send + Sync> Collector for F {
    fn collect(&self, out: &mut MetricWriter) {
        self(out)
    }
}

/// Owned label pairs of a registered series.
pub type Labels = Vec<(String, String)>;

enum Registered {
    Counter { name: String, help: String, labels: Labels, value: Arc<AtomicU64> },
    Gauge { name: String, help: String, labels: Labels, value: Arc<AtomicI64> },
}

/// The label values identifying one RPC series: `[server, route, peer]` inbound,
/// `[route, target]` outbound.
///
/// Every call looks its series up, so lookups must not allocate: the map's owned keys borrow as
/// `dyn LabelValues`, which a `[&str; N]` on the stack also is, and both hash the same way.
#[derive(Clone, PartialEq, Eq)]
struct SeriesKey<const N: usize>([Box<str>; N]);

trait LabelValues<const N: usize> {
    fn value(&self, i: usize) -> &str;
}

impl<const N: usize> LabelValues<N> for SeriesKey<N> {
    fn value(&self, i: usize) -> &str {
        &self.0[i]
    }
}

impl<const N: usize> LabelValues<N> for [&str; N] {
    fn value(&self, i: usize) -> &str {
        self[i]
    }
}

impl<const N: usize> std::hash::Hash for dyn LabelValues<N> + '_ {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for i in 0..N {
            self.value(i).hash(state);
        }
    }
}

impl<const N: usize> PartialEq for dyn LabelValues<N> + '_ {
    fn eq(&self, other: &Self) -> bool {
        (0..N).all(|i| self.value(i) == other.value(i))
    }
}

impl<const N: usize> Eq for dyn LabelValues<N> + '_ {}

impl<const N: usize> std::hash::Hash for SeriesKey<N> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self as &dyn LabelValues<N>).hash(state);
    }
}

impl<'a, const N: usize> std::borrow::Borrow<dyn LabelValues<N> + 'a> for SeriesKey<N> {
    fn borrow(&self) -> &(dyn LabelValues<N> + 'a) {
        self
    }
}

type InboundKey = SeriesKey<3>;
type OutboundKey = SeriesKey<2>;

/// Requests of one REST edge route: counts by HTTP status, a latency histogram, and one of the
/// 2xx answers alone (what an admitted request costs: under overload the fast refusals would
/// otherwise flatter every percentile).
#[derive(Debug, Default)]
struct EdgeMetrics {
    by_status: RwLock<BTreeMap<u16, u64>>,
    latency: Histogram,
    success: Histogram,
}

/// One process's metrics, shared by its servers and clients (`Arc<Registry>`).
pub struct Registry {
    /// Distinguishes processes when several admin ports serve the same registry (`kem up`).
    instance: String,
    edge: RwLock<HashMap<String, Arc<EdgeMetrics>>>,
    inbound: RwLock<HashMap<InboundKey, Arc<RpcMetrics>>>,
    outbound: RwLock<HashMap<OutboundKey, Arc<RpcMetrics>>>,
    handshake_failures: RwLock<BTreeMap<(Arc<str>, &'static str), u64>>,
    registered: RwLock<Vec<Registered>>,
    collectors: RwLock<Vec<Arc<dyn Collector>>>,
}

impl Default for Registry {
    fn default() -> Self {
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Registry {
            instance: format!("{}-{}", std::process::id(), started.as_nanos()),
            edge: RwLock::default(),
            inbound: RwLock::default(),
            outbound: RwLock::default(),
            handshake_failures: RwLock::default(),
            registered: RwLock::default(),
            collectors: RwLock::default(),
        }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

fn series<const N: usize>(map: &RwLock<HashMap<SeriesKey<N>, Arc<RpcMetrics>>>, values: [&str; N]) -> Arc<RpcMetrics> {
    if let Some(found) = map.read().unwrap_or_else(|e| e.into_inner()).get(&values as &dyn LabelValues<N>) {
        return found.clone();
    }
    map.write().unwrap_or_else(|e| e.into_inner()).entry(SeriesKey(values.map(Box::from))).or_default().clone()
}

impl Registry {
    /// A fresh, empty registry.
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    /// The process-wide registry: what servers and channels use unless given another.
    pub fn global() -> Arc<Registry> {
        static GLOBAL: OnceLock<Arc<Registry>> = OnceLock::new();
        GLOBAL.get_or_init(Registry::new).clone()
    }

    /// The inbound series of `route` (`/pkg.Service/Method`) on `server` from `peer`.
    pub fn inbound(&self, server: &Arc<str>, route: &str, peer: &str) -> Arc<RpcMetrics> {
        series(&self.inbound, [server.as_ref(), route, peer])
    }

    /// The outbound series of `route` towards `target` (the peer's identity or address).
    pub fn outbound(&self, route: &str, target: &str) -> Arc<RpcMetrics> {
        series(&self.outbound, [route, target])
    }

    /// Records one request of the REST edge on `route` (the RPC it maps to) with its HTTP status.
    pub fn edge_request(&self, route: &str, status: u16, elapsed: Duration) {
        let found = self.edge.read().unwrap_or_else(|e| e.into_inner()).get(route).cloned();
        let metrics = match found {
            Some(metrics) => metrics,
            None => self.edge.write().unwrap_or_else(|e| e.into_inner()).entry(route.to_owned()).or_default().clone(),
        };
        *metrics.by_status.write().unwrap_or_else(|e| e.into_inner()).entry(status).or_default() += 1;
        metrics.latency.observe(elapsed);
        if (200..300).contains(&status) {
            metrics.success.observe(elapsed);
        }
    }

    /// Counts a refused TLS handshake on `server`.
    pub fn handshake_failure(&self, server: &Arc<str>, reason: &'static str) {
        *self
            .handshake_failures
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry((server.clone(), reason))
            .or_default() += 1;
    }

    /// Exposes a counter owned elsewhere (retries, budget exhaustion, cache hits, ...).
    pub fn register_counter(&self, name: &str, help: &str, labels: Labels, value: Arc<AtomicU64>) {
        self.registered.write().unwrap_or_else(|e| e.into_inner()).push(Registered::Counter {
            name: name.to_owned(),
            help: help.to_owned(),
            labels,
            value,
        });
    }

    /// Exposes a gauge owned elsewhere (ejected endpoints, breaker state, ...).
    pub fn register_gauge(&self, name: &str, help: &str, labels: Labels, value: Arc<AtomicI64>) {
        self.registered.write().unwrap_or_else(|e| e.into_inner()).push(Registered::Gauge {
            name: name.to_owned(),
            help: help.to_owned(),
            labels,
            value,
        });
    }

    /// Adds a collector called on every scrape.
    pub fn register_collector(&self, collector: Arc<dyn Collector>) {
        self.collectors.write().unwrap_or_else(|e| e.into_inner()).push(collector);
    }

    /// Renders every metric in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = MetricWriter::default();
        out.gauge(
            "kem_registry_info",
            "identifies the process this registry belongs to",
            &[("instance", &self.instance)],
            1.0,
        );
        let edge: Vec<_> =
            self.edge.read().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (route, metrics) in edge {
            let statuses = metrics.by_status.read().unwrap_or_else(|e| e.into_inner()).clone();
            for (status, count) in statuses {
                let status = status.to_string();
                out.counter(
                    "kem_edge_requests_total",
                    "REST edge requests completed, by HTTP status",
                    &[("route", &route), ("http_status", &status)],
                    count,
                );
            }
            out.histogram(
                "kem_edge_request_duration_seconds",
                "latency of REST edge requests",
                &[("route", &route)],
                &metrics.latency,
            );
            out.histogram(
                "kem_edge_success_duration_seconds",
                "latency of REST edge requests answered 2xx",
                &[("route", &route)],
                &metrics.success,
            );
        }
        let inbound: Vec<_> = self
            .inbound
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (SeriesKey([server, route, peer]), metrics) in inbound {
            let labels = [("server", &*server), ("route", &*route), ("peer", &*peer)];
            out.rpc("kem_inbound", "inbound gRPC requests", &labels, &metrics);
        }
        let outbound: Vec<_> = self
            .outbound
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (SeriesKey([route, target]), metrics) in outbound {
            let labels = [("route", &*route), ("target", &*target)];
            out.rpc("kem_outbound", "outbound gRPC requests", &labels, &metrics);
        }
        let failures = self.handshake_failures.read().unwrap_or_else(|e| e.into_inner()).clone();
        out.declare("kem_tls_handshake_failures_total", "TLS handshakes refused, by reason", "counter");
        for ((server, reason), count) in failures {
            out.counter(
                "kem_tls_handshake_failures_total",
                "TLS handshakes refused, by reason",
                &[("server", &server), ("reason", reason)],
                count,
            );
        }
        for registered in self.registered.read().unwrap_or_else(|e| e.into_inner()).iter() {
            match registered {
                Registered::Counter { name, help, labels, value } => {
                    let labels: Vec<_> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    out.counter(name, help, &labels, value.load(Ordering::Relaxed));
                }
                Registered::Gauge { name, help, labels, value } => {
                    let labels: Vec<_> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    out.gauge(name, help, &labels, value.load(Ordering::Relaxed) as f64);
                }
            }
        }
        let collectors: Vec<_> = self.collectors.read().unwrap_or_else(|e| e.into_inner()).clone();
        for collector in collectors {
            collector.collect(&mut out);
        }
        out.finish()
    }
}

#[derive(Default)]
struct Family {
    help: String,
    kind: &'static str,
    lines: Vec<String>,
}

/// Accumulates samples by metric family, so every family is announced once (`# HELP`, `# TYPE`)
/// however many servers or collectors contribute to it.
#[derive(Default)]
pub struct MetricWriter {
    families: BTreeMap<String, Family>,
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn label_set(labels: &[(&str, &str)], extra: Option<(&str, &str)>) -> String {
    let mut text = String::new();
    for (i, (k, v)) in labels.iter().copied().chain(extra).enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "{k}=\"{}\"", escape(v));
    }
    if text.is_empty() { text } else { format!("{{{text}}}") }
}

impl MetricWriter {
    fn declare(&mut self, name: &str, help: &str, kind: &'static str) -> &mut Family {
        let family = self.families.entry(name.to_owned()).or_default();
        if family.kind.is_empty() {
            family.help = help.replace('\\', "\\\\").replace('\n', "\\n");
            family.kind = kind;
        }
        family
    }

    /// Writes one counter sample.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        let line = format!("{name}{} {value}", label_set(labels, None));
        self.declare(name, help, "counter").lines.push(line);
    }

    /// Writes one gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        let line = format!("{name}{} {value}", label_set(labels, None));
        self.declare(name, help, "gauge").lines.push(line);
    }

    fn rpc(&mut self, prefix: &str, what: &str, labels: &[(&str, &str)], metrics: &RpcMetrics) {
        let total = format!("{prefix}_requests_total");
        let total_help = format!("{what} completed, by gRPC status code");
        self.declare(&total, &total_help, "counter");
        for (code, count) in metrics.by_code.iter().enumerate() {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                let code = code.to_string();
                let line = format!("{total}{} {count}", label_set(labels, Some(("grpc_status", &code))));
                self.declare(&total, &total_help, "counter").lines.push(line);
            }
        }
        self.gauge(&format!("{prefix}_requests_in_flight"), &format!("{what} in flight"), labels, {
            metrics.in_flight() as f64
        });
        self.histogram(
            &format!("{prefix}_request_duration_seconds"),
            &format!("latency of {what}"),
            labels,
            &metrics.latency,
        );
    }

    /// Writes one histogram series (`_bucket`, `_sum`, `_count`).
    pub fn histogram(&mut self, name: &str, help: &str, labels: &[(&str, &str)], histogram: &Histogram) {
        let family = self.declare(name, help, "histogram");
        let mut cumulative = 0;
        for (i, bucket) in histogram.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = LATENCY_BUCKETS.get(i).map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            family.lines.push(format!("{name}_bucket{} {cumulative}", label_set(labels, Some(("le", &le)))));
        }
        let sum = histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        family.lines.push(format!("{name}_sum{} {sum}", label_set(labels, None)));
        family.lines.push(format!("{name}_count{} {cumulative}", label_set(labels, None)));
    }

    fn finish(self) -> String {
        let mut text = String::new();
        for (name, family) in self.families {
            if family.lines.is_empty() {
                continue;
            }
            let _ = writeln!(text, "# HELP {name} {}", family.help);
            let _ = writeln!(text, "# TYPE {name} {}", family.kind);
            for line in family.lines {
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_render_groups_families_and_accumulates_buckets() {
        let registry = Registry::new();
        let server: Arc<str> = Arc::from("echo");
        let series = registry.inbound(&server, "/kem.Echo/Say", "spiffe://kem/ns/a/sa/b");
        series.started();
        series.finished(tonic::Code::Ok, Duration::from_micros(300));
        series.started();
        series.finished(tonic::Code::Unavailable, Duration::from_secs(20));
        registry.handshake_failure(&server, "not_tls");
        // Looking a series up again finds the same one (owned and borrowed keys hash alike).
        assert!(Arc::ptr_eq(&series, &registry.inbound(&server, "/kem.Echo/Say", "spiffe://kem/ns/a/sa/b")));
        assert!(!Arc::ptr_eq(&series, &registry.inbound(&server, "/kem.Echo/Say", "spiffe://kem/ns/a/sa/c")));
        assert!(Arc::ptr_eq(&registry.outbound("/r", "t"), &registry.outbound("/r", "t")));
        assert!(!Arc::ptr_eq(&registry.outbound("/r", "t"), &registry.outbound("/rt", "")));
        registry.register_counter(
            "kem_retries_total",
            "retries",
            vec![("route".into(), "a\"b".into())],
            Arc::default(),
        );
        let text = registry.render();
        assert_eq!(text.matches("# TYPE kem_inbound_requests_total counter").count(), 1);
        assert!(text.contains("grpc_status=\"0\"} 1"));
        assert!(text.contains("grpc_status=\"14\"} 1"));
        assert!(text.contains("le=\"0.0005\"} 1"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("kem_tls_handshake_failures_total{server=\"echo\",reason=\"not_tls\"} 1"));
        assert!(text.contains("kem_retries_total{route=\"a\\\"b\"} 0"));
    }
}
