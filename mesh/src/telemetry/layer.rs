//! The server-side telemetry layer, and the per-call observation shared with outbound channels.
//!
//! A call is finished when its response body ends: gRPC carries the status in trailers (or in
//! the headers of a trailers-only response), so latency and status are read there. A response
//! dropped before its end (the client went away) counts as CANCELLED.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body::{Body as HttpBody, Frame, SizeHint};
use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::SpanKind;
use tokio::time::Instant;
use tower::{Layer, Service};
use tracing::Instrument as _;

use super::registry::{Registry, RpcMetrics};
use super::trace;
use crate::server::PeerInfo;

/// Peer label of calls without a verified identity (plaintext listeners).
pub const UNAUTHENTICATED_PEER: &str = "unauthenticated";

/// One call being measured: in flight from creation until [`RpcObservation::finish`] or drop.
pub(crate) struct RpcObservation {
    metrics: Arc<RpcMetrics>,
    started: Instant,
    /// The span this call started, to end with the call; `None` when spans are not exported
    /// (the context then holds at most a remote parent, which is not ours to end).
    span: Option<Context>,
    done: bool,
}

impl RpcObservation {
    pub(crate) fn start(metrics: Arc<RpcMetrics>, span: Option<Context>) -> RpcObservation {
        metrics.started();
        RpcObservation { metrics, started: Instant::now(), span, done: false }
    }

    pub(crate) fn finish(&mut self, code: tonic::Code) {
        if !std::mem::replace(&mut self.done, true) {
            self.metrics.finished(code, self.started.elapsed());
            if let Some(span) = &self.span {
                trace::end_rpc_span(span, code);
            }
        }
    }

    /// Finishes at once for a trailers-only response, else when the body ends.
    pub(crate) fn observe(mut self, response: http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> {
        if let Some(code) = status_of(response.headers()) {
            self.finish(code);
            return response;
        }
        response.map(|inner| tonic::body::Body::new(MeteredBody { inner, observation: self }))
    }
}

impl Drop for RpcObservation {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled);
    }
}

fn status_of(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(tonic::Code::from_i32(value))
}

/// A response body that finishes its call's observation at end of stream.
struct MeteredBody {
    inner: tonic::body::Body,
    observation: RpcObservation,
}

impl HttpBody for MeteredBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of) {
                    self.observation.finish(code);
                }
            }
            Poll::Ready(Some(Err(status))) => {
                let code = status.code();
                self.observation.finish(code);
            }
            // No status at all is a protocol error on the peer's side.
            Poll::Ready(None) => self.observation.finish(tonic::Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Records inbound golden metrics and a server span per gRPC request.
#[derive(Clone, Debug)]
pub struct TelemetryLayer {
    registry: Arc<Registry>,
    server: Arc<str>,
}

impl TelemetryLayer {
    /// Records into `registry` under the `server` label (the role name).
    pub fn new(registry: Arc<Registry>, server: &str) -> TelemetryLayer {
        TelemetryLayer { registry, server: Arc::from(server) }
    }
}

impl<S> Layer<S> for TelemetryLayer {
    type Service = Telemetry<S>;

    fn layer(&self, inner: S) -> Telemetry<S> {
        Telemetry { inner, registry: self.registry.clone(), server: self.server.clone() }
    }
}

/// The service produced by [`TelemetryLayer`].
#[derive(Clone, Debug)]
pub struct Telemetry<S> {
    inner: S,
    registry: Arc<Registry>,
    server: Arc<str>,
}

fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

impl<S, B> Service<http::Request<B>> for Telemetry<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if !is_grpc(request.headers()) {
            // Plain HTTP on the admin listener (`/metrics`) is not an RPC.
            return Box::pin(self.inner.call(request));
        }
        let route = request.uri().path();
        let peer_id = request.extensions().get::<PeerInfo>().and_then(|p| p.identity.clone());
        let peer = peer_id.as_ref().map_or(UNAUTHENTICATED_PEER, |id| id.as_str());
        let metrics = self.registry.inbound(&self.server, route, peer);
        // The server's role names the spans of this request's work (the client calls it makes).
        let parent = trace::with_role_shared(trace::extract(request.headers()), &self.server);
        let cx = trace::start_rpc_span(&parent, route, SpanKind::Server, peer);
        // Ids are recorded only when there is a trace (export on, or an incoming `traceparent`).
        let span = tracing::info_span!(
            "rpc",
            route = %route,
            peer = %peer,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty
        );
        let traced = trace::ids(&cx)
            .inspect(|(trace_id, span_id)| {
                span.record("trace_id", trace_id.as_str());
                span.record("span_id", span_id.as_str());
            })
            .is_some();
        let observation = RpcObservation::start(metrics, trace::exporting().then(|| cx.clone()));
        let response = self.inner.call(request);
        let call = async move {
            match response.await {
                Ok(response) => Ok(observation.observe(response)),
                Err(error) => {
                    let mut observation = observation;
                    observation.finish(tonic::Code::Unknown);
                    Err(error)
                }
            }
        }
        .instrument(span);
        // The OpenTelemetry context is made current around every poll only when it holds a
        // trace: that is what outgoing calls propagate. Without one there is nothing to carry,
        // and attaching an empty context on each poll is pure cost.
        if traced { Box::pin(call.with_context(cx)) } else { Box::pin(call) }
    }
}
