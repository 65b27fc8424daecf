//! The REST API through the edge: transcoding, errors, auth, deadlines, idempotency, limits.

use std::time::{Duration, Instant};

use kem_gateway::edge::EdgeConfig;
use kem_gateway::protect::EdgeLimits;
use serde_json::{Value, json};

use crate::support::{client, start};

#[tokio::test]
async fn get_transcodes_path_and_answers_canonical_json() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let response = client()
        .get(setup.url("/api/v1/events/ev-7"))
        .bearer_auth(setup.token("owner-1"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["event"]["eventId"], "ev-7");
    assert_eq!(body["event"]["ownerId"], "owner-1", "the verified subject reaches the service");
    assert_eq!(body["event"]["budget"]["amountKrw"], "9007199254740993", "int64 as a string");
    assert_eq!(body["event"]["status"], "EVENT_STATUS_DRAFT", "enums by name");
    assert_eq!(body["event"]["createTime"], "2026-09-21T14:13:20Z", "Timestamp in RFC 3339");
    setup.shutdown.trigger();
}

#[tokio::test]
async fn post_body_patch_mask_and_query_parameters() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let token = setup.token("owner-1");
    let created: Value = client()
        .post(setup.url("/api/v1/events"))
        .bearer_auth(&token)
        .json(&json!({"title": "Lunch rush", "objective": "EVENT_OBJECTIVE_NEW_CUSTOMERS"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    assert_eq!(created["event"]["title"], "Lunch rush");
    assert_eq!(created["event"]["ownerId"], "owner-1");

    let patched: Value = client()
        .patch(setup.url("/api/v1/events/ev-1"))
        .bearer_auth(&token)
        .json(&json!({"title": "Dinner", "prize": {"name": "Coffee"}}))
        .send()
        .await
        .expect("patch")
        .json()
        .await
        .expect("json");
    assert_eq!(patched["event"]["description"], "prize.name,title", "mask derived from the body: {patched}");

    let listed: Value = client()
        .get(setup.url("/api/v1/events?pageSize=5&pageToken=abc&status=EVENT_STATUS_PUBLISHED"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let token_echo = listed["nextPageToken"].as_str().expect("echo");
    assert!(token_echo.starts_with("size=5;token=abc;status="), "{token_echo}");
    setup.shutdown.trigger();
}

#[tokio::test]
async fn every_grpc_code_becomes_its_http_status_with_a_status_body() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let token = setup.token("owner-1");
    let expected = [
        (3, 400),
        (5, 404),
        (6, 409),
        (7, 403),
        (8, 429),
        (9, 400),
        (10, 409),
        (12, 501),
        (13, 500),
        (14, 503),
        (16, 401),
        (2, 500),
        (1, 499),
    ];
    for (code, http) in expected {
        let response = client()
            .get(setup.url(&format!("/api/v1/events/code-{code}")))
            .bearer_auth(&token)
            .header("x-request-timeout", "20")
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), http, "gRPC code {code}");
        let body: Value = response.json().await.expect("json status body");
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["details"][0]["reason"], "SCRIPTED", "{body}");
    }
    setup.shutdown.trigger();
}

