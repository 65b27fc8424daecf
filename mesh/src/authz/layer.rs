//! The authorization tower layer in front of a server's services.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{BoxFuture, FutureExt};
use tower::{Layer, Service};

use super::{Decision, END_USER_METADATA_PREFIX, Policy};
use crate::identity::SpiffeId;
use crate::server::PeerInfo;

/// Applies a [`Policy`] to every request and strips end-user metadata unless the peer is the
/// gateway.
#[derive(Clone)]
pub struct AuthzLayer {
    policy: Arc<Policy>,
    gateway: Option<SpiffeId>,
}

impl AuthzLayer {
    /// A layer enforcing `policy`; `gateway` is the only peer whose end-user metadata is trusted.
    pub fn new(policy: Policy, gateway: Option<SpiffeId>) -> AuthzLayer {
        AuthzLayer { policy: Arc::new(policy), gateway }
    }

    /// The enforced policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl<S> Layer<S> for AuthzLayer {
    type Service = Authz<S>;

    fn layer(&self, inner: S) -> Authz<S> {
        Authz { inner, policy: self.policy.clone(), gateway: self.gateway.clone() }
    }
}

/// The service produced by [`AuthzLayer`].
#[derive(Clone)]
pub struct Authz<S> {
    inner: S,
    policy: Arc<Policy>,
    gateway: Option<SpiffeId>,
}

impl<S, B> Service<http::Request<B>> for Authz<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let peer = request.extensions().get::<PeerInfo>().and_then(|p| p.identity.clone());
        let uri = request.uri().clone();
        let path = uri.path();
        match self.policy.decide(path, peer.as_ref()) {
            Decision::Allow => {}
            Decision::AuditOnly => {
                tracing::warn!(method = %path, peer = ?peer.as_ref().map(|p| p.to_string()), "audit: policy would deny this call");
            }
            Decision::Deny => {
                tracing::info!(method = %path, peer = ?peer.as_ref().map(|p| p.to_string()), "denied by authorization policy");
                let method = path.trim_start_matches('/').to_owned();
                let status = tonic::Status::permission_denied(format!("this workload may not call {method}"));
                return futures_util::future::ready(Ok(status.into_http())).boxed();
            }
        }
        if peer.is_none() || peer != self.gateway {
            let headers = request.headers_mut();
            // An empty Vec does not allocate: the usual no-spoofed-header case costs one scan.
            let spoofed: Vec<_> =
                headers.keys().filter(|k| k.as_str().starts_with(END_USER_METADATA_PREFIX)).cloned().collect();
            for name in spoofed {
                headers.remove(&name);
            }
        }
        self.inner.call(request).boxed()
    }
}
