//! The edge under attack: every case asserts its exact answer, and that a well-behaved client
//! calling at the same time sees no failure at all.
//!
//! Timeouts beyond any clock, malformed ones, idempotency keys that are empty, too long or
//! reused for another request, 50 concurrent creates with one key (in-process cache and Redis),
//! over-long and control-character path variables, a backend whose response headers exceed the
//! limit, `RetryInfo` becoming `Retry-After`, and overload refused fast.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kem_gateway::edge::EdgeConfig;
use kem_gateway::protect::{EdgeAdmission, EdgeLimits, RateLimit};
use kem_kit::cache::{MemoryCache, RedisCache, RedisCacheConfig};
use kem_mesh::admission::AdmissionConfig;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::support::{Setup, client, start_full};

fn generous_limits() -> EdgeLimits {
    let mut limits = EdgeLimits::default();
    let generous = RateLimit::per_second(100_000, 100_000).expect("limit");
    limits.default_route.limit = generous;
    for route in limits.routes.values_mut() {
        route.limit = generous;
    }
    limits.per_ip = generous;
    limits
}

/// GETs an existing event in a loop until `stop`; returns the failures (status, body).
fn victim(setup: &Setup, stop: &Arc<AtomicBool>) -> tokio::task::JoinHandle<(u64, Vec<(u16, String)>)> {
    let (url, token, stop) = (setup.url("/api/v1/events/ev-victim"), setup.token("victim"), stop.clone());
    tokio::spawn(async move {
        let (mut ok, mut failures) = (0, Vec::new());
        let http = client();
        while !stop.load(Ordering::Relaxed) {
            match http.get(&url).bearer_auth(&token).send().await {
                Ok(response) if response.status() == 200 => ok += 1,
                Ok(response) => failures.push((response.status().as_u16(), response.text().await.unwrap_or_default())),
                Err(error) => failures.push((0, error.to_string())),
            }
        }
        (ok, failures)
    })
}

