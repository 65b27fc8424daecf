//! Telemetry: golden metrics per route and peer, distributed traces, and their exposition.
//!
//! - [`registry`]: the process's [`Registry`] of counters, gauges and latency histograms,
//!   rendered as Prometheus text on each role's admin port (`/metrics`);
//! - [`layer`]: the server layer that measures every inbound RPC and opens its server span;
//! - [`trace`]: W3C `traceparent` propagation and OTLP export (on when
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` is set).
//!
//! Outbound calls are measured by [`crate::client::MeshChannel`] with the same observation.

pub mod layer;
pub mod registry;
pub mod trace;

pub use layer::{Telemetry, TelemetryLayer};
pub use registry::{Collector, MetricWriter, Registry, RpcMetrics};
