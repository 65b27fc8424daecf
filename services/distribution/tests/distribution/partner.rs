//! The KT partner contract `partner/v1`, both sides: the local partner server answers as the
//! contract says, and the client's idempotency keys make a lost answer harmless.

use std::time::Duration;

use kem_distribution::domain::Channel;
use kem_distribution::infra::channels::form_body;
use kem_distribution::infra::local::partner_server::PartnerServerConfig;
use kem_kit::Secret;
use kem_kit::external::{ProviderClient, ProviderConfig, ProviderResponse, Verdict};
use kem_proto::kem::distribution::v1 as pb;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::support::partner::{CLIENT_ID, CLIENT_SECRET, TestPartner};
use crate::support::*;

/// Raw HTTP against the partner: every answer is returned as it is.
struct Raw(ProviderClient);

impl Raw {
    fn new(partner: &TestPartner) -> Raw {
        Raw(ProviderClient::new(fast(ProviderConfig::new("raw-partner", partner.base_url()))).expect("client"))
    }

    async fn token(&self, secret: &str, grant: &str) -> ProviderResponse {
        let body = form_body(&[
            ("grant_type", grant),
            ("client_id", CLIENT_ID),
            ("client_secret", secret),
            ("scope", "ads.write ads.read"),
        ]);
        self.0
            .post("oauth2/token")
            .body(body, HeaderValue::from_static("application/x-www-form-urlencoded"))
            .classify(|_| Some(Verdict::Success))
            .send()
            .await
            .expect("answer")
    }

    async fn bearer(&self) -> HeaderValue {
        let token: Value = self.token(CLIENT_SECRET, "client_credentials").await.json().expect("token json");
        HeaderValue::from_str(&format!("Bearer {}", token["access_token"].as_str().expect("token"))).expect("header")
    }

    async fn submit(&self, bearer: Option<HeaderValue>, key: Option<&str>, body: &Value) -> ProviderResponse {
        let mut request = self
            .0
            .post("jobs")
            .json(body)
            .header(HeaderName::from_static("x-request-id"), HeaderValue::from_static("req-42"));
        if let Some(bearer) = bearer {
            request = request.header(AUTHORIZATION, bearer);
        }
        if let Some(key) = key {
            request =
                request.header(HeaderName::from_static("idempotency-key"), HeaderValue::from_str(key).expect("key"));
        }
        request.classify(|_| Some(Verdict::Success)).send().await.expect("answer")
    }

    async fn get(&self, bearer: HeaderValue, path: &str) -> ProviderResponse {
        self.0
            .get(path)
            .header(AUTHORIZATION, bearer)
            .classify(|_| Some(Verdict::Success))
            .send()
            .await
            .expect("answer")
    }

    async fn post(&self, bearer: HeaderValue, path: &str) -> ProviderResponse {
        self.0
            .post(path)
            .header(AUTHORIZATION, bearer)
            .classify(|_| Some(Verdict::Success))
            .send()
            .await
            .expect("answer")
    }
}

fn campaign(channel: &str, media_type: &str) -> Value {
    json!({
        "channel": channel, "external_ref": "evt-1/GENIE_TV",
        "advertiser": {"business_reg_no": "1248100998", "name": "카페 온도", "phone": "0212345678"},
        "creative": {"media_type": media_type, "asset_url": "https://kem.example/api/v1/images/i/content", "duration_sec": 15, "title": "점심"},
        "targeting": {"region_codes": ["1168010100"], "radius_m": 1000},
        "schedule": {"start_date": "2025-11-01", "end_date": "2025-11-14"}
    })
}