async fn assert_victim_unharmed(stop: Arc<AtomicBool>, victim: tokio::task::JoinHandle<(u64, Vec<(u16, String)>)>) {
    stop.store(true, Ordering::Relaxed);
    let (ok, failures) = victim.await.expect("victim");
    assert!(failures.is_empty(), "the well-behaved client saw {} failures: {:?}", failures.len(), &failures[..1]);
    assert!(ok > 0, "the well-behaved client made no call");
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_headers_are_capped_or_refused_never_a_panic() {
    let setup = start_full(EdgeConfig::default(), generous_limits(), 1, Arc::new(MemoryCache::new(1000))).await;
    let stop = Arc::new(AtomicBool::new(false));
    let victim = victim(&setup, &stop);
    let token = setup.token("attacker");
    let cases: [(&str, &str, u16); 12] = [
        ("x-request-timeout", "1e20", 400),
        ("x-request-timeout", "18446744073709551616", 200),
        ("x-request-timeout", "1e23ms", 400),
        ("x-request-timeout", "99999999999999999999999999999999", 200),
        ("x-request-timeout", "-1", 400),
        ("x-request-timeout", "NaN", 400),
        ("x-request-timeout", "inf", 400),
        ("x-request-timeout", "0", 400),
        ("grpc-timeout", "99999999H", 200),
        ("grpc-timeout", "123456789S", 400),
        ("grpc-timeout", "10x", 400),
        ("grpc-timeout", "", 400),
    ];
    for (header, value, expected) in cases {
        // Without a token too: the deadline is read on every route before any backend call.
        let response =
            client().get(setup.url("/api/v1/events/ev-1")).bearer_auth(&token).header(header, value).send().await;
        let (status, body) = json_of(response.expect("an answer, not a dropped connection")).await;
        assert_eq!(status, expected, "{header}: {value:?} → {body}");
        if expected == 400 {
            let field = &body["details"][0]["fieldViolations"][0]["field"];
            assert!(field.as_str().is_some_and(|f| f.eq_ignore_ascii_case(header)), "{header}: {body}");
        }
    }
    assert_victim_unharmed(stop, victim).await;
    setup.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_are_validated_and_bound_to_the_whole_request() {
    let setup = start_full(EdgeConfig::default(), generous_limits(), 1, Arc::new(MemoryCache::new(1000))).await;
    let token = setup.token("owner-1");
    let post = |path: &str, key: &str, body: Value| {
        client().post(setup.url(path)).bearer_auth(&token).header("idempotency-key", key).json(&body).send()
    };
    for bad in ["", &"k".repeat(256), "with space"] {
        let (status, body) = json_of(post("/api/v1/events", bad, json!({"title": "x"})).await.expect("answer")).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body["details"][0]["fieldViolations"][0]["field"], "Idempotency-Key");
    }
    assert_eq!(setup.backend.calls.load(Ordering::SeqCst), 0, "refused keys never reach the service");
    let (first, created) =
        json_of(post("/api/v1/events?requestId=r1", "k-1", json!({"title": "x"})).await.expect("a")).await;
    assert_eq!(first, 200, "{created}");
    // Same key, other query string: another request, refused (not a replay of r1's event).
    let (status, body) =
        json_of(post("/api/v1/events?requestId=r2", "k-1", json!({"title": "x"})).await.expect("a")).await;
    assert_eq!(status, 422, "{body}");
    // Same key, other body. (Other paths: the fingerprint unit tests, and the end-to-end
    // hostile suite with two events' `:recommend`.)
    let (status, body) =
        json_of(post("/api/v1/events?requestId=r1", "k-1", json!({"title": "y"})).await.expect("a")).await;
    assert_eq!(status, 422, "{body}");
    // The identical request replays.
    let replay = post("/api/v1/events?requestId=r1", "k-1", json!({"title": "x"})).await.expect("a");
    assert_eq!(replay.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(json_of(replay).await.1, created);
    assert_eq!(setup.backend.calls.load(Ordering::SeqCst), 1);
    // A 255-character key is fine.
    let (status, _) = json_of(post("/api/v1/events", &"k".repeat(255), json!({"title": "y"})).await.expect("a")).await;
    assert_eq!(status, 200);
    setup.shutdown.trigger();
}

/// 20 rounds × 50 concurrent creates sharing one key per round: exactly one effect per round,
/// every other request answered 409 (still running) or the replay.
async fn one_effect_per_key(setup: &Setup) {
    let token = setup.token("owner-1");
    let http = client();
    for round in 0..20 {
        let before = setup.backend.calls.load(Ordering::SeqCst);
        let key = format!("round-{round}");
        let mut set = JoinSet::new();
        for _ in 0..50 {
            let request = http
                .post(setup.url("/api/v1/events"))
                .bearer_auth(&token)
                .header("idempotency-key", &key)
                .json(&json!({"title": "concurrent"}));
            set.spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
        }
        let mut statuses = Vec::new();
        while let Some(joined) = set.join_next().await {
            statuses.push(joined.expect("task").expect("answer"));
        }
        let effects = setup.backend.calls.load(Ordering::SeqCst) - before;
        assert_eq!(effects, 1, "round {round}: {effects} creates; statuses {statuses:?}");
        assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "round {round}: {statuses:?}");
    }
}

/// Admission control is off here: on a busy test machine it may rightly refuse part of a
/// 50-request burst (503), which is not what these tests are about.
fn without_admission() -> EdgeConfig {
    EdgeConfig { admission: EdgeAdmission::new(None), ..EdgeConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_with_one_key_have_one_effect_in_process() {
    let setup = start_full(without_admission(), generous_limits(), 1, Arc::new(MemoryCache::new(10_000))).await;
    one_effect_per_key(&setup).await;
    setup.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_with_one_key_have_one_effect_on_redis() {
    let redis = kem_testkit::redis::TestRedis::new().await;
    let config = RedisCacheConfig::new(kem_kit::Secret::new(kem_testkit::redis::redis_url()), redis.prefix.clone());
    let cache = RedisCache::connect(config).expect("redis cache");
    assert!(
        cache.wait_connected(Duration::from_secs(5)).await,
        "Redis is required: {}",
        kem_testkit::redis::redis_url()
    );
    let setup = start_full(without_admission(), generous_limits(), 1, Arc::new(cache)).await;
    one_effect_per_key(&setup).await;
    setup.shutdown.trigger();
    redis.cleanup().await;
}

fn hostile_paths() -> Vec<(String, &'static str)> {
    vec![
        (format!("/api/v1/events/{}", "e".repeat(9_000)), "at most 128 characters"),
        (format!("/api/v1/events/{}", "가".repeat(129)), "at most 128 characters"),
        ("/api/v1/events/%00".to_owned(), "control characters"),
        ("/api/v1/events/a%0Ab".to_owned(), "single line"),
        ("/api/v1/events/a%E2%80%AEb".to_owned(), "invisible formatting characters"),
        ("/api/v1/events/%1B%5B31m".to_owned(), "control characters"),
    ]
}

async fn attack_with_paths(setup: &Setup) {
    let token = setup.token("attacker");
    for (path, reason) in hostile_paths() {
        let (status, body) = json_of(client().get(setup.url(&path)).bearer_auth(&token).send().await.expect("a")).await;
        assert_eq!(status, 400, "{}: {body}", &path[..path.len().min(40)]);
        let violation = &body["details"][0]["fieldViolations"][0];
        assert_eq!(violation["field"], "eventId", "{body}");
        assert!(violation["description"].as_str().is_some_and(|d| d.contains(reason)), "{body}");
        assert!(body.to_string().len() < 1024, "the answer quotes the input: {} bytes", body.to_string().len());
    }
    // An unknown 16,000-character path is a 404 quoting a short prefix.
    let long = format!("/api/v1/{}", "x".repeat(16_000));
    let (status, body) = json_of(client().get(setup.url(&long)).send().await.expect("a")).await;
    assert_eq!(status, 404);
    assert!(body["message"].as_str().is_some_and(|m| m.len() < 200), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_path_variables_are_400_before_any_service_call() {
    let setup = start_full(EdgeConfig::default(), generous_limits(), 1, Arc::new(MemoryCache::new(1000))).await;
    attack_with_paths(&setup).await;
    assert_eq!(setup.backend.calls.load(Ordering::SeqCst), 0, "an attack reached the service");
    // Again, with a well-behaved client calling meanwhile.
    let stop = Arc::new(AtomicBool::new(false));
    let victim = victim(&setup, &stop);
    for _ in 0..5 {
        attack_with_paths(&setup).await;
    }
    assert_victim_unharmed(stop, victim).await;
    setup.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_backend_response_is_502_for_that_request_only() {
    let setup = start_full(EdgeConfig::default(), generous_limits(), 2, Arc::new(MemoryCache::new(1000))).await;
    let stop = Arc::new(AtomicBool::new(false));
    let victim = victim(&setup, &stop);
    let token = setup.token("attacker");
    for _ in 0..30 {
        let (status, body) =
            json_of(client().get(setup.url("/api/v1/events/huge-header")).bearer_auth(&token).send().await.expect("a"))
                .await;
        assert_eq!(status, 502, "{body}");
    }
    assert_victim_unharmed(stop, victim).await;
    setup.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_info_from_a_service_becomes_retry_after() {
    let setup = start_full(EdgeConfig::default(), generous_limits(), 1, Arc::new(MemoryCache::new(1000))).await;
    let token = setup.token("owner-1");
    let response = client().get(setup.url("/api/v1/events/unavailable-7")).bearer_auth(&token).send().await.expect("a");
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("7"));
    let response = client().get(setup.url("/api/v1/events/code-8")).bearer_auth(&token).send().await.expect("a");
    assert_eq!(response.status(), 429);
    setup.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_fast_with_retry_after() {
    let admission = AdmissionConfig {
        initial_limit: 2,
        min_limit: 2,
        max_limit: 2,
        max_queue_wait: Duration::from_millis(20),
        ..AdmissionConfig::default()
    };
    let config = EdgeConfig { admission: EdgeAdmission::new(Some(admission)), ..EdgeConfig::default() };
    let setup = start_full(config, generous_limits(), 1, Arc::new(MemoryCache::new(1000))).await;
    let token = setup.token("owner-1");
    // Two slow calls hold both slots.
    let slow: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client().get(setup.url("/api/v1/events/slow")).bearer_auth(&token).send()))
        .collect();
    let admitted = Arc::new(AtomicU64::new(0));
    kem_testkit::eventually_holds("the slow calls reach the backend", Duration::from_secs(3), || {
        setup.backend.calls.load(Ordering::SeqCst) >= 2
    })
    .await;
    let started = tokio::time::Instant::now();
    let response = client().get(setup.url("/api/v1/events/ev-1")).bearer_auth(&token).send().await.expect("a");
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    assert!(waited < Duration::from_secs(1), "refused after {waited:?}, not at the deadline");
    for call in slow {
        let response = call.await.expect("join").expect("answer");
        assert_eq!(response.status(), 200);
        admitted.fetch_add(1, Ordering::Relaxed);
    }
    // Once the slots are free, calls go through again.
    let response = client().get(setup.url("/api/v1/events/ev-1")).bearer_auth(&token).send().await.expect("a");
    assert_eq!(response.status(), 200);
    setup.shutdown.trigger();
}
