//! The hostile suite: an attacker at the REST edge of the whole platform (real gateway, mesh
//! mTLS, services, PostgreSQL, Redis), while well-behaved clients use it at the same time.
//!
//! Every case asserts its exact status, and the well-behaved clients — an owner reading and
//! listing, participants entering — must see zero failures during the attacks. The test also
//! fails if anything panicked anywhere in the platform (every role runs in this process, so one
//! panic hook sees them all, caught panics included).
//!
//! Route classes: owner reads and writes by id, custom verbs, jobs, images, public entries.
//! Attacks: over-long, control-character and garbage ids; traversal; another owner's ids;
//! control characters in string fields; oversized, malformed and deeply nested bodies;
//! oversized and malformed headers and timeouts; forged tokens; one idempotency key reused across
//! events and raced by concurrent requests.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kem::Role;
use kem::platform::ServiceConfigs;
use kem_testkit::roles::TestPlatform;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::support::{Reply, Rest};

const PASSWORD: &str = "Correct-Horse-9-Battery";

/// Counts panics in this process (the platform's roles run here), keeping the default report.
fn count_panics() -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        default(info);
    }));
    count
}

async fn platform() -> TestPlatform {
    // The edge's per-route limits stay out of the way: the attacker and the victims share one
    // address here (those limits have their own tests).
    let mut limits = kem_gateway::protect::EdgeLimits::default();
    let generous = kem_gateway::protect::RateLimit::new(100_000, Duration::from_secs(1), 100_000).expect("limit");
    limits.per_ip = generous;
    limits.default_route.limit = generous;
    for limit in limits.routes.values_mut() {
        limit.limit = generous;
    }
    let configs = ServiceConfigs {
        user: Some(kem_user::UserConfig::for_tests()),
        edge_limits: Some(limits),
        ..ServiceConfigs::default()
    };
    TestPlatform::start_backed_with(&Role::all(), configs).await
}

/// Registers `email` (local NTS) and signs in (also used by `entry_page`).
pub(crate) async fn sign_up(edge: &Rest, email: &str) -> Rest {
    let registration = json!({
        "email": email, "password": PASSWORD, "name": "김사장", "phone": "010-1234-5678",
        "storeName": "동네 카페", "businessCategory": "BUSINESS_CATEGORY_CAFE", "region": "서울 마포구",
        "businessNumber": "1248100998",
    });
    edge.post("/api/v1/users:register", registration).await.expect(200);
    let login = edge.post("/api/v1/auth:login", json!({"email": email, "password": PASSWORD})).await.expect(200);
    edge.signed_in(&login.str("/tokenPair/accessToken"))
}

pub(crate) fn new_event(title: &str) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let rfc3339 = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).expect("time");
    json!({
        "title": title,
        "objective": "EVENT_OBJECTIVE_NEW_CUSTOMERS",
        "targetAudience": "근처 직장인",
        "budget": {"amountKrw": "300000"},
        "period": {"startTime": rfc3339(now - time::Duration::hours(1)), "endTime": rfc3339(now + time::Duration::days(30))},
        "prize": {"name": "아메리카노 1잔", "winnerCount": 3, "unitValue": {"amountKrw": "4500"}},
        "participationMethod": "PARTICIPATION_METHOD_DRAW",
    })
}

fn job_done(body: &Value) -> bool {
    matches!(body.pointer("/job/state").and_then(Value::as_str), Some("JOB_STATE_SUCCEEDED" | "JOB_STATE_FAILED"))
}

/// Takes a new event of `owner` all the way to PUBLISHED (its period open, published to
/// Instagram); returns its id. Also used by `entry_page`.
pub(crate) async fn published_event(owner: &Rest) -> String {
    publish_new_event(owner, new_event("공개 이벤트")).await
}

/// Creates the event `body` describes for `owner` and takes it to PUBLISHED on Instagram (local
/// AI and image providers); returns its id.
pub(crate) async fn publish_new_event(owner: &Rest, body: Value) -> String {
    let id = ready_new_event(owner, body).await;
    owner.post(&format!("/api/v1/events/{id}:publish"), json!({"channels": ["CHANNEL_INSTAGRAM"]})).await.expect(200);
    id
}

/// Creates the event `body` describes for `owner` and takes it to CONTENT_READY (recommendation
/// chosen, image generated and selected, by the local AI and image providers); returns its id.
pub(crate) async fn ready_new_event(owner: &Rest, body: Value) -> String {
    let id = owner.post("/api/v1/events", body).await.expect(200).str("/event/eventId");
    let job = owner.post(&format!("/api/v1/events/{id}:recommend"), json!({})).await.expect(200);
    let done = owner.poll(&format!("/api/v1/jobs/{}", job.str("/job/jobId")), job_done).await;
    let chosen = done.str("/job/recommendations/recommendations/0/recommendationId");
    owner
        .post(&format!("/api/v1/events/{id}:selectRecommendation"), json!({"recommendationId": chosen}))
        .await
        .expect(200);
    let job = owner
        .post(&format!("/api/v1/events/{id}:generateImages"), json!({"channels": ["CHANNEL_INSTAGRAM"]}))
        .await
        .expect(200);
    let done = owner.poll(&format!("/api/v1/jobs/{}", job.str("/job/jobId")), job_done).await;
    let image = done.str("/job/images/imageIds/0");
    owner.post(&format!("/api/v1/events/{id}:selectImage"), json!({"imageId": image})).await.expect(200);
    id
}

