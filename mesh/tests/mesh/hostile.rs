//! Hostile callers and dying replicas: what one request can do to everyone else's calls.
//!
//! - a handler that quotes a 20,000-character input in its error gets that error back to its
//!   caller, bounded, and the endpoint stays in rotation;
//! - a response whose headers exceed the client's limit fails that call only (a stream error),
//!   and never counts towards ejection;
//! - a replica killed under load (its sockets closed abruptly, like `kill -9`) costs at most the
//!   calls that were on the wire to it, also for methods that are not idempotent: every later call
//!   that reaches the dead address is sent on to the live one;
//! - an ejected replica that comes back is in rotation again within about a second (its health
//!   probe), not one real call per backoff.
//!
//! In each case a well-behaved client calling at the same time must see no failure at all.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use kem_mesh::Shutdown;
use kem_mesh::balance::Resolver;
use kem_mesh::client::{BalancedChannel, ClientConfig};
use kem_mesh::server::Serving;
use kem_mesh::testing::TestCa;
use kem_mesh::testing::echo::{self, EchoServer};
use prost_types::Any;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Request, Response, Status};

use crate::balance::serve;
use crate::support::{HOUR, eventually_holds};

/// Echo with two hostile behaviours chosen by the request text:
/// `not-found:<text>` answers NOT_FOUND quoting the whole text, `big-header:` answers OK with a
/// 100 KiB response header (over the client's 64 KiB header-list limit).
#[derive(Clone, Default)]
struct Quoting;

impl NamedService for Quoting {
    const NAME: &'static str = echo::SERVICE;
}

#[derive(Clone)]
struct QuotingUnary;

impl UnaryService<Any> for QuotingUnary {
    type Response = Any;
    type Future = BoxFuture<'static, Result<Response<Any>, Status>>;

    fn call(&mut self, request: Request<Any>) -> Self::Future {
        Box::pin(async move {
            let text = request.into_inner().type_url;
            if text.starts_with("not-found:") {
                return Err(Status::not_found(format!("no such thing: {text}")));
            }
            let mut response = Response::new(Any { type_url: text.clone(), value: Vec::new() });
            if text.starts_with("big-header:") {
                let huge = "h".repeat(100 * 1024).parse().map_err(|_| Status::internal("header"))?;
                response.metadata_mut().insert("x-huge", huge);
            }
            Ok(response)
        })
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Quoting {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = Grpc::new(tonic_prost::ProstCodec::<Any, Any>::default());
            Ok(grpc.unary(QuotingUnary, request).await)
        })
    }
}

/// Calls Echo in a loop from `workers` tasks until `stop`; returns (successes, failures).
fn victims(channel: &BalancedChannel, workers: usize, stop: &Arc<AtomicBool>) -> JoinSet<(u64, u64)> {
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let channel = channel.clone();
        let stop = stop.clone();
        set.spawn(async move {
            let (mut ok, mut failed) = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                match echo::call(channel.clone(), "victim").await {
                    Ok(_) => ok += 1,
                    Err(status) => {
                        failed += 1;
                        eprintln!("victim call failed: {status:?}");
                    }
                }
            }
            (ok, failed)
        });
    }
    set
}

async fn totals(mut set: JoinSet<(u64, u64)>) -> (u64, u64) {
    let mut sum = (0, 0);
    while let Some(joined) = set.join_next().await {
        let (ok, failed) = joined.expect("victim task");
        sum = (sum.0 + ok, sum.1 + failed);
    }
    sum
}

