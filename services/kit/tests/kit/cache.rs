//! The cache on a real Redis and on moka (one suite for both), single-flight, negative caching,
//! and cache-aside reads while Redis is unreachable or goes away: never an error, always the
//! source's value.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fred::prelude::KeysInterface;
use kem_kit::Secret;
use kem_kit::cache::{Cache, CacheAside, CacheError, CacheExt, MemoryCache, RedisCache, RedisCacheConfig};
use kem_testkit::redis::{TestRedis, redis_url};
use kem_testkit::{eventually, eventually_holds};
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// Bound on every "wait until" loop of this module.
const PATIENCE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Business {
    number: String,
    status: String,
}

fn business(number: &str) -> Business {
    Business { number: number.to_owned(), status: "계속사업자".to_owned() }
}

async fn redis_cache(redis: &TestRedis) -> RedisCache {
    let cache = RedisCache::connect(RedisCacheConfig::new(Secret::new(redis_url()), redis.prefix.clone()))
        .expect("valid Redis configuration");
    assert!(cache.wait_connected(PATIENCE).await, "RedisCache cannot connect to {}", redis_url());
    cache
}

// ---- the suite both backends run ----

async fn get_set_ttl_delete(cache: Arc<dyn Cache>) {
    assert_eq!(cache.get("absent").await.expect("get"), None);
    cache.set("k", "v1".into(), Duration::from_secs(60)).await.expect("set");
    assert_eq!(cache.get("k").await.expect("get").as_deref(), Some(&b"v1"[..]));
    cache.set("k", "v2".into(), Duration::from_secs(60)).await.expect("overwrite");
    assert_eq!(cache.get("k").await.expect("get").as_deref(), Some(&b"v2"[..]));
    cache.delete("k").await.expect("delete");
    assert_eq!(cache.get("k").await.expect("get"), None);
    cache.delete("k").await.expect("deleting an absent key is fine");

    // TTL: present at once, gone after it.
    cache.set("short", "x".into(), Duration::from_millis(300)).await.expect("set");
    assert!(cache.get("short").await.expect("get").is_some());
    let set_at = Instant::now();
    eventually("the 300 ms entry expires", PATIENCE, || async { cache.get("short").await.expect("get").is_none() })
        .await;
    assert!(set_at.elapsed() >= Duration::from_millis(200), "expired too early: {:?}", set_at.elapsed());

    // Overwriting an entry gives it the new TTL.
    cache.set("renewed", "a".into(), Duration::from_millis(200)).await.expect("set");
    cache.set("renewed", "b".into(), Duration::from_secs(60)).await.expect("set");
    // The first, 200 ms TTL must really pass: Redis and moka expire entries on real time.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(cache.get("renewed").await.expect("get").as_deref(), Some(&b"b"[..]));

    // Typed helpers.
    cache.set_json("typed", &business("1248100998"), Duration::from_secs(60)).await.expect("set_json");
    assert_eq!(cache.get_json::<Business>("typed").await.expect("get_json"), Some(business("1248100998")));
    let wrong = cache.get_json::<Vec<u32>>("typed").await;
    assert!(matches!(wrong, Err(CacheError::Decode { .. })), "{wrong:?}");
}

