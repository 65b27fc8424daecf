//! Test support shared by every mesh test (and by the platform's in-process CA for `kem up`'s
//! tests): a test CA that hands out workload identities with any lifetime, and a tiny echo gRPC
//! service that tells the caller which client certificate the server saw, and an in-process
//! OTLP trace collector ([`otlp`]) for tests about traces, the mesh's and the platform's.

pub mod otlp;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::Shutdown;
use crate::identity::ca::{CaPolicy, CertificateAuthority, TrustAnchor};
use crate::identity::workload::LocalSource;
use crate::identity::{SpiffeId, WorkloadIdentity};

/// Trust domain of test identities.
pub const TRUST_DOMAIN: &str = "kem.test";
/// Namespace of test identities.
pub const NAMESPACE: &str = "kem";

/// A CA for tests, swappable in place for trust-anchor rotation.
pub struct TestCa {
    /// The CA (shared with every identity it issued, so swapping it affects their renewals).
    pub ca: Arc<ArcSwap<CertificateAuthority>>,
    /// The anchor currently signing the issuer.
    pub anchor: TrustAnchor,
    /// Stops every renewal loop started from this CA.
    pub shutdown: Shutdown,
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

fn policy() -> CaPolicy {
    // No back-dating: tests with second-long lifetimes need exact validity windows.
    CaPolicy { clock_skew: Duration::ZERO, min_leaf_lifetime: Duration::from_secs(1), ..CaPolicy::default() }
}

impl TestCa {
    /// A fresh CA in trust domain [`TRUST_DOMAIN`].
    pub fn new() -> TestCa {
        #[allow(clippy::expect_used)]
        let (ca, anchor) = CertificateAuthority::generate(TRUST_DOMAIN, policy()).expect("test CA generation");
        TestCa { ca: Arc::new(ArcSwap::from_pointee(ca)), anchor, shutdown: Shutdown::new() }
    }

    /// The SPIFFE ID of test workload `service`.
    pub fn id(service: &str) -> SpiffeId {
        #[allow(clippy::expect_used)]
        SpiffeId::new(TRUST_DOMAIN, NAMESPACE, service).expect("valid test identity")
    }

    /// A workload identity for `service` with certificates of `lifetime`, renewed in the background.
    pub async fn identity(&self, service: &str, lifetime: Duration) -> WorkloadIdentity {
        let source = Arc::new(LocalSource::new(self.ca.clone(), Some(lifetime)));
        #[allow(clippy::expect_used)]
        WorkloadIdentity::start(Self::id(service), source, Duration::from_secs(5), self.shutdown.clone())
            .await
            .expect("test identity")
    }

    /// Trust-anchor rotation, step by step, exactly as an operator does it:
    /// 1. `add_anchor`: a new anchor joins the bundle (issuer unchanged);
    /// 2. `switch_issuer`: the issuer is re-signed by the new anchor;
    /// 3. `remove_anchor`: the old anchor leaves the bundle.
    ///
    /// Between steps every workload must have renewed once.
    pub fn add_anchor(&self) -> TrustAnchor {
        #[allow(clippy::expect_used)]
        let next = TrustAnchor::generate(TRUST_DOMAIN, Duration::from_secs(3600)).expect("anchor");
        let current = self.ca.load();
        let mut bundle = current.trust_anchors().to_vec();
        bundle.push(next.cert.clone());
        #[allow(clippy::expect_used)]
        let issuer = crate::identity::ca::IssuerKey::from_pem(
            &crate::identity::ca::to_pem(current.issuer_cert()),
            &current.issuer_key_pem(),
        )
        .expect("reload issuer");
        self.ca.store(Arc::new(CertificateAuthority::new(TRUST_DOMAIN, issuer, bundle, policy())));
        next
    }

    /// Step 2 of anchor rotation: the issuer is now signed by `anchor`.
    pub fn switch_issuer(&self, anchor: &TrustAnchor) {
        #[allow(clippy::expect_used)]
        let issuer = anchor.issue_issuer(TRUST_DOMAIN, Duration::from_secs(3600)).expect("issuer");
        let bundle = self.ca.load().trust_anchors().to_vec();
        self.ca.store(Arc::new(CertificateAuthority::new(TRUST_DOMAIN, issuer, bundle, policy())));
    }