async fn quoting_servers(n: usize, shutdown: &Shutdown) -> (TestCa, Vec<Serving>, BalancedChannel) {
    let ca = TestCa::new();
    let server_id = ca.identity("event", HOUR).await;
    let client_id = ca.identity("participation", HOUR).await;
    let mut servers = Vec::new();
    for _ in 0..n {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        servers.push(serve(&server_id, listener, Quoting, shutdown).await);
    }
    let addrs: Vec<String> = servers.iter().map(|s| s.addr.to_string()).collect();
    let channel = BalancedChannel::new(
        &client_id,
        "event",
        &TestCa::id("event"),
        Resolver::fixed(addrs),
        ClientConfig::default(),
    )
    .expect("client");
    (ca, servers, channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_quoted_input_comes_back_bounded_and_ejects_nothing() {
    let shutdown = Shutdown::new();
    let (_ca, _servers, channel) = quoting_servers(2, &shutdown).await;
    let stop = Arc::new(AtomicBool::new(false));
    let victims = victims(&channel, 2, &stop);
    let huge = format!("not-found:{}", "가".repeat(20_000));
    for _ in 0..50 {
        let status = echo::call(channel.clone(), &huge).await.expect_err("NOT_FOUND");
        assert_eq!(status.code(), Code::NotFound, "{:?}", status.message().get(..200));
        assert!(status.message().len() <= 1024, "message of {} bytes", status.message().len());
        assert!(status.message().starts_with("no such thing: not-found:가") && status.message().ends_with('…'));
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = totals(victims).await;
    let counters = channel.counters().snapshot();
    eprintln!("quoted input: victims ok={ok} failed={failed} counters={counters:?}");
    assert_eq!(failed, 0, "a concurrent well-behaved client saw failures");
    assert!(ok > 0);
    assert_eq!(counters.ejections, 0, "an application error ejected an endpoint");
    shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_response_fails_its_own_call_only() {
    let shutdown = Shutdown::new();
    let (_ca, _servers, channel) = quoting_servers(2, &shutdown).await;
    let stop = Arc::new(AtomicBool::new(false));
    let victims = victims(&channel, 2, &stop);
    for _ in 0..30 {
        let status = echo::call(channel.clone(), "big-header:").await.expect_err("over the header-list limit");
        // tonic reports a reset stream as INTERNAL or UNKNOWN, never as the endpoint being gone.
        assert_ne!(status.code(), Code::Ok);
        let failure = std::error::Error::source(&status).map(kem_mesh::client::classify);
        assert_eq!(failure, Some(kem_mesh::client::Failure::Stream), "{status:?}");
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = totals(victims).await;
    let counters = channel.counters().snapshot();
    eprintln!("oversized responses: victims ok={ok} failed={failed} counters={counters:?}");
    assert_eq!(failed, 0, "a concurrent well-behaved client saw failures");
    assert_eq!(counters.ejections, 0, "a stream error ejected an endpoint");
    assert_eq!(counters.retries + counters.transparent_retries, 0, "a stream error was sent again");
    shutdown.trigger();
}

/// A TCP forwarder standing in for a replica's process: `kill` closes every socket at once and
/// stops listening, as the kernel does when a process dies; `start` listens again on the same
/// address (the process restarted).
struct Replica {
    addr: SocketAddr,
    backend: SocketAddr,
    tasks: JoinSet<()>,
}

impl Replica {
    async fn start(addr: SocketAddr, backend: SocketAddr) -> Replica {
        let listener = TcpListener::bind(addr).await.expect("bind the replica's address");
        let addr = listener.local_addr().expect("addr");
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(backend).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Replica { addr, backend, tasks }
    }

    /// Every socket closed at once (aborting the accept task drops its connections too).
    async fn kill(mut self) -> (SocketAddr, SocketAddr) {
        self.tasks.shutdown().await;
        (self.addr, self.backend)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replica_costs_at_most_the_calls_on_the_wire_even_when_not_idempotent() {
    let ca = TestCa::new();
    let server_id = ca.identity("event", HOUR).await;
    let client_id = ca.identity("participation", HOUR).await;
    let shutdown = Shutdown::new();
    let mut replicas = Vec::new();
    let mut served = Vec::new();
    for _ in 0..2 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let count = Arc::new(AtomicU64::new(0));
        let service = crate::balance::Counted { inner: EchoServer::default(), count: count.clone() };
        let serving = serve(&server_id, listener, service, &shutdown).await;
        replicas.push(Replica::start("127.0.0.1:0".parse().expect("addr"), serving.addr).await);
        served.push((serving, count));
    }
    let addrs: Vec<String> = replicas.iter().map(|r| r.addr.to_string()).collect();
    // Echo is not in kem's descriptors: without an override it is not idempotent.
    let channel = BalancedChannel::new(
        &client_id,
        "event",
        &TestCa::id("event"),
        Resolver::fixed(addrs),
        ClientConfig::default(),
    )
    .expect("client");
    let workers = 4;
    let stop = Arc::new(AtomicBool::new(false));
    let load = victims(&channel, workers, &stop);
    eventually_holds("both replicas get traffic", Duration::from_secs(5), || {
        served.iter().all(|(_, c)| c.load(Ordering::Relaxed) > 0)
    })
    .await;
    assert!(served.iter().all(|(_, c)| c.load(Ordering::Relaxed) > 0), "both replicas get traffic");

    let killed = replicas.remove(0);
    let (dead_addr, backend) = killed.kill().await;
    let killed_at = Instant::now();
    // Real time by design: down for a second of real traffic, it is ejected and its backoff grows.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // The process comes back on the same address.
    let back = Replica::start(dead_addr, backend).await;
    let back_at = Instant::now();
    let before = served[0].1.load(Ordering::Relaxed);
    eventually_holds("the restarted replica gets a call", Duration::from_secs(3), || {
        served[0].1.load(Ordering::Relaxed) > before
    })
    .await;
    let recovered = back_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = totals(load).await;
    let counters = channel.counters().snapshot();
    eprintln!(
        "kill -9 drill: ok={ok} failed={failed} back_in_rotation_after={recovered:?} since_kill={:?} {counters:?}",
        killed_at.elapsed()
    );
    // Only calls already written to the dead replica's sockets may fail: one per worker at most.
    assert!(failed <= workers as u64, "{failed} calls failed; at most {workers} were on the wire");
    assert!(counters.transparent_retries > 0 || failed > 0, "the dead address was never tried again");
    assert!(recovered < Duration::from_secs(2), "back in rotation after {recovered:?}");
    drop(back);
    shutdown.trigger();
}
