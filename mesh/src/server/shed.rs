//! The server side of [admission control](crate::admission): calls beyond the adaptive limit
//! wait briefly, then are refused with UNAVAILABLE marked `kem-mesh-error: overloaded`.
//!
//! The marker tells the mesh client that the request never ran (so it may go to another
//! endpoint, whatever the method) and that the endpoint is busy rather than broken (so it is
//! penalised in the balancer's load, not ejected). Health checks and reflection bypass the limit:
//! a probe must see a busy server as alive.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;

use crate::admission::{Admission, Permit};
use crate::client::failure::{MESH_ERROR_HEADER, OVERLOADED};

/// Layer adding [`Shed`].
#[derive(Debug, Clone)]
pub struct ShedLayer {
    admission: Option<Admission>,
}

impl ShedLayer {
    /// Sheds beyond `admission`'s limit; `None` admits everything.
    pub fn new(admission: Option<Admission>) -> ShedLayer {
        ShedLayer { admission }
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = Shed<S>;
    fn layer(&self, inner: S) -> Shed<S> {
        Shed { inner, admission: self.admission.clone() }
    }
}

/// A service behind an admission limit.
#[derive(Debug, Clone)]
pub struct Shed<S> {
    inner: S,
    admission: Option<Admission>,
}

/// Paths that are never shed: probes and tooling.
fn exempt(path: &str) -> bool {
    path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.")
}

/// The answer to a shed call.
pub fn overloaded(rejected: &crate::admission::Rejected) -> http::Response<tonic::body::Body> {
    let mut response = tonic::Status::unavailable(rejected.to_string()).into_http();
    response.headers_mut().insert(MESH_ERROR_HEADER, http::HeaderValue::from_static(OVERLOADED));
    response
}

impl<S, B, E> tower::Service<http::Request<B>> for Shed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>, Error = E>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    E: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = E;
    type Future = Admitted<S::Future, E>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let Some(admission) = self.admission.as_ref().filter(|_| !exempt(request.uri().path())) else {
            return Admitted::Running { future: self.inner.call(request), permit: None };
        };
        if let Some(permit) = admission.try_admit() {
            return Admitted::Running { future: self.inner.call(request), permit: Some(permit) };
        }
        // Over the limit: wait for a slot (briefly) on a boxed future; the inner service is
        // called only once admitted.
        let admission = admission.clone();
        let mut inner = self.inner.clone();
        Admitted::Queued {
            future: Box::pin(async move {
                match admission.admit().await {
                    Ok(permit) => {
                        let response = inner.call(request).await;
                        drop(permit);
                        response
                    }
                    Err(rejected) => Ok(overloaded(&rejected)),
                }
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`Shed`]: the inner future with its permit, or a queued call.
    #[project = AdmittedProjection]
    #[allow(missing_docs)] // the macro takes no field docs: `future` is the work, `permit` its slot
    pub enum Admitted<F, E> {
        /// Admitted at once; the permit is released when the response is ready.
        Running { #[pin] future: F, permit: Option<Permit> },
        /// Waiting for a slot, then running.
        Queued { future: BoxFuture<'static, Result<http::Response<tonic::body::Body>, E>> },
    }
}

impl<F, E> Future for Admitted<F, E>
where
    F: Future<Output = Result<http::Response<tonic::body::Body>, E>>,
{
    type Output = Result<http::Response<tonic::body::Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AdmittedProjection::Running { future, permit } => {
                let output = std::task::ready!(future.poll(cx));
                // The latency sample ends with the response headers, as the handler's work does.
                drop(permit.take());
                Poll::Ready(output)
            }
            AdmittedProjection::Queued { future } => future.as_mut().poll(cx),
        }
    }
}
