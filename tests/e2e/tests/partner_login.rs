//! The owner's KT store account (#21) through the whole platform — REST edge → gateway → mesh →
//! event and distribution → PostgreSQL/Redis — with distribution's 지니TV on the real partner
//! client, store accounts on, against the distribution crate's partner server (our contract
//! `partner/v1`) as the authorization server: a real HTTP client follows the consent screen's
//! redirect back to the edge's OAuth callback.
//!
//! - An owner connects their store: until then 지니TV is refused up front; afterwards the campaign
//!   is submitted with the store's token to that store, its creative the edge's QR image of the
//!   event's 지니TV entry link. The store revoking kem at the partner fails the next delivery
//!   AUTH_REQUIRED and the connection turns NEEDS_RECONNECT, after which 지니TV is refused up
//!   front while a channel that needs no connection publishes.
//! - The callback under attack (another owner's state, a replayed code, a tampered PKCE
//!   challenge, malformed values, a declined consent, ten racing callbacks of one state) connects
//!   no one it should not, while a connected owner and participants keep being served.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;
use axum::middleware::Next;
use kem_distribution::infra::local::partner_server::{self, PartnerServerConfig, PartnerState};
use kem_distribution::{Channel, DistributionConfig, PartnerConfig};
use kem_kit::Secret;
use kem_kit::external::ProviderMode;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::channels::{
    BOUND, CONNECTIONS, Platform, START, assert_not_connected, assert_unpublished, browser, connection, contains,
    delivery, every_row, no_redirects, publish, ready_event, reason, reply_of, settled, state,
};
use crate::hostile::{Victims, assert_field, qr_codes_in, sign_up};
use crate::support::{Reply, Rest};

const GENIE: &str = "CHANNEL_GENIE_TV";
/// A KT screen on the local partner: it needs no connection.
const URIDONGNE: &str = "CHANNEL_URIDONGNE_TV";
const CLIENT_ID: &str = "kem-e2e";
const CLIENT_SECRET: &str = "e2e-partner-client-secret";
/// `google.rpc.Code` numbers in the edge's error bodies.
const INVALID_ARGUMENT: i64 = 3;
const NOT_FOUND: i64 = 5;
const FAILED_PRECONDITION: i64 = 9;
const ACTIVE: &str = "CONNECTION_STATE_ACTIVE";
const NOT_CONNECTED: &str = "CONNECTION_STATE_NOT_CONNECTED";

/// 지니TV's partner: the crate's partner server (its router over its state), with every request
/// counted and every `POST /jobs` body kept, since the contract's job status has no creative.
struct Partner {
    state: Arc<PartnerState>,
    base_url: String,
    submissions: Arc<Mutex<Vec<Value>>>,
    requests: Arc<AtomicU64>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Partner {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Partner {
    /// Serves a partner whose only registered redirect URI is `callback`, reviewing in 100 ms
    /// steps. Synchronous, so it can start inside [`Platform::start_adjusted`] once the edge's
    /// origin is known (needs the caller's tokio runtime).
    fn serve(callback: String) -> std::io::Result<Partner> {
        let config = PartnerServerConfig {
            clients: vec![(CLIENT_ID.to_owned(), Secret::new(CLIENT_SECRET))],
            review_step: Duration::from_millis(100),
            retry_after: Duration::ZERO,
            redirect_uris: vec![callback],
            ..PartnerServerConfig::default()
        };
        let state = PartnerState::new(config);
        let submissions = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicU64::new(0));
        let (kept, counted) = (submissions.clone(), requests.clone());
        let app = partner_server::router(state.clone()).layer(axum::middleware::from_fn(
            move |request: Request, next: Next| {
                let (kept, counted) = (kept.clone(), counted.clone());
                async move {
                    counted.fetch_add(1, Ordering::SeqCst);
                    if request.method() != Method::POST || !request.uri().path().ends_with("/jobs") {
                        return next.run(request).await;
                    }
                    let (parts, body) = request.into_parts();
                    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
                    if let Ok(json) = serde_json::from_slice::<Value>(&bytes) {
                        kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(json);
                    }
                    next.run(Request::from_parts(parts, Body::from(bytes))).await
                }
            },
        ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr: SocketAddr = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("the e2e partner server stopped: {error}");
            }
        });
        Ok(Partner {
            state,
            base_url: format!("http://{addr}{}", partner_server::BASE_PATH),
            submissions,
            requests,
            server,
        })
    }

    fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The `POST /jobs` body whose `external_ref` is `external_ref`.
    fn submission(&self, external_ref: &str) -> Value {
        let kept = self.submissions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        kept.iter()
            .find(|body| body["external_ref"] == external_ref)
            .cloned()
            .unwrap_or_else(|| panic!("no submission {external_ref}: {kept:?}"))
    }
}

/// 지니TV on the real partner client against `partner`, store accounts on; the local partner of
/// the other KT channels at test speed.
fn genie_on(config: &mut DistributionConfig, partner: &Partner) {
    let mut provider = kem_distribution::infra::channels::partner::provider_config(Channel::GenieTv, &partner.base_url);
    provider.timeout = Duration::from_secs(2);
    provider.deadline = Duration::from_secs(5);
    config.partners.insert(
        Channel::GenieTv,
        PartnerConfig {
            mode: ProviderMode::Real { config: provider, credentials: Secret::new(CLIENT_SECRET) },
            client_id: CLIENT_ID.to_owned(),
        },
    );
    config.partner_store_accounts.insert(Channel::GenieTv);
    config.local_partner.review_step = Duration::from_millis(100);
    config.local_partner.retry_after = Duration::ZERO;
}

/// The platform with its 지니TV partner, which registers the edge's callback exactly.
async fn start() -> (Partner, Platform) {
    let slot: Mutex<Option<Partner>> = Mutex::new(None);
    let p = Platform::start_adjusted(|config| {
        let callback = format!("{}{}", config.public_base_url, kem_distribution::OAUTH_CALLBACK_PATH);
        let partner = Partner::serve(callback).expect("the partner server starts");
        genie_on(config, &partner);
        // A start retried on another port replaces (and stops) the earlier partner.
        *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(partner);
    })
    .await;
    let partner = slot.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()).expect("the partner");
    (partner, p)
}

/// The edge's callback URL with `query`.
fn callback(p: &Platform, query: &str) -> String {
    format!("{}{}?{query}", p.origin, kem_distribution::OAUTH_CALLBACK_PATH)
}

