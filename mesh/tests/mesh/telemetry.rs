//! Telemetry over real sockets: `/metrics` on the admin port and traces across three hops.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use kem_mesh::Shutdown;
use kem_mesh::client::MeshChannel;
use kem_mesh::identity::WorkloadIdentity;
use kem_mesh::server::{RoleServer, Serving, Transport};
use kem_mesh::telemetry::{Registry, trace};
use kem_mesh::testing::TestCa;
use kem_mesh::testing::echo::{self, EchoServer};
use kem_mesh::testing::otlp::Collector;
use prost_types::Any;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use crate::support::{HOUR, echo_policy, eventually};

/// An mTLS echo server recording into `registry`.
async fn server_with(
    identity: &WorkloadIdentity,
    registry: Arc<Registry>,
    service: Relay,
    shutdown: &Shutdown,
) -> Serving {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    RoleServer::new("echo")
        .transport(Transport::MutualTls(identity.clone()))
        .policy(echo_policy(), Some(TestCa::id("gateway")))
        .metrics(registry)
        .drain_timeout(Duration::from_secs(2))
        .add_service(service)
        .serve(listener, shutdown.clone())
        .await
        .expect("serve")
}

/// Echo that, given a next hop, asks it first (an echo-style service calling its dependency).
#[derive(Clone, Default)]
struct Relay {
    next: Option<MeshChannel>,
}

impl NamedService for Relay {
    const NAME: &'static str = echo::SERVICE;
}

#[derive(Clone)]
struct Forward(MeshChannel);

impl UnaryService<Any> for Forward {
    type Response = Any;
    type Future = BoxFuture<'static, Result<Response<Any>, Status>>;

    fn call(&mut self, request: Request<Any>) -> Self::Future {
        let next = self.0.clone();
        Box::pin(async move {
            let echoed = echo::call(next, &request.into_inner().type_url).await?;
            Ok(Response::new(Any { type_url: echoed.text, value: Vec::new() }))
        })
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Relay {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        match self.next.clone() {
            None => tower::Service::call(&mut EchoServer::default(), request),
            Some(next) => Box::pin(async move {
                let mut grpc = Grpc::new(tonic_prost::ProstCodec::<Any, Any>::default());
                Ok(grpc.unary(Forward(next), request).await)
            }),
        }
    }
}

/// GET `path` over HTTP/1.1 on `addr`; returns (status line, content type, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> (String, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect admin");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut raw))
        .await
        .expect("in time")
        .expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.lines().next().unwrap_or_default().to_owned();
    let content_type = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    (status, content_type, body.to_owned())
}

/// Labels of one series without `le`, sorted.
type SeriesKey = Vec<(String, String)>;

/// One parsed sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

fn valid_name(name: &str, colons: bool) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || (colons && c == ':'))
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || (colons && c == ':'))
}