async fn single_flight(cache: Arc<dyn Cache>) {
    let aside = CacheAside::new(cache);
    let calls = Arc::new(AtomicUsize::new(0));
    let mut readers = JoinSet::new();
    for _ in 0..100 {
        let (aside, calls) = (aside.clone(), calls.clone());
        readers.spawn(async move {
            let loading = aside.clone();
            aside
                .get_or_load("hot", Duration::from_secs(60), || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // The load lasts until every reader has missed: 100 concurrent misses.
                    eventually_holds("all 100 readers missed", PATIENCE, || {
                        loading.counters().snapshot().misses == 100
                    })
                    .await;
                    Ok::<_, String>(business("1248100998"))
                })
                .await
        });
    }
    while let Some(result) = readers.join_next().await {
        assert_eq!(result.expect("reader task").expect("no error"), business("1248100998"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "100 concurrent misses, one load");
    let stats = aside.counters().snapshot();
    assert_eq!((stats.loads, stats.coalesced + stats.hits, stats.errors), (1, 99, 0), "{stats:?}");
    // The value is cached for the next reader.
    let again =
        aside.get_or_load("hot", Duration::from_secs(60), || async { Err::<Business, _>("must not load") }).await;
    assert_eq!(again, Ok(business("1248100998")));
}

async fn negative_caching(cache: Arc<dyn Cache>) {
    let aside = CacheAside::new(cache);
    let calls = Arc::new(AtomicUsize::new(0));
    let lookup = |key: &'static str, negative: Option<Duration>| {
        let (aside, calls) = (aside.clone(), calls.clone());
        async move {
            aside
                .get_or_load_optional(key, Duration::from_secs(60), negative, || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    Ok::<Option<Business>, String>(None)
                })
                .await
                .expect("no error")
        }
    };
    // Without negative caching every lookup of an absent key reaches the source.
    assert_eq!(lookup("absent-uncached", None).await, None);
    assert_eq!(lookup("absent-uncached", None).await, None);
    assert_eq!(calls.swap(0, Ordering::SeqCst), 2);

    // With it, "not found" is remembered for its (short) TTL, then asked again.
    assert_eq!(lookup("absent", Some(Duration::from_millis(300))).await, None);
    assert_eq!(lookup("absent", Some(Duration::from_millis(300))).await, None);
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the second lookup was a negative hit");
    assert_eq!(aside.counters().snapshot().negative_hits, 1);
    eventually("the negative entry expires", PATIENCE, || async {
        lookup("absent", Some(Duration::from_millis(300))).await;
        calls.load(Ordering::SeqCst) == 2
    })
    .await;

    // A found value is cached for the positive TTL and read back as Some.
    let found = aside
        .get_or_load_optional("present", Duration::from_secs(60), Some(Duration::from_secs(1)), || async {
            Ok::<_, String>(Some(business("2208162517")))
        })
        .await;
    assert_eq!(found, Ok(Some(business("2208162517"))));
    let cached = aside
        .get_or_load_optional("present", Duration::from_secs(60), None, || async {
            Err::<Option<Business>, _>("loaded")
        })
        .await;
    assert_eq!(cached, Ok(Some(business("2208162517"))));
}

#[tokio::test]
async fn redis_get_set_ttl_delete() {
    let redis = TestRedis::new().await;
    let cache = redis_cache(&redis).await;
    get_set_ttl_delete(Arc::new(cache.clone())).await;
    // Keys live under the configured prefix, with the TTL in Redis itself.
    cache.set("prefixed", "1".into(), Duration::from_secs(30)).await.expect("set");
    let ttl: i64 = redis.client.pttl(redis.key("prefixed")).await.expect("PTTL");
    assert!(ttl > 25_000 && ttl <= 30_000, "PTTL {ttl}");
    cache.close().await;
    redis.cleanup().await;
}

