//! Retries of idempotent calls, bounded by attempts and by a [`RetryBudget`].
//!
//! A call is retried only when its method is idempotent per the proto ([`RetryPolicy`]), its
//! request body fits in the buffer (64 KiB by default; bigger bodies are streamed once), and it
//! failed with UNAVAILABLE — a status from the peer or a transport error (refused connection,
//! GOAWAY, reset stream), which tonic reports to callers as UNAVAILABLE too. Other codes are not
//! retried: DEADLINE_EXCEEDED means the time is spent, RESOURCE_EXHAUSTED asks for less load, and
//! everything else is an answer. Retries wait a jittered exponential backoff, carry
//! `grpc-previous-rpc-attempts`, and list the endpoints already tried in a [`Tried`] extension so
//! the balancer prefers another one. The status is read from response headers (trailers-only
//! responses, which is how servers answer calls that fail before a message). The fail-fast answer
//! of a balancer with every endpoint ejected is not retried.
//!
//! Buffering waits for the end of the request stream (or 64 KiB): fine for unary and
//! server-streaming calls, the only shapes kem marks idempotent.

mod budget;
mod policy;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use tonic::Code;

pub use budget::{BudgetConfig, RetryBudget};
pub use policy::RetryPolicy;

use crate::balance::{NoHealthyEndpoints, Tried};
use crate::client::balanced::ClientCounters;
use crate::client::failure::{Failure, OVERLOADED, classify, mesh_error};

/// The metadata key telling the server how many attempts came before this one.
pub const PREVIOUS_ATTEMPTS: &str = "grpc-previous-rpc-attempts";

/// Retry parameters.
#[derive(Debug, Clone)]
pub struct RetryConfig {
    /// Which methods may be retried.
    pub policy: RetryPolicy,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Largest request body buffered for replay.
    pub max_buffered_body: usize,
    /// Backoff before the first retry (doubles each time, jittered).
    pub backoff: Duration,
    /// Upper bound of the backoff.
    pub max_backoff: Duration,
    /// The budget.
    pub budget: BudgetConfig,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            policy: RetryPolicy::from_descriptors(),
            max_attempts: 3,
            max_buffered_body: 64 * 1024,
            backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(250),
            budget: BudgetConfig::default(),
        }
    }
}

/// The gRPC status code in a response's headers (trailers-only responses), if any.
pub fn header_code<B>(response: &http::Response<B>) -> Option<Code> {
    let value = response.headers().get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(Code::from_i32(value))
}

/// What to do after an attempt.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Return the result.
    Done,
    /// Send the same request to another endpoint now: it provably reached no server.
    Resend,
    /// Retry after a backoff, if the budget allows (idempotent methods only).
    Retry,
}

fn next_step<E: std::error::Error + 'static>(
    result: &Result<http::Response<tonic::body::Body>, E>,
    retryable: bool,
) -> Step {
    match result {
        Err(error) => {
            let failure = classify(error);
            if failure.never_processed() {
                Step::Resend
            } else if retryable && failure != Failure::Stream {
                // A stream error (an oversized response, say) would fail the same way elsewhere.
                Step::Retry
            } else {
                Step::Done
            }
        }
        Ok(response) => {
            let unavailable = header_code(response) == Some(Code::Unavailable)
                && response.extensions().get::<NoHealthyEndpoints>().is_none();
            if unavailable && mesh_error(response) == Some(OVERLOADED) {
                // Shed before it ran: another endpoint may have room.
                Step::Resend
            } else if retryable && unavailable {
                Step::Retry
            } else {
                Step::Done
            }
        }
    }
}

/// Layer adding retries.
#[derive(Debug, Clone)]
pub struct RetryLayer {
    config: Arc<RetryConfig>,
    budget: Arc<RetryBudget>,
    counters: Arc<ClientCounters>,
}

impl RetryLayer {
    /// Retries per `config`, recording into `counters`.
    pub fn new(config: RetryConfig, counters: Arc<ClientCounters>) -> RetryLayer {
        let budget = Arc::new(RetryBudget::new(config.budget));
        RetryLayer { config: Arc::new(config), budget, counters }
    }
}

impl<S> tower::Layer<S> for RetryLayer {
    type Service = Retry<S>;
    fn layer(&self, inner: S) -> Retry<S> {
        Retry { inner, config: self.config.clone(), budget: self.budget.clone(), counters: self.counters.clone() }
    }
}

/// A client wrapped by [`RetryLayer`].
#[derive(Debug, Clone)]
pub struct Retry<S> {
    inner: S,
    config: Arc<RetryConfig>,
    budget: Arc<RetryBudget>,
    counters: Arc<ClientCounters>,
}

enum Buffered {
    Whole(Bytes),
    /// Too big (or failed): the part read so far followed by the rest, for one attempt.
    Streamed(tonic::body::Body),
}

