//! Deadlines across three hops: A (client) → B (server that calls C) → C.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use kem_mesh::Shutdown;
use kem_mesh::balance::Resolver;
use kem_mesh::client::BalancedChannel;
use kem_mesh::deadline::{GRPC_TIMEOUT, InboundDeadlineLayer, parse_grpc_timeout};
use kem_mesh::identity::WorkloadIdentity;
use kem_mesh::testing::TestCa;
use kem_mesh::testing::echo::{self, EchoServer};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tonic::Code;
use tonic::server::NamedService;
use tower::Layer;

use crate::balance::{echo_config, serve};
use crate::support::{HOUR, eventually_holds};

/// One hop: records the `grpc-timeout` it received, calls `next` (if any), then answers like Echo
/// after `delay`. Counts handlers that were dropped before finishing.
#[derive(Clone)]
struct Hop {
    seen: Arc<parking_lot::Mutex<Vec<Duration>>>,
    next: Option<BalancedChannel>,
    delay: Duration,
    cancelled: Arc<AtomicU64>,
}

impl NamedService for Hop {
    const NAME: &'static str = echo::SERVICE;
}

struct CancelGuard(Option<Arc<AtomicU64>>);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Hop {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        if let Some(timeout) = request.headers().get(GRPC_TIMEOUT).and_then(parse_grpc_timeout) {
            self.seen.lock().push(timeout);
        }
        let hop = self.clone();
        Box::pin(async move {
            let mut guard = CancelGuard(Some(hop.cancelled.clone()));
            if let Some(next) = hop.next {
                // A fresh outbound call: its deadline comes only from the inbound one.
                if let Err(status) = echo::call(next, "inner").await {
                    guard.0 = None;
                    return Ok(status.into_http());
                }
            }
            let response = tower::Service::call(&mut EchoServer { delay: hop.delay }, request).await;
            guard.0 = None;
            response
        })
    }
}

impl Hop {
    fn new(next: Option<BalancedChannel>, delay: Duration) -> Hop {
        Hop { seen: Arc::default(), next, delay, cancelled: Arc::default() }
    }
}

async fn serve_hop(identity: &WorkloadIdentity, hop: Hop, shutdown: &Shutdown) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let service = InboundDeadlineLayer.layer(hop);
    serve(identity, listener, service, shutdown).await.addr.to_string()
}

fn client(identity: &WorkloadIdentity, addr: String, deadline: Duration) -> BalancedChannel {
    let mut config = echo_config();
    config.default_deadline = deadline;
    BalancedChannel::new(identity, "event", &TestCa::id("event"), Resolver::fixed([addr]), config).expect("client")
}

/// A → B → C; returns (A's client, B, C).
async fn three_hops(
    ca: &TestCa,
    c_delay: Duration,
    a_deadline: Duration,
    shutdown: &Shutdown,
) -> (BalancedChannel, Hop, Hop) {
    let server_id = ca.identity("event", HOUR).await;
    let c = Hop::new(None, c_delay);
    let c_addr = serve_hop(&server_id, c.clone(), shutdown).await;
    // B's own default deadline is long: only propagation can make it shorter.
    let b = Hop::new(Some(client(&server_id, c_addr, Duration::from_secs(30))), Duration::ZERO);
    let b_addr = serve_hop(&server_id, b.clone(), shutdown).await;
    let a = client(&ca.identity("gateway", HOUR).await, b_addr, a_deadline);
    (a, b, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_innermost_hop_sees_a_smaller_deadline() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let (a, b, c) = three_hops(&ca, Duration::ZERO, Duration::from_secs(2), &shutdown).await;
    echo::call(a, "outer").await.expect("three hops");
    let (b_seen, c_seen) = (b.seen.lock().clone(), c.seen.lock().clone());
    eprintln!("deadlines seen: B={b_seen:?} C={c_seen:?}");
    assert_eq!((b_seen.len(), c_seen.len()), (1, 1));
    assert!(b_seen[0] <= Duration::from_secs(2) && b_seen[0] > Duration::from_secs(1));
    assert!(c_seen[0] < b_seen[0], "C {:?} < B {:?}", c_seen[0], b_seen[0]);
    shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_innermost_call_surfaces_deadline_exceeded_at_the_edge_and_is_cancelled() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let deadline = Duration::from_millis(500);
    let (a, _b, c) = three_hops(&ca, Duration::from_secs(5), deadline, &shutdown).await;
    let started = Instant::now();
    let status = echo::call(a, "outer").await.expect_err("C is too slow");
    let elapsed = started.elapsed();
    eprintln!("slow C: {:?} after {elapsed:?}", status.code());
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        elapsed >= deadline - Duration::from_millis(50) && elapsed < deadline + Duration::from_millis(200),
        "{elapsed:?}"
    );
    eventually_holds("C's handler is cancelled", Duration::from_secs(1), || c.cancelled.load(Ordering::Relaxed) > 0)
        .await;
    shutdown.trigger();
}