#[tokio::test]
async fn memory_get_set_ttl_delete() {
    get_set_ttl_delete(Arc::new(MemoryCache::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_single_flight_loads_once_for_100_concurrent_misses() {
    let redis = TestRedis::new().await;
    let cache = redis_cache(&redis).await;
    single_flight(Arc::new(cache.clone())).await;
    cache.close().await;
    redis.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_single_flight_loads_once_for_100_concurrent_misses() {
    single_flight(Arc::new(MemoryCache::default())).await;
}

#[tokio::test]
async fn redis_negative_caching() {
    let redis = TestRedis::new().await;
    let cache = redis_cache(&redis).await;
    negative_caching(Arc::new(cache.clone())).await;
    cache.close().await;
    redis.cleanup().await;
}

#[tokio::test]
async fn memory_negative_caching() {
    negative_caching(Arc::new(MemoryCache::default())).await;
}

#[tokio::test]
async fn loader_errors_reach_every_waiter_and_are_not_cached() {
    let aside = CacheAside::new(Arc::new(MemoryCache::default()));
    let calls = Arc::new(AtomicUsize::new(0));
    let load = || {
        let (aside, calls) = (aside.clone(), calls.clone());
        async move {
            let loading = aside.clone();
            aside
                .get_or_load("db-down", Duration::from_secs(60), || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    // The first load lasts until the second caller has missed and waits for it.
                    eventually_holds("the second caller missed", PATIENCE, || {
                        loading.counters().snapshot().misses >= 2
                    })
                    .await;
                    Err::<Business, _>(tonic::Status::unavailable("database unreachable"))
                })
                .await
        }
    };
    let (a, b) = tokio::join!(load(), load());
    for result in [a, b] {
        assert_eq!(result.expect_err("the loader failed").code(), tonic::Code::Unavailable);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the waiter shared the leader's error");
    assert!(load().await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "errors are not cached");
}

#[tokio::test]
async fn a_waiter_takes_over_when_the_loading_caller_is_cancelled() {
    let aside = CacheAside::new(Arc::new(MemoryCache::default()));
    let leader = {
        let aside = aside.clone();
        tokio::spawn(async move {
            // A source that never answers.
            aside.get_or_load("slow", Duration::from_secs(60), std::future::pending::<Result<Business, String>>).await
        })
    };
    eventually_holds("the leader loads", PATIENCE, || aside.counters().snapshot().loads == 1).await;
    let follower = {
        let aside = aside.clone();
        tokio::spawn(async move {
            aside
                .get_or_load("slow", Duration::from_secs(60), || async { Ok::<_, String>(business("taken over")) })
                .await
        })
    };
    eventually_holds("the follower waits for the leader", PATIENCE, || aside.counters().snapshot().misses == 2).await;
    leader.abort();
    let value = tokio::time::timeout(PATIENCE, follower).await.expect("the follower finished").expect("task");
    assert_eq!(value, Ok(business("taken over")));
}

// ---- Redis unavailable ----

/// A cache-aside read of `key` whose source always has `business(key)`; counts source loads.
async fn read(aside: &CacheAside, key: &str, loads: &AtomicUsize) -> Result<Business, String> {
    aside
        .get_or_load(key, Duration::from_secs(60), || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(business(key))
        })
        .await
}

#[tokio::test]
async fn redis_at_a_closed_port_never_fails_a_read_and_counts_errors() {
    let closed = kem_testkit::net::free_addr();
    let cache = RedisCache::connect(RedisCacheConfig::new(Secret::new(format!("redis://{closed}")), "kem-test:"))
        .expect("valid configuration");
    let aside = CacheAside::new(Arc::new(cache.clone()));
    let loads = AtomicUsize::new(0);
    let started = Instant::now();
    for i in 0..200 {
        let key = format!("k{}", i % 20);
        assert_eq!(read(&aside, &key, &loads).await, Ok(business(&key)), "read {i}");
        if i % 10 == 0 {
            aside.invalidate(&key).await; // best effort, returns nothing to fail on
            aside.put(&key, &business(&key), Duration::from_secs(60)).await;
        }
    }
    let elapsed = started.elapsed();
    let stats = aside.counters().snapshot();
    assert_eq!(loads.load(Ordering::SeqCst), 200, "every read served by the source");
    assert_eq!((stats.hits, stats.loads), (0, 200), "{stats:?}");
    assert!(stats.errors >= 400, "each failed GET and SET counted: {stats:?}");
    assert!(elapsed < Duration::from_secs(5), "a dead Redis must not stall reads: 200 reads took {elapsed:?}");
    assert!(!cache.is_connected());
    cache.close().await;
}

/// A TCP relay in front of Redis that can be shut down (listener and every open connection) and
/// started again on the same address.
struct Relay {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Relay {
    async fn start(listen: SocketAddr, upstream: SocketAddr) -> (Relay, SocketAddr) {
        let listener = TcpListener::bind(listen).await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        connections.spawn(async move {
                            if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                        });
                    }
                }
            }
            // Dropping the set aborts every relayed connection: Redis "goes away".
            connections.shutdown().await;
        });
        (Relay { stop, task }, addr)
    }

    async fn kill(self) {
        let _ = self.stop.send(());
        self.task.await.expect("relay task");
    }
}

