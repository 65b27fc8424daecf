//! The edge's server span: one per request, API and pages alike.
//!
//! It continues the client's W3C `traceparent` (and `tracestate`) when that is well formed, and
//! starts a new trace otherwise — a malformed value is ignored, never an error. The backend call
//! made while the request is handled is its child, so the whole request is one trace. Exported
//! under the `gateway` role when trace export is on; without export no span is made, and a
//! client's valid `traceparent` is still passed on to the service.

use std::future::Future;

use futures_util::future::Either;
use http::{HeaderMap, Method, StatusCode};
use kem_mesh::telemetry::trace;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::{SpanKind, TraceContextExt as _};
use opentelemetry::{Context, KeyValue};

/// The role the edge's spans belong to (their `service.name` under per-role export).
pub const ROLE: &str = "gateway";

/// The server span of one request.
pub(crate) struct ServerSpan {
    cx: Context,
    /// Whether `cx` holds a trace to make current (a span, or the client's remote parent).
    traced: bool,
}

impl ServerSpan {
    /// Starts the span of a `method` request with `headers`.
    pub(crate) fn start(headers: &HeaderMap, method: &Method) -> ServerSpan {
        let parent = trace::extract_untrusted(headers);
        if !trace::exporting() {
            let traced = parent.span().span_context().is_valid();
            return ServerSpan { cx: parent, traced };
        }
        let parent = trace::with_role(&parent, ROLE);
        let attributes = vec![KeyValue::new("http.request.method", method.as_str().to_owned())];
        let cx = trace::start_span(&parent, method.as_str().to_owned(), SpanKind::Server, attributes);
        ServerSpan { cx, traced: true }
    }

    /// `work` with this span as the current context (what the backend call continues).
    pub(crate) fn run<F: Future>(&self, work: F) -> impl Future<Output = F::Output> {
        if self.traced { Either::Left(work.with_context(self.cx.clone())) } else { Either::Right(work) }
    }

    /// Ends the span: named after `route` (`POST /api/v1/…/{id}`, when the request matched one),
    /// with the response status; an error for a 5xx.
    pub(crate) fn end(self, route: Option<&str>, status: StatusCode) {
        if !trace::exporting() {
            return;
        }
        let span = self.cx.span();
        if let Some(route) = route {
            span.update_name(route.to_owned());
            if let Some((_, template)) = route.split_once(' ') {
                span.set_attribute(KeyValue::new("http.route", template.to_owned()));
            }
        }
        span.set_attribute(KeyValue::new("http.response.status_code", i64::from(status.as_u16())));
        trace::end_span(&self.cx, status.is_server_error().then(|| status.to_string()));
    }
}
