//! Retries: budgeted under a total outage, never for non-idempotent methods, fail-fast when
//! every endpoint is ejected.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use kem_mesh::Shutdown;
use kem_mesh::balance::Resolver;
use kem_mesh::client::BalancedChannel;
use kem_mesh::testing::TestCa;
use kem_mesh::testing::echo;
use prost_types::Any;
use tokio::net::TcpListener;
use tonic::Code;
use tonic::server::NamedService;

use crate::balance::{echo_config, serve};
use crate::support::HOUR;

/// Not in kem's descriptors and not overridden: never retried.
const CREATE: &str = "/kem.test.v1.Echo/Create";

/// Answers every call UNAVAILABLE, counting attempts per method and retry headers.
#[derive(Clone, Default)]
struct Down {
    idempotent: Arc<AtomicU64>,
    create: Arc<AtomicU64>,
    marked_retries: Arc<AtomicU64>,
}

impl NamedService for Down {
    const NAME: &'static str = echo::SERVICE;
}

impl tower::Service<http::Request<tonic::body::Body>> for Down {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let counter = if request.uri().path() == CREATE { &self.create } else { &self.idempotent };
        counter.fetch_add(1, Ordering::Relaxed);
        if request.headers().contains_key("grpc-previous-rpc-attempts") {
            self.marked_retries.fetch_add(1, Ordering::Relaxed);
        }
        Box::pin(async { Ok(tonic::Status::unavailable("down for the test").into_http()) })
    }
}

async fn unary(channel: BalancedChannel, path: &'static str) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<Any, Any>::default();
    grpc.unary(tonic::Request::new(Any::default()), http::uri::PathAndQuery::from_static(path), codec).await.map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_total_outage_stays_within_the_retry_budget_and_non_idempotent_calls_are_never_retried() {
    let ca = TestCa::new();
    let server_id = ca.identity("event", HOUR).await;
    let client_id = ca.identity("participation", HOUR).await;
    let shutdown = Shutdown::new();
    let down = Down::default();
    let mut addrs = Vec::new();
    for _ in 0..2 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        addrs.push(serve(&server_id, listener, down.clone(), &shutdown).await.addr.to_string());
    }
    let mut config = echo_config();
    // Measure the budget alone: failure accrual would otherwise stop the traffic first.
    config.endpoint.failure_accrual = u32::MAX;
    let channel = BalancedChannel::new(&client_id, "event", &TestCa::id("event"), Resolver::fixed(addrs), config)
        .expect("client");

    const REQUESTS: u64 = 300;
    let per_worker = REQUESTS / 6;
    let workers: Vec<_> = (0..6)
        .map(|_| {
            let channel = channel.clone();
            tokio::spawn(async move {
                for _ in 0..per_worker {
                    let status = echo::call(channel.clone(), "x").await.expect_err("outage");
                    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    let attempts = down.idempotent.load(Ordering::Relaxed);
    let snapshot = channel.counters().snapshot();
    let bound = 1.2 * REQUESTS as f64 + 10.0 * 10.0;
    eprintln!(
        "outage: requests={REQUESTS} attempts={attempts} ratio={:.2} bound={bound} counters={snapshot:?}",
        attempts as f64 / REQUESTS as f64
    );
    assert!(attempts > REQUESTS, "idempotent calls were retried");
    assert!(attempts as f64 <= bound, "{attempts} attempts for {REQUESTS} requests");
    assert!(snapshot.budget_exhausted > 0);
    assert_eq!(attempts, REQUESTS + snapshot.retries);
    assert_eq!(down.marked_retries.load(Ordering::Relaxed), snapshot.retries, "retries carry the header");

    for _ in 0..50 {
        let status = unary(channel.clone(), CREATE).await.expect_err("outage");
        assert_eq!(status.code(), Code::Unavailable);
    }
    assert_eq!(down.create.load(Ordering::Relaxed), 50, "non-idempotent calls are sent exactly once");
    shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_endpoint_ejected_calls_fail_fast() {
    let ca = TestCa::new();
    let client_id = ca.identity("participation", HOUR).await;
    // Two ports nobody listens on.
    let mut addrs = Vec::new();
    for _ in 0..2 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        addrs.push(listener.local_addr().expect("addr").to_string());
    }
    let mut config = echo_config();
    // Long enough that no probe starts while the test measures fail-fast.
    config.endpoint.min_ejection = Duration::from_secs(10);
    let channel = BalancedChannel::new(&client_id, "event", &TestCa::id("event"), Resolver::fixed(addrs), config)
        .expect("client");
    let mut calls = 0;
    loop {
        let status = echo::call(channel.clone(), "x").await.expect_err("nobody listens");
        assert_eq!(status.code(), Code::Unavailable);
        calls += 1;
        if status.message().contains("no healthy endpoints for event") {
            break;
        }
        assert!(calls < 40, "never failed fast: {status:?}");
    }
    eprintln!("{:?}", channel.counters().snapshot());
    let started = tokio::time::Instant::now();
    let status = echo::call(channel.clone(), "x").await.expect_err("all ejected");
    let elapsed = started.elapsed();
    eprintln!("fail-fast after {calls} calls, then in {elapsed:?}: {status:?} {:?}", channel.counters().snapshot());
    assert!(status.message().contains("no healthy endpoints for event"), "{status:?}");
    assert!(elapsed < Duration::from_millis(20), "fails fast: {elapsed:?}");
    assert_eq!(channel.counters().snapshot().ejections, 2);
}