async fn buffer(mut body: tonic::body::Body, limit: usize) -> Buffered {
    use futures_util::StreamExt as _;
    let mut frames: Vec<http_body::Frame<Bytes>> = Vec::new();
    let mut size = 0usize;
    let mut failed = None;
    while size <= limit {
        match body.frame().await {
            None => {
                let mut all = bytes::BytesMut::with_capacity(size);
                for data in frames.iter().filter_map(http_body::Frame::data_ref) {
                    all.extend_from_slice(data);
                }
                return Buffered::Whole(all.freeze());
            }
            Some(Ok(frame)) => {
                let data = frame.is_data();
                size += frame.data_ref().map_or(0, Bytes::len);
                frames.push(frame);
                // Request trailers are not used by gRPC clients; such a body is sent once.
                if !data {
                    break;
                }
            }
            Some(Err(status)) => {
                failed = Some(status);
                break;
            }
        }
    }
    let prefix = futures_util::stream::iter(frames.into_iter().map(Ok::<_, tonic::Status>));
    let rest = match failed {
        Some(status) => futures_util::StreamExt::boxed(futures_util::stream::once(std::future::ready(Err(status)))),
        None => futures_util::StreamExt::boxed(http_body_util::BodyStream::new(body)),
    };
    Buffered::Streamed(tonic::body::Body::new(http_body_util::StreamBody::new(prefix.chain(rest))))
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for Retry<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: std::error::Error + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        use std::sync::atomic::Ordering::Relaxed;
        let config = self.config.clone();
        let budget = self.budget.clone();
        let counters = self.counters.clone();
        counters.requests.fetch_add(1, Relaxed);
        budget.deposit();
        let retryable = config.policy.is_retryable(request.uri().path());
        // The ready service takes the first attempt; later attempts use clones.
        let template = self.inner.clone();
        let first = std::mem::replace(&mut self.inner, template.clone());
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match buffer(body, config.max_buffered_body).await {
                Buffered::Whole(bytes) => bytes,
                Buffered::Streamed(body) => {
                    let mut first = first;
                    return first.call(http::Request::from_parts(parts, body)).await;
                }
            };
            let tried = Tried::default();
            let attempt_request = |attempt: u32| {
                let mut request = http::Request::new(tonic::body::Body::new(http_body_util::Full::new(bytes.clone())));
                *request.method_mut() = parts.method.clone();
                *request.uri_mut() = parts.uri.clone();
                *request.version_mut() = parts.version;
                *request.headers_mut() = parts.headers.clone();
                *request.extensions_mut() = parts.extensions.clone();
                request.extensions_mut().insert(tried.clone());
                if attempt > 0 {
                    request.headers_mut().insert(PREVIOUS_ATTEMPTS, http::HeaderValue::from(attempt));
                }
                request
            };
            let mut result = {
                let mut first = first;
                first.call(attempt_request(0)).await
            };
            let mut backoff = config.backoff;
            for attempt in 1..config.max_attempts {
                match next_step(&result, retryable) {
                    Step::Done => break,
                    // The request never reached a server: another endpoint, at once, for any
                    // method (gRPC's transparent retry). Bounded by the attempts and by `Tried`,
                    // not by the budget: it adds no load to any server.
                    Step::Resend => {
                        counters.transparent_retries.fetch_add(1, Relaxed);
                    }
                    Step::Retry => {
                        if !budget.withdraw() {
                            counters.budget_exhausted.fetch_add(1, Relaxed);
                            break;
                        }
                        counters.retries.fetch_add(1, Relaxed);
                        let jittered = backoff / 2 + backoff.mul_f64(rand::random::<f64>() / 2.0);
                        tokio::time::sleep(jittered).await;
                        backoff = (backoff * 2).min(config.max_backoff);
                    }
                }
                result = tower::ServiceExt::oneshot(template.clone(), attempt_request(attempt)).await;
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(body: tonic::body::Body) -> Bytes {
        body.collect().await.map(http_body_util::Collected::to_bytes).unwrap_or_default()
    }

    #[tokio::test]
    async fn small_bodies_are_buffered_and_big_ones_streamed_intact() {
        let small = Bytes::from(vec![7u8; 1000]);
        match buffer(tonic::body::Body::new(http_body_util::Full::new(small.clone())), 64 * 1024).await {
            Buffered::Whole(bytes) => assert_eq!(bytes, small),
            Buffered::Streamed(_) => panic!("1000 bytes fit"),
        }
        let chunks: Vec<Result<http_body::Frame<Bytes>, tonic::Status>> =
            (0..10).map(|i| Ok(http_body::Frame::data(Bytes::from(vec![i as u8; 10_000])))).collect();
        let big = tonic::body::Body::new(http_body_util::StreamBody::new(futures_util::stream::iter(chunks)));
        match buffer(big, 64 * 1024).await {
            Buffered::Whole(_) => panic!("100 kB must not be buffered"),
            Buffered::Streamed(body) => {
                let all = collect(body).await;
                assert_eq!(all.len(), 100_000);
                assert!(all.chunks(10_000).enumerate().all(|(i, c)| c.iter().all(|b| usize::from(*b) == i)));
            }
        }
    }
}
