//! Distributed tracing: W3C `traceparent` propagation over gRPC metadata and OTLP span export.
//!
//! Until [`install_otlp`] (or [`install_from_env`]) sets up export, no span is created: an
//! incoming trace context is still carried through to outbound calls (and queue messages), so
//! propagation never depends on export.
//!
//! Every span belongs to a role ([`with_role`]: the mesh server layer sets its role on each
//! request's context, the edge sets `gateway`, the kit's consumer runner the consuming service),
//! and the role travels in the context to the spans started under it. With
//! [`ServiceNames::PerRole`] each role's spans are exported by a tracer provider of their own,
//! whose resource names the role — so one process running several roles (`kem up`) still shows
//! one OTLP service per role.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use parking_lot::RwLock;

/// The environment variable that turns trace export on.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Name of the instrumentation scope of mesh spans.
const SCOPE: &str = "kem-mesh";

/// Whether a real tracer provider is installed. Until then no span is built (a name and four
/// attribute strings per call, on every RPC, would be pure cost).
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The installed export (the last [`install_otlp_with`] wins).
static EXPORT: RwLock<Option<Arc<Exporters>>> = RwLock::new(None);

/// The longest `tracestate` taken from a request; a longer one is dropped (the W3C
/// recommendation is to propagate at least 512 characters).
const MAX_TRACESTATE: usize = 512;

/// Which `service.name` exported spans carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceNames {
    /// Every span of the process under this one name.
    One(String),
    /// The spans of role `r` under `<prefix><r>` (one tracer provider per role, made on first
    /// use); spans of no role under `fallback`.
    PerRole {
        /// Prepended to the role name (`kem-` gives `kem-event`).
        prefix: String,
        /// The name of spans started outside any role.
        fallback: String,
    },
}

/// The role whose work a context belongs to; spans started under it are that role's.
#[derive(Debug, Clone)]
struct Role(Arc<str>);

/// A tracer provider and its tracer for mesh spans.
#[derive(Debug, Clone)]
struct Exporting {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

#[derive(Debug)]
struct Exporters {
    endpoint: String,
    names: ServiceNames,
    fallback: Exporting,
    roles: RwLock<HashMap<Arc<str>, Exporting>>,
}

impl Exporters {
    fn providers(&self) -> Vec<SdkTracerProvider> {
        let mut all = vec![self.fallback.provider.clone()];
        all.extend(self.roles.read().values().map(|e| e.provider.clone()));
        all
    }

    /// The tracer of `role`'s spans: its own provider under [`ServiceNames::PerRole`] (built on
    /// first use; the fallback provider if that fails), else the one provider.
    fn tracer(&self, role: Option<&Arc<str>>) -> SdkTracer {
        let (ServiceNames::PerRole { prefix, .. }, Some(role)) = (&self.names, role) else {
            return self.fallback.tracer.clone();
        };
        if let Some(exporting) = self.roles.read().get(role) {
            return exporting.tracer.clone();
        }
        let mut roles = self.roles.write();
        if let Some(exporting) = roles.get(role) {
            return exporting.tracer.clone();
        }
        match provider(&self.endpoint, format!("{prefix}{role}")) {
            Ok(exporting) => {
                roles.insert(role.clone(), exporting.clone());
                exporting.tracer
            }
            Err(error) => {
                tracing::warn!(%error, %role, "cannot build the role's span exporter; its spans go under the process name");
                roles.insert(role.clone(), self.fallback.clone());
                self.fallback.tracer.clone()
            }
        }
    }
}

fn provider(endpoint: &str, service_name: String) -> Result<Exporting, TraceSetupError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| TraceSetupError { endpoint: endpoint.to_owned(), source })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder_empty().with_service_name(service_name).build())
        .build();
    let tracer = provider.tracer(SCOPE);
    Ok(Exporting { provider, tracer })
}

/// Why trace export could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the OTLP span exporter for {endpoint}: {source}")]
pub struct TraceSetupError {
    /// The collector endpoint.
    pub endpoint: String,
    /// Underlying error.
    #[source]
    pub source: opentelemetry_otlp::ExporterBuildError,
}

/// Installed trace export; flush it before the process exits.
#[derive(Debug, Clone)]
pub struct TraceExport {
    exporters: Arc<Exporters>,
}

impl TraceExport {
    /// Exports every finished span now, of every role (blocking; call from a blocking context).
    pub fn flush(&self) {
        for provider in self.exporters.providers() {
            if let Err(error) = provider.force_flush() {
                tracing::warn!(%error, "cannot flush spans to the OTLP collector");
            }
        }
    }

