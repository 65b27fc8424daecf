//! An in-process OTLP/gRPC trace collector: every span exported to it is kept, with the
//! `service.name` of the resource that exported it, for tests to read.

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
pub use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status};

/// One exported span and the `service.name` of its resource.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The resource's `service.name` (empty when absent).
    pub service: String,
    /// The span as received.
    pub span: Span,
}

impl Exported {
    /// The span's kind.
    pub fn kind(&self) -> SpanKind {
        SpanKind::try_from(self.span.kind).unwrap_or(SpanKind::Unspecified)
    }

    /// The span's trace id in lower-case hex.
    pub fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    /// The span's id in lower-case hex.
    pub fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    /// The parent span's id in lower-case hex (empty for a root).
    pub fn parent_span_id(&self) -> String {
        hex(&self.span.parent_span_id)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The collector: serves OTLP/gRPC on a local port until the test's runtime ends.
#[derive(Clone, Default)]
pub struct Collector {
    spans: Arc<Mutex<Vec<Exported>>>,
}

impl Collector {
    /// Starts a collector on a free local port; returns it and its endpoint (`http://127.0.0.1:…`).
    pub async fn start() -> (Collector, String) {
        let collector = Collector::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the OTLP collector");
        let endpoint = format!("http://{}", listener.local_addr().expect("collector address"));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (collector, endpoint)
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Exported> {
        self.spans.lock().expect("collector lock").clone()
    }

    /// The spans of trace `trace_id` (lower-case hex) received so far.
    pub fn trace(&self, trace_id: &str) -> Vec<Exported> {
        self.spans().into_iter().filter(|s| s.trace_id() == trace_id).collect()
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut received = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(name) => name.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
                received.push(Exported { service: service.clone(), span });
            }
        }
        self.spans.lock().map_err(|_| Status::internal("poisoned"))?.extend(received);
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}
