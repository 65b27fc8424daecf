//! The balanced client: P2C over peak-EWMA, failure accrual, recovery.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use kem_mesh::Shutdown;
use kem_mesh::balance::Resolver;
use kem_mesh::client::{BalancedChannel, ClientConfig};
use kem_mesh::identity::WorkloadIdentity;
use kem_mesh::server::{RoleServer, Serving, Transport};
use kem_mesh::testing::TestCa;
use kem_mesh::testing::echo::{self, EchoServer};
use kem_proto::contract::Idempotency;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tonic::server::NamedService;

use crate::support::{HOUR, echo_policy, eventually_holds};

/// Counts the calls a service receives.
#[derive(Clone)]
pub struct Counted<S> {
    pub inner: S,
    pub count: Arc<AtomicU64>,
}

impl<S: NamedService> NamedService for Counted<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tower::Service<http::Request<tonic::body::Body>> for Counted<S>
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        >,
    S::Future: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        self.count.fetch_add(1, Ordering::Relaxed);
        Box::pin(self.inner.call(request))
    }
}

/// Serves `service` over mTLS as `identity` on `listener`.
pub async fn serve<S>(identity: &WorkloadIdentity, listener: TcpListener, service: S, shutdown: &Shutdown) -> Serving
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    RoleServer::new("event")
        .transport(Transport::MutualTls(identity.clone()))
        .policy(echo_policy(), Some(TestCa::id("gateway")))
        .drain_timeout(Duration::from_millis(200))
        .add_service(service)
        .serve(listener, shutdown.clone())
        .await
        .expect("serve")
}