/// Well-behaved traffic during the attacks; every answer must be the expected one.
pub(crate) struct Victims {
    stop: Arc<AtomicBool>,
    tasks: JoinSet<(u64, Vec<String>)>,
}

impl Victims {
    pub(crate) fn new() -> Victims {
        Victims { stop: Arc::new(AtomicBool::new(false)), tasks: JoinSet::new() }
    }

    /// An owner reading one of their events and listing them, in a loop.
    pub(crate) fn owner_reading(&mut self, owner: &Rest, event: &str) {
        let (owner, path, stop) = (owner.clone(), format!("/api/v1/events/{event}"), self.stop.clone());
        self.tasks.spawn(async move {
            let (mut ok, mut failures) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                for reply in [owner.get(&path).await, owner.get("/api/v1/events?pageSize=5").await] {
                    if reply.status == 200 {
                        ok += 1
                    } else {
                        failures.push(format!("{} {}", reply.status, reply.body))
                    }
                }
            }
            (ok, failures)
        });
    }

    /// Participants entering `event` (consenting to its terms, `terms` version), each with a new
    /// phone number.
    pub(crate) fn participants_entering(&mut self, edge: &Rest, event: &str, terms: &str, first_phone: u32) {
        self.participants_entering_from(edge, event, terms, first_phone, "CHANNEL_INSTAGRAM");
    }

    /// [`Victims::participants_entering`] from `source`, a channel the event was published to.
    pub(crate) fn participants_entering_from(
        &mut self,
        edge: &Rest,
        event: &str,
        terms: &str,
        first_phone: u32,
        source: &str,
    ) {
        let (edge, path, stop) = (edge.clone(), format!("/api/v1/events/{event}/participants"), self.stop.clone());
        let (terms, source) = (terms.to_owned(), source.to_owned());
        self.tasks.spawn(async move {
            let (mut ok, mut failures) = (0, Vec::new());
            let mut phone = first_phone;
            while !stop.load(Ordering::Relaxed) {
                let entry = json!({"name": "홍길동", "phone": format!("010-{:04}-{:04}", phone / 10_000, phone % 10_000),
                    "sourceChannel": source, "age14OrOlder": true,
                    "privacyConsent": {"granted": true, "consentTextVersion": terms}});
                phone += 1;
                let reply = edge.post(&path, entry).await;
                if reply.status == 200 { ok += 1 } else { failures.push(format!("{} {}", reply.status, reply.body)) }
            }
            (ok, failures)
        });
    }

    /// A client fetching a public media link (`/media/{token}`) in a loop: every answer 200 with
    /// the same JPEG.
    fn media_fetching(&mut self, url: &str) {
        let (url, stop) = (url.to_owned(), self.stop.clone());
        self.tasks.spawn(async move {
            let http = reqwest::Client::new();
            let (mut ok, mut failures) = (0, Vec::new());
            let mut first: Option<Vec<u8>> = None;
            while !stop.load(Ordering::Relaxed) {
                let response = http.get(&url).send().await.expect("an answer");
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap_or_default().to_vec();
                let same = *first.get_or_insert_with(|| body.clone()) == body;
                if status == 200 && same && body.starts_with(&[0xFF, 0xD8, 0xFF]) {
                    ok += 1
                } else {
                    failures.push(format!("{status} ({} bytes)", body.len()))
                }
            }
            (ok, failures)
        });
    }

    pub(crate) async fn assert_unharmed(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        while let Some(joined) = self.tasks.join_next().await {
            let (ok, failures) = joined.expect("victim task");
            assert!(failures.is_empty(), "a well-behaved client saw {} failures: {:?}", failures.len(), &failures[..1]);
            assert!(ok > 0, "a well-behaved client made no successful call");
        }
    }
}

/// A raw request, for headers and bodies the JSON client does not send.
async fn raw(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("an answer, not a dropped connection");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Reply { status, body, retry_after: None }
}

