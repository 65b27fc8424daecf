//! The access log: one record per API request (id, method, path, RPC, owner, status, duration).
//!
//! Records go through `tracing` (target [`TARGET`], level INFO) like every other log line, so the
//! usual filter (`KEM_LOG=info,kem_gateway::access=off`) turns them off. A process that writes
//! its logs itself can [`install`] a [`Sink`] instead: `tracing`'s generic field formatting
//! costs more than a microsecond per record, a noticeable share of a request at the edge, where
//! a sink that knows these seven fields writes the line in a fraction of that. The filter still
//! decides whether a record is written at all.

use std::sync::OnceLock;
use std::time::Duration;

/// The `tracing` target of access records.
pub const TARGET: &str = "kem_gateway::access";

/// One finished API request.
#[derive(Debug, Clone, Copy)]
pub struct AccessRecord<'a> {
    /// The request id (also in the `X-Request-Id` response header).
    pub request_id: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Request path (no query: it may carry personal data).
    pub path: &'a str,
    /// The RPC the route maps to, if a route matched.
    pub rpc: Option<&'a str>,
    /// The verified owner, for owner routes.
    pub owner: Option<&'a str>,
    /// HTTP status sent.
    pub status: u16,
    /// Time from the request's arrival to its response.
    pub duration: Duration,
}

/// Writes access records (installed once per process).
pub trait Sink: Send + Sync + 'static {
    /// Writes one record; must not block on I/O.
    fn write(&self, record: &AccessRecord<'_>);
}

static SINK: OnceLock<Box<dyn Sink>> = OnceLock::new();

/// Sends this process's access records to `sink` from now on. Only the first call has an
/// effect (returns whether this one did): a process has one log destination.
pub fn install(sink: Box<dyn Sink>) -> bool {
    SINK.set(sink).is_ok()
}

/// Records one request, if the log filter lets INFO records of [`TARGET`] through.
pub fn record(record: &AccessRecord<'_>) {
    if !tracing::enabled!(target: TARGET, tracing::Level::INFO) {
        return;
    }
    match SINK.get() {
        Some(sink) => sink.write(record),
        None => tracing::info!(
            target: TARGET,
            request_id = %record.request_id,
            method = %record.method,
            path = %record.path,
            rpc = record.rpc.unwrap_or("-"),
            owner = record.owner.unwrap_or("-"),
            status = record.status,
            duration_ms = record.duration.as_secs_f64() * 1000.0,
            "request"
        ),
    }
}