    /// Flushes and stops the exporters (blocking).
    pub fn shutdown(&self) {
        for provider in self.exporters.providers() {
            if let Err(error) = provider.shutdown() {
                tracing::debug!(%error, "trace exporter shutdown");
            }
        }
    }
}

/// Exports every span under `service_name` to the OTLP/gRPC collector at `endpoint`
/// (`http://host:4317`). Must be called inside a Tokio runtime.
pub fn install_otlp(endpoint: &str, service_name: &str) -> Result<TraceExport, TraceSetupError> {
    install_otlp_with(endpoint, ServiceNames::One(service_name.to_owned()))
}

/// Exports spans to the OTLP/gRPC collector at `endpoint` under `names`, and makes the fallback
/// provider the global one (for spans made outside the mesh). Must be called inside a Tokio
/// runtime (so must the first span of each role under [`ServiceNames::PerRole`]).
pub fn install_otlp_with(endpoint: &str, names: ServiceNames) -> Result<TraceExport, TraceSetupError> {
    let fallback_name = match &names {
        ServiceNames::One(name) | ServiceNames::PerRole { fallback: name, .. } => name.clone(),
    };
    let fallback = provider(endpoint, fallback_name)?;
    global::set_tracer_provider(fallback.provider.clone());
    let exporters =
        Arc::new(Exporters { endpoint: endpoint.to_owned(), names, fallback, roles: RwLock::new(HashMap::new()) });
    *EXPORT.write() = Some(exporters.clone());
    EXPORTING.store(true, std::sync::atomic::Ordering::Release);
    Ok(TraceExport { exporters })
}

/// [`install_otlp`] to `$OTEL_EXPORTER_OTLP_ENDPOINT` when it is set and non-empty.
pub fn install_from_env(service_name: &str) -> Result<Option<TraceExport>, TraceSetupError> {
    install_from_env_with(ServiceNames::One(service_name.to_owned()))
}

/// [`install_otlp_with`] to `$OTEL_EXPORTER_OTLP_ENDPOINT` when it is set and non-empty.
pub fn install_from_env_with(names: ServiceNames) -> Result<Option<TraceExport>, TraceSetupError> {
    match std::env::var(OTLP_ENDPOINT_ENV) {
        Ok(endpoint) if !endpoint.trim().is_empty() => install_otlp_with(endpoint.trim(), names).map(Some),
        _ => Ok(None),
    }
}

/// `cx` as work of `role`: spans started under the result are `role`'s.
pub fn with_role(cx: &Context, role: &str) -> Context {
    if cx.get::<Role>().is_some_and(|r| &*r.0 == role) {
        return cx.clone();
    }
    cx.with_value(Role(Arc::from(role)))
}

/// [`with_role`] with a shared name, and only when exporting (the role names only exported spans).
pub(crate) fn with_role_shared(cx: Context, role: &Arc<str>) -> Context {
    if exporting() { cx.with_value(Role(role.clone())) } else { cx }
}

/// The tracer for a span under `parent`, when exporting.
fn tracer_for(parent: &Context) -> Option<SdkTracer> {
    let exporters = EXPORT.read().clone()?;
    Some(exporters.tracer(parent.get::<Role>().map(|r| &r.0)))
}

/// Starts a span `name` of `kind` as a child of `parent` (a new trace when `parent` holds none)
/// and returns the context holding it; end it with [`end_span`]. When not exporting, nothing is
/// started and `parent` itself is returned (its remote span context still propagates).
pub fn start_span(
    parent: &Context,
    name: impl Into<Cow<'static, str>>,
    kind: SpanKind,
    attributes: Vec<KeyValue>,
) -> Context {
    let Some(tracer) = exporting().then(|| tracer_for(parent)).flatten() else {
        return parent.clone();
    };
    let span =
        tracer.span_builder(name).with_kind(kind).with_attributes(attributes).start_with_context(&tracer, parent);
    parent.with_span(span)
}

