//! W3C Trace Context (`traceparent`) carried by messages, so a consumer's work joins the trace of
//! the request that produced the message.
//!
//! The current context is the current OpenTelemetry span — the mesh server layer's request span
//! while a service handles an RPC, the consumer runner's message span while a handler runs —
//! or else a task-local set with [`TraceParent::scope`].
//! [`Outbox::enqueue`](super::Outbox::enqueue) stamps messages from it.

use std::fmt;
use std::future::Future;

use kem_mesh::hex::{decode_lower, encode};

tokio::task_local! {
    static CURRENT: TraceParent;
}

/// A parsed `traceparent`: `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// A new trace (random ids, sampled).
    pub fn new_root() -> TraceParent {
        TraceParent { trace_id: nonzero(rand::random()), span_id: nonzero(rand::random()), flags: 0x01 }
    }

    /// A new span in the same trace, child of this one.
    pub fn child(&self) -> TraceParent {
        TraceParent { trace_id: self.trace_id, span_id: nonzero(rand::random()), flags: self.flags }
    }

    /// Parses a `traceparent` header value; `None` when malformed (the caller starts a new trace,
    /// as the specification says). Future versions are read by their version-00 prefix.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let value = value.trim();
        let bytes = value.as_bytes();
        if bytes.len() < 55 || (bytes.len() > 55 && bytes[55] != b'-') {
            return None;
        }
        let version = decode_lower::<1>(&value[0..2])?[0];
        if version == 0xff || (version == 0 && bytes.len() != 55) {
            return None;
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let trace_id = decode_lower::<16>(&value[3..35])?;
        let span_id = decode_lower::<8>(&value[36..52])?;
        let flags = decode_lower::<1>(&value[53..55])?[0];
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(TraceParent { trace_id, span_id, flags })
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        encode(self.trace_id)
    }

    /// The (parent) span id as 16 lower-case hex digits.
    pub fn span_id(&self) -> String {
        encode(self.span_id)
    }

    /// Whether the producer sampled this trace.
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 == 0x01
    }

    /// The current context: the current OpenTelemetry span's (a request or message being
    /// handled), else the one set with [`TraceParent::scope`].
    pub fn current() -> Option<TraceParent> {
        let span = opentelemetry::Context::map_current(kem_mesh::telemetry::trace::traceparent_of);
        span.as_deref().and_then(TraceParent::parse).or_else(|| CURRENT.try_with(|t| *t).ok())
    }

    /// The current context, or a new trace when there is none.
    pub fn current_or_new() -> TraceParent {
        TraceParent::current().unwrap_or_else(TraceParent::new_root)
    }

    /// Runs `work` with `self` as the current context.
    pub async fn scope<F: Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{:02x}", encode(self.trace_id), encode(self.span_id), self.flags)
    }
}

impl fmt::Debug for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceParent({self})")
    }
}

/// The all-zero id is invalid; the odds of drawing it are nil, but cheap to rule out.
fn nonzero<const N: usize>(mut bytes: [u8; N]) -> [u8; N] {
    if bytes.iter().all(|b| *b == 0) {
        bytes[N - 1] = 1;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_and_prints_the_specification_example() {
        let t = TraceParent::parse(EXAMPLE).expect("valid traceparent");
        assert_eq!(t.to_string(), EXAMPLE);
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id(), "00f067aa0ba902b7");
        assert!(t.sampled());
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(TraceParent::parse(bad).is_none(), "{bad:?} must be rejected");
        }
        // A future version may append fields after the version-00 layout.
        assert!(TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later").is_some());
    }

    #[test]
    fn child_keeps_the_trace_and_changes_the_span() {
        let root = TraceParent::new_root();
        let child = root.child();
        assert_eq!(root.trace_id(), child.trace_id());
        assert_ne!(root.span_id(), child.span_id());
        assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
    }

    #[test]
    fn the_current_opentelemetry_span_is_the_current_context() {
        let remote = kem_mesh::telemetry::trace::remote_parent(Some(EXAMPLE), None);
        let _attached = remote.attach();
        assert_eq!(TraceParent::current(), TraceParent::parse(EXAMPLE));
    }

    #[tokio::test]
    async fn scope_sets_the_current_context() {
        assert!(TraceParent::current().is_none());
        let t = TraceParent::new_root();
        let seen = t.scope(async { TraceParent::current() }).await;
        assert_eq!(seen, Some(t));
    }
}
