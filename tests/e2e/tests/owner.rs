//! The owner's journey through the REST edge, with the real gateway, mesh mTLS, PostgreSQL and
//! Redis: sign-up with business verification (NTS contract server), login and token rotation, and
//! the event lifecycle with its async jobs completed by the AI and content services through the
//! queues, reporting back over the mesh.

use std::time::Duration;

use kem::Role;
use kem::platform::ServiceConfigs;
use kem_testkit::contracts::nts::{NtsMode, NtsServer};
use kem_testkit::roles::TestPlatform;
use serde_json::{Value, json};

use crate::support::{Reply, Rest};

const NTS_KEY: &str = "e2e-service-key+/=";
const ACTIVE: &str = "1248100998";
const CLOSED: &str = "2208162517";

fn registration(email: &str, business_number: &str) -> Value {
    json!({
        "email": email,
        "password": "Correct-Horse-9-Battery",
        "name": "김사장",
        "phone": "010-1234-5678",
        "storeName": "동네 카페",
        "businessCategory": "BUSINESS_CATEGORY_CAFE",
        "region": "서울 마포구",
        "businessNumber": business_number,
    })
}

/// RFC 3339 for `offset_secs` from now (entries are only accepted inside the event's period).
fn rfc3339_from_now(offset_secs: i64) -> String {
    let now = time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs);
    now.format(&time::format_description::well_known::Rfc3339).expect("formattable time")
}

fn new_event() -> Value {
    json!({
        "title": "평일 점심 신규 고객 이벤트",
        "objective": "EVENT_OBJECTIVE_NEW_CUSTOMERS",
        "targetAudience": "근처 직장인",
        "budget": {"amountKrw": "300000"},
        "period": {"startTime": rfc3339_from_now(-3600), "endTime": rfc3339_from_now(30 * 24 * 3600)},
        "prize": {"name": "아메리카노 1잔", "winnerCount": 10, "unitValue": {"amountKrw": "4500"}},
        "participationMethod": "PARTICIPATION_METHOD_DRAW",
    })
}

/// Starts the platform with the user service on the NTS contract server and cheap password
/// hashing (debug builds), every service on its own PostgreSQL database.
async fn platform(nts: &NtsServer) -> TestPlatform {
    let mut user = kem_user::UserConfig::for_tests();
    let mut nts_config = kem_user::infra::nts::provider_config(nts.base_url());
    nts_config.timeout = Duration::from_millis(500);
    nts_config.deadline = Duration::from_secs(2);
    user.nts = kem_kit::external::ProviderMode::Real { config: nts_config, credentials: kem_kit::Secret::new(NTS_KEY) };
    // Sign-up is limited to a burst of 5 per client address; this test signs up more than that
    // from one address (the limit itself is tested in the gateway's tests).
    let mut limits = kem_gateway::protect::EdgeLimits::default();
    for limit in limits.routes.values_mut() {
        limit.limit = kem_gateway::protect::RateLimit::new(1000, Duration::from_secs(1), 1000).expect("valid limit");
    }
    // Participation keeps its default event cache (15 s): ending is immediate without a short
    // cache, because EndEvent closes participation's entry gate before it answers.
    let configs = ServiceConfigs { user: Some(user), edge_limits: Some(limits), ..ServiceConfigs::default() };
    TestPlatform::start_backed_with(&Role::all(), configs).await
}

/// Registers and signs in; returns the signed-in client and the login reply.
async fn sign_up(edge: &Rest, email: &str) -> (Rest, Reply) {
    edge.post("/api/v1/users:register", registration(email, ACTIVE)).await.expect(200);
    let login = edge
        .post("/api/v1/auth:login", json!({"email": email, "password": "Correct-Horse-9-Battery"}))
        .await
        .expect(200);
    let token = login.str("/tokenPair/accessToken");
    assert!(!token.is_empty(), "{}", login.body);
    (edge.signed_in(&token), login)
}

