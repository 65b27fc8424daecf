//! Process-wide logging and tracing setup. Logs go to stderr; stdout carries only the
//! machine-readable `kem:` announcement lines (bound addresses, readiness) that scripts and tests
//! parse.
//!
//! Metrics need no setup: every role records into [`kem_mesh::telemetry::Registry::global`],
//! served at `/metrics` on each role's admin port. Traces are exported over OTLP/gRPC only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; JSON log lines emitted while an RPC is handled carry
//! that RPC's `trace_id` and `span_id` (fields of the current `rpc` span).

pub mod access_log;
pub mod log_writer;
pub mod scrape;

use kem_mesh::telemetry::Registry;
use kem_mesh::telemetry::trace::{self, ServiceNames, TraceExport};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};
pub use log_writer::LogFlushGuard;
use log_writer::NonBlockingWriter;

/// Installs the global subscriber (text or JSON) with the configured filter, writing to stderr
/// through the non-blocking [`log_writer`]. Keep the returned guard until the process ends: its
/// drop writes out the lines still queued.
pub fn init_logging(settings: &Settings) -> anyhow::Result<LogFlushGuard> {
    let filter = EnvFilter::try_new(&settings.log_level)
        .map_err(|e| anyhow::anyhow!("invalid log filter {:?} (KEM_LOG / --log-level): {e}", settings.log_level))?;
    let (writer, guard) = NonBlockingWriter::start(std::io::stderr(), log_writer::BATCH_LIMIT)
        .map_err(|e| anyhow::anyhow!("cannot start the log writer thread: {e}"))?;
    Registry::global().register_counter(
        "kem_log_lines_dropped_total",
        "Log lines dropped because the log writer fell behind (stderr consumer too slow).",
        Vec::new(),
        writer.dropped(),
    );
    // Colours only for a person at a terminal; never escape codes in collected logs.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // The gateway's access records skip the subscriber's generic formatting (same layout).
    kem_gateway::access_log::install(Box::new(access_log::AccessLines::new(writer.clone(), settings.log_format)));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let result = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    Ok(guard)
}

/// The `service.name` of this process's traces: `OTEL_SERVICE_NAME` when set (the OpenTelemetry
/// convention), else `kem-<role>` for a one-role process (a pod), else `kem`.
pub fn trace_service_name(roles: &[crate::Role]) -> String {
    if let Some(name) = std::env::var("OTEL_SERVICE_NAME").ok().filter(|n| !n.trim().is_empty()) {
        return name.trim().to_owned();
    }
    match roles {
        [role] => format!("kem-{role}"),
        _ => "kem".to_owned(),
    }
}

/// The `service.name`s of this process's spans: all under `OTEL_SERVICE_NAME` when it is set;
/// else each role's spans under `kem-<role>` (as a one-role pod names them, so `kem up` shows
/// the same services as a deployment), and spans of no role under [`trace_service_name`].
pub fn trace_service_names(roles: &[crate::Role]) -> ServiceNames {
    if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|n| !n.trim().is_empty()) {
        return ServiceNames::One(trace_service_name(roles));
    }
    ServiceNames::PerRole { prefix: "kem-".to_owned(), fallback: trace_service_name(roles) }
}

/// Starts OTLP trace export under `names` when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
/// Must run inside the Tokio runtime; flush the returned handle with [`shutdown_traces`].
pub fn init_traces(names: ServiceNames) -> anyhow::Result<Option<TraceExport>> {
    let export = trace::install_from_env_with(names)?;
    if export.is_some() {
        tracing::info!(endpoint = ?std::env::var(trace::OTLP_ENDPOINT_ENV).ok(), "exporting traces over OTLP");
    }
    Ok(export)
}

/// Flushes and stops trace export (off the async workers: the flush blocks).
pub async fn shutdown_traces(export: Option<TraceExport>) {
    if let Some(export) = export {
        let _ = tokio::task::spawn_blocking(move || export.shutdown()).await;
    }
}