fn header(response: &ProviderResponse, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_local_partner_speaks_the_contract() {
    let partner = TestPartner::start(Duration::from_secs(3_600)).await;
    let raw = Raw::new(&partner);

    // OAuth2 client credentials, RFC 6749 errors.
    let wrong = raw.token("nope", "client_credentials").await;
    assert_eq!(wrong.status().as_u16(), 401);
    assert_eq!(wrong.json::<Value>().expect("json")["error"], "invalid_client");
    let grant = raw.token(CLIENT_SECRET, "password").await;
    assert_eq!(
        (grant.status().as_u16(), grant.json::<Value>().expect("json")["error"].clone()),
        (400, json!("unsupported_grant_type"))
    );
    let token: Value = raw.token(CLIENT_SECRET, "client_credentials").await.json().expect("json");
    assert_eq!((token["token_type"].clone(), token["expires_in"].clone()), (json!("Bearer"), json!(3600)));
    let bearer = raw.bearer().await;

    // Problems are application/problem+json with a code, and the request id is echoed.
    let anonymous = raw.submit(None, Some("k-0"), &campaign("GENIE_TV", "image")).await;
    assert_eq!(anonymous.status().as_u16(), 401);
    assert_eq!(header(&anonymous, "content-type"), "application/problem+json");
    assert_eq!(header(&anonymous, "x-request-id"), "req-42");
    let problem: Value = anonymous.json().expect("problem");
    assert_eq!((problem["code"].clone(), problem["status"].clone()), (json!("invalid_token"), json!(401)));
    let keyless = raw.submit(Some(bearer.clone()), None, &campaign("GENIE_TV", "image")).await;
    assert_eq!(
        (keyless.status().as_u16(), keyless.json::<Value>().expect("json")["code"].clone()),
        (400, json!("invalid_request"))
    );
    let invalid = raw.submit(Some(bearer.clone()), Some("k-1"), &campaign("RINGOBIZ", "image")).await;
    assert_eq!(
        (invalid.status().as_u16(), invalid.json::<Value>().expect("json")["code"].clone()),
        (422, json!("validation_failed"))
    );

    // Accepted: 202 with Location, Retry-After and the rate-limit window.
    let body = campaign("GENIE_TV", "image");
    let first = raw.submit(Some(bearer.clone()), Some("k-2"), &body).await;
    assert_eq!(first.status().as_u16(), 202);
    let job: Value = first.json().expect("job");
    let job_id = job["job_id"].as_str().expect("job id").to_owned();
    assert_eq!(job["status"], "QUEUED");
    assert_eq!(header(&first, "location"), format!("/partner/v1/jobs/{job_id}"));
    assert_eq!(header(&first, "retry-after"), "0");
    assert_eq!(header(&first, "ratelimit-limit"), "10");
    assert!(!header(&first, "ratelimit-remaining").is_empty() && !header(&first, "ratelimit-reset").is_empty());
    // Same key, same body: the original answer. Same key, another body: 409.
    let replay = raw.submit(Some(bearer.clone()), Some("k-2"), &body).await;
    assert_eq!(
        (replay.status().as_u16(), replay.json::<Value>().expect("json")["job_id"].clone()),
        (202, json!(job_id))
    );
    let conflict = raw.submit(Some(bearer.clone()), Some("k-2"), &campaign("URIDONGNE_TV", "image")).await;
    assert_eq!(
        (conflict.status().as_u16(), conflict.json::<Value>().expect("json")["code"].clone()),
        (409, json!("idempotency_conflict"))
    );
    assert_eq!(partner.state.jobs_created(), 1);

    // Polling, then cancelling (once).
    let polled = raw.get(bearer.clone(), &format!("jobs/{job_id}")).await;
    let status: Value = polled.json().expect("status");
    assert_eq!((status["status"].clone(), status["external_ref"].clone()), (json!("QUEUED"), json!("evt-1/GENIE_TV")));
    assert_eq!(
        raw.get(bearer.clone(), "jobs/pj-unknown").await.json::<Value>().expect("json")["code"],
        "job_not_found"
    );
    let cancelled = raw.post(bearer.clone(), &format!("jobs/{job_id}:cancel")).await;
    assert_eq!(
        (cancelled.status().as_u16(), cancelled.json::<Value>().expect("json")["status"].clone()),
        (202, json!("CANCELED"))
    );
    let again = raw.post(bearer.clone(), &format!("jobs/{job_id}:cancel")).await;
    assert_eq!(again.status().as_u16(), 409);

    // 10 requests per second per client: a burst is throttled with Retry-After.
    let mut throttled = None;
    for _ in 0..15 {
        let r = raw.get(bearer.clone(), &format!("jobs/{job_id}")).await;
        if r.status().as_u16() == 429 {
            throttled = Some(r);
            break;
        }
    }
    let throttled = throttled.expect("a burst is throttled");
    assert_eq!(header(&throttled, "retry-after"), "1");
    assert_eq!(throttled.json::<Value>().expect("json")["code"], "rate_limited");
}

#[tokio::test]
async fn a_lost_submission_answer_is_replayed_not_duplicated() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start(config).await;
    let genie = providers.partner(Channel::GenieTv);
    // The partner opens the campaign, but its 202 never arrives: the client times out and
    // repeats the submission with the same Idempotency-Key, and the partner replays its answer.
    genie.lose_next(1);
    h.publish("evt-lost", &[Channel::GenieTv]).await;
    let status = h.settled("evt-lost").await;
    let d = delivery(&status, Channel::GenieTv);
    assert_eq!(d.state, pb::DeliveryState::Published as i32, "{d:#?}");
    assert_eq!(genie.state.jobs_created(), 1, "one campaign, however often it was submitted");
    assert!(genie.submissions() >= 2, "the submission was repeated with its idempotency key");
    assert_eq!(genie.state.submissions(), genie.submissions());
    h.cleanup().await;
}