#[track_caller]
pub(crate) fn assert_field(reply: &Reply, status: u16, field: &str) {
    assert_eq!(reply.status, status, "{field}: {}", reply.body);
    let violations = reply.body.pointer("/details").and_then(Value::as_array).cloned().unwrap_or_default();
    let named = violations.iter().flat_map(|d| d["fieldViolations"].as_array().cloned().unwrap_or_default()).any(|v| {
        v["field"].as_str().is_some_and(|f| f.eq_ignore_ascii_case(field) || f.ends_with(&format!(".{field}")))
    });
    assert!(named, "the answer names {field}: {}", reply.body);
    assert!(reply.body.to_string().len() < 2048, "the answer quotes the input: {} bytes", reply.body.to_string().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_input_gets_exact_answers_and_hurts_nobody_else() {
    let panics = count_panics();
    let platform = platform().await;
    let addr = platform.http_addr();
    let edge = Rest::new(addr);
    let http = reqwest::Client::new();
    let url = |path: &str| format!("http://{addr}{path}");

    let alice = sign_up(&edge, "alice@example.com").await;
    let mallory = sign_up(&edge, "mallory@example.com").await;
    let draft = alice.post("/api/v1/events", new_event("앨리스의 이벤트")).await.expect(200).str("/event/eventId");
    let job = alice.post(&format!("/api/v1/events/{draft}:recommend"), json!({})).await.expect(200).str("/job/jobId");
    alice.poll(&format!("/api/v1/jobs/{job}"), job_done).await;
    let mut victims = Victims::new();
    victims.owner_reading(&alice, &draft);

    // 1. Ids: over-long, control characters and garbage → 400 naming the id; a well-formed unknown
    //    id and another owner's id → 404. Every owner route class.
    let unknown = "0b6f3a52-7c1e-4d8e-9a4f-2f1d5c6b7a80";
    let long = "e".repeat(9_000);
    let id_routes: [(&str, &str, &str); 9] = [
        ("GET", "/api/v1/events/{}", "eventId"),
        ("DELETE", "/api/v1/events/{}", "eventId"),
        ("POST", "/api/v1/events/{}:recommend", "eventId"),
        ("POST", "/api/v1/events/{}:end", "eventId"),
        ("GET", "/api/v1/events/{}/images", "eventId"),
        ("GET", "/api/v1/events/{}/participants", "eventId"),
        ("GET", "/api/v1/events/{}/analytics", "eventId"),
        ("GET", "/api/v1/jobs/{}", "jobId"),
        ("GET", "/api/v1/images/{}/content", "imageId"),
    ];
    for (method, template, field) in id_routes {
        let call = |id: &str| {
            let path = template.replace("{}", id);
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let mut request = http.request(method, url(&path)).bearer_auth(token_of(&mallory));
            if template.contains(':') {
                request = request.json(&json!({}));
            }
            request
        };
        for hostile in [long.as_str(), "%00", "a%0Ab", "..%2F..%2Fusers%2Fme", "x'%20OR%201=1--"] {
            let reply = raw(call(hostile)).await;
            assert_field(&reply, 400, field);
        }
        let reply = raw(call(unknown)).await;
        if template.ends_with("/images") {
            // Content knows events by their images: an event it has none of lists nothing,
            // whoever asks (indistinguishable from one that does not exist).
            assert_eq!((reply.status, reply.body.get("images")), (200, None), "{template}: {}", reply.body);
        } else {
            assert_eq!(reply.status, 404, "{method} {template} unknown id: {}", reply.body);
        }
    }
    // Another owner's resources are not found, whatever the route.
    for (method, path, body) in [
        ("GET", format!("/api/v1/events/{draft}"), None),
        ("PATCH", format!("/api/v1/events/{draft}?updateMask=title"), Some(json!({"title": "mine now"}))),
        ("DELETE", format!("/api/v1/events/{draft}"), None),
        ("POST", format!("/api/v1/events/{draft}:recommend"), Some(json!({}))),
        ("POST", format!("/api/v1/events/{draft}:end"), Some(json!({}))),
        ("POST", format!("/api/v1/events/{draft}:publish"), Some(json!({"channels": ["CHANNEL_INSTAGRAM"]}))),
        ("GET", format!("/api/v1/events/{draft}/images"), None),
        ("GET", format!("/api/v1/events/{draft}/distribution"), None),
        ("GET", format!("/api/v1/events/{draft}/participants"), None),
        ("POST", format!("/api/v1/events/{draft}:drawWinners"), Some(json!({"count": 1}))),
        ("GET", format!("/api/v1/events/{draft}/winners"), None),
        ("GET", format!("/api/v1/events/{draft}/analytics"), None),
        ("GET", format!("/api/v1/jobs/{job}"), None),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = http.request(method.clone(), url(&path)).bearer_auth(token_of(&mallory));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let reply = raw(request).await;
        if path.ends_with("/images") {
            assert!(reply.status == 404 || reply.body.get("images").is_none(), "{path}: {}", reply.body);
        } else {
            assert_eq!(reply.status, 404, "{method} {path} as another owner: {}", reply.body);
        }
    }

    // 2. Control characters in string fields → 400 naming the field; nothing stored.
    for (field, value) in [
        ("title", "점심\u{0}이벤트"),
        ("description", "설명\u{1b}[31m"),
        ("targetAudience", "직장인\u{0}"),
        ("title", "줄\n바꿈"),
        ("title", "bidi\u{202e}override"),
    ] {
        let mut event = new_event("x");
        event[field] = json!(value);
        let reply = alice.post("/api/v1/events", event).await;
        assert_field(&reply, 400, field);
    }
    let reply = edge.post("/api/v1/auth:login", json!({"email": "alice@example.com\u{0}", "password": PASSWORD})).await;
    assert!(reply.status == 400 || reply.status == 401, "NUL in the login email: {}", reply.body);
    assert_ne!(reply.status, 500);

    // 3. Bodies: oversized 413, malformed and deeply nested 400.
    let huge = format!("{{\"title\": \"{}\"}}", "가".repeat(600_000));
    let reply = raw(http
        .post(url("/api/v1/events"))
        .bearer_auth(token_of(&alice))
        .header("content-type", "application/json")
        .body(huge))
    .await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    for body in ["{", "{\"title\": }", "\u{0}\u{1}\u{2}", nested.as_str()] {
        let reply = raw(http
            .post(url("/api/v1/events"))
            .bearer_auth(token_of(&alice))
            .header("content-type", "application/json")
            .body(body.to_owned()))
        .await;
        assert_eq!(reply.status, 400, "{:?}: {}", &body[..body.len().min(20)], reply.body);
    }

    // 4. Headers: timeouts beyond any clock or malformed, enormous and countless headers,
    //    forged tokens.
    for (value, status) in [("1e20", 400), ("18446744073709551616", 200), ("1e23ms", 400), ("-5", 400)] {
        let reply = raw(http
            .get(url(&format!("/api/v1/events/{draft}")))
            .bearer_auth(token_of(&alice))
            .header("x-request-timeout", value))
        .await;
        assert_eq!(reply.status, status, "X-Request-Timeout {value}: {}", reply.body);
    }
    let reply = raw(http
        .post(url(&format!("/api/v1/events/{unknown}/participants")))
        .header("x-request-timeout", "1e20")
        .json(&json!({})))
    .await;
    assert_eq!(reply.status, 400, "no token needed to be refused: {}", reply.body);
    let mut many = reqwest::header::HeaderMap::new();
    for i in 0..200 {
        many.insert(
            reqwest::header::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).expect("name"),
            "v".parse().expect("value"),
        );
    }
    let response = http.get(url("/healthz")).headers(many).send().await;
    assert!(response.is_err() || response.as_ref().is_ok_and(|r| r.status() == 431), "200 headers: {response:?}");
    let response = http.get(url(&format!("/api/v1/events/{draft}"))).bearer_auth("x".repeat(500_000)).send().await;
    assert!(
        response.is_err() || response.as_ref().is_ok_and(|r| r.status() == 431 || r.status() == 401),
        "a 500 KB header: {response:?}"
    );
    for forged in [
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbGljZSJ9.".to_owned(),
        "not.a.jwt".to_owned(),
        format!("{}.{}.{}", "e".repeat(4000), "e".repeat(4000), "e".repeat(4000)),
    ] {
        let reply = raw(http.get(url(&format!("/api/v1/events/{draft}"))).bearer_auth(forged)).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
    }

    // 5. One idempotency key, two events: the second is 422, never the first event's job.
    let second = alice.post("/api/v1/events", new_event("두 번째")).await.expect(200).str("/event/eventId");
    let recommend = |event: &str, key: &str| {
        http.post(url(&format!("/api/v1/events/{event}:recommend")))
            .bearer_auth(token_of(&alice))
            .header("idempotency-key", key)
            .json(&json!({}))
    };
    let first = raw(recommend(&draft, "same-key")).await;
    assert!(first.status == 200 || first.status == 400, "{}", first.body);
    let reused = raw(recommend(&second, "same-key")).await;
    assert_eq!(reused.status, 422, "{}", reused.body);
    let own = raw(recommend(&second, "its-own-key")).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_ne!(own.str("/job/jobId"), first.str("/job/jobId"));

    // 6. Concurrent creates with one key, through the edge on Redis: one event per key.
    for round in 0..5 {
        // One body per round: a retry sends the same bytes (the period holds "now").
        let body = new_event(&format!("race {round}"));
        let mut set = JoinSet::new();
        for _ in 0..20 {
            let request = http
                .post(url("/api/v1/events"))
                .bearer_auth(token_of(&alice))
                .header("idempotency-key", format!("race-{round}"))
                .json(&body);
            set.spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
        }
        let mut statuses = Vec::new();
        while let Some(joined) = set.join_next().await {
            statuses.push(joined.expect("task").expect("answer"));
        }
        assert!(statuses.iter().all(|s| *s == 200 || *s == 409), "round {round}: {statuses:?}");
    }
    let listed = alice.get("/api/v1/events?pageSize=100").await.expect(200);
    for round in 0..5 {
        let title = format!("race {round}");
        let count = listed.body["events"].as_array().map_or(0, |e| e.iter().filter(|e| e["title"] == title).count());
        assert_eq!(count, 1, "round {round}: {count} events created");
    }

    // 7. The public entry route, without a token, while participants enter.
    let public = published_event(&alice).await;
    let terms = edge.get(&format!("/api/v1/public/events/{public}")).await.expect(200).str("/event/terms/version");
    victims.participants_entering(&edge, &public, &terms, 1_000);
    let entry = json!({"name": "홍길동", "phone": "010-2222-3333", "age14OrOlder": true,
                       "privacyConsent": {"granted": true, "consentTextVersion": terms}});
    for _ in 0..8 {
        let reply = edge.post(&format!("/api/v1/events/{}/participants", "p".repeat(16_000)), entry.clone()).await;
        assert_field(&reply, 400, "eventId");
    }
    for hostile in ["%00", "a%00b", "not-an-event-id", "..%2F..%2Fadmin"] {
        let reply = edge.post(&format!("/api/v1/events/{hostile}/participants"), entry.clone()).await;
        assert_field(&reply, 400, "eventId");
    }
    edge.post(&format!("/api/v1/events/{unknown}/participants"), entry.clone()).await.expect(404);
    let mut bad_name = entry.clone();
    bad_name["name"] = json!("홍\u{0}길동");
    assert_field(&edge.post(&format!("/api/v1/events/{public}/participants"), bad_name).await, 400, "name");
    let mut bad_phone = entry.clone();
    bad_phone["phone"] = json!("010\u{0}1234\u{7}5678");
    assert_field(&edge.post(&format!("/api/v1/events/{public}/participants"), bad_phone).await, 400, "phone");
    // The draft is not open for entries.
    let reply = edge.post(&format!("/api/v1/events/{draft}/participants"), entry.clone()).await;
    assert!(reply.status == 400 || reply.status == 404, "{}", reply.body);
    // Without the age confirmation or with other terms, nobody enters.
    let mut under_14 = entry.clone();
    under_14["age14OrOlder"] = json!(false);
    assert_field(&edge.post(&format!("/api/v1/events/{public}/participants"), under_14).await, 400, "age14OrOlder");
    let mut outdated = entry.clone();
    outdated["privacyConsent"]["consentTextVersion"] = json!("terms-\u{202e}0000");
    assert_field(
        &edge.post(&format!("/api/v1/events/{public}/participants"), outdated).await,
        400,
        "privacyConsent.consentTextVersion",
    );
    // The public winners: ids by shape, and nothing of an event that was never published.
    for hostile in [long.as_str(), "%00", "a%0Ab", "..%2F..%2Fusers%2Fme"] {
        assert_field(&edge.get(&format!("/api/v1/public/events/{hostile}/winners")).await, 400, "eventId");
    }
    edge.get(&format!("/api/v1/public/events/{unknown}/winners")).await.expect(404);
    edge.get(&format!("/api/v1/public/events/{draft}/winners")).await.expect(404);
    edge.get(&format!("/api/v1/public/events/{public}/winners")).await.expect(200);
    // The public event and its image: ids by shape, drafts and unknown ids are the same 404, a
    // forged token changes nothing, and many readers of one event at once all get it.
    for hostile in [long.as_str(), "%00", "a%0Ab", "..%2F..%2Fusers%2Fme"] {
        assert_field(&edge.get(&format!("/api/v1/public/events/{hostile}")).await, 400, "eventId");
        assert_field(&edge.get(&format!("/api/v1/public/images/{hostile}")).await, 400, "imageId");
    }
    edge.get(&format!("/api/v1/public/events/{unknown}")).await.expect(404);
    edge.get(&format!("/api/v1/public/events/{draft}")).await.expect(404);
    edge.get(&format!("/api/v1/public/images/{unknown}")).await.expect(404);
    let image_url = edge.get(&format!("/api/v1/public/events/{public}")).await.expect(200).str("/event/imageUrl");
    let image = image_url.rsplit('/').next().unwrap_or_default().to_owned();
    edge.get(&format!("/api/v1/public/images/{image}")).await.expect(200);
    let forged = edge.signed_in("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");
    forged.get(&format!("/api/v1/public/events/{public}")).await.expect(200);
    let readers: Vec<_> = (0..20)
        .map(|_| {
            let edge = edge.clone();
            let path = format!("/api/v1/public/events/{public}");
            tokio::spawn(async move { edge.get(&path).await.status })
        })
        .collect();
    for reader in readers {
        assert_eq!(reader.await.expect("task"), 200);
    }

    // 8. The participant's other public routes (claims, codes, lookups, withdrawals) and the
    //    owner's exports, block lists and redraws: fields by shape, one answer for every
    //    mismatch, another owner's event is 404, and concurrent guesses never a 5xx.
    let claims = format!("/api/v1/public/events/{public}/claims");
    let garbage_phones = ["0".repeat(16_000), "010\u{0}2222\u{7}3333".to_owned(), "\u{202e}01022223333".to_owned()];
    for phone in &garbage_phones {
        let reply = edge.post(&claims, json!({"phone": phone, "claimCode": "AB23CD45"})).await;
        assert_field(&reply, 400, "phone");
        let reply = edge
            .post(
                &format!("/api/v1/public/events/{public}/codes"),
                json!({"phone": phone, "purpose": "CODE_PURPOSE_LOOKUP"}),
            )
            .await;
        assert_field(&reply, 400, "phone");
        let reply = edge
            .post(
                &format!("/api/v1/public/events/{public}/entries:withdraw"),
                json!({"phone": phone, "code": "123456"}),
            )
            .await;
        assert_field(&reply, 400, "phone");
    }
    for code in ["A".repeat(10_000), "AB23\u{0}CD45".to_owned(), "0O1I0O1I".to_owned()] {
        assert_field(&edge.post(&claims, json!({"phone": "010-2222-3333", "claimCode": code})).await, 400, "claimCode");
    }
    for hostile in [long.as_str(), "%00", "a%0Ab"] {
        let reply = edge
            .post(
                &format!("/api/v1/public/events/{hostile}/claims"),
                json!({"phone": "010-2222-3333", "claimCode": "AB23CD45"}),
            )
            .await;
        assert_field(&reply, 400, "eventId");
    }
    let reply = edge.post(&format!("/api/v1/public/events/{public}/codes"), json!({"phone": "010-2222-3333"})).await;
    assert_field(&reply, 400, "purpose");
    let reply = edge.post(&format!("/api/v1/public/events/{public}/entries:lookup"), json!({})).await;
    assert_eq!(reply.status, 400, "neither a receipt nor a phone: {}", reply.body);
    let reply = edge
        .post(&format!("/api/v1/public/events/{public}/entries:lookup"), json!({"receiptCode": "\u{0}".repeat(5_000)}))
        .await;
    assert_field(&reply, 400, "receiptCode");
    // Nothing was drawn: a well-formed claim is the one NOT_FOUND, with a token or without.
    edge.post(&claims, json!({"phone": "010-2222-3333", "claimCode": "AB23CD45"})).await.expect(404);
    forged.post(&claims, json!({"phone": "010-2222-3333", "claimCode": "AB23CD45"})).await.expect(404);
    let guesses: Vec<_> = (0..20)
        .map(|i| {
            let (edge, claims) = (edge.clone(), claims.clone());
            tokio::spawn(async move {
                edge.post(&claims, json!({"phone": "010-2222-3333", "claimCode": format!("AB23CD{:02}", 40 + i % 10)}))
                    .await
                    .status
            })
        })
        .collect();
    for guess in guesses {
        let status = guess.await.expect("task");
        assert!(status == 404 || status == 400 || status == 429, "a concurrent guess: {status}");
    }
    // Another owner's event: exports, their log, block lists and redraws do not exist for them.
    for (method, path, body) in [
        ("GET", format!("/api/v1/events/{public}/participants:export?kind=EXPORT_KIND_PARTICIPANTS"), None),
        ("GET", format!("/api/v1/events/{public}/exports"), None),
        ("GET", format!("/api/v1/events/{public}/blocks"), None),
        ("POST", format!("/api/v1/events/{public}/blocks"), Some(json!({"phone": "010-2222-3333"}))),
        ("DELETE", format!("/api/v1/events/{public}/blocks/{unknown}"), None),
        ("POST", format!("/api/v1/events/{public}:redrawUnclaimed"), Some(json!({}))),
    ] {
        let reply = match (method, body) {
            ("GET", _) => mallory.get(&path).await,
            ("DELETE", _) => mallory.delete(&path).await,
            (_, body) => mallory.post(&path, body.unwrap_or_default()).await,
        };
        assert_eq!(reply.status, 404, "mallory {method} {path}: {}", reply.body);
        // Without a token, or with a forged one, the same routes are 401 before any service.
        for caller in [edge.clone(), forged.clone()] {
            let reply = match method {
                "GET" => caller.get(&path).await,
                "DELETE" => caller.delete(&path).await,
                _ => caller.post(&path, json!({})).await,
            };
            assert_eq!(reply.status, 401, "{method} {path} without a valid token: {}", reply.body);
        }
    }
    // Block ids by shape, on the owner's own event.
    for hostile in [long.as_str(), "%00", "a%0Ab", "..%2F..%2Fusers%2Fme"] {
        assert_field(&alice.delete(&format!("/api/v1/events/{public}/blocks/{hostile}")).await, 400, "blockId");
    }
    // Twenty simultaneous blocks of one number are one block.
    let racers: Vec<_> = (0..20)
        .map(|i| {
            let (alice, path) = (alice.clone(), format!("/api/v1/events/{public}/blocks"));
            let phone = if i % 2 == 0 { "010-8888-0000" } else { "01088880000" };
            tokio::spawn(async move { alice.post(&path, json!({"phone": phone})).await })
        })
        .collect();
    let mut block_ids = Vec::new();
    for racer in racers {
        let reply = racer.await.expect("task").expect(200);
        block_ids.push(reply.str("/block/blockId"));
    }
    block_ids.dedup();
    assert_eq!(block_ids.len(), 1, "one block for one number: {block_ids:?}");
    // The owner's own block list: the reason is one short line; phone or entry, not both.
    let blocks = format!("/api/v1/events/{public}/blocks");
    let reply = alice.post(&blocks, json!({"phone": "010-2222-3333", "reason": "a\u{0}b"})).await;
    assert_field(&reply, 400, "reason");
    let reply = alice.post(&blocks, json!({"phone": "010-2222-3333", "reason": "r".repeat(10_000)})).await;
    assert_field(&reply, 400, "reason");
    let reply = alice.post(&blocks, json!({"phone": "010-2222-3333", "entryId": unknown})).await;
    assert_eq!(reply.status, 400, "both a phone and an entry: {}", reply.body);
    let blocked = alice.post(&blocks, json!({"phone": "010-9999-0000", "reason": "중복 응모 의심"})).await.expect(200);
    let again = alice.post(&blocks, json!({"phone": "01099990000"})).await.expect(200);
    assert_eq!(blocked.str("/block/blockId"), again.str("/block/blockId"), "blocking twice is one block");
    let mut blocked_entry = entry.clone();
    blocked_entry["phone"] = json!("010-9999-0000");
    let reply = edge.post(&format!("/api/v1/events/{public}/participants"), blocked_entry).await;
    assert_eq!(reply.status, 400, "a blocked phone is refused: {}", reply.body);
    let reply = alice.get(&format!("/api/v1/events/{public}/participants:export")).await;
    assert_field(&reply, 400, "kind");
    let reply = alice
        .get(&format!("/api/v1/events/{public}/participants:export?kind=EXPORT_KIND_PARTICIPANTS&reveal=true"))
        .await;
    assert_eq!(reply.status, 400, "participants are never revealed: {}", reply.body);
    let (status, csv) =
        alice.get_bytes(&format!("/api/v1/events/{public}/participants:export?kind=EXPORT_KIND_PARTICIPANTS")).await;
    assert_eq!(status, 200);
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with a byte order mark");

    victims.assert_unharmed().await;
    platform.stop().await;
    assert_eq!(panics.load(Ordering::SeqCst), 0, "something panicked during the hostile suite (see the log above)");
}

fn token_of(rest: &Rest) -> String {
    rest.token().unwrap_or_default()
}

/// Public media links (`/media/{token}`, #21) under attack: over-long, garbage, control-character
/// and traversal tokens, a tampered signature, a forged expiry, an expired link, a link signed
/// with another key and one for an unknown image are each the same small 404 — while a crowd of
/// crawlers fetches one valid link at once and a well-behaved client keeps being served.
///
/// The links are signed with the platform's own media key: with no key configured, `kem up` and
/// this platform use the development key under the data dir, which the edge verifies with.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn media_links_refuse_every_forgery_and_crawler_crowds_hurt_nobody() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use kem_kit::media::{MediaKeySettings, MediaSigner, MediaVariant};

    let platform = platform().await;
    let addr = platform.http_addr();
    let edge = Rest::new(addr);
    let http = reqwest::Client::new();
    let url = |token: &str| format!("http://{addr}/media/{token}");

    let owner = sign_up(&edge, "media-owner@example.com").await;
    let event = published_event(&owner).await;
    let image = owner.get(&format!("/api/v1/events/{event}")).await.expect(200).str("/event/selectedImageId");
    let signer = kem_kit::media::load(&MediaKeySettings::default(), &platform.settings.data_dir).expect("media key");
    let now = std::time::SystemTime::now();
    let hour = Duration::from_secs(3_600);
    let token = signer.sign(&image, MediaVariant::InstagramFeed, now + hour).expect("sign");
    let good = url(&token);
    let first = http.get(&good).send().await.expect("the link");
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "image/jpeg");
    let jpeg = first.bytes().await.expect("body");
    assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]));

    let mut victims = Victims::new();
    victims.media_fetching(&good);
    victims.owner_reading(&owner, &event);

    // Forgeries: flip the last character (signature), forge a longer expiry under the old tag.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'Q' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let mut raw = URL_SAFE_NO_PAD.decode(&token).expect("base64url");
    raw[2..10].copy_from_slice(&u64::MAX.to_be_bytes());
    let forged_expiry = URL_SAFE_NO_PAD.encode(&raw);
    let expired = signer.sign(&image, MediaVariant::InstagramFeed, now - Duration::from_secs(1)).expect("sign");
    let other_key = MediaSigner::new(&[9; 32], &[]).expect("key").sign(&image, MediaVariant::Jpeg, now + hour);
    let unknown_image = signer.sign("0b6f3a52-7c1e-4d8e-9a4f-2f1d5c6b7a80", MediaVariant::Jpeg, now + hour);
    let long = "A".repeat(10_000);
    let hostile = [
        long.as_str(),
        "x",
        "%00",
        "%0d%0aSet-Cookie:%20pwned=1",
        "..%2F..%2Fetc%2Fpasswd",
        "%F0%9F%92%A3",
        &tampered,
        &forged_expiry,
        &expired,
        &other_key.expect("sign"),
        &unknown_image.expect("sign"),
    ];
    let mut bodies = Vec::new();
    for token in hostile {
        let response = http.get(url(token)).send().await.expect("an answer");
        assert_eq!(response.status(), 404, "{token:.60}");
        assert!(response.headers().get("set-cookie").is_none());
        assert_eq!(response.headers()["cache-control"], "no-store", "a refusal is never cached");
        bodies.push(response.bytes().await.expect("body"));
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "every refusal is the same answer");
    assert!(bodies[0].len() < 32, "a tiny body");
    let post = http.post(&good).send().await.expect("post");
    assert_eq!(post.status(), 405);

    // A crowd of crawlers on the one link at once: every one served the same bytes.
    let crawlers: Vec<_> = (0..50)
        .map(|_| {
            let (http, good) = (http.clone(), good.clone());
            tokio::spawn(async move {
                let response = http.get(&good).send().await.expect("an answer");
                (response.status().as_u16(), response.bytes().await.expect("body"))
            })
        })
        .collect();
    for crawler in crawlers {
        let (status, body) = crawler.await.expect("crawler");
        assert_eq!((status, body.len()), (200, jpeg.len()));
        assert_eq!(body, jpeg);
    }
    // Ranges and HEAD on the same link.
    let part = http.get(&good).header("range", "bytes=0-1").send().await.expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(part.bytes().await.expect("body").as_ref(), &[0xFF, 0xD8]);
    let head = http.head(&good).send().await.expect("head");
    assert_eq!(head.headers()["content-length"], jpeg.len().to_string().as_str());

    victims.assert_unharmed().await;
    platform.stop().await;
}