    /// Step 3 of anchor rotation: only `anchor` remains trusted.
    pub fn remove_other_anchors(&self, anchor: &TrustAnchor) {
        let current = self.ca.load();
        #[allow(clippy::expect_used)]
        let issuer = crate::identity::ca::IssuerKey::from_pem(
            &crate::identity::ca::to_pem(current.issuer_cert()),
            &current.issuer_key_pem(),
        )
        .expect("reload issuer");
        self.ca.store(Arc::new(CertificateAuthority::new(TRUST_DOMAIN, issuer, vec![anchor.cert.clone()], policy())));
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// A minimal gRPC service for mesh tests: `kem.test.v1.Echo/Echo` answers with the request text
/// followed by the serial (hex) of the client certificate the server saw on this connection.
pub mod echo {
    use std::convert::Infallible;
    use std::task::{Context, Poll};

    use futures_util::future::BoxFuture;
    use prost_types::Any;
    use tonic::codegen::http;
    use tonic::server::{Grpc, NamedService, UnaryService};
    use tonic::{Request, Response, Status};

    use crate::server::PeerInfo;

    /// The service name.
    pub const SERVICE: &str = "kem.test.v1.Echo";
    /// The method path.
    pub const PATH: &str = "/kem.test.v1.Echo/Echo";

    /// How long the server waits before answering (for slow-call and drain tests).
    #[derive(Clone, Default)]
    pub struct EchoServer {
        /// Delay before answering.
        pub delay: std::time::Duration,
    }

    impl NamedService for EchoServer {
        const NAME: &'static str = SERVICE;
    }

    #[derive(Clone)]
    struct Unary(std::time::Duration);

    impl UnaryService<Any> for Unary {
        type Response = Any;
        type Future = BoxFuture<'static, Result<Response<Any>, Status>>;

        fn call(&mut self, request: Request<Any>) -> Self::Future {
            let delay = self.0;
            Box::pin(async move {
                // The serial only when asked: a benchmark must see the same response bytes with
                // and without TLS, so reporting the peer may not be a cost of the mTLS path.
                let serial = match request.get_ref().value.as_slice() {
                    ASK_PEER_SERIAL => {
                        request.extensions().get::<PeerInfo>().map(|p| crate::hex::encode(&p.certificate_serial))
                    }
                    _ => None,
                }
                .unwrap_or_default();
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                let user = request
                    .metadata()
                    .get(crate::authz::END_USER_ID_METADATA)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let inner = request.into_inner();
                Ok(Response::new(Any {
                    type_url: format!("{}|user={user}", inner.type_url),
                    value: serial.into_bytes(),
                }))
            })
        }
    }

    impl tower_service::Service<http::Request<tonic::body::Body>> for EchoServer {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
            let delay = self.delay;
            Box::pin(async move {
                if request.uri().path() != PATH {
                    return Ok(Status::unimplemented("no such method").into_http());
                }
                let mut grpc = Grpc::new(tonic_prost::ProstCodec::<Any, Any>::default());
                Ok(grpc.unary(Unary(delay), request).await)
            })
        }
    }

    /// Request `value` asking the server to report the client certificate's serial.
    const ASK_PEER_SERIAL: &[u8] = b"peer-serial";

    /// What the server saw.
    #[derive(Debug, Clone)]
    pub struct Echoed {
        /// The request text, followed by `|user=<x-kem-user-id metadata the server received>`.
        pub text: String,
        /// Serial (hex) of the client certificate on the connection; empty unless the call was
        /// made with [`call_reporting_peer`] over mTLS.
        pub serial: String,
    }

    /// Calls Echo over any channel with optional `x-kem-user-id` metadata.
    pub async fn call<T>(channel: T, text: &str) -> Result<Echoed, Status>
    where
        T: tonic::client::GrpcService<tonic::body::Body>,
        T::Error: Into<tonic::codegen::StdError>,
        T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
        <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    {
        call_as(channel, text, None).await
    }

    /// Calls Echo and asks the server for the serial of the client certificate it saw.
    pub async fn call_reporting_peer<T>(channel: T, text: &str) -> Result<Echoed, Status>
    where
        T: tonic::client::GrpcService<tonic::body::Body>,
        T::Error: Into<tonic::codegen::StdError>,
        T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
        <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    {
        send(channel, Any { type_url: text.to_owned(), value: ASK_PEER_SERIAL.to_vec() }, None).await
    }

    /// Calls Echo, sending `user` as `x-kem-user-id` metadata.
    pub async fn call_as<T>(channel: T, text: &str, user: Option<&str>) -> Result<Echoed, Status>
    where
        T: tonic::client::GrpcService<tonic::body::Body>,
        T::Error: Into<tonic::codegen::StdError>,
        T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
        <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    {
        send(channel, Any { type_url: text.to_owned(), value: Vec::new() }, user).await
    }

    async fn send<T>(channel: T, message: Any, user: Option<&str>) -> Result<Echoed, Status>
    where
        T: tonic::client::GrpcService<tonic::body::Body>,
        T::Error: Into<tonic::codegen::StdError>,
        T::ResponseBody: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + 'static,
        <T::ResponseBody as tonic::codegen::Body>::Error: Into<tonic::codegen::StdError> + Send,
    {
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.map_err(|e| Status::unavailable(format!("not ready: {}", e.into())))?;
        let codec = tonic_prost::ProstCodec::<Any, Any>::default();
        let path = http::uri::PathAndQuery::from_static(PATH);
        let mut request = Request::new(message);
        if let Some(user) = user.and_then(|u| u.parse().ok()) {
            request.metadata_mut().insert(crate::authz::END_USER_ID_METADATA, user);
        }
        let response = grpc.unary(request, path, codec).await?.into_inner();
        Ok(Echoed { text: response.type_url, serial: String::from_utf8_lossy(&response.value).into_owned() })
    }
}
