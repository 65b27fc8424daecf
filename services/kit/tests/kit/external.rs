//! The external-API client base against a local HTTP server on 127.0.0.1 that plays scripted
//! provider behaviour: errors, slowness, throttling, outages. The server counts what reaches it.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use kem_kit::external::{
    Backoff, ProviderClient, ProviderConfig, ProviderError, ProviderResponse, Verdict, default_verdict,
};
use kem_mesh::breaker::{BreakerConfig, BreakerState};
use reqwest::header::{HeaderName, HeaderValue};
use tokio::task::JoinHandle;

// ---- the scripted provider ----

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn new(status: u16, body: &str) -> Reply {
        Reply { status, headers: Vec::new(), body: body.to_owned(), delay: Duration::ZERO }
    }

    fn json(status: u16, body: &str) -> Reply {
        Reply::new(status, body).header("content-type", "application/json")
    }

    fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

#[derive(Debug, Clone)]
struct Hit {
    method: String,
    path: String,
    query: Option<String>,
    idempotency_key: Option<String>,
    at: Instant,
}

#[derive(Default)]
struct Script {
    /// Replies served once each, in order, per path.
    next: HashMap<String, VecDeque<Reply>>,
    /// The reply once the queue is empty (default: 200 `{"ok":true}`).
    always: HashMap<String, Reply>,
    hits: Vec<Hit>,
}

