//! Distributed tracing: W3C `traceparent` propagation over gRPC metadata and OTLP span export.
//!
//! Spans are created with the global OpenTelemetry tracer. Until [`install_otlp`] (or
//! [`install_from_env`]) sets an exporting provider, that tracer is a no-op which still carries
//! an incoming trace context through to outbound calls, so propagation never depends on export.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue, global};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The environment variable that turns trace export on.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Name of the instrumentation scope of mesh spans.
const SCOPE: &str = "kem-mesh";

/// Whether a real tracer provider is installed. Until then the global tracer is a no-op, and
/// building spans for it (a name and four attribute strings per call, on every RPC) is pure cost.
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

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
    provider: SdkTracerProvider,
}

impl TraceExport {
    /// Exports every finished span now (blocking; call from a blocking context).
    pub fn flush(&self) {
        if let Err(error) = self.provider.force_flush() {
            tracing::warn!(%error, "cannot flush spans to the OTLP collector");
        }
    }

    /// Flushes and stops the exporter (blocking).
    pub fn shutdown(&self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::debug!(%error, "trace exporter shutdown");
        }
    }
}

/// Exports spans of `service_name` to the OTLP/gRPC collector at `endpoint` (`http://host:4317`)
/// and makes that the global tracer. Must be called inside a Tokio runtime.
pub fn install_otlp(endpoint: &str, service_name: &str) -> Result<TraceExport, TraceSetupError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| TraceSetupError { endpoint: endpoint.to_owned(), source })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder_empty().with_service_name(service_name.to_owned()).build())
        .build();
    global::set_tracer_provider(provider.clone());
    EXPORTING.store(true, std::sync::atomic::Ordering::Release);
    Ok(TraceExport { provider })
}

/// [`install_otlp`] to `$OTEL_EXPORTER_OTLP_ENDPOINT` when it is set and non-empty.
pub fn install_from_env(service_name: &str) -> Result<Option<TraceExport>, TraceSetupError> {
    match std::env::var(OTLP_ENDPOINT_ENV) {
        Ok(endpoint) if !endpoint.trim().is_empty() => install_otlp(endpoint.trim(), service_name).map(Some),
        _ => Ok(None),
    }
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
/// [`start_rpc_span`] returns are real and must be ended.
pub(crate) fn exporting() -> bool {
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
    let tracer = global::tracer(SCOPE);
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
