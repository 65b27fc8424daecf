//! A handler that panics answers INTERNAL instead of vanishing.
//!
//! Without this, a panic unwinds out of the stream's task: hyper drops the stream, the caller
//! sees a reset with no status, and nothing says which call failed or why. With it, the caller
//! gets INTERNAL ("internal error"), the metrics count it, and the panic message is in the log
//! (the panic hook prints it as usual).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::FutureExt as _;

/// Layer adding [`CatchPanic`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl<S> tower::Layer<S> for CatchPanicLayer {
    type Service = CatchPanic<S>;
    fn layer(&self, inner: S) -> CatchPanic<S> {
        CatchPanic { inner }
    }
}

/// A service whose panics become INTERNAL responses.
#[derive(Debug, Clone)]
pub struct CatchPanic<S> {
    inner: S,
}

impl<S, B, E> tower::Service<http::Request<B>> for CatchPanic<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = E>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = E;
    type Future = Caught<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Caught<S::Future> {
        match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => Caught::Running { future: AssertUnwindSafe(future).catch_unwind() },
            Err(_) => Caught::Panicked,
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`CatchPanic`]: no allocation beyond the inner future's own.
    #[project = CaughtProjection]
    #[allow(missing_docs)] // the macro takes no field docs: `future` is the work, `permit` its slot
    pub enum Caught<F> {
        /// The handler is running.
        Running { #[pin] future: futures_util::future::CatchUnwind<AssertUnwindSafe<F>> },
        /// The handler panicked before it returned a future.
        Panicked,
    }
}

impl<F, E> Future for Caught<F>
where
    F: Future<Output = Result<http::Response<tonic::body::Body>, E>>,
{
    type Output = Result<http::Response<tonic::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CaughtProjection::Running { future } => match future.poll(cx) {
                Poll::Ready(Ok(result)) => Poll::Ready(result),
                Poll::Ready(Err(_)) => Poll::Ready(Ok(internal())),
                Poll::Pending => Poll::Pending,
            },
            CaughtProjection::Panicked => Poll::Ready(Ok(internal())),
        }
    }
}

fn internal() -> http::Response<tonic::body::Body> {
    tracing::error!("a request handler panicked; answered INTERNAL");
    tonic::Status::internal("internal error").into_http()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Service, ServiceExt as _};

    #[tokio::test]
    async fn a_panicking_handler_answers_internal() {
        let panics_later = tower::service_fn(|_: http::Request<()>| async {
            if true {
                panic!("handler bug");
            }
            Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::empty()))
        });
        let response = CatchPanic { inner: panics_later }.oneshot(http::Request::new(())).await;
        let response = response.unwrap_or_else(|never| match never {});
        assert_eq!(response.headers().get("grpc-status").map(|v| v.as_bytes()), Some(&b"13"[..]));

        let mut panics_now = CatchPanic {
            inner: tower::service_fn(|_: http::Request<()>| -> std::future::Ready<Result<http::Response<tonic::body::Body>, std::convert::Infallible>> {
                panic!("handler bug before its future")
            }),
        };
        let response = panics_now.call(http::Request::new(())).await.unwrap_or_else(|never| match never {});
        assert_eq!(response.headers().get("grpc-status").map(|v| v.as_bytes()), Some(&b"13"[..]));
    }
}