struct FakeProvider {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

impl FakeProvider {
    async fn start() -> FakeProvider {
        let script = Arc::new(Mutex::new(Script::default()));
        let router = Router::new().fallback(serve).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake provider");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("fake provider serves");
        });
        FakeProvider { addr, script, task }
    }

    fn then(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.lock().next.entry(path.to_owned()).or_default().extend(replies);
    }

    fn always(&self, path: &str, reply: Reply) {
        self.lock().always.insert(path.to_owned(), reply);
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        self.lock().hits.iter().filter(|h| h.path == path).cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().expect("script lock")
    }

    /// A client of this server under `name`, with quick retries and generous timeouts; `tune`
    /// adjusts it per test.
    fn client(&self, tune: impl FnOnce(&mut ProviderConfig)) -> ProviderClient {
        let mut config = ProviderConfig::new("nts", format!("http://{}/api", self.addr));
        config.timeout = Duration::from_secs(5);
        config.connect_timeout = Duration::from_secs(1);
        config.backoff = Backoff { initial: Duration::from_millis(5), max: Duration::from_millis(20) };
        config.deadline = Duration::from_secs(20);
        tune(&mut config);
        ProviderClient::new(config).expect("valid provider configuration")
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(State(script): State<Arc<Mutex<Script>>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let reply = {
        let mut script = script.lock().expect("script lock");
        script.hits.push(Hit {
            method: request.method().to_string(),
            path: path.clone(),
            query: request.uri().query().map(str::to_owned),
            idempotency_key: request.headers().get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned),
            at: Instant::now(),
        });
        match script.next.get_mut(&path).and_then(VecDeque::pop_front) {
            Some(reply) => reply,
            None => script.always.get(&path).cloned().unwrap_or_else(|| Reply::json(200, r#"{"ok":true}"#)),
        }
    };
    // The scripted provider latency: the client's real timeouts and deadlines are what is tested.
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response.body(Body::from(reply.body)).expect("valid scripted response")
}

// ---- the tests ----

#[tokio::test]
async fn a_successful_call_returns_the_body_and_counts_ok() {
    let fake = FakeProvider::start().await;
    fake.always("/api/nts-businessman/v1/status", Reply::json(200, r#"{"status_code":"OK","match_cnt":1}"#));
    let client = fake.client(|_| {});
    let body: serde_json::Value = client
        .post("/nts-businessman/v1/status")
        .query("serviceKey", "a+b/c=")
        .query("returnType", "JSON")
        .json(&serde_json::json!({"b_no": ["1248100998"]}))
        .idempotent()
        .send_json()
        .await
        .expect("success");
    assert_eq!(body["status_code"], "OK");
    let hits = fake.hits("/api/nts-businessman/v1/status");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].method, "POST");
    assert_eq!(hits[0].query.as_deref(), Some("serviceKey=a%2Bb%2Fc%3D&returnType=JSON"), "the key is encoded");
    let counters = client.counters();
    assert_eq!((counters.requests("ok"), counters.retries.load(std::sync::atomic::Ordering::Relaxed)), (1, 0));
    assert!(counters.mean_latency().is_some());
}

#[tokio::test]
async fn server_errors_are_retried_for_an_idempotent_call() {
    let fake = FakeProvider::start().await;
    fake.then("/api/flaky", [Reply::new(503, "busy"), Reply::json(500, r#"{"message":"oops"}"#)]);
    let client = fake.client(|_| {});
    let response = client.get("/flaky").send().await.expect("third attempt succeeds");
    assert_eq!((response.status().as_u16(), response.attempt()), (200, 3));
    assert_eq!(fake.hits("/api/flaky").len(), 3);
    assert_eq!(client.counters().retries.load(std::sync::atomic::Ordering::Relaxed), 2);
    assert_eq!(client.counters().requests("ok"), 1);

    // Out of attempts: the last error is returned.
    fake.always("/api/down", Reply::new(502, "bad gateway"));
    let error = client.get("/down").send().await.expect_err("always 502");
    assert!(matches!(error, ProviderError::Transient { status: Some(502), .. }), "{error}");
    assert_eq!(fake.hits("/api/down").len(), 3, "max_attempts = 3");
}

#[tokio::test]
async fn a_post_is_retried_only_with_an_idempotency_key() {
    let fake = FakeProvider::start().await;
    fake.then("/api/publish", [Reply::new(503, "busy")]);
    let client = fake.client(|_| {});
    let error = client.post("/publish").json(&serde_json::json!({"event": 1})).send().await.expect_err("503");
    assert!(matches!(error, ProviderError::Transient { status: Some(503), .. }), "{error}");
    assert_eq!(fake.hits("/api/publish").len(), 1, "a POST without an idempotency key is never repeated");

    fake.then("/api/publish-keyed", [Reply::new(503, "busy")]);
    let response = client
        .post("/publish-keyed")
        .idempotency_key("event-42-instagram")
        .json(&serde_json::json!({"event": 42}))
        .send()
        .await
        .expect("retried, then accepted");
    assert_eq!(response.attempt(), 2);
    let keys: Vec<_> = fake.hits("/api/publish-keyed").into_iter().map(|h| h.idempotency_key).collect();
    assert_eq!(keys, vec![Some("event-42-instagram".to_owned()); 2], "the same key on every attempt");
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after_seconds_or_date() {
    let fake = FakeProvider::start().await;
    let client = fake.client(|_| {});

    fake.then("/api/limited", [Reply::json(429, r#"{"message":"slow down"}"#).header("retry-after", "1")]);
    let started = Instant::now();
    client.get("/limited").send().await.expect("succeeds after waiting");
    let hits = fake.hits("/api/limited");
    assert_eq!(hits.len(), 2);
    let gap = hits[1].at - hits[0].at;
    assert!(gap >= Duration::from_millis(950), "Retry-After: 1 honoured, waited {gap:?} (backoff alone is 5 ms)");
    assert!(started.elapsed() < Duration::from_secs(5));

    // HTTP-date form (second resolution: 2 s ahead means a wait of 1–2 s).
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
    fake.then("/api/limited-date", [Reply::new(429, "").header("retry-after", &at)]);
    client.get("/limited-date").send().await.expect("succeeds after the date");
    let hits = fake.hits("/api/limited-date");
    assert!(hits[1].at - hits[0].at >= Duration::from_millis(900), "waited {:?}", hits[1].at - hits[0].at);
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_is_reported_not_awaited() {
    let fake = FakeProvider::start().await;
    fake.always("/api/quota", Reply::new(429, "daily quota exceeded").header("retry-after", "120"));
    let client = fake.client(|c| c.deadline = Duration::from_secs(3));
    let started = Instant::now();
    let error = client.get("/quota").send().await.expect_err("throttled");
    assert!(started.elapsed() < Duration::from_secs(1), "gave up at once: {:?}", started.elapsed());
    assert!(
        matches!(&error, ProviderError::RateLimited { retry_after: Some(d), .. } if *d == Duration::from_secs(120)),
        "{error}"
    );
    assert_eq!(fake.hits("/api/quota").len(), 1);
    let status = error.to_status();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(status.message().contains("retry in 120 s"), "{}", status.message());
}

#[tokio::test]
async fn a_slow_provider_times_out_within_the_attempt_timeout_and_the_deadline() {
    let fake = FakeProvider::start().await;
    fake.always("/api/slow", Reply::json(200, "{}").delayed(Duration::from_secs(3)));

    let client = fake.client(|c| {
        c.timeout = Duration::from_millis(200);
        c.max_attempts = 1;
    });
    let started = Instant::now();
    let error = client.get("/slow").send().await.expect_err("too slow");
    let elapsed = started.elapsed();
    assert!(matches!(error, ProviderError::Timeout { .. }), "{error}");
    assert!(elapsed >= Duration::from_millis(190) && elapsed < Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(error.to_status().code(), tonic::Code::DeadlineExceeded);
    assert_eq!(client.counters().requests("timeout"), 1);

    // Retries stop at the overall deadline, however many attempts are allowed.
    let client = fake.client(|c| {
        c.timeout = Duration::from_millis(300);
        c.max_attempts = 10;
        c.deadline = Duration::from_millis(700);
    });
    let started = Instant::now();
    let error = client.get("/slow").send().await.expect_err("too slow");
    let elapsed = started.elapsed();
    assert!(matches!(error, ProviderError::Timeout { .. }), "{error}");
    assert!(elapsed < Duration::from_millis(1_200), "the 700 ms deadline bounds the request: {elapsed:?}");
    assert!(client.counters().retries.load(std::sync::atomic::Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn non_json_error_bodies_are_quoted_not_parsed() {
    let fake = FakeProvider::start().await;
    let html = "<html>\n<head><title>502 Bad Gateway</title></head>\n<body><center><h1>502 Bad Gateway</h1></center></body>\n</html>";
    fake.always("/api/cdn", Reply::new(502, html).header("content-type", "text/html"));
    fake.always("/api/plain", Reply::new(400, "missing b_no").header("content-type", "text/plain"));
    fake.always("/api/denied", Reply::new(401, ""));
    fake.always("/api/html-ok", Reply::new(200, "<html>maintenance</html>"));
    let client = fake.client(|c| c.max_attempts = 1);

    match client.get("/cdn").send().await {
        Err(ProviderError::Transient { status: Some(502), detail, .. }) => {
            assert!(detail.contains("502 Bad Gateway") && !detail.contains('\n'), "{detail}")
        }
        other => panic!("expected a transient error, got {other:?}"),
    }
    match client.get("/plain").send().await {
        Err(ProviderError::Invalid { status: 400, detail, .. }) => assert_eq!(detail, "missing b_no"),
        other => panic!("expected an invalid-request error, got {other:?}"),
    }
    let denied = client.get("/denied").send().await.expect_err("401");
    assert!(matches!(&denied, ProviderError::Auth { status: 401, detail, .. } if detail == "(empty body)"), "{denied}");
    assert_eq!(denied.to_status().code(), tonic::Code::Internal);
    let garbled = client.get("/html-ok").send_json::<serde_json::Value>().await.expect_err("not JSON");
    assert!(matches!(&garbled, ProviderError::UnexpectedResponse { status: 200, .. }), "{garbled}");
}

#[tokio::test]
async fn a_provider_classifier_reads_errors_inside_a_200() {
    // NTS's gateway reports an unregistered key as {"code": -4, ...}, reportedly with HTTP 200.
    let fake = FakeProvider::start().await;
    fake.always("/api/status", Reply::json(200, r#"{"code":-4,"msg":"등록되지 않은 인증키 입니다."}"#));
    let client = fake.client(|_| {});
    let nts_verdict = |response: &ProviderResponse| {
        let body: serde_json::Value = response.json().ok()?;
        match body.get("code")?.as_i64()? {
            0 => None,
            -4 | -401 => Some(Verdict::Auth(response.detail())),
            -10 => Some(Verdict::RateLimited { retry_after: None, detail: response.detail() }),
            _ => Some(default_verdict(response)),
        }
    };
    let error = client.post("/status").idempotent().classify(nts_verdict).send().await.expect_err("gateway error");
    assert!(matches!(&error, ProviderError::Auth { status: 200, detail, .. } if detail.contains("인증키")), "{error}");
    assert_eq!(fake.hits("/api/status").len(), 1, "auth failures are not retried");
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_then_closes_after_a_successful_probe() {
    let fake = FakeProvider::start().await;
    fake.always("/api/outage", Reply::new(500, "internal error"));
    let open_for = Duration::from_millis(500);
    let client = fake.client(|c| {
        c.max_attempts = 1;
        c.breaker = BreakerConfig {
            failure_rate_threshold: 0.5,
            minimum_calls: 4,
            window: Duration::from_secs(10),
            window_buckets: 10,
            open_duration: open_for,
            half_open_probes: 1,
        };
    });

    for _ in 0..4 {
        let error = client.get("/outage").send().await.expect_err("500");
        assert!(matches!(error, ProviderError::Transient { .. }), "{error}");
    }
    assert_eq!(client.breaker().state(), BreakerState::Open);

    // Open: fail fast, nothing reaches the provider.
    let mut retry_after = Duration::ZERO;
    for _ in 0..5 {
        let started = Instant::now();
        let error = client.get("/outage").send().await.expect_err("breaker open");
        assert!(started.elapsed() < Duration::from_millis(50), "failed fast: {:?}", started.elapsed());
        let ProviderError::BreakerOpen { retry_after: after, .. } = error else {
            panic!("expected BreakerOpen: {error}")
        };
        assert!(after <= open_for);
        retry_after = after;
        assert_eq!(error.to_status().code(), tonic::Code::Unavailable);
    }
    assert_eq!(fake.hits("/api/outage").len(), 4, "calls while open never reached the provider");
    assert_eq!(client.counters().requests("breaker_open"), 5);
    assert_eq!(client.breaker().counters().rejected.load(std::sync::atomic::Ordering::Relaxed), 5);

    // The provider recovers; after the open period one probe goes through and closes the breaker.
    fake.always("/api/outage", Reply::json(200, r#"{"ok":true}"#));
    // The breaker's open period must really pass: real HTTP calls follow, so tokio time cannot be paused.
    tokio::time::sleep(retry_after + Duration::from_millis(20)).await;
    assert_eq!(client.breaker().state(), BreakerState::HalfOpen);
    client.get("/outage").send().await.expect("the probe succeeds");
    assert_eq!(client.breaker().state(), BreakerState::Closed);
    assert_eq!(fake.hits("/api/outage").len(), 5);
    client.get("/outage").send().await.expect("closed again");
}

#[tokio::test]
async fn refused_input_does_not_open_the_breaker() {
    let fake = FakeProvider::start().await;
    fake.always("/api/validate", Reply::json(400, r#"{"status_code":"BAD_JSON_REQUEST"}"#));
    let client = fake.client(|c| {
        c.breaker = BreakerConfig { failure_rate_threshold: 0.5, minimum_calls: 2, ..BreakerConfig::default() };
    });
    for _ in 0..10 {
        let error = client.post("/validate").idempotent().send().await.expect_err("400");
        assert!(matches!(&error, ProviderError::Invalid { detail, .. } if detail == "BAD_JSON_REQUEST"), "{error}");
        assert_eq!(error.to_status().code(), tonic::Code::InvalidArgument);
    }
    assert_eq!(client.breaker().state(), BreakerState::Closed, "the provider did its job: our input was wrong");
    assert_eq!(fake.hits("/api/validate").len(), 10, "invalid requests are not retried");
}

#[tokio::test]
async fn a_dead_port_is_a_transient_failure_that_trips_the_breaker() {
    let closed = kem_testkit::net::free_addr();
    let mut config = ProviderConfig::new("stable-diffusion", format!("http://{closed}"));
    config.max_attempts = 2;
    config.backoff = Backoff { initial: Duration::from_millis(1), max: Duration::from_millis(5) };
    config.breaker = BreakerConfig { minimum_calls: 4, ..BreakerConfig::default() };
    let client = ProviderClient::new(config).expect("valid configuration");
    let header = (HeaderName::from_static("x-api-key"), HeaderValue::from_static("sk-test"));
    for _ in 0..2 {
        let error = client
            .post("/v1/generate")
            .idempotency_key("img-1")
            .header(header.0.clone(), header.1.clone())
            .send()
            .await;
        let error = error.expect_err("nothing listens there");
        assert!(
            matches!(&error, ProviderError::Transient { status: None, detail, .. } if detail.contains("connect")),
            "{error}"
        );
    }
    assert_eq!(client.breaker().state(), BreakerState::Open, "2 requests × 2 attempts, all failed");
}