fn job_done(body: &Value) -> bool {
    matches!(body.pointer("/job/state").and_then(Value::as_str), Some("JOB_STATE_SUCCEEDED" | "JOB_STATE_FAILED"))
}

#[tokio::test]
async fn sign_up_login_and_the_event_lifecycle_through_the_edge() {
    let nts = NtsServer::start(NTS_KEY).await;
    nts.set_status(ACTIVE, "01");
    nts.set_status(CLOSED, "03");
    let platform = platform(&nts).await;
    let edge = Rest::new(platform.http_addr());

    // Business verification: an invalid checksum never reaches NTS; a closed business is refused
    // with a reason; the active one registers.
    let calls = nts.calls();
    let bad = edge.post("/api/v1/users:register", registration("kim@example.com", "1248100997")).await.expect(400);
    assert!(bad.body.to_string().contains("businessNumber"), "the field is named: {}", bad.body);
    assert_eq!(nts.calls(), calls, "a bad checksum is rejected locally");
    let closed = edge.post("/api/v1/users:register", registration("kim@example.com", CLOSED)).await.expect(400);
    assert!(closed.body.to_string().contains("BUSINESS_CLOSED"), "{}", closed.body);

    // NTS down → 503 and nothing half-created: the same email registers once NTS is back.
    nts.set_mode(NtsMode::Down);
    let down = edge.post("/api/v1/users:register", registration("kim@example.com", ACTIVE)).await.expect(503);
    assert!(!down.body.to_string().contains("127.0.0.1"), "no internal address leaks: {}", down.body);
    edge.post("/api/v1/auth:login", json!({"email": "kim@example.com", "password": "Correct-Horse-9-Battery"}))
        .await
        .expect(401);
    nts.set_mode(NtsMode::Normal);

    let (owner, login) = sign_up(&edge, "Kim@Example.com ").await;
    edge.post("/api/v1/users:register", registration("kim@example.com", ACTIVE)).await.expect(409);
    edge.post("/api/v1/auth:login", json!({"email": "kim@example.com", "password": "wrong-password-1"}))
        .await
        .expect(401);
    let me = owner.get("/api/v1/users/me").await.expect(200);
    assert_eq!(me.str("/owner/email"), "kim@example.com");
    assert_eq!(me.str("/owner/phone"), "+821012345678");
    assert_eq!(me.str("/owner/businessVerification/status"), "BUSINESS_STATUS_ACTIVE");

    // Refresh rotates; replaying a rotated token revokes the whole family (and, at the edge, that
    // session's access tokens: so the rest of the journey signs in again).
    let first = login.str("/tokenPair/refreshToken");
    let rotated = edge.post("/api/v1/auth:refresh", json!({"refreshToken": first})).await.expect(200);
    let second = rotated.str("/tokenPair/refreshToken");
    assert_ne!(first, second);
    edge.post("/api/v1/auth:refresh", json!({"refreshToken": first})).await.expect(401);
    edge.post("/api/v1/auth:refresh", json!({"refreshToken": second})).await.expect(401);
    let relogin = edge
        .post("/api/v1/auth:login", json!({"email": "kim@example.com", "password": "Correct-Horse-9-Battery"}))
        .await
        .expect(200);
    let owner = edge.signed_in(&relogin.str("/tokenPair/accessToken"));

    // The event lifecycle.
    let created = owner.post("/api/v1/events?requestId=create-1", new_event()).await.expect(200);
    let id = created.str("/event/eventId");
    assert_eq!(created.str("/event/status"), "EVENT_STATUS_DRAFT");
    let again = owner.post("/api/v1/events?requestId=create-1", new_event()).await.expect(200);
    assert_eq!(again.str("/event/eventId"), id, "a retried create returns the first event");

    let updated = owner
        .patch(&format!("/api/v1/events/{id}?updateMask=title"), json!({"title": "평일 점심 런치 이벤트"}))
        .await
        .expect(200);
    assert_eq!(updated.str("/event/title"), "평일 점심 런치 이벤트");
    assert_eq!(
        owner.get(&format!("/api/v1/events/{id}")).await.expect(200).str("/event/title"),
        "평일 점심 런치 이벤트"
    );
    let listed = owner.get("/api/v1/events?status=EVENT_STATUS_DRAFT&pageSize=10").await.expect(200);
    assert_eq!(listed.body["events"].as_array().map(Vec::len), Some(1), "{}", listed.body);

    // Another owner sees nothing of it.
    let (other, _) = sign_up(&edge, "lee@example.com").await;
    other.get(&format!("/api/v1/events/{id}")).await.expect(404);
    other.post(&format!("/api/v1/events/{id}:recommend"), json!({})).await.expect(404);
    let none = other.get("/api/v1/events").await.expect(200);
    assert!(none.body["events"].as_array().is_none_or(Vec::is_empty), "{}", none.body);

    // Recommendations: a job at once, completed by the AI service (its built-in local model)
    // through the queue, reporting back over the mesh.
    let job = owner.post(&format!("/api/v1/events/{id}:recommend"), json!({})).await.expect(200);
    let job_id = job.str("/job/jobId");
    assert_eq!(job.str("/job/state"), "JOB_STATE_PENDING");
    let done = owner.poll(&format!("/api/v1/jobs/{job_id}"), job_done).await;
    assert_eq!(done.str("/job/state"), "JOB_STATE_SUCCEEDED", "{}", done.body);
    let recommendations = done.body.pointer("/job/recommendations/recommendations").and_then(Value::as_array).cloned();
    assert_eq!(recommendations.as_ref().map(Vec::len), Some(3), "{}", done.body);
    assert_eq!(done.str("/job/recommendations/provider/name"), "local:claude", "labelled local: {}", done.body);
    let chosen = done.str("/job/recommendations/recommendations/1/recommendationId");
    other.get(&format!("/api/v1/jobs/{job_id}")).await.expect(404);

    // Publishing before there is content is an illegal transition, named with the state.
    let illegal = owner.post(&format!("/api/v1/events/{id}:publish"), json!({"channels": ["CHANNEL_INSTAGRAM"]})).await;
    let illegal = illegal.expect(400);
    assert!(illegal.body.to_string().contains("EVENT_STATUS_DRAFT"), "{}", illegal.body);

    let selected = owner
        .post(&format!("/api/v1/events/{id}:selectRecommendation"), json!({"recommendationId": chosen}))
        .await
        .expect(200);
    assert_eq!(selected.str("/event/status"), "EVENT_STATUS_RECOMMENDED");

    // Images (the content service renders real PNGs locally), then content ready, publish, end.
    let job = owner
        .post(&format!("/api/v1/events/{id}:generateImages"), json!({"channels": ["CHANNEL_INSTAGRAM"]}))
        .await
        .expect(200);
    let done = owner.poll(&format!("/api/v1/jobs/{}", job.str("/job/jobId")), job_done).await;
    assert_eq!(done.str("/job/state"), "JOB_STATE_SUCCEEDED", "{}", done.body);
    let image = done.str("/job/images/imageIds/0");
    let listed = owner.get(&format!("/api/v1/events/{id}/images")).await.expect(200);
    assert!(listed.body.to_string().contains(&image), "{}", listed.body);
    let png = owner.get_bytes(&format!("/api/v1/images/{image}/content")).await;
    assert_eq!(png.0, 200);
    assert_eq!(png.1.get(..8), Some(&b"\x89PNG\r\n\x1a\n"[..]), "a PNG");
    other.get(&format!("/api/v1/events/{id}/images")).await.expect(404);
    let ready = owner.post(&format!("/api/v1/events/{id}:selectImage"), json!({"imageId": image})).await.expect(200);
    assert_eq!(ready.str("/event/status"), "EVENT_STATUS_CONTENT_READY");
    let published = owner
        .post(
            &format!("/api/v1/events/{id}:publish"),
            json!({"channels": ["CHANNEL_INSTAGRAM", "CHANNEL_URIDONGNE_TV"]}),
        )
        .await
        .expect(200);
    assert_eq!(published.str("/event/status"), "EVENT_STATUS_PUBLISHED");
    // The distribution status exists from the moment :publish answers (PENDING at first), even
    // before distribution has taken the job from its queue.
    let right_after = owner.get(&format!("/api/v1/events/{id}/distribution")).await.expect(200);
    let states: Vec<&str> = right_after.body["deliveries"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d.get("state").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    assert_eq!(states.len(), 2, "{}", right_after.body);
    owner.patch(&format!("/api/v1/events/{id}?updateMask=title"), json!({"title": "늦은 수정"})).await.expect(400);
    owner.delete(&format!("/api/v1/events/{id}")).await.expect(400);

    // Both channels are delivered independently (the local providers publish).
    let delivered = owner
        .poll(&format!("/api/v1/events/{id}/distribution"), |body| {
            let deliveries = body.get("deliveries").and_then(Value::as_array).cloned().unwrap_or_default();
            deliveries.len() == 2
                && deliveries.iter().all(|d| d.get("state").and_then(Value::as_str) == Some("DELIVERY_STATE_PUBLISHED"))
        })
        .await;
    assert!(delivered.body.to_string().contains("CHANNEL_INSTAGRAM"), "{}", delivered.body);
    other.get(&format!("/api/v1/events/{id}/distribution")).await.expect(404);

    // Participants read the public event, with the terms fixed at publication, and enter through
    // the public route consenting to them: one entry per phone, each with its receipt code.
    let public = edge.get(&format!("/api/v1/public/events/{id}")).await.expect(200);
    let terms = public.str("/event/terms/version");
    assert!(terms.starts_with("terms-"), "the published event has terms: {}", public.body);
    let entry = |phone: &str| {
        json!({"name": "홍길동", "phone": phone, "sourceChannel": "CHANNEL_INSTAGRAM", "age14OrOlder": true,
               "privacyConsent": {"granted": true, "consentTextVersion": terms}})
    };
    let participants = format!("/api/v1/events/{id}/participants");
    let entered = edge.post(&participants, entry("010-9876-5432")).await.expect(200);
    let receipt = entered.str("/receiptCode");
    assert!(receipt.len() == 11 && receipt.as_bytes()[5] == b'-', "a receipt code XXXXX-XXXXX: {}", entered.body);
    assert_eq!(entered.str("/entry/privacyConsent/termsSha256"), public.str("/event/terms/sha256"));
    edge.post(&participants, entry("01098765432")).await.expect(409);
    for n in 0..4 {
        edge.post(&participants, entry(&format!("010-5555-{n:04}"))).await.expect(200);
    }
    let no_consent = json!({"name": "김철수", "phone": "010-1111-2222", "age14OrOlder": true,
                            "privacyConsent": {"granted": false, "consentTextVersion": terms}});
    edge.post(&participants, no_consent).await.expect(400);
    let mut under_14 = entry("010-1111-2223");
    under_14["age14OrOlder"] = json!(false);
    let refused = edge.post(&participants, under_14).await.expect(400);
    assert!(refused.body.to_string().contains("AGE_CONFIRMATION_REQUIRED"), "{}", refused.body);
    let mut outdated = entry("010-1111-2224");
    outdated["privacyConsent"]["consentTextVersion"] = json!("terms-0000000000000000");
    let refused = edge.post(&participants, outdated).await.expect(400);
    assert!(refused.body.to_string().contains("TERMS_OUTDATED"), "{}", refused.body);
    let listed = owner.get(&participants).await.expect(200);
    assert_eq!(listed.str("/totalSize"), "5", "{}", listed.body);
    let masked = listed.body.to_string();
    assert!(masked.contains("010-****-5432") && !masked.contains("9876"), "masked PII only: {masked}");
    assert!(!masked.contains(&receipt) && !masked.contains(&receipt.replace('-', "")), "no receipt codes: {masked}");
    other.get(&participants).await.expect(404);

    // Analytics count every entry (through the analytics-aggregation queue).
    let analytics = owner
        .poll(&format!("/api/v1/events/{id}/analytics"), |body| {
            body.pointer("/analytics/totalParticipants").and_then(Value::as_str) == Some("5")
        })
        .await;
    assert_eq!(analytics.str("/analytics/budget/amountKrw"), "300000", "{}", analytics.body);
    let dashboard = owner.get("/api/v1/analytics/dashboard").await.expect(200);
    assert_eq!(dashboard.str("/dashboard/totalParticipants"), "5", "{}", dashboard.body);
    other.get(&format!("/api/v1/events/{id}/analytics")).await.expect(404);

    // Drawing needs an ended event; the draw is recorded for anyone to verify, and not silently
    // replaced.
    owner.post(&format!("/api/v1/events/{id}:drawWinners"), json!({"count": 2})).await.expect(400);
    let ended = owner.post(&format!("/api/v1/events/{id}:end"), json!({})).await.expect(200);
    assert_eq!(ended.str("/event/status"), "EVENT_STATUS_ENDED");
    // Ending is immediate: the very next entry is refused although participation cached the
    // event as PUBLISHED moments ago, and the draw considers exactly the five accepted entries.
    let late = edge.post(&participants, entry("010-3333-4444")).await.expect(400);
    assert!(late.body.to_string().contains("EVENT_STATUS_ENDED"), "refused as ended: {}", late.body);
    let public_winners = format!("/api/v1/public/events/{id}/winners");
    let before = edge.get(&public_winners).await.expect(200);
    assert!(before.body.get("winners").is_none_or(|w| w.as_array().is_some_and(Vec::is_empty)), "{}", before.body);
    let drawn = owner.post(&format!("/api/v1/events/{id}:drawWinners"), json!({"count": 2})).await.expect(200);
    assert_eq!(drawn.body["winners"].as_array().map(Vec::len), Some(2), "{}", drawn.body);
    assert_eq!(drawn.str("/audit/entryCount"), "5", "{}", drawn.body);
    assert!(!drawn.str("/audit/algorithm").is_empty() && !drawn.str("/audit/seed").is_empty(), "{}", drawn.body);
    owner.post(&format!("/api/v1/events/{id}:drawWinners"), json!({"count": 2})).await.expect(409);
    let winners = owner.get(&format!("/api/v1/events/{id}/winners")).await.expect(200);
    assert_eq!(winners.str("/audit/drawId"), drawn.str("/audit/drawId"));
    // Everyone sees the winners masked, with the audit and no entry id.
    let shown = edge.get(&public_winners).await.expect(200);
    assert_eq!(shown.str("/audit/drawId"), drawn.str("/audit/drawId"));
    assert_eq!(shown.body["winners"].as_array().map(Vec::len), Some(2), "{}", shown.body);
    assert!(shown.str("/winners/0/maskedPhone").starts_with("010-****-"), "{}", shown.body);
    let text = shown.body.to_string();
    let entry_ids = drawn.body["winners"].as_array().cloned().unwrap_or_default();
    assert!(entry_ids.iter().all(|w| !text.contains(w["entryId"].as_str().unwrap_or("-"))), "no entry ids: {text}");
    edge.get(&format!("/api/v1/public/events/{}/winners", "not-an-event-id")).await.expect(400);
    owner.post(&format!("/api/v1/events/{id}:drawWinners"), json!({"count": 9})).await.expect(409);

    // Logout revokes the session's refresh token.
    let fresh = edge
        .post("/api/v1/auth:login", json!({"email": "kim@example.com", "password": "Correct-Horse-9-Battery"}))
        .await
        .expect(200);
    let refresh = fresh.str("/tokenPair/refreshToken");
    let signed = edge.signed_in(&fresh.str("/tokenPair/accessToken"));
    signed.post("/api/v1/auth:logout", json!({"refreshToken": refresh})).await.expect(200);
    edge.post("/api/v1/auth:refresh", json!({"refreshToken": refresh})).await.expect(401);

    platform.stop().await;
}