/// A counted echo server with `delay` on a fresh loopback port.
pub async fn counted_echo(
    identity: &WorkloadIdentity,
    delay: Duration,
    shutdown: &Shutdown,
) -> (Serving, Arc<AtomicU64>) {
    let count = Arc::new(AtomicU64::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let service = Counted { inner: EchoServer { delay }, count: count.clone() };
    (serve(identity, listener, service, shutdown).await, count)
}

/// Test client config: Echo is declared idempotent (it is not in kem's descriptors).
pub fn echo_config() -> ClientConfig {
    ClientConfig::default().with_idempotency_override(echo::PATH, Idempotency::Idempotent)
}

/// Runs `workers` concurrent callers until `stop`; returns (successes, failures).
fn load(channel: BalancedChannel, workers: usize, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<(u64, u64)>> {
    (0..workers)
        .map(|_| {
            let channel = channel.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0, 0);
                while !stop.load(Ordering::Relaxed) {
                    match echo::call(channel.clone(), "x").await {
                        Ok(_) => ok += 1,
                        Err(status) => {
                            failed += 1;
                            eprintln!("failed call: {status:?}");
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect()
}

async fn totals(handles: Vec<tokio::task::JoinHandle<(u64, u64)>>) -> (u64, u64) {
    let mut sum = (0, 0);
    for h in handles {
        let (ok, failed) = h.await.expect("worker");
        sum = (sum.0 + ok, sum.1 + failed);
    }
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_endpoint_fails_no_idempotent_call_and_its_return_gets_traffic() {
    let ca = TestCa::new();
    let server_id = ca.identity("event", HOUR).await;
    let client_id = ca.identity("participation", HOUR).await;
    let shutdowns: Vec<Shutdown> = (0..3).map(|_| Shutdown::new()).collect();
    let mut servers = Vec::new();
    for s in &shutdowns {
        servers.push(counted_echo(&server_id, Duration::ZERO, s).await);
    }
    let addrs: Vec<String> = servers.iter().map(|(s, _)| s.addr.to_string()).collect();
    let mut config = echo_config();
    config.endpoint.max_ejection = Duration::from_secs(2);
    let channel =
        BalancedChannel::new(&client_id, "event", &TestCa::id("event"), Resolver::fixed(addrs.clone()), config)
            .expect("client");
    let stop = Arc::new(AtomicBool::new(false));
    let workers = load(channel.clone(), 6, stop.clone());
    eventually_holds("all three get traffic", Duration::from_secs(5), || {
        servers.iter().all(|(_, c)| c.load(Ordering::Relaxed) > 0)
    })
    .await;
    assert!(servers.iter().all(|(_, c)| c.load(Ordering::Relaxed) > 0), "all three get traffic");

    // Kill endpoint 0.
    let (killed, _) = servers.remove(0);
    let killed_at = Instant::now();
    shutdowns[0].trigger();
    killed.task.await.expect("join").expect("drained");
    eventually_holds(
        "the killed endpoint is ejected",
        Duration::from_secs(5).saturating_sub(killed_at.elapsed()),
        || channel.counters().snapshot().ejections > 0,
    )
    .await;
    let ejected = killed_at.elapsed();
    let before: Vec<u64> = servers.iter().map(|(_, c)| c.load(Ordering::Relaxed)).collect();
    eventually_holds("both survivors carry traffic", Duration::from_millis(700), || {
        servers.iter().zip(&before).all(|((_, c), b)| c.load(Ordering::Relaxed) > *b)
    })
    .await;
    let during: Vec<u64> = servers.iter().zip(&before).map(|((_, c), b)| c.load(Ordering::Relaxed) - b).collect();
    assert!(during.iter().all(|n| *n > 0), "both survivors carry traffic: {during:?}");

    // Bring it back on the same address.
    let back = Shutdown::new();
    let listener = TcpListener::bind(killed.addr).await.expect("rebind");
    let count = Arc::new(AtomicU64::new(0));
    let revived_at = Instant::now();
    let _revived =
        serve(&server_id, listener, Counted { inner: EchoServer::default(), count: count.clone() }, &back).await;
    eventually_holds(
        "the revived endpoint gets traffic",
        Duration::from_secs(10).saturating_sub(revived_at.elapsed()),
        || count.load(Ordering::Relaxed) > 0,
    )
    .await;
    let recovered = revived_at.elapsed();
    // Real time by design: the load runs on against the revived endpoint; failures after its return count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = totals(workers).await;
    let snapshot = channel.counters().snapshot();
    let revived_share = count.load(Ordering::Relaxed);
    eprintln!(
        "kill/revive: ok={ok} failed={failed} ejected_after={ejected:?} recovered_after={recovered:?} \
         revived_calls={revived_share} counters={snapshot:?}"
    );
    assert_eq!(failed, 0, "no idempotent call failed");
    assert!(revived_share > 0);
    for s in shutdowns.iter().skip(1) {
        s.trigger();
    }
    back.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_gets_a_small_share() {
    let ca = TestCa::new();
    let server_id = ca.identity("event", HOUR).await;
    let client_id = ca.identity("participation", HOUR).await;
    let shutdown = Shutdown::new();
    let (slow, slow_count) = counted_echo(&server_id, Duration::from_millis(50), &shutdown).await;
    let (fast1, c1) = counted_echo(&server_id, Duration::ZERO, &shutdown).await;
    let (fast2, c2) = counted_echo(&server_id, Duration::ZERO, &shutdown).await;
    let addrs = [slow.addr, fast1.addr, fast2.addr].map(|a| a.to_string());
    let channel =
        BalancedChannel::new(&client_id, "event", &TestCa::id("event"), Resolver::fixed(addrs), echo_config())
            .expect("client");
    let stop = Arc::new(AtomicBool::new(false));
    let workers = load(channel, 6, stop.clone());
    // Real time by design: the share is measured over 3 s of real load against a real 50 ms delay.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = totals(workers).await;
    let counts = [&slow_count, &c1, &c2].map(|c| c.load(Ordering::Relaxed));
    let share = counts[0] as f64 / counts.iter().sum::<u64>() as f64;
    eprintln!("slow endpoint: counts={counts:?} share={share:.3} ok={ok} failed={failed}");
    assert_eq!(failed, 0);
    assert!(share < 0.15, "slow share {share:.3} (counts {counts:?})");
    shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_endpoints_are_resolved_and_used() {
    let ca = TestCa::new();
    let server_id = ca.identity("event", HOUR).await;
    let client_id = ca.identity("participation", HOUR).await;
    let shutdown = Shutdown::new();
    let (server, count) = counted_echo(&server_id, Duration::ZERO, &shutdown).await;
    // `localhost` may also resolve to ::1, where nothing listens: failure accrual ejects it and
    // retries of the idempotent call go to 127.0.0.1.
    let resolver =
        Resolver::Dns { host: "localhost".into(), port: server.addr.port(), refresh: Duration::from_millis(200) };
    let channel =
        BalancedChannel::new(&client_id, "event", &TestCa::id("event"), resolver, echo_config()).expect("client");
    for _ in 0..20 {
        echo::call(channel.clone(), "x").await.expect("echo over DNS-resolved endpoints");
    }
    let endpoints = channel.endpoints();
    eprintln!("dns endpoints: {endpoints:?}");
    assert!(endpoints.contains(&server.addr.to_string()), "{endpoints:?}");
    assert_eq!(count.load(Ordering::Relaxed), 20);
    shutdown.trigger();
}