#[tokio::test]
async fn malformed_input_gets_clear_400s_and_routing_errors_404_405() {
    let setup = start(EdgeConfig { body_limit: 1024, ..EdgeConfig::default() }, EdgeLimits::default()).await;
    let token = setup.token("owner-1");
    let post = |body: &'static str| {
        client()
            .post(setup.url("/api/v1/events"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let r = post("{not json").await.expect("r");
    assert_eq!(r.status(), 400);
    let r = post(r#"{"title": "x", "bogus": true}"#).await.expect("r");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert!(body["message"].as_str().unwrap_or_default().contains("bogus"), "{body}");
    let r = post(r#"{"title": 12}"#).await.expect("r");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["details"][0]["fieldViolations"][0]["field"], "event.title", "{body}");

    let big = "x".repeat(4096);
    let r = client()
        .post(setup.url("/api/v1/events"))
        .bearer_auth(&token)
        .body(format!("{{\"title\":\"{big}\"}}"))
        .send()
        .await
        .expect("r");
    assert_eq!(r.status(), 413);

    let r = client().get(setup.url("/api/v1/nowhere")).send().await.expect("r");
    assert_eq!(r.status(), 404);
    let r = client().put(setup.url("/api/v1/events/e1")).bearer_auth(&token).send().await.expect("r");
    assert_eq!(r.status(), 405);
    assert!(r.headers().get("allow").is_some());
    setup.shutdown.trigger();
}

#[tokio::test]
async fn bad_tokens_are_401_and_spoofed_user_headers_never_arrive() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let url = setup.url("/api/v1/events/ev-1");
    let r = client().get(&url).send().await.expect("r");
    assert_eq!(r.status(), 401, "missing token");
    assert!(r.headers().contains_key("www-authenticate"));

    let good = setup.token("owner-1");
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    // Forged payload: another subject under the original signature.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value = serde_json::from_slice(&b64.decode(&parts[1]).expect("b64")).expect("claims");
    claims["sub"] = json!("owner-2");
    parts[1] = b64.encode(claims.to_string());
    let forged = parts.join(".");
    let none = format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    let expired = {
        let (token, _) = setup
            .issuer
            .issue_at("owner-1", Default::default(), std::time::SystemTime::now() - Duration::from_secs(3600))
            .expect("old");
        token
    };
    let wrong_kid = {
        let other = kem_kit::jwt::Issuer::new(
            kem_kit::jwt::SigningKey::generate().expect("key"),
            crate::support::ISSUER,
            crate::support::AUDIENCE,
        );
        other.issue("owner-1", Default::default()).expect("t").0
    };
    let wrong_aud = {
        let key = kem_kit::jwt::SigningKey::from_pkcs8_der(setup.issuer.current_key().pkcs8_der()).expect("key");
        kem_kit::jwt::Issuer::new(key, crate::support::ISSUER, "someone-else")
            .issue("owner-1", Default::default())
            .expect("t")
            .0
    };
    for (name, token) in [
        ("forged", forged),
        ("alg none", none),
        ("expired", expired),
        ("unknown kid", wrong_kid),
        ("wrong audience", wrong_aud),
    ] {
        let r = client().get(&url).bearer_auth(&token).send().await.expect("r");
        assert_eq!(r.status(), 401, "{name}");
    }

    // A client-supplied end-user header is not forwarded: the service sees the token's subject.
    let body: Value = client()
        .get(&url)
        .bearer_auth(&good)
        .header(kem_kit::runtime::OWNER_METADATA, "owner-evil")
        .send()
        .await
        .expect("r")
        .json()
        .await
        .expect("json");
    assert_eq!(body["event"]["ownerId"], "owner-1");
    setup.shutdown.trigger();
}

#[tokio::test]
async fn a_short_client_deadline_on_a_slow_backend_is_504_on_time() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let started = Instant::now();
    let r = client()
        .get(setup.url("/api/v1/events/slow"))
        .bearer_auth(setup.token("owner-1"))
        .header("grpc-timeout", "100m")
        .send()
        .await
        .expect("r");
    let took = started.elapsed();
    assert_eq!(r.status(), 504);
    assert!(took < Duration::from_millis(1500), "504 after {took:?}, want ~100 ms");
    setup.shutdown.trigger();
}

#[tokio::test]
async fn the_same_idempotency_key_creates_once() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let token = setup.token("owner-1");
    let create = || {
        client()
            .post(setup.url("/api/v1/events"))
            .bearer_auth(&token)
            .header("idempotency-key", "k-123")
            .json(&json!({"title": "Once"}))
            .send()
    };
    let first: Value = create().await.expect("first").json().await.expect("json");
    let second = create().await.expect("second");
    assert_eq!(second.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let second: Value = second.json().await.expect("json");
    assert_eq!(first, second, "the replay returns the first result");
    assert_eq!(setup.backend.calls.load(std::sync::atomic::Ordering::SeqCst), 1, "created once");
    let other_body = client()
        .post(setup.url("/api/v1/events"))
        .bearer_auth(&token)
        .header("idempotency-key", "k-123")
        .json(&json!({"title": "Different"}))
        .send()
        .await
        .expect("r");
    assert_eq!(other_body.status(), 422);
    setup.shutdown.trigger();
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let mut limits = EdgeLimits::default();
    limits.default_route.limit = kem_gateway::protect::RateLimit::per_minute(2, 2).expect("limit");
    let setup = start(EdgeConfig::default(), limits).await;
    let token = setup.token("owner-1");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let r = client().get(setup.url("/api/v1/events/ev-1")).bearer_auth(&token).send().await.expect("r");
        if r.status() == 429 {
            assert!(r.headers().contains_key("retry-after"), "{:?}", r.headers());
            let body: Value = r.json().await.expect("a google.rpc.Status body");
            assert_eq!(body["code"], 8, "{body}");
            statuses.push(429);
            continue;
        }
        assert!(r.headers().contains_key("ratelimit-remaining"), "{:?}", r.headers());
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 429, 429]);
    setup.shutdown.trigger();
}