/// Ends the span [`start_span`] put in `cx` (nothing when not exporting), an error with
/// `error`'s description when given.
pub fn end_span(cx: &Context, error: Option<String>) {
    if !exporting() {
        return;
    }
    let span = cx.span();
    if let Some(description) = error {
        span.set_status(Status::error(description));
    }
    span.end();
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The `traceparent` of a request, only when it has exactly the W3C layout: a version of two
/// lower-case hex digits other than `ff`; then 32, 16 and 2 lower-case hex digits joined by
/// dashes (exactly that for version `00`; a later version may append `-…`); ids not all zero.
/// The propagator alone accepts looser text (short ids, upper-case versions).
fn strict_traceparent(value: &str) -> Option<&str> {
    let bytes = value.as_bytes();
    let hex = |range: std::ops::Range<usize>| bytes[range].iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let shaped = bytes.len() >= 55
        && (bytes.len() == 55 || (bytes[55] == b'-' && &bytes[..2] != b"00" && bytes.len() <= 256))
        && hex(0..2)
        && &bytes[..2] != b"ff"
        && [2, 35, 52].iter().all(|&i| bytes[i] == b'-')
        && hex(3..35)
        && hex(36..52)
        && hex(53..55)
        && bytes[3..35].iter().any(|b| *b != b'0')
        && bytes[36..52].iter().any(|b| *b != b'0');
    shaped.then_some(value)
}

/// A `traceparent` (strictly checked) and an optional `tracestate` (dropped when over-long or
/// not visible ASCII), as the propagator reads them.
struct Pair<'a> {
    traceparent: &'a str,
    tracestate: Option<&'a str>,
}

impl Extractor for Pair<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            "traceparent" => Some(self.traceparent),
            "tracestate" => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent", "tracestate"]
    }
}

/// The remote parent named by `traceparent` (and `tracestate`) from an untrusted source — a
/// client's request or a queue message: an empty context when absent or malformed, never an
/// error. A malformed or over-long `tracestate` is dropped, keeping the parent.
pub fn remote_parent(traceparent: Option<&str>, tracestate: Option<&str>) -> Context {
    let Some(traceparent) = traceparent.and_then(strict_traceparent) else {
        return Context::new();
    };
    let tracestate = tracestate.filter(|s| valid_tracestate(s));
    // Extracted onto an empty context: never whatever happens to be current.
    TraceContextPropagator::new().extract_with_context(&Context::new(), &Pair { traceparent, tracestate })
}

/// Whether `value` is a W3C `tracestate` list of at most [`MAX_TRACESTATE`] characters: up to 32
/// `key=value` members (empty ones allowed) separated by commas; a key of lower-case letters,
/// digits and `_-*/@`, starting with a letter or digit; a value of printable ASCII other than
/// `,` and `=`, not ending in a space.
fn valid_tracestate(value: &str) -> bool {
    let member = |m: &str| {
        let Some((key, value)) = m.split_once('=') else { return false };
        let key_ok = key.len() <= 256
            && key.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-*/@".contains(&b));
        let value_ok = !value.is_empty()
            && value.len() <= 256
            && !value.ends_with(' ')
            && value.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=');
        key_ok && value_ok
    };
    let members: Vec<&str> = value.split(',').map(|m| m.trim_matches([' ', '\t'])).filter(|m| !m.is_empty()).collect();
    value.len() <= MAX_TRACESTATE && members.len() <= 32 && members.into_iter().all(member)
}

/// [`remote_parent`] of the `traceparent`/`tracestate` headers of a request from outside.
pub fn extract_untrusted(headers: &http::HeaderMap) -> Context {
    let single = |name: &str| {
        let mut values = headers.get_all(name).iter();
        // Several values of a header that must appear once: ignore them all.
        match (values.next(), values.next()) {
            (Some(value), None) => value.to_str().ok(),
            _ => None,
        }
    };
    remote_parent(single("traceparent"), single("tracestate"))
}

/// The `traceparent` that continues `cx`'s span, when it holds a valid one.
pub fn traceparent_of(cx: &Context) -> Option<String> {
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut headers = http::HeaderMap::new();
    inject(cx, &mut headers);
    headers.get("traceparent").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (http::header::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

/// The remote parent carried by `traceparent`/`tracestate` in `headers` (empty if none or invalid).
pub fn extract(headers: &http::HeaderMap) -> Context {
    if !headers.contains_key("traceparent") {
        // Nothing to extract: skip the propagator, which starts by cloning the current context.
        return Context::new();
    }
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Writes `cx`'s span as `traceparent`/`tracestate` into `headers`.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

/// Whether spans are exported (a real tracer provider is installed), i.e. whether the spans
/// [`start_rpc_span`] and [`start_span`] return are real and must be ended.
pub fn exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Acquire)
}

/// The context an outbound call on `route` to `peer` carries: a new client span under the
/// current context when exporting; else the current context itself if it holds a trace to
/// propagate (an incoming `traceparent`); else `None`, and the call carries no trace headers.
pub(crate) fn client_context(route: &str, peer: &str) -> Option<Context> {
    if exporting() {
        return Some(start_rpc_span(&Context::current(), route, SpanKind::Client, peer));
    }
    // Looked at in place: cloning the current context for every call only to find it empty
    // would be the common case's whole cost.
    Context::map_current(|cx| cx.span().span_context().is_valid().then(|| cx.clone()))
}

/// Starts a span for one RPC on `route` as a child of `parent` and returns the context holding it.
pub(crate) fn start_rpc_span(parent: &Context, route: &str, kind: SpanKind, peer: &str) -> Context {
    if !exporting() {
        // What the no-op tracer would give: the parent's (possibly remote) span context, so an
        // incoming `traceparent` still propagates to outgoing calls.
        return parent.clone();
    }
    let Some(tracer) = tracer_for(parent) else {
        return parent.clone();
    };
    let (service, method) = route.trim_start_matches('/').split_once('/').unwrap_or((route, ""));
    let span = tracer
        .span_builder(route.trim_start_matches('/').to_owned())
        .with_kind(kind)
        .with_attributes([
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service.to_owned()),
            KeyValue::new("rpc.method", method.to_owned()),
            KeyValue::new("net.peer.name", peer.to_owned()),
        ])
        .start_with_context(&tracer, parent);
    parent.with_span(span)
}

