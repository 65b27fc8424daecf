//! The whole REST surface under schemathesis: every operation of the generated OpenAPI document is
//! exercised with generated inputs against a real gateway whose backends accept any well-formed
//! request; no response may be a 5xx. `scripts/test` installs schemathesis; a missing `st` fails.

use std::convert::Infallible;
use std::process::Command;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use kem_gateway::auth::{JwtAuthenticator, StaticKeys};
use kem_gateway::edge::{Edge, EdgeConfig};
use kem_gateway::idempotency::IdempotencyStore;
use kem_gateway::protect::{EdgeLimiter, EdgeLimits, RateLimit};
use kem_gateway::routes::RouteTable;
use kem_gateway::transcode::DynamicCodec;
use kem_gateway::upstream::{Upstreams, upstream};
use kem_kit::cache::MemoryCache;
use kem_kit::jwt::{Issuer, SigningKey};
use kem_mesh::authz::{DefaultPolicy, Policy, Rule};
use kem_mesh::client::MeshChannel;
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_mesh::{RoleServer, Shutdown, Transport};
use prost_reflect::DynamicMessage;
use tonic::server::{Grpc, NamedService, UnaryService};

use crate::support::{AUDIENCE, ISSUER};

#[derive(Clone)]
struct Unary(prost_reflect::MessageDescriptor);

impl UnaryService<DynamicMessage> for Unary {
    type Response = DynamicMessage;
    type Future = BoxFuture<'static, Result<tonic::Response<DynamicMessage>, tonic::Status>>;

    fn call(&mut self, _request: tonic::Request<DynamicMessage>) -> Self::Future {
        let output = self.0.clone();
        Box::pin(async move { Ok(tonic::Response::new(DynamicMessage::new(output))) })
    }
}

async fn answer_any(request: http::Request<tonic::body::Body>) -> http::Response<tonic::body::Body> {
    let path = request.uri().path().trim_start_matches('/').to_owned();
    let Some((service, method)) = path.split_once('/') else {
        return tonic::Status::unimplemented("bad path").into_http();
    };
    let pool = kem_proto::descriptor_pool();
    let Some(method) = pool.get_service_by_name(service).and_then(|s| s.methods().find(|m| m.name() == method)) else {
        return tonic::Status::unimplemented("no such method").into_http();
    };
    let mut grpc = Grpc::new(DynamicCodec::new(method.input()));
    grpc.unary(Unary(method.output()), request).await
}

macro_rules! any_service {
    ($ty:ident, $name:literal) => {
        /// Accepts any well-formed request of the service and answers an empty response.
        #[derive(Clone)]
        struct $ty;
        impl NamedService for $ty {
            const NAME: &'static str = $name;
        }
        impl tower::Service<http::Request<tonic::body::Body>> for $ty {
            type Response = http::Response<tonic::body::Body>;
            type Error = Infallible;
            type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;
            fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
                Box::pin(async move { Ok(answer_any(request).await) })
            }
        }
    };
}

any_service!(AnyUser, "kem.user.v1.UserService");
any_service!(AnyEvent, "kem.event.v1.EventService");
any_service!(AnyAi, "kem.ai.v1.AiService");
any_service!(AnyContent, "kem.content.v1.ContentService");
any_service!(AnyDistribution, "kem.distribution.v1.DistributionService");
any_service!(AnyParticipation, "kem.participation.v1.ParticipationService");
any_service!(AnyAnalytics, "kem.analytics.v1.AnalyticsService");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_errors() {
    // Through the interpreter, not the `st` script, so PATH and pyenv shims do not matter.
    let st = Command::new("python3").args(["-m", "schemathesis.cli", "--version"]).output();
    assert!(
        st.as_ref().is_ok_and(|o| o.status.success()),
        "schemathesis is required: run scripts/test (it installs it) or `python3 -m pip install schemathesis`"
    );
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let backend_id = ca.identity("backend", Duration::from_secs(3600)).await;
    let policy = Policy::new(TRUST_DOMAIN, NAMESPACE, DefaultPolicy::Deny).allow_service("*", Rule::AllAuthenticated);
    let serving = RoleServer::new("any")
        .transport(Transport::MutualTls(backend_id))
        .policy(policy, Some(TestCa::id("gateway")))
        .add_service(AnyUser)
        .add_service(AnyEvent)
        .add_service(AnyAi)
        .add_service(AnyContent)
        .add_service(AnyDistribution)
        .add_service(AnyParticipation)
        .add_service(AnyAnalytics)
        .serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"), shutdown.clone())
        .await
        .expect("backend");
    let gateway_id = ca.identity("gateway", Duration::from_secs(3600)).await;
    let channel =
        upstream(MeshChannel::new(&gateway_id, &serving.addr.to_string(), &TestCa::id("backend")).expect("channel"));
    let mut upstreams = Upstreams::new();
    for name in kem_proto::SERVICE_NAMES.iter().filter(|n| !n.contains("identity")) {
        upstreams.insert(*name, channel.clone());
    }
    let issuer = Issuer::new(SigningKey::generate().expect("key"), ISSUER, AUDIENCE);
    let auth = JwtAuthenticator::new(ISSUER, AUDIENCE, Arc::new(StaticKeys(issuer.jwks(std::time::SystemTime::now()))));
    auth.refresh().await.expect("keys");
    // Generous limits: the fuzzer is one client hammering every route.
    let mut limits = EdgeLimits::default();
    let open = RateLimit::per_second(10_000, 10_000).expect("limit");
    limits.per_ip = open;
    limits.default_route.limit = open;
    for row in limits.routes.values_mut() {
        row.limit = open;
    }
    let edge = Arc::new(Edge {
        routes: RouteTable::from_pool(kem_proto::descriptor_pool()).expect("routes"),
        upstreams,
        auth: auth.clone(),
        limiter: EdgeLimiter::new(&limits),
        idempotency: IdempotencyStore::new(Arc::new(MemoryCache::new(10_000)), Duration::from_secs(60)),
        config: EdgeConfig::default(),
    });
    let router = kem_gateway::router(edge, Some(auth), &[]);
    let (http, _task) =
        kem_gateway::serve(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"), router, shutdown.clone())
            .expect("serve");
    let token = issuer.issue("owner-fuzz", Default::default()).expect("token").0;

    let base = format!("http://{http}");
    // schemathesis keeps a cache in its working directory: keep it out of the source tree.
    let scratch = tempfile::tempdir().expect("tempdir");
    let cwd = scratch.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .current_dir(&cwd)
            .args(["300", "python3", "-m", "schemathesis.cli", "run", &format!("{base}/openapi.json"), "--url", &base])
            .args(["--checks", "not_a_server_error", "--max-examples", "8", "--phases", "examples,fuzzing"])
            .args(["--generation-deterministic", "--request-timeout", "10", "--no-color"])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
            .expect("run schemathesis")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "schemathesis found problems:\n{stdout}\n{stderr}");
    assert!(stdout.contains("passed"), "schemathesis ran no test case:\n{stdout}");
    eprintln!("{stdout}");
    shutdown.trigger();
}