#[tokio::test]
async fn partner_review_rejection_and_maintenance() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    // 링고비즈's partner rejects creatives marked for rejection.
    let ringo = TestPartner::with_config(PartnerServerConfig {
        clients: vec![(CLIENT_ID.to_owned(), Secret::new(CLIENT_SECRET))],
        review_step: Duration::from_millis(1),
        retry_after: Duration::ZERO,
        ..PartnerServerConfig::default()
    })
    .await;
    let provider =
        fast(kem_distribution::infra::channels::partner::provider_config(Channel::RingoBiz, ringo.base_url()));
    config.partners.get_mut(&Channel::RingoBiz).expect("ringo").mode =
        kem_kit::external::ProviderMode::Real { config: provider, credentials: Secret::new(CLIENT_SECRET) };
    let h = Harness::start(config).await;

    // 지니TV's partner is in maintenance for two requests: the client waits and retries.
    providers.partner(Channel::GenieTv).fail_next(2);
    let mut job = job("evt-review", OWNER, &[Channel::RingoBiz, Channel::GenieTv]);
    job.deliveries[0].copy.as_mut().expect("copy").text = "[reject] 최저가 보장".into();
    h.send(&job, "dist:evt-review").await;
    let status = h.settled("evt-review").await;

    let ringo_delivery = delivery(&status, Channel::RingoBiz);
    assert_eq!(ringo_delivery.state, pb::DeliveryState::Failed as i32, "{ringo_delivery:#?}");
    let error = ringo_delivery.last_error.clone().expect("error");
    assert_eq!(
        (error.reason.as_str(), error.provider_code.as_str(), error.retryable),
        ("CONTENT_REJECTED", "creative_policy", false)
    );
    assert!(ringo_delivery.external_id.starts_with("pj-"), "the rejected job stays visible: {ringo_delivery:#?}");
    let genie = delivery(&status, Channel::GenieTv);
    assert_eq!(genie.state, pb::DeliveryState::Published as i32, "{genie:#?}");
    assert_eq!(providers.partner(Channel::GenieTv).state.jobs_created(), 1);
    assert_eq!(status.state, pb::DistributionState::PartiallyFailed as i32);
    h.cleanup().await;
}
