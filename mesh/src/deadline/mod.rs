//! Deadlines: every outbound call carries one, and an inbound deadline bounds every outbound call
//! made while serving it.
//!
//! Server side, [`InboundDeadlineLayer`] reads the caller's `grpc-timeout`, records the absolute
//! [`Deadline`] in the request extensions and in a task-local for the handler's task, and answers
//! DEADLINE_EXCEEDED once it passes, dropping the handler future (which cancels whatever the
//! handler was waiting on, including its own outbound h2 streams).
//!
//! Client side, [`DeadlineLayer`] sets `grpc-timeout` on each outbound request to the remaining
//! time of the earliest of: the client's default, the request's own `grpc-timeout` (tonic's
//! `Request::set_timeout`), a [`Deadline`] extension, and the inbound deadline of the current task
//! — so time already spent upstream is subtracted. When it passes, the call is dropped (the h2
//! stream is reset) and the caller gets DEADLINE_EXCEEDED.
//!
//! Time is [`tokio::time::Instant`] so tests can pause and advance it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::HeaderValue;
use tokio::time::Instant;
use tonic::server::NamedService;

/// The `grpc-timeout` header.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// An absolute point by which a call must complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline(pub Instant);

impl Deadline {
    /// Time left before the deadline (zero once passed).
    pub fn remaining(self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

tokio::task_local! {
    static INBOUND: Deadline;
}

/// The deadline of the inbound call the current task is serving, if any.
pub fn current() -> Option<Deadline> {
    INBOUND.try_with(|d| *d).ok()
}

/// Runs `future` with `deadline` as the current inbound deadline, so outbound calls made from it
/// inherit it (for work spawned off the handler task, which task-locals do not follow).
pub async fn scope<F: Future>(deadline: Deadline, future: F) -> F::Output {
    INBOUND.scope(deadline, future).await
}

/// Parses a `grpc-timeout` value (`<up to 8 digits><H|M|S|m|u|n>`).
pub fn parse_grpc_timeout(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?;
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// `now + timeout`, saturating: the largest `grpc-timeout` (99,999,999 hours) must not overflow
/// the clock, whatever a caller sends.
fn after(now: Instant, timeout: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(timeout.min(CENTURY)).unwrap_or(now)
}

/// Encodes `timeout` as a `grpc-timeout` value, in the finest unit that fits in 8 digits
/// (rounded down, so the callee never believes it has more time than the caller).
pub fn encode_grpc_timeout(timeout: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = timeout.as_nanos();
    let text = if nanos <= MAX {
        format!("{nanos}n")
    } else if nanos / 1_000 <= MAX {
        format!("{}u", nanos / 1_000)
    } else if nanos / 1_000_000 <= MAX {
        format!("{}m", nanos / 1_000_000)
    } else if nanos / 1_000_000_000 <= MAX {
        format!("{}S", nanos / 1_000_000_000)
    } else {
        format!("{}M", (nanos / 60_000_000_000).min(MAX))
    };
    #[allow(clippy::expect_used)]
    HeaderValue::from_str(&text).expect("digits and a unit letter are a valid header value")
}

/// A `DEADLINE_EXCEEDED` gRPC response.
pub fn exceeded_response(what: &str) -> http::Response<tonic::body::Body> {
    tonic::Status::deadline_exceeded(format!("deadline exceeded: {what}")).into_http()
}

/// Server-side layer recording and enforcing the inbound `grpc-timeout`.
#[derive(Debug, Clone, Copy, Default)]
pub struct InboundDeadlineLayer;

impl<S> tower::Layer<S> for InboundDeadlineLayer {
    type Service = InboundDeadline<S>;
    fn layer(&self, inner: S) -> InboundDeadline<S> {
        InboundDeadline { inner }
    }
}

/// A service wrapped by [`InboundDeadlineLayer`].
#[derive(Debug, Clone)]
pub struct InboundDeadline<S> {
    inner: S,
}

impl<S: NamedService> NamedService for InboundDeadline<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, E> tower::Service<http::Request<tonic::body::Body>> for InboundDeadline<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>, Error = E>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = E;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, E>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let deadline = request
            .headers()
            .get(GRPC_TIMEOUT)
            .and_then(parse_grpc_timeout)
            .map(|timeout| Deadline(after(Instant::now(), timeout)));
        let Some(deadline) = deadline else {
            return Box::pin(self.inner.call(request));
        };
        request.extensions_mut().insert(deadline);
        // A URI clone shares its bytes; the path is only read if the deadline passes.
        let uri = request.uri().clone();
        let inner = INBOUND.scope(deadline, self.inner.call(request));
        Box::pin(async move {
            match tokio::time::timeout_at(deadline.0, inner).await {
                Ok(result) => result,
                Err(_) => Ok(exceeded_response(uri.path())),
            }
        })
    }
}

/// Client-side layer giving every outbound call a deadline.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    default: Duration,
}

impl DeadlineLayer {
    /// Calls without a tighter deadline get `default`.
    pub fn new(default: Duration) -> Self {
        DeadlineLayer { default }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadlines<S>;
    fn layer(&self, inner: S) -> Deadlines<S> {
        Deadlines { inner, default: self.default }
    }
}

/// A client wrapped by [`DeadlineLayer`].
#[derive(Debug, Clone)]
pub struct Deadlines<S> {
    inner: S,
    default: Duration,
}

/// The deadline an outbound `request` must meet: the earliest of every source.
pub fn outbound_deadline<B>(request: &http::Request<B>, default: Duration) -> Deadline {
    let now = Instant::now();
    let own = request.headers().get(GRPC_TIMEOUT).and_then(parse_grpc_timeout).map(|t| Deadline(after(now, t)));
    let default = Deadline(after(now, default));
    [Some(default), own, request.extensions().get::<Deadline>().copied(), current()]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(default)
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for Deadlines<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let deadline = outbound_deadline(&request, self.default);
        let uri = request.uri().clone();
        if deadline.remaining().is_zero() {
            return Box::pin(async move { Ok(exceeded_response(uri.path())) });
        }
        request.headers_mut().insert(GRPC_TIMEOUT, encode_grpc_timeout(deadline.remaining()));
        request.extensions_mut().insert(deadline);
        let call = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout_at(deadline.0, call).await {
                Ok(result) => result,
                Err(_) => Ok(exceeded_response(uri.path())),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_round_trips() {
        for d in [Duration::from_millis(1500), Duration::from_nanos(7), Duration::from_secs(86_400 * 30)] {
            let parsed = parse_grpc_timeout(&encode_grpc_timeout(d)).unwrap_or_default();
            assert!(parsed <= d && d - parsed < d / 1000 + Duration::from_secs(60), "{d:?} → {parsed:?}");
        }
        assert_eq!(parse_grpc_timeout(&HeaderValue::from_static("10S")), Some(Duration::from_secs(10)));
        assert_eq!(parse_grpc_timeout(&HeaderValue::from_static("123456789S")), None);
        assert_eq!(parse_grpc_timeout(&HeaderValue::from_static("5x")), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_inbound_deadline_bounds_outbound_calls() {
        let request = http::Request::new(());
        let inbound = Deadline(Instant::now() + Duration::from_secs(2));
        let outbound = scope(inbound, async { outbound_deadline(&request, Duration::from_secs(10)) }).await;
        assert_eq!(outbound, inbound);
        assert_eq!(outbound_deadline(&request, Duration::from_secs(1)).remaining(), Duration::from_secs(1));
    }
}