/// The query parameter `name` of `url`.
fn param(url: &str, name: &str) -> String {
    let parsed = reqwest::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    parsed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// `url` with its parameter `name` set to `value`.
fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = reqwest::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == name { value.to_owned() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.into()
}

/// Starts connecting 지니TV for `owner`: the authorization URL at `partner`.
async fn start_genie(partner: &Partner, owner: &Rest) -> String {
    let started = owner.post(START, json!({"channel": GENIE})).await.expect(200);
    let url = started.str("/authorizationUrl");
    assert!(url.starts_with(&format!("{}/oauth2/authorize?", partner.base_url)), "{}", started.body);
    url
}

/// Opens the consent screen at `url` without following it: where it sends the browser.
async fn consent_redirect(url: &str) -> String {
    let response = no_redirects().get(url).send().await.expect("the consent screen answers");
    assert_eq!(response.status(), 302, "the consent screen redirects");
    response.headers()["location"].to_str().expect("an ASCII location").to_owned()
}

async fn get(url: &str, bearer: Option<String>) -> Reply {
    let mut request = no_redirects().get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    reply_of(request.send().await.expect("an answer")).await
}

/// Asserts `reply` is `status` with `code` and ErrorInfo `reason`, quoting no input.
#[track_caller]
fn assert_refused(reply: &Reply, status: u16, code: i64, why: &str) {
    assert_eq!((reply.status, reason(reply).as_str()), (status, why), "{}", reply.body);
    assert_eq!(reply.body["code"], code, "{}", reply.body);
    assert!(reply.body.to_string().len() < 2048, "the answer quotes the input: {}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_connects_their_kt_store_through_the_edge_and_the_campaign_is_theirs() {
    tokio::time::timeout(BOUND, async {
        let (partner, p) = start().await;
        let owner = sign_up(&p.edge, "kt-store-owner@example.com").await;
        let (first, (second, third)) = tokio::join!(ready_event(&owner, "지니 매장 이벤트"), async {
            tokio::join!(ready_event(&owner, "두번째 이벤트"), ready_event(&owner, "세번째 이벤트"))
        });

        // Not connected: listed so, and 지니TV is refused up front; nothing reaches the partner.
        let before = connection(&owner, GENIE).await;
        assert_eq!(state(&before), NOT_CONNECTED, "{before}");
        assert_eq!(state(&connection(&owner, URIDONGNE).await), "CONNECTION_STATE_NOT_NEEDED");
        assert_not_connected(&publish(&owner, &first, &[GENIE, URIDONGNE]).await, "GENIE_TV");
        assert_unpublished(&owner, &first).await;
        assert_eq!(partner.state.jobs_created(), 0);

        // Connecting: the consent screen (PKCE S256), signed in at the partner as store-1, sends the
        // browser back to the edge's callback, which answers the connection.
        partner.state.sign_in("store-1", "지니 카페 1호점");
        let url = start_genie(&partner, &owner).await;
        assert_eq!(param(&url, "code_challenge_method"), "S256", "{url}");
        assert_eq!(param(&url, "code_challenge").len(), 43, "{url}");
        assert_eq!(param(&url, "redirect_uri"), callback(&p, "").trim_end_matches('?'), "{url}");
        assert_eq!(param(&url, "client_id"), CLIENT_ID, "{url}");
        let landed = browser().get(&url).send().await.expect("the consent flow");
        assert_eq!(landed.url().path(), kem_distribution::OAUTH_CALLBACK_PATH, "lands on the edge's callback");
        assert!(landed.url().as_str().starts_with(&p.origin), "{}", landed.url());
        let answer = reply_of(landed).await.expect(200).body;
        let connected = &answer["connection"];
        assert_eq!(state(connected), ACTIVE, "{answer}");
        assert_eq!(
            (connected["accountId"].as_str(), connected["accountName"].as_str()),
            (Some("store-1"), Some("지니 카페 1호점")),
            "{answer}"
        );
        let list = owner.get(CONNECTIONS).await.expect(200).body;
        let listed = connection(&owner, GENIE).await;
        assert_eq!((state(&listed), listed["accountId"].as_str()), (ACTIVE, Some("store-1")));

        // No token of the store in any answer, nor in clear in any row of distribution's database.
        let mut tokens = partner.state.access_tokens_of("store-1");
        tokens.extend(partner.state.refresh_tokens_of("store-1").into_iter().map(|(t, _)| t));
        assert_eq!(tokens.len(), 2, "an access and a refresh token: {tokens:?}");
        let answers = format!("{answer} {list}");
        let rows = every_row(&p.platform.database_url("distribution")).await;
        for token in &tokens {
            assert!(!answers.contains(token.as_str()), "an answer carries a store token");
            assert!(!contains(&rows, token), "the database holds a plaintext store token");
        }

        // The campaign goes to store-1 with the store's token: the creative is the edge's image with
        // the QR code of the event's 지니TV entry link; the delivery follows the partner's review.
        publish(&owner, &first, &[GENIE, URIDONGNE]).await.expect(200);
        let status = settled(&owner, &first).await;
        let genie = delivery(&status, GENIE);
        assert_eq!(genie["state"], "DELIVERY_STATE_PUBLISHED", "{status}");
        assert_eq!(delivery(&status, URIDONGNE)["state"], "DELIVERY_STATE_PUBLISHED", "{status}");
        let jobs = partner.state.job_stores();
        assert_eq!(jobs.len(), 1, "one campaign at the partner: {jobs:?}");
        let (job_id, store) = jobs[0].clone();
        assert_eq!(store.as_deref(), Some("store-1"), "submitted with store-1's token");
        assert_eq!(genie["externalId"], job_id.as_str(), "{status}");
        let job = partner.state.job_statuses().into_iter().find(|s| s.job_id == job_id).expect("the job's status");
        assert!(matches!(job.status.as_str(), "SCHEDULED" | "LIVE"), "booked at the partner: {job:?}");
        let booked = genie["providerStatus"].as_str().unwrap_or_default();
        assert!(matches!(booked, "SCHEDULED" | "LIVE"), "the partner's booking shown: {status}");
        let submitted = partner.submission(&job.external_ref);
        assert_eq!(submitted["channel"], "GENIE_TV", "{submitted}");
        let asset = submitted["creative"]["asset_url"].as_str().unwrap_or_default().to_owned();
        assert!(asset.starts_with(&format!("{}/media/", p.origin)), "a media link on the edge's origin: {submitted}");
        let image = browser().get(&asset).send().await.expect("the partner fetches the creative");
        assert_eq!(image.status(), 200, "{asset}");
        let png = image.bytes().await.expect("the image");
        let entry = format!("{}/e/{first}?ch=genie_tv", p.origin);
        assert_eq!(qr_codes_in(&png), vec![entry], "the screen's QR code is the event's 지니TV entry link");

        // Insights: once the campaign airs, the partner's numbers (our contract's `metrics`) reach
        // analytics, read with store-1's token: views = impressions, reach = households. The
        // partner counts per minute aired, so analytics may be one count behind the partner.
        let analytics = format!("/api/v1/events/{first}/analytics");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let body = owner.get(&analytics).await.body;
            let stats = body["analytics"]["channelStats"]
                .as_array()
                .and_then(|all| all.iter().find(|s| s["channel"] == GENIE).cloned())
                .unwrap_or(Value::Null);
            let now = partner.state.job_statuses().into_iter().find(|s| s.job_id == job_id).and_then(|s| s.metrics);
            if stats["metricsReported"] == true {
                let metrics = now.expect("reported numbers come from a campaign that has aired");
                let number = |v: &Value| v.as_str().and_then(|n| n.parse::<i64>().ok()).unwrap_or(-1);
                let (views, reach) = (number(&stats["views"]), number(&stats["reach"]));
                assert!(
                    views >= 0 && views <= metrics.impressions && metrics.impressions - views <= 8,
                    "analytics views {views} against the partner's {metrics:?}"
                );
                assert_eq!(reach, views / 5 * 3, "households as the partner counts them: {stats}");
                assert_ne!(
                    body["analytics"]["channelStats"]
                        .as_array()
                        .and_then(|all| all.iter().find(|s| s["channel"] == URIDONGNE).cloned())
                        .unwrap_or(Value::Null)["metricsReported"],
                    true,
                    "a channel on the local partner is never reported: {body}"
                );
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "analytics never showed the partner's numbers: {body}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }

        // The store withdraws kem at the partner. The platform learns it on its next use of the
        // token: the publication is accepted, 지니TV's delivery fails AUTH_REQUIRED (one refresh,
        // refused), the connection turns NEEDS_RECONNECT, and the other KT screen publishes.
        partner.state.revoke_store("store-1");
        publish(&owner, &second, &[GENIE, URIDONGNE]).await.expect(200);
        let status = settled(&owner, &second).await;
        let genie = delivery(&status, GENIE);
        assert_eq!(genie["state"], "DELIVERY_STATE_FAILED", "{status}");
        assert_eq!(
            (genie["lastError"]["reason"].as_str(), genie["lastError"]["retryable"].as_bool().unwrap_or(false)),
            (Some("AUTH_REQUIRED"), false),
            "{status}"
        );
        assert_eq!(delivery(&status, URIDONGNE)["state"], "DELIVERY_STATE_PUBLISHED", "{status}");
        assert_eq!(partner.state.jobs_created(), 1, "nothing new reached the store");
        let listed = connection(&owner, GENIE).await;
        assert_eq!(state(&listed), "CONNECTION_STATE_NEEDS_RECONNECT", "{listed}");
        assert!(!listed["note"].as_str().unwrap_or_default().is_empty(), "it says why: {listed}");

        // From now on 지니TV is refused up front; without it the event publishes.
        assert_not_connected(&publish(&owner, &third, &[URIDONGNE, GENIE]).await, "GENIE_TV");
        assert_unpublished(&owner, &third).await;
        publish(&owner, &third, &[URIDONGNE]).await.expect(200);
        let status = settled(&owner, &third).await;
        assert_eq!(delivery(&status, URIDONGNE)["state"], "DELIVERY_STATE_PUBLISHED", "{status}");
        assert_eq!(status["deliveries"].as_array().map(Vec::len), Some(1), "우리동네TV only: {status}");
        assert_eq!(partner.state.jobs_created(), 1);
        p.stop().await;
    })
    .await
    .expect("the test finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kt_store_connections_refuse_attacks_and_hurt_nobody() {
    tokio::time::timeout(BOUND, async {
        let (partner, p) = start().await;
        let alice = sign_up(&p.edge, "alice-kt@example.com").await;
        let mallory = sign_up(&p.edge, "mallory-kt@example.com").await;
        let carol = sign_up(&p.edge, "carol-kt@example.com").await;
        let dave = sign_up(&p.edge, "dave-kt@example.com").await;

        // Carol connected her store before the attacks; she reads her event and participants
        // enter it throughout.
        let carols = ready_event(&carol, "캐롤의 매장").await;
        partner.state.sign_in("store-carol", "캐롤 베이커리");
        let landed = browser().get(start_genie(&partner, &carol).await).send().await.expect("the consent flow");
        reply_of(landed).await.expect(200);
        publish(&carol, &carols, &[URIDONGNE]).await.expect(200);
        let terms =
            p.edge.get(&format!("/api/v1/public/events/{carols}")).await.expect(200).str("/event/terms/version");
        let mut victims = Victims::new();
        victims.owner_reading(&carol, &carols);
        victims.participants_entering_from(&p.edge, &carols, &terms, 6_000, URIDONGNE);

        // Malformed states and codes: 400 naming the field, before any lookup; nothing reaches
        // the partner, and the well-formed state they came with still completes afterwards.
        partner.state.sign_in("store-m", "말로리 상회");
        let mallorys = consent_redirect(&start_genie(&partner, &mallory).await).await;
        assert!(mallorys.starts_with(&callback(&p, "")), "{mallorys}");
        let (m_state, m_code) = (param(&mallorys, "state"), param(&mallorys, "code"));
        let requests = partner.requests();
        let long = "A".repeat(10_000);
        for (query, field) in [
            ("code=c".to_owned(), "state"),
            (format!("state={long}&code=c"), "state"),
            (format!("state={}%00&code=c", "a".repeat(42)), "state"),
            (format!("state={}%0A&code=c", "a".repeat(42)), "state"),
            (format!("state={}%1B&code=c", "a".repeat(42)), "state"),
            ("state=..%2F..%2Fetc%2Fpasswd&code=c".to_owned(), "state"),
            (format!("state=%27%20OR%201%3D1%20--{}&code=c", "a".repeat(32)), "state"),
            (format!("state=%F0%9F%92%A3{}&code=c", "a".repeat(39)), "state"),
            (format!("state={m_state}"), "code"),
            (format!("state={m_state}&code={}", "c".repeat(5_000)), "code"),
            (format!("state={m_state}&code=pc-1%0D%0AX-Injected:%201"), "code"),
            (format!("state={m_state}&code=pc%001"), "code"),
            (format!("state={m_state}&code=pc%201"), "code"),
        ] {
            let reply = get(&callback(&p, &query), None).await;
            assert_field(&reply, 400, field);
            assert_eq!(reply.body["code"], INVALID_ARGUMENT, "{query:.80}: {}", reply.body);
        }
        // Well formed but never issued.
        let unknown = get(&callback(&p, &format!("state={}&code={m_code}", "A".repeat(43))), None).await;
        assert_refused(&unknown, 404, NOT_FOUND, "STATE_UNKNOWN");
        assert_eq!(partner.requests(), requests, "nothing malformed or unknown reached the partner");
        assert_eq!(state(&connection(&mallory, GENIE).await), NOT_CONNECTED);

        // Another owner's callback presented by Mallory, signed in: the single-use state binds the
        // answer to the owner who started it, so it connects Dave's store to Dave and nothing to
        // Mallory (the edge does not pass the caller of this public route on).
        partner.state.sign_in("store-d", "데이브 철물점");
        let daves = consent_redirect(&start_genie(&partner, &dave).await).await;
        let as_mallory = get(&daves, mallory.token()).await.expect(200);
        assert_eq!(as_mallory.body["connection"]["accountId"], "store-d", "{}", as_mallory.body);
        let daves_connection = connection(&dave, GENIE).await;
        assert_eq!((state(&daves_connection), daves_connection["accountId"].as_str()), (ACTIVE, Some("store-d")));
        assert_eq!(state(&connection(&mallory, GENIE).await), NOT_CONNECTED);

        // Alice's state with Mallory's code: refused by the partner (the code's PKCE challenge is
        // Mallory's), connecting neither of them.
        partner.state.sign_in("store-a", "앨리스 꽃집");
        let alices = consent_redirect(&start_genie(&partner, &alice).await).await;
        let a_state = param(&alices, "state");
        let forged = get(&callback(&p, &format!("state={a_state}&code={m_code}")), None).await;
        assert_refused(&forged, 400, FAILED_PRECONDITION, "AUTHORIZATION_DENIED");
        for owner in [&alice, &mallory] {
            assert_eq!(state(&connection(owner, GENIE).await), NOT_CONNECTED);
        }
        assert!(!partner.state.store_granted("store-m") && !partner.state.store_granted("store-a"));
        // Alice's state is spent by the forged completion; Mallory's code survived (the partner
        // refused it unspent), so her own callback connects her own store.
        assert_refused(&get(&alices, None).await, 404, NOT_FOUND, "STATE_UNKNOWN");
        let own = get(&mallorys, None).await.expect(200);
        assert_eq!(own.body["connection"]["accountId"], "store-m", "{}", own.body);

        // A replayed callback is an unknown state; a replayed code with a fresh state is refused
        // at the partner (which, per RFC 6749 §4.1.2, revokes what the code's first use got).
        assert_refused(&get(&mallorys, None).await, 404, NOT_FOUND, "STATE_UNKNOWN");
        let fresh = param(&start_genie(&partner, &mallory).await, "state");
        let replayed = get(&callback(&p, &format!("state={fresh}&code={m_code}")), None).await;
        assert_refused(&replayed, 400, FAILED_PRECONDITION, "AUTHORIZATION_DENIED");
        assert!(!partner.state.store_granted("store-m"), "the replayed code's grant is revoked at the partner");
        assert_eq!(partner.state.refresh_tokens_of("store-m").len(), 1, "one code exchange succeeded");

        // A tampered PKCE challenge: the partner binds the code to it, the exchange with the
        // attempt's verifier is refused.
        let url = start_genie(&partner, &alice).await;
        let tampered = with_param(&url, "code_challenge", &partner_server::oauth::s256(&"t".repeat(43)));
        assert_ne!(tampered, url);
        let landed = browser().get(&tampered).send().await.expect("the consent flow");
        assert_eq!(landed.url().path(), kem_distribution::OAUTH_CALLBACK_PATH);
        assert_refused(&reply_of(landed).await, 400, FAILED_PRECONDITION, "AUTHORIZATION_DENIED");
        assert!(!partner.state.store_granted("store-a"));
        assert_eq!(state(&connection(&alice, GENIE).await), NOT_CONNECTED);

        // Declined at the partner: the callback says so, spends the state, connects nothing; a
        // hostile description is not echoed.
        partner.state.deny_next_consent(1);
        let denied_url = consent_redirect(&start_genie(&partner, &alice).await).await;
        assert_eq!(param(&denied_url, "error"), "access_denied", "{denied_url}");
        assert_refused(&get(&denied_url, None).await, 400, FAILED_PRECONDITION, "AUTHORIZATION_DENIED");
        assert_refused(&get(&denied_url, None).await, 404, NOT_FOUND, "STATE_UNKNOWN");
        let fresh = param(&start_genie(&partner, &alice).await, "state");
        let description = format!("{}%1B%5B2J%00{}", "x".repeat(5_000), "y".repeat(5_000));
        let hostile =
            get(&callback(&p, &format!("state={fresh}&error=access_denied&error_description={description}")), None)
                .await;
        assert_refused(&hostile, 400, FAILED_PRECONDITION, "AUTHORIZATION_DENIED");
        assert_eq!(state(&connection(&alice, GENIE).await), NOT_CONNECTED);

        // Ten callbacks racing with one state: one connects, one code exchange. A racer the edge's
        // admission control turns away (503, Retry-After: 1, when the shared test machine is slow)
        // comes back after that second, as a client told so does, until it has a final answer.
        let racing = consent_redirect(&start_genie(&partner, &alice).await).await;
        let mut racers = JoinSet::new();
        for _ in 0..10 {
            let url = racing.clone();
            racers.spawn(async move {
                for _ in 0..10 {
                    let reply = get(&url, None).await;
                    if reply.status != 503 {
                        return reply.status;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                503
            });
        }
        let mut statuses = HashMap::<u16, u32>::new();
        while let Some(status) = racers.join_next().await {
            *statuses.entry(status.expect("racer")).or_default() += 1;
        }
        assert_eq!(statuses, HashMap::from([(200, 1), (404, 9)]), "one connection, the rest STATE_UNKNOWN");
        assert_eq!(partner.state.refresh_tokens_of("store-a").len(), 1, "one code exchange");
        let alices = connection(&alice, GENIE).await;
        assert_eq!((state(&alices), alices["accountId"].as_str()), (ACTIVE, Some("store-a")));

        // Carol's store is untouched; the well-behaved clients saw no failure.
        let carols_connection = connection(&carol, GENIE).await;
        assert_eq!(
            (state(&carols_connection), carols_connection["accountId"].as_str()),
            (ACTIVE, Some("store-carol")),
            "{carols_connection}"
        );
        assert!(partner.state.store_granted("store-carol"));
        victims.assert_unharmed().await;
        p.stop().await;
    })
    .await
    .expect("the test finishes in time");
}