#[tokio::test]
async fn health_openapi_jwks_and_cors() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    assert_eq!(client().get(setup.url("/healthz")).send().await.expect("r").status(), 200);
    assert_eq!(client().get(setup.url("/readyz")).send().await.expect("r").status(), 200);
    let spec: Value = client().get(setup.url("/openapi.json")).send().await.expect("r").json().await.expect("json");
    assert_eq!(spec["openapi"].as_str().map(|v| v.starts_with("3.1")), Some(true));
    let jwks: Value =
        client().get(setup.url("/.well-known/jwks.json")).send().await.expect("r").json().await.expect("json");
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    let preflight = client()
        .request(reqwest::Method::OPTIONS, setup.url("/api/v1/events"))
        .header("origin", "https://app.kem.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("r");
    assert_eq!(
        preflight.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("https://app.kem.example")
    );
    let docs = client().get(setup.url("/docs")).send().await.expect("r");
    assert_eq!(docs.status(), 200);
    setup.shutdown.trigger();
}

#[tokio::test]
async fn large_responses_are_gzipped_when_accepted_small_ones_are_not() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let spec = client().get(setup.url("/openapi.json")).header("accept-encoding", "gzip").send().await.expect("r");
    assert_eq!(spec.headers().get("content-encoding").and_then(|v| v.to_str().ok()), Some("gzip"));
    assert!(spec.headers().get_all("vary").iter().any(|v| v.to_str().is_ok_and(|v| v.contains("accept-encoding"))));
    let bytes = spec.bytes().await.expect("body");
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip magic");
    // Without Accept-Encoding: plain JSON.
    let plain = client().get(setup.url("/openapi.json")).send().await.expect("r");
    assert!(plain.headers().get("content-encoding").is_none());
    assert!(bytes.len() * 3 < plain.bytes().await.expect("body").len(), "the document compresses well");
    // A small API answer is not worth compressing.
    let event = client()
        .get(setup.url("/api/v1/events/ev-7"))
        .bearer_auth(setup.token("owner-1"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("r");
    assert_eq!(event.status(), 200);
    assert!(event.headers().get("content-encoding").is_none());
    // A large API answer (the backend echoes the 2 KB page token) is compressed when accepted,
    // and not when the client does not say it accepts gzip.
    let token = "t".repeat(2048);
    let list = |accept: Option<&'static str>| {
        let mut request =
            client().get(setup.url(&format!("/api/v1/events?pageToken={token}"))).bearer_auth(setup.token("owner-1"));
        if let Some(accept) = accept {
            request = request.header("accept-encoding", accept);
        }
        request.send()
    };
    let gzipped = list(Some("br;q=1.0, GZIP;q=0.5")).await.expect("r");
    assert_eq!(gzipped.status(), 200);
    assert_eq!(gzipped.headers().get("content-encoding").and_then(|v| v.to_str().ok()), Some("gzip"));
    let plain = list(None).await.expect("r");
    assert!(plain.headers().get("content-encoding").is_none());
    let body: Value = plain.json().await.expect("json");
    assert!(body["nextPageToken"].as_str().is_some_and(|t| t.len() > 2048));
    let refused = list(Some("gzip;q=0")).await.expect("r");
    assert!(refused.headers().get("content-encoding").is_none(), "gzip;q=0 means no gzip");
    setup.shutdown.trigger();
}

#[tokio::test]
async fn without_configured_origins_there_is_no_cors() {
    let edge = kem_gateway::router(std::sync::Arc::new(crate::support::edge_without_backends()), None, &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let shutdown = kem_mesh::Shutdown::new();
    let (addr, _) = kem_gateway::serve(listener, edge, shutdown.clone()).expect("serve");
    let response = client()
        .get(format!("http://{addr}/healthz"))
        .header("origin", "https://elsewhere.example")
        .send()
        .await
        .expect("r");
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("access-control-allow-origin").is_none());
    assert!(response.headers().get("vary").is_none(), "{:?}", response.headers());
    shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_get_survives_a_backend_instance_being_killed() {
    let mut limits = EdgeLimits::default();
    limits.default_route.limit = kem_gateway::protect::RateLimit::per_second(10_000, 10_000).expect("limit");
    let setup = crate::support::start_replicated(EdgeConfig::default(), limits, 2).await;
    let token = setup.token("owner-1");
    let mut failures = Vec::new();
    // Bounded: 300 GETs, one replica killed after the first 100.
    for i in 0..300 {
        if i == 100 {
            setup.replica_shutdowns[0].trigger();
        }
        let r = client().get(setup.url("/api/v1/events/ev-1")).bearer_auth(&token).send().await.expect("request");
        if r.status() != 200 {
            failures.push((i, r.status().as_u16(), r.text().await.unwrap_or_default()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 300 GETs failed after a replica died: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    setup.shutdown.trigger();
    setup.replica_shutdowns[1].trigger();
}