/// A strict parser of the Prometheus text format (0.0.4): every sample belongs to a family
/// declared once by `# TYPE` before it, names and labels are well-formed, values parse, and
/// histogram buckets are cumulative and end with `+Inf` equal to `_count`.
fn parse_prometheus(text: &str) -> (HashMap<String, String>, Vec<Sample>) {
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (keyword, name) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            assert!(valid_name(name, true), "line {n}: bad name in {line:?}");
            if keyword == "TYPE" {
                let kind = parts.next().unwrap_or_default();
                assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "line {n}: {line:?}");
                assert!(types.insert(name.to_owned(), kind.to_owned()).is_none(), "line {n}: TYPE of {name} twice");
            } else {
                assert_eq!(keyword, "HELP", "line {n}: {line:?}");
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("line {n}: no value: {line:?}"));
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("line {n}: bad value in {line:?}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("line {n}: unclosed labels: {line:?}"));
                (name, parse_labels(body, n))
            }
        };
        assert!(valid_name(name, true), "line {n}: bad metric name {name:?}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.get(*f).is_some_and(|t| t == "histogram")))
            .unwrap_or(name);
        assert!(types.contains_key(family), "line {n}: sample of {family} before its # TYPE");
        samples.push((name.to_owned(), labels, value));
    }
    // Histogram consistency, per series.
    for (family, kind) in &types {
        if kind != "histogram" {
            continue;
        }
        let mut buckets: BTreeMap<SeriesKey, Vec<(f64, f64)>> = BTreeMap::new();
        for (name, labels, value) in &samples {
            if *name == format!("{family}_bucket") {
                let mut key: Vec<_> = labels.clone().into_iter().filter(|(k, _)| k != "le").collect();
                key.sort();
                let le = labels.get("le").expect("bucket has le");
                let le = if le == "+Inf" { f64::INFINITY } else { le.parse().expect("numeric le") };
                buckets.entry(key).or_default().push((le, *value));
            }
        }
        for (key, series) in buckets {
            assert!(series.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1), "{family}{key:?}: not cumulative");
            let (last_le, last) = *series.last().expect("buckets");
            assert!(last_le.is_infinite(), "{family}{key:?}: no +Inf bucket");
            let count = samples
                .iter()
                .find(|(n, l, _)| {
                    *n == format!("{family}_count") && {
                        let mut k: Vec<_> = l.clone().into_iter().collect();
                        k.sort();
                        k == key
                    }
                })
                .map(|s| s.2);
            assert_eq!(count, Some(last), "{family}{key:?}: _count differs from the +Inf bucket");
        }
    }
    (types, samples)
}

fn parse_labels(body: &str, n: usize) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("line {n}: bad label in {body:?}"));
        assert!(valid_name(name, false), "line {n}: bad label name {name:?}");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => panic!("line {n}: bad escape {other:?}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("line {n}: unterminated label value"),
            }
        };
        assert!(labels.insert(name.to_owned(), value).is_none(), "line {n}: duplicate label {name}");
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels
}