/// `redis://[auth@]host:port[/db]` → the same URL pointing at `addr`.
fn redirect(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").expect("scheme://");
    let (auth, hostpath) = match rest.rsplit_once('@') {
        Some((auth, hostpath)) => (format!("{auth}@"), hostpath),
        None => (String::new(), rest),
    };
    let path = hostpath.find('/').map(|i| &hostpath[i..]).unwrap_or_default();
    format!("{scheme}://{auth}{addr}{path}")
}

async fn upstream_addr(url: &str) -> SocketAddr {
    let rest = url.split_once("://").expect("scheme://").1;
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h).split('/').next().expect("host");
    tokio::net::lookup_host(hostport).await.expect("resolve Redis").next().expect("an address")
}

#[tokio::test]
async fn redis_going_away_mid_loop_serves_every_read_from_the_source_then_recovers() {
    let redis = TestRedis::new().await;
    let url = redis_url();
    let upstream = upstream_addr(&url).await;
    let (relay, addr) = Relay::start("127.0.0.1:0".parse().expect("addr"), upstream).await;
    let mut config = RedisCacheConfig::new(Secret::new(redirect(&url, addr)), redis.prefix.clone());
    config.reconnect_max = Duration::from_millis(200);
    let cache = RedisCache::connect(config).expect("valid configuration");
    assert!(cache.wait_connected(PATIENCE).await, "cannot reach Redis through the relay at {addr}");
    let aside = CacheAside::new(Arc::new(cache.clone()));
    let loads = AtomicUsize::new(0);
    let key = |i: usize| format!("k{}", i % 10);

    // Redis up: 10 loads, then hits.
    for i in 0..100 {
        assert_eq!(read(&aside, &key(i), &loads).await, Ok(business(&key(i))), "read {i}");
    }
    let up = aside.counters().snapshot();
    assert_eq!((up.loads, up.hits, up.errors), (10, 90, 0), "{up:?}");

    // Redis goes away mid-loop: every read still answers, from the source, without stalling.
    relay.kill().await;
    let mut slowest = Duration::ZERO;
    for i in 100..200 {
        let started = Instant::now();
        assert_eq!(read(&aside, &key(i), &loads).await, Ok(business(&key(i))), "read {i} with Redis gone");
        slowest = slowest.max(started.elapsed());
    }
    let down = aside.counters().snapshot();
    assert_eq!(down.loads - up.loads, 100, "every read while Redis is gone came from the source: {down:?}");
    assert_eq!(down.hits, up.hits);
    assert!(down.errors >= 100, "cache failures are counted: {down:?}");
    assert!(slowest < Duration::from_secs(1), "a read waited {slowest:?} on the dead cache");

    // Redis comes back on the same address: the client reconnects by itself and hits resume.
    let (relay, _) = Relay::start(addr, upstream).await;
    assert!(cache.wait_connected(PATIENCE).await, "the cache did not reconnect to {addr}");
    for i in 200..300 {
        assert_eq!(read(&aside, &key(i), &loads).await, Ok(business(&key(i))), "read {i} after recovery");
    }
    let back = aside.counters().snapshot();
    assert_eq!((back.loads, back.hits - down.hits), (down.loads, 100), "{back:?}");
    assert_eq!(loads.load(Ordering::SeqCst) as u64, back.loads);

    cache.close().await;
    relay.kill().await;
    redis.cleanup().await;
}