/// The KT screens' image (#21): a partner QR link signed with the platform's media key is served by
/// the running edge as a PNG whose QR code an independent reader (rqrr) decodes to exactly the
/// signed entry link — through edge → mesh → content and its blob store. Two links on one image
/// are two renditions (each its own code, its own ETag) even when crawled together; a token whose
/// text was swapped is the same 404 as any forgery.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kt_screens_carry_a_qr_code_of_exactly_the_signed_entry_link() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use kem_kit::media::MediaKeySettings;

    let platform = platform().await;
    let addr = platform.http_addr();
    let edge = Rest::new(addr);
    let http = reqwest::Client::new();
    let owner = sign_up(&edge, "qr-owner@example.com").await;
    let event = published_event(&owner).await;
    let image = owner.get(&format!("/api/v1/events/{event}")).await.expect(200).str("/event/selectedImageId");
    let signer = kem_kit::media::load(&MediaKeySettings::default(), &platform.settings.data_dir).expect("media key");
    let expires = std::time::SystemTime::now() + Duration::from_secs(3_600);
    let genie = format!("http://{addr}/e/{event}?ch=genie_tv");
    let uridongne = format!("http://{addr}/e/{event}?ch=uridongne_tv");
    let link = |text: &str| {
        let token = signer.sign_partner_qr(&image, text, expires).expect("sign");
        (token.clone(), format!("http://{addr}/media/{token}"))
    };
    let ((genie_token, genie_url), (_, uridongne_url)) = (link(&genie), link(&uridongne));

    // Crawled together: 10 fetches of each link at once, each answered with its own code.
    let mut crawls = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (http, url) = (http.clone(), if i % 2 == 0 { genie_url.clone() } else { uridongne_url.clone() });
        crawls.spawn(async move {
            let response = http.get(&url).send().await.expect("an answer");
            let status = response.status().as_u16();
            let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_owned());
            let etag = response.headers().get("etag").map(|v| v.to_str().unwrap_or("").to_owned());
            (url, status, kind, etag, response.bytes().await.expect("body"))
        });
    }
    let mut etags = std::collections::HashMap::new();
    while let Some(crawl) = crawls.join_next().await {
        let (url, status, kind, etag, body) = crawl.expect("crawler");
        assert_eq!((status, kind.as_deref()), (200, Some("image/png")), "{url}");
        let expected = if url == genie_url { &genie } else { &uridongne };
        assert_eq!(qr_codes_in(&body), vec![expected.clone()], "{url}: exactly its own entry link");
        let etag = etag.expect("an ETag");
        assert_eq!(etags.entry(url).or_insert_with(|| etag.clone()), &etag, "one rendition per link");
    }
    let distinct: std::collections::HashSet<_> = etags.values().collect();
    assert_eq!(distinct.len(), 2, "two texts, two renditions: {etags:?}");

    // The text is under the signature: swapping it for another link breaks the link.
    let mut raw = URL_SAFE_NO_PAD.decode(&genie_token).expect("base64url");
    let at = raw.windows(genie.len()).position(|w| w == genie.as_bytes()).expect("the text is in the token");
    let evil = format!("http://{}/e/{event}?ch=genie_tv", "x".repeat(addr.to_string().len()));
    raw[at..at + genie.len()].copy_from_slice(evil.as_bytes());
    let swapped =
        http.get(format!("http://{addr}/media/{}", URL_SAFE_NO_PAD.encode(&raw))).send().await.expect("answer");
    assert_eq!(swapped.status(), 404);
    platform.stop().await;
}

/// The texts of the QR codes an independent reader finds in `png`.
pub(crate) fn qr_codes_in(png: &[u8]) -> Vec<String> {
    let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut pixels).expect("a frame");
    let channels = frame.color_type.samples();
    assert_eq!(frame.bit_depth, png::BitDepth::Eight, "8-bit samples");
    let (width, height) = (frame.width as usize, frame.height as usize);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        let at = (y * width + x) * channels;
        if channels >= 3 {
            let (r, g, b) = (u32::from(pixels[at]), u32::from(pixels[at + 1]), u32::from(pixels[at + 2]));
            ((r * 299 + g * 587 + b * 114) / 1000) as u8
        } else {
            pixels[at]
        }
    });
    prepared.detect_grids().iter().filter_map(|grid| grid.decode().ok().map(|(_, text)| text)).collect()
}