#[tokio::test]
async fn metrics_endpoint_serves_route_histograms_status_counters_and_handshake_failures() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let registry = Registry::new();
    let server_id = ca.identity("event", HOUR).await;
    let client_id = ca.identity("participation", HOUR).await;
    let server = server_with(&server_id, registry.clone(), Relay::default(), &shutdown).await;
    let channel = MeshChannel::new(&client_id, &server.addr.to_string(), &TestCa::id("event"))
        .expect("channel")
        .with_metrics(registry.clone());
    for i in 0..5 {
        echo::call(channel.clone(), &format!("hi {i}")).await.expect("echo");
    }
    // A plaintext client is refused at the handshake.
    let plain = kem_mesh::client::connect::plaintext_channel(&server.addr.to_string(), Duration::from_secs(1))
        .expect("channel");
    echo::call(plain, "hi").await.expect_err("plaintext must fail");

    let admin_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let admin = kem_mesh::server::serve_admin("event", admin_listener, &server, shutdown.clone()).await.expect("admin");
    let mut body = String::new();
    eventually("/metrics shows the handshake failure", Duration::from_millis(2_500), async || {
        let (status, content_type, text) = http_get(admin.addr, "/metrics").await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        body = text;
        body.contains("kem_tls_handshake_failures_total")
    })
    .await;
    let (types, samples) = parse_prometheus(&body);
    assert_eq!(types.get("kem_inbound_request_duration_seconds").map(String::as_str), Some("histogram"));
    let route = |s: &Sample| s.1.get("route").map(String::as_str) == Some(echo::PATH);
    let peer = TestCa::id("participation").to_string();
    let ok = samples
        .iter()
        .find(|s| {
            s.0 == "kem_inbound_requests_total"
                && route(s)
                && s.1.get("grpc_status").map(String::as_str) == Some("0")
                && s.1.get("peer") == Some(&peer)
        })
        .unwrap_or_else(|| panic!("no OK counter for the echo route:\n{body}"));
    assert_eq!(ok.2, 5.0);
    assert!(samples.iter().any(|s| s.0 == "kem_inbound_request_duration_seconds_bucket" && route(s)), "{body}");
    let count = samples.iter().find(|s| s.0 == "kem_inbound_request_duration_seconds_count" && route(s));
    assert_eq!(count.map(|s| s.2), Some(5.0), "{body}");
    assert!(samples.iter().any(|s| s.0 == "kem_inbound_request_duration_seconds_sum" && route(s)), "{body}");
    let outbound = samples.iter().find(|s| {
        s.0 == "kem_outbound_requests_total" && route(s) && s.1.get("grpc_status").map(String::as_str) == Some("0")
    });
    assert_eq!(outbound.map(|s| s.2), Some(5.0), "{body}");
    let refused = samples.iter().find(|s| {
        s.0 == "kem_tls_handshake_failures_total" && s.1.get("reason").map(String::as_str) == Some("not_tls")
    });
    assert!(refused.is_some_and(|s| s.2 >= 1.0), "{body}");
    assert!(samples.iter().any(|s| s.0 == "kem_authz_decisions_total"), "{body}");

    // The same admin port still answers gRPC health (kubelet probes).
    let plain =
        kem_mesh::client::connect::plaintext_channel(&admin.addr.to_string(), Duration::from_secs(1)).expect("channel");
    let health = tonic_health::pb::health_client::HealthClient::new(plain)
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("health over h2c");
    assert_eq!(health.into_inner().status, tonic_health::ServingStatus::Serving as i32);
    shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_hop_call_is_one_trace_with_correct_parent_links() {
    let (collector, endpoint) = Collector::start().await;
    let export = trace::install_otlp(&endpoint, "kem-test").expect("otlp");

    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let registry = Registry::new();
    let (a_id, b_id, c_id) =
        (ca.identity("event", HOUR).await, ca.identity("content", HOUR).await, ca.identity("ai", HOUR).await);
    let c = server_with(&c_id, registry.clone(), Relay::default(), &shutdown).await;
    let to_c = MeshChannel::new(&b_id, &c.addr.to_string(), &TestCa::id("ai")).expect("channel");
    let b = server_with(&b_id, registry.clone(), Relay { next: Some(to_c) }, &shutdown).await;
    let to_b = MeshChannel::new(&a_id, &b.addr.to_string(), &TestCa::id("content")).expect("channel");
    let a = server_with(&a_id, registry.clone(), Relay { next: Some(to_b) }, &shutdown).await;
    let client_id = ca.identity("participation", HOUR).await;
    let to_a = MeshChannel::new(&client_id, &a.addr.to_string(), &TestCa::id("event")).expect("channel");

    let echoed = echo::call(to_a, "three hops").await.expect("three-hop call");
    assert!(echoed.text.starts_with("three hops"), "{echoed:?}");

    // client → A(server, client) → B(server, client) → C(server): six spans.
    let mut spans = Vec::new();
    eventually("the six spans reach the collector", Duration::from_secs(5), async || {
        let flushing = export.clone();
        tokio::task::spawn_blocking(move || flushing.flush()).await.expect("flush");
        spans = collector.spans().into_iter().map(|e| e.span).filter(|s| s.name.ends_with("Echo/Echo")).collect();
        spans.len() >= 6
    })
    .await;
    assert_eq!(spans.len(), 6, "{spans:#?}");
    let trace_id = spans[0].trace_id.clone();
    assert!(spans.iter().all(|s| s.trace_id == trace_id), "one trace: {spans:#?}");
    let roots: Vec<_> = spans.iter().filter(|s| s.parent_span_id.is_empty()).collect();
    assert_eq!(roots.len(), 1, "one root: {spans:#?}");
    // Walk the chain from the root: kinds alternate client (3) / server (2), each the child of the last.
    let (client, server) = (3, 2);
    let mut current = roots[0];
    let mut kinds = vec![current.kind];
    while let Some(child) = spans.iter().find(|s| s.parent_span_id == current.span_id) {
        kinds.push(child.kind);
        current = child;
    }
    assert_eq!(kinds, [client, server, client, server, client, server], "{spans:#?}");
    shutdown.trigger();
    tokio::task::spawn_blocking(move || export.shutdown()).await.expect("shutdown");
}