/// Ends the span in `cx` with the gRPC status of the call.
pub(crate) fn end_rpc_span(cx: &Context, code: tonic::Code) {
    let span = cx.span();
    span.set_attribute(KeyValue::new("rpc.grpc.status_code", code as i64));
    if code != tonic::Code::Ok {
        span.set_status(Status::error(format!("{code:?}")));
    }
    span.end();
}

/// The trace and span ids of `cx` in hex, when it holds a valid span (for log fields).
pub fn ids(cx: &Context) -> Option<(String, String)> {
    let span = cx.span();
    let context = span.span_context();
    context.is_valid().then(|| (context.trace_id().to_string(), context.span_id().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn telemetry_traceparent_round_trips() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let cx = extract(&headers);
        let (trace_id, span_id) = ids(&cx).expect("valid remote context");
        assert_eq!(trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span_id, "00f067aa0ba902b7");
        let mut out = http::HeaderMap::new();
        inject(&cx, &mut out);
        assert_eq!(out.get("traceparent"), headers.get("traceparent"));
        assert!(ids(&extract(&http::HeaderMap::new())).is_none());
    }

    #[test]
    fn untrusted_traceparent_is_taken_only_when_well_formed() {
        const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = remote_parent(Some(GOOD), Some("vendor=opaque,other=1"));
        assert_eq!(ids(&cx).map(|(t, _)| t).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(cx.span().span_context().trace_state().header(), "vendor=opaque,other=1");
        assert_eq!(traceparent_of(&cx).as_deref(), Some(GOOD));
        // A later version may append fields.
        assert!(ids(&remote_parent(Some(&format!("01{}-later", &GOOD[2..])), None)).is_some());
        let long = format!("{GOOD}{}", "-0".repeat(4_000));
        for bad in [
            "",
            "garbage",
            &long,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-1-2-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\u{7}",
            "00-4bf92f3577b34da6a3ce929d0e0e4736\n00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0\u{0}4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\u{1b}",
        ] {
            assert!(ids(&remote_parent(Some(bad), None)).is_none(), "{bad:?} must be ignored");
        }
        // A bad `tracestate` is dropped; the parent stays.
        for state in ["a".repeat(MAX_TRACESTATE + 1), "k=\u{1}".to_owned(), "=,=,=".to_owned()] {
            let cx = remote_parent(Some(GOOD), Some(&state));
            assert!(ids(&cx).is_some(), "{state:?}");
            assert_eq!(cx.span().span_context().trace_state().header(), "", "{state:?}");
        }
        // Two `traceparent` headers: neither is believed.
        let mut headers = http::HeaderMap::new();
        headers.append("traceparent", http::HeaderValue::from_static(GOOD));
        assert!(ids(&extract_untrusted(&headers)).is_some());
        headers.append("traceparent", http::HeaderValue::from_static(GOOD));
        assert!(ids(&extract_untrusted(&headers)).is_none());
    }

    #[test]
    fn outbound_calls_carry_an_incoming_trace_and_nothing_without_one() {
        // No exporter in this process: no client spans, only propagation.
        assert!(!exporting());
        assert!(client_context("/s/M", "peer").is_none(), "no trace, no trace headers");
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let _attached = extract(&headers).attach();
        let cx = client_context("/s/M", "peer").expect("the incoming trace travels on");
        let mut out = http::HeaderMap::new();
        inject(&cx, &mut out);
        assert_eq!(out.get("traceparent"), headers.get("traceparent"));
    }
}
