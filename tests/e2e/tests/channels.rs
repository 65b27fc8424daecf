//! Per-owner channel connections (#21) through the whole platform — REST edge → gateway → mesh →
//! event and distribution → PostgreSQL/Redis — with distribution on the real Instagram client and
//! Instagram Login against the contract server, whose consent screen redirects a real HTTP client
//! back to the edge's OAuth callback.
//!
//! - An owner connects Instagram by following redirects from `connections:start` to the callback;
//!   until then publishing to Instagram is refused up front (CHANNEL_NOT_CONNECTED) and nothing is
//!   published; afterwards the post is made with the owner's own account, from an image Instagram's
//!   crawler fetched from the edge. No token appears in any answer or in any database row.
//! - Revoking the app at Instagram makes the connection NEEDS_RECONNECT: Instagram is refused while
//!   the other channels still publish.
//! - An owner connects Naver with their cafe board; the article is posted as them, to that board,
//!   and disconnecting deletes the grant at Naver.
//! - The callback and the owner routes under attack, while well-behaved clients keep being served.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kem::Role;
use kem::platform::ServiceConfigs;
use kem_distribution::domain::RetryPolicy;
use kem_kit::Secret;
use kem_kit::store::{Store, StoreConfig};
use kem_testkit::contracts::instagram::{self, Consent, IgAccount, IgServer};
use kem_testkit::contracts::naver::{self, NaverConsent, NaverServer};
use kem_testkit::roles::TestPlatform;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::hostile::{new_event, sign_up};
use crate::support::{Reply, Rest};

/// The most one test may take (a debug build on two shared cores, the platform started inside).
pub(crate) const BOUND: Duration = Duration::from_secs(120);

pub(crate) const CONNECTIONS: &str = "/api/v1/channels/connections";
pub(crate) const START: &str = "/api/v1/channels/connections:start";
const INSTAGRAM_CONNECTION: &str = "/api/v1/channels/connections/CHANNEL_INSTAGRAM";
const FORGED: &str = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";

/// A platform whose distribution publishes to Instagram and Naver Cafe through each owner's
/// connected account (Instagram Login against `ig`, Naver Login against `naver`), its public base
/// URL the edge's own origin.
pub(crate) struct Platform {
    pub(crate) platform: TestPlatform,
    ig: IgServer,
    naver: NaverServer,
    pub(crate) origin: String,
    addr: SocketAddr,
    pub(crate) edge: Rest,
}

impl Platform {
    async fn start() -> Platform {
        Platform::start_adjusted(|_| {}).await
    }

    /// [`Platform::start`] with `adjust` applied to distribution's configuration (also for
    /// `kakao`).
    pub(crate) async fn start_adjusted(adjust: impl Fn(&mut kem_distribution::DistributionConfig)) -> Platform {
        let (ig, naver) = (IgServer::start().await, NaverServer::start().await);
        // The public base URL must name the edge's port before the platform starts, so the port
        // is picked first; another process may take it meanwhile (the start then fails on bind):
        // a few attempts, each on another port.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = kem_testkit::net::free_port();
            let origin = format!("http://127.0.0.1:{port}");
            // Naver redirects only to a registered callback URL, matched exactly (Instagram's is
            // registered with its settings).
            naver.allow_redirect(&format!("{origin}{}", kem_distribution::OAUTH_CALLBACK_PATH));
            let event = kem_event::EventConfig {
                public_base_url: origin.clone(),
                cache_ttl: Duration::from_millis(500),
                ..kem_event::EventConfig::default()
            };
            let configs = ServiceConfigs {
                user: Some(kem_user::UserConfig::for_tests()),
                event: Some(event),
                distribution: Some({
                    let mut config = distribution(&ig, &naver, &origin);
                    adjust(&mut config);
                    config
                }),
                // Analytics answers cached for 1 s (its shortest), so the insights a test waits
                // for show soon.
                analytics: Some(kem_analytics::AnalyticsConfig {
                    cache_ttl: Duration::from_secs(1),
                    ..kem_analytics::AnalyticsConfig::default()
                }),
                edge_limits: Some(generous_limits()),
                ..ServiceConfigs::default()
            };
            let roles = Role::all();
            let started = tokio::spawn(async move {
                TestPlatform::start_backed_adjusted(&roles, configs, move |settings| settings.http_port = port).await
            })
            .await;
            match started {
                Ok(platform) => {
                    let addr = platform.http_addr();
                    return Platform { platform, ig, naver, origin, addr, edge: Rest::new(addr) };
                }
                Err(failed) if attempt < 3 => eprintln!("the platform did not start on port {port} ({failed}); again"),
                Err(failed) => std::panic::resume_unwind(failed.into_panic()),
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) async fn stop(self) {
        self.platform.stop().await;
        drop((self.ig, self.naver));
    }
}

/// Puts `config`'s Instagram on the real Graph client and Instagram Login against `ig`, with the
/// Meta app's credentials, and registers the callback under `origin` (the edge's) with `ig`: each
/// owner then publishes through the account they connect ([`connect_instagram`]). Also for
/// `journey`.
pub(crate) fn instagram_login(config: &mut kem_distribution::DistributionConfig, ig: &IgServer, origin: &str) {
    let mut provider = kem_distribution::infra::channels::instagram::provider_config(ig.base_url());
    provider.timeout = Duration::from_secs(2);
    provider.deadline = Duration::from_secs(5);
    config.instagram.mode =
        kem_kit::external::ProviderMode::Real { config: provider, credentials: Secret::new(instagram::APP_SECRET) };
    config.instagram.app_id = instagram::APP_ID.into();
    config.instagram.oauth_url = ig.base_url();
    config.instagram.authorize_url = ig.base_url();
    config.instagram.settings.api_version = instagram::VERSION.into();
    ig.allow_redirect(&format!("{origin}{}", kem_distribution::OAUTH_CALLBACK_PATH));
}

/// Distribution with the real Instagram client and Instagram Login pointed at `ig` (the Meta
/// app's credentials), Naver Login and Cafe at `naver` (the Naver application's), every channel at
/// test speed. Kakao stays on its labelled local provider.
fn distribution(ig: &IgServer, naver: &NaverServer, origin: &str) -> kem_distribution::DistributionConfig {
    use kem_distribution::infra::{channels, connections};
    let mut config = kem_distribution::DistributionConfig { public_base_url: origin.to_owned(), ..Default::default() };
    instagram_login(&mut config, ig, origin);
    config.instagram.settings.container_poll = Duration::from_millis(50);
    config.instagram.settings.container_wait = Duration::from_secs(2);
    config.instagram.settings.processing_poll = Duration::from_millis(50);
    let quick = |mut provider: kem_kit::external::ProviderConfig| {
        provider.timeout = Duration::from_secs(2);
        provider.deadline = Duration::from_secs(5);
        provider
    };
    config.naver = Some(kem_distribution::config::NaverLoginConfig {
        client_id: naver::CLIENT_ID.into(),
        client_secret: Secret::new(naver::CLIENT_SECRET),
        auth: quick(connections::naver::provider_config(naver.base_url())),
        api: quick(channels::naver::provider_config(naver.base_url())),
    });
    // Tests run at any hour: Kakao's night-time advertising restriction would hold deliveries.
    config.kakao.settings.quiet_hours = false;
    for policy in config.policies.values_mut() {
        policy.deadline = Duration::from_secs(5);
        policy.retry = RetryPolicy {
            max_attempts: 2,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(400),
            min_poll: Duration::from_millis(20),
            max_poll: Duration::from_millis(200),
        };
    }
    config.scan_interval = Duration::from_millis(100);
    // Posts' numbers read every 300 ms instead of hourly.
    config.insights.interval = Duration::from_millis(300);
    config
}

/// The edge's per-route limits out of the way: attacker and bystanders share one address here
/// (the limits have their own tests).
fn generous_limits() -> kem_gateway::protect::EdgeLimits {
    let mut limits = kem_gateway::protect::EdgeLimits::default();
    let generous = kem_gateway::protect::RateLimit::new(100_000, Duration::from_secs(1), 100_000).expect("limit");
    limits.per_ip = generous;
    limits.default_route.limit = generous;
    for limit in limits.routes.values_mut() {
        limit.limit = generous;
    }
    limits
}

/// Takes a new event of `owner` to CONTENT_READY (local AI and images, an image selected); its id.
pub(crate) async fn ready_event(owner: &Rest, title: &str) -> String {
    crate::hostile::ready_new_event(owner, new_event(title)).await
}

pub(crate) async fn publish(owner: &Rest, event: &str, channels: &[&str]) -> Reply {
    owner.post(&format!("/api/v1/events/{event}:publish"), json!({"channels": channels})).await
}

/// Asserts `reply` is the up-front refusal of a publication naming exactly `channels`
/// (400 FAILED_PRECONDITION, ErrorInfo CHANNEL_NOT_CONNECTED with metadata `channels`).
#[track_caller]
pub(crate) fn assert_not_connected(reply: &Reply, channels: &str) {
    assert_eq!(reply.status, 400, "{}", reply.body);
    let details = reply.body.pointer("/details").and_then(Value::as_array).cloned().unwrap_or_default();
    let info = details
        .iter()
        .find(|d| d["reason"] == "CHANNEL_NOT_CONNECTED")
        .unwrap_or_else(|| panic!("an ErrorInfo CHANNEL_NOT_CONNECTED: {}", reply.body));
    assert_eq!(info["metadata"]["channels"], channels, "{}", reply.body);
}

/// The `ErrorInfo.reason` of an error answer ("" when none).
pub(crate) fn reason(reply: &Reply) -> String {
    let details = reply.body.pointer("/details").and_then(Value::as_array).cloned().unwrap_or_default();
    details.iter().find_map(|d| d["reason"].as_str().map(str::to_owned)).unwrap_or_default()
}

/// Nothing of `event` was published: it is still CONTENT_READY and distribution has no delivery.
pub(crate) async fn assert_unpublished(owner: &Rest, event: &str) {
    let status = owner.get(&format!("/api/v1/events/{event}")).await.expect(200).str("/event/status");
    assert_eq!(status, "EVENT_STATUS_CONTENT_READY", "a refused publication changes nothing");
    let distribution = owner.get(&format!("/api/v1/events/{event}/distribution")).await;
    let deliveries = distribution.body.pointer("/deliveries").and_then(Value::as_array).map_or(0, Vec::len);
    assert!(
        distribution.status == 404 || (distribution.status == 200 && deliveries == 0),
        "no delivery of a refused publication: {} {}",
        distribution.status,
        distribution.body
    );
}

/// The connection of `channel` (e.g. `CHANNEL_INSTAGRAM`) in `owner`'s list.
pub(crate) async fn connection(owner: &Rest, channel: &str) -> Value {
    let list = owner.get(CONNECTIONS).await.expect(200);
    let connections = list.body.pointer("/connections").and_then(Value::as_array).cloned().unwrap_or_default();
    connections
        .into_iter()
        .find(|c| c["channel"] == channel)
        .unwrap_or_else(|| panic!("{channel} is listed: {}", list.body))
}

pub(crate) fn state(connection: &Value) -> &str {
    connection["state"].as_str().unwrap_or_default()
}

/// The delivery of `channel` in a distribution status.
pub(crate) fn delivery<'a>(status: &'a Value, channel: &str) -> &'a Value {
    status["deliveries"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["channel"] == channel))
        .unwrap_or_else(|| panic!("a delivery of {channel}: {status}"))
}

/// Polls the distribution of `event` until no delivery is pending, sending or rate limited.
pub(crate) async fn settled(owner: &Rest, event: &str) -> Value {
    let path = format!("/api/v1/events/{event}/distribution");
    owner
        .poll(&path, |body| {
            body["deliveries"].as_array().is_some_and(|all| {
                !all.is_empty()
                    && all.iter().all(|d| {
                        matches!(
                            d["state"].as_str(),
                            Some(
                                "DELIVERY_STATE_PUBLISHED" | "DELIVERY_STATE_FAILED" | "DELIVERY_STATE_AWAITING_OWNER"
                            )
                        )
                    })
            })
        })
        .await
        .body
}

/// A client that follows redirects, like the owner's browser.
pub(crate) fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .timeout(Duration::from_secs(20))
        .build()
        .expect("an HTTP client")
}

/// A client that does not follow redirects (to read where the consent screen sends the browser).
pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("an HTTP client")
}

pub(crate) async fn reply_of(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Reply { status, body, retry_after: None }
}

/// Starts connecting Instagram for `owner`; the authorization URL (at the contract server).
async fn start_instagram(ig: &IgServer, owner: &Rest) -> String {
    let started = owner.post(START, json!({"channel": "CHANNEL_INSTAGRAM"})).await.expect(200);
    let url = started.str("/authorizationUrl");
    assert!(url.starts_with(&format!("{}/oauth/authorize?", ig.base_url())), "{}", started.body);
    url
}

/// Opens the consent screen at `url` without following its redirect: the callback URL it sends
/// the browser to (at the edge, with `code` and `state`; Meta's `#_` fragment dropped).
async fn callback_url(url: &str) -> String {
    let response = no_redirects().get(url).send().await.expect("the consent screen answers");
    assert_eq!(response.status(), 302, "the consent screen redirects");
    let location = response.headers()["location"].to_str().expect("an ASCII location").to_owned();
    location.split('#').next().unwrap_or_default().to_owned()
}

/// Connects `account` as `owner`'s Instagram the way the owner's browser does: start, consent at
/// `ig`, follow its redirect to the edge's callback; the connection the callback answered. Also
/// for `journey`.
pub(crate) async fn connect_instagram(ig: &IgServer, owner: &Rest, account: &IgAccount) -> Value {
    ig.consent(Consent::approve(account));
    let url = start_instagram(ig, owner).await;
    let landed = browser().get(&url).send().await.expect("the consent flow");
    assert_eq!(landed.url().path(), kem_distribution::OAUTH_CALLBACK_PATH, "lands on the edge's callback");
    let reply = reply_of(landed).await.expect(200);
    reply.body["connection"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_connects_instagram_through_the_edge_and_publishes_with_their_own_account() {
    tokio::time::timeout(BOUND, async {
        let p = Platform::start().await;
        let owner = sign_up(&p.edge, "connect-owner@example.com").await;
        let event = ready_event(&owner, "연결 이벤트").await;

        // Not connected: listed as such, and publishing to Instagram is refused up front.
        let before = connection(&owner, "CHANNEL_INSTAGRAM").await;
        assert_eq!(state(&before), "CONNECTION_STATE_NOT_CONNECTED", "{before}");
        assert_eq!(before.get("accountId").and_then(Value::as_str).unwrap_or_default(), "", "{before}");
        let refused = publish(&owner, &event, &["CHANNEL_INSTAGRAM", "CHANNEL_KAKAO_CHANNEL"]).await;
        assert_not_connected(&refused, "INSTAGRAM");
        assert_unpublished(&owner, &event).await;

        // Connecting: the consent screen redirects the browser to the edge's callback, which
        // answers the connection.
        let shop = p.ig.add_account("bakery_seoul");
        let connected = connect_instagram(&p.ig, &owner, &shop).await;
        assert_eq!(state(&connected), "CONNECTION_STATE_ACTIVE", "{connected}");
        assert_eq!(connected["accountName"], "bakery_seoul", "{connected}");
        assert_eq!(connected["accountId"], shop.user_id.as_str(), "{connected}");
        let listed = connection(&owner, "CHANNEL_INSTAGRAM").await;
        assert_eq!(state(&listed), "CONNECTION_STATE_ACTIVE", "{listed}");
        let scopes: Vec<&str> =
            listed["scopes"].as_array().map(|s| s.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        assert!(scopes.contains(&instagram::SCOPE_PUBLISH), "{listed}");
        let expire = listed["expireTime"].as_str().unwrap_or_default();
        // A long-lived token: 60 days from now (the day may turn while the test runs).
        let in_60_days = time::OffsetDateTime::now_utc() + time::Duration::days(60);
        let days = [in_60_days - time::Duration::hours(1), in_60_days + time::Duration::hours(1)].map(|t| t.date());
        assert!(days.iter().any(|d| expire.starts_with(&d.to_string())), "expires in 60 days: {listed}");

        // No token in any answer, nor in any row of the distribution database or the queue.
        let tokens = p.ig.live_tokens(&shop);
        assert!(!tokens.is_empty(), "Instagram issued tokens");
        let answers = format!("{connected} {}", owner.get(CONNECTIONS).await.expect(200).body);
        for token in &tokens {
            assert!(!answers.contains(token.as_str()), "an answer carries a token");
        }
        for database in ["distribution", "queue"] {
            let rows = every_row(&p.platform.database_url(database)).await;
            for token in &tokens {
                assert!(!contains(&rows, token), "the {database} database holds the plaintext token");
            }
            if database == "distribution" {
                assert!(contains(&rows, &shop.user_id), "the connection is stored (the account id is no secret)");
            }
        }

        // Now both publish; Instagram's post is the shop's own, from an image fetched at the edge.
        publish(&owner, &event, &["CHANNEL_INSTAGRAM", "CHANNEL_KAKAO_CHANNEL"]).await.expect(200);
        let status = settled(&owner, &event).await;
        for channel in ["CHANNEL_INSTAGRAM", "CHANNEL_KAKAO_CHANNEL"] {
            assert_eq!(delivery(&status, channel)["state"], "DELIVERY_STATE_PUBLISHED", "{status}");
        }
        let media = delivery(&status, "CHANNEL_INSTAGRAM")["externalId"].as_str().unwrap_or_default().to_owned();
        assert!(!media.is_empty(), "the Instagram media id: {status}");
        let read = |token: &str| {
            format!("{}/{}/{media}?fields=permalink&access_token={token}", p.ig.base_url(), instagram::VERSION)
        };
        let token =
            tokens.iter().find(|t| p.ig.token_info(t).is_some_and(|i| i.kind == instagram::TokenKind::LongLived));
        let as_shop =
            reply_of(browser().get(read(token.expect("a long-lived token"))).send().await.expect("Graph")).await;
        assert_eq!(as_shop.status, 200, "the media belongs to the shop's account: {}", as_shop.body);
        let as_other = reply_of(browser().get(read(instagram::TOKEN)).send().await.expect("Graph")).await;
        assert_eq!(as_other.body["error"]["code"], 10, "the media is not the platform account's: {}", as_other.body);
        let fetches = p.ig.fetches();
        let fetch = fetches.last().unwrap_or_else(|| panic!("Instagram fetched no image: {fetches:?}"));
        assert!(
            fetch.url.starts_with(&format!("{}/media/", p.origin))
                || fetch.url.starts_with(&format!("{}/api/v1/public/images/", p.origin)),
            "the image is fetched from the edge: {fetch:?}"
        );
        assert_eq!((fetch.status, fetch.jpeg), (Some(200), true), "a JPEG: {fetch:?}");

        // Insights: until Instagram has numbers for the post, analytics says "not reported" (not
        // 0); once it reports them, the insights job records exactly those, read with the shop's
        // own token. Kakao offers no per-message numbers: it stays "not reported".
        let analytics = format!("/api/v1/events/{event}/analytics");
        let stats = |body: &Value, channel: &str| {
            body["analytics"]["channelStats"]
                .as_array()
                .and_then(|all| all.iter().find(|s| s["channel"] == channel).cloned())
                .unwrap_or(Value::Null)
        };
        let early = owner.get(&analytics).await.expect(200).body;
        assert_ne!(stats(&early, "CHANNEL_INSTAGRAM")["metricsReported"], true, "not reported yet: {early}");
        let numbers = instagram::Insights { reach: 40, views: 120, likes: 7, comments: 2, saved: 1, shares: 0 };
        p.ig.set_insights(&media, numbers);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let reported = loop {
            let body = owner.get(&analytics).await.body;
            if stats(&body, "CHANNEL_INSTAGRAM")["metricsReported"] == true {
                break body;
            }
            assert!(tokio::time::Instant::now() < deadline, "analytics never showed Instagram's numbers: {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let instagram_stats = stats(&reported, "CHANNEL_INSTAGRAM");
        assert_eq!((&instagram_stats["views"], &instagram_stats["reach"]), (&json!("120"), &json!("40")), "{reported}");
        assert!(instagram_stats["metricsObserveTime"].is_string(), "{reported}");
        let kakao_stats = stats(&reported, "CHANNEL_KAKAO_CHANNEL");
        assert_ne!(kakao_stats["metricsReported"], true, "Kakao is not reported: {reported}");
        assert!(p.ig.insight_reads() >= 1, "read from Instagram");
        p.stop().await;
    })
    .await
    .expect("the test finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoked_instagram_needs_reconnecting_while_other_channels_publish() {
    tokio::time::timeout(BOUND, async {
        let p = Platform::start().await;
        let owner = sign_up(&p.edge, "revoke-owner@example.com").await;
        let (second, third) = tokio::join!(ready_event(&owner, "두번째"), ready_event(&owner, "세번째"));
        let shop = p.ig.add_account("flower_mapo");
        let connected = connect_instagram(&p.ig, &owner, &shop).await;
        assert_eq!(state(&connected), "CONNECTION_STATE_ACTIVE", "{connected}");

        // The owner removes the app at Instagram: every token of the account stops working.
        p.ig.revoke(&shop);
        let reply = publish(&owner, &second, &["CHANNEL_INSTAGRAM", "CHANNEL_KAKAO_CHANNEL"]).await;
        if reply.status == 400 {
            // Distribution already knew (e.g. its refresh job met the revoked token).
            assert_not_connected(&reply, "INSTAGRAM");
        } else {
            // Not known yet: the Instagram delivery fails asking for a reconnection, Kakao publishes.
            reply.expect(200);
            let status = settled(&owner, &second).await;
            let instagram = delivery(&status, "CHANNEL_INSTAGRAM");
            assert_eq!(instagram["state"], "DELIVERY_STATE_FAILED", "{status}");
            assert_eq!(instagram["lastError"]["reason"], "AUTH_REQUIRED", "{status}");
            assert_eq!(delivery(&status, "CHANNEL_KAKAO_CHANNEL")["state"], "DELIVERY_STATE_PUBLISHED", "{status}");
        }
        let listed = connection(&owner, "CHANNEL_INSTAGRAM").await;
        assert_eq!(state(&listed), "CONNECTION_STATE_NEEDS_RECONNECT", "{listed}");
        assert!(!listed["note"].as_str().unwrap_or_default().is_empty(), "it says why: {listed}");

        // From now on Instagram is refused up front; without it the event publishes.
        let refused = publish(&owner, &third, &["CHANNEL_KAKAO_CHANNEL", "CHANNEL_INSTAGRAM"]).await;
        assert_not_connected(&refused, "INSTAGRAM");
        assert_unpublished(&owner, &third).await;
        publish(&owner, &third, &["CHANNEL_KAKAO_CHANNEL"]).await.expect(200);
        let status = settled(&owner, &third).await;
        assert_eq!(delivery(&status, "CHANNEL_KAKAO_CHANNEL")["state"], "DELIVERY_STATE_PUBLISHED", "{status}");
        assert_eq!(status["deliveries"].as_array().map(Vec::len), Some(1), "Kakao only: {status}");
        p.stop().await;
    })
    .await
    .expect("the test finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_connects_naver_with_their_cafe_board_and_the_article_is_theirs() {
    tokio::time::timeout(BOUND, async {
        let p = Platform::start().await;
        let owner = sign_up(&p.edge, "naver-owner@example.com").await;
        let event = ready_event(&owner, "카페 이벤트").await;
        let before = connection(&owner, "CHANNEL_NAVER_BLOG").await;
        assert_eq!(state(&before), "CONNECTION_STATE_NOT_CONNECTED", "{before}");

        // The owner logs in with Naver (a member of the cafe) and picks the board.
        let member = p.naver.add_member("마포빵집");
        p.naver.join(&member, naver::CLUB);
        p.naver.consent(NaverConsent::Approve(member.clone()));
        let cafe = json!({"clubId": naver::CLUB, "menuId": naver::MENU});
        let started = owner.post(START, json!({"channel": "CHANNEL_NAVER_BLOG", "naverCafe": cafe})).await.expect(200);
        let url = started.str("/authorizationUrl");
        assert!(url.starts_with(&format!("{}/oauth2.0/authorize?", p.naver.base_url())), "{}", started.body);
        let landed = browser().get(&url).send().await.expect("the consent flow");
        assert!(landed.url().as_str().starts_with(&p.url(kem_distribution::OAUTH_CALLBACK_PATH)), "{}", landed.url());
        let connected = reply_of(landed).await.expect(200).body["connection"].clone();
        assert_eq!(state(&connected), "CONNECTION_STATE_ACTIVE", "{connected}");
        assert_eq!(
            (connected["accountId"].as_str(), connected["accountName"].as_str()),
            (Some(member.id.as_str()), Some("마포빵집"))
        );
        assert_eq!(connected["naverCafe"], cafe, "{connected}");
        let listed = connection(&owner, "CHANNEL_NAVER_BLOG").await;
        assert_eq!(state(&listed), "CONNECTION_STATE_ACTIVE", "{listed}");

        // No Naver token in any answer or row.
        let tokens = p.naver.live_tokens(&member);
        assert!(!tokens.is_empty(), "Naver issued a token");
        let rows = every_row(&p.platform.database_url("distribution")).await;
        for token in &tokens {
            assert!(!contains(&rows, token), "the database holds the plaintext Naver token");
            assert!(!format!("{connected} {listed}").contains(token.as_str()), "an answer carries the token");
        }

        // The article goes to the owner's board, posted as the owner.
        publish(&owner, &event, &["CHANNEL_NAVER_BLOG"]).await.expect(200);
        let status = settled(&owner, &event).await;
        let delivery = delivery(&status, "CHANNEL_NAVER_BLOG");
        assert_eq!(delivery["state"], "DELIVERY_STATE_PUBLISHED", "{status}");
        assert!(delivery["permalink"].as_str().unwrap_or_default().starts_with("https://cafe.naver.com/"), "{status}");
        let articles = p.naver.articles();
        assert_eq!(articles.len(), 1, "{articles:?}");
        assert_eq!(
            (articles[0].member_id.as_str(), articles[0].club.as_str(), articles[0].menu.as_str()),
            (member.id.as_str(), naver::CLUB, naver::MENU)
        );

        // Disconnecting deletes the grant at Naver.
        owner.delete("/api/v1/channels/connections/CHANNEL_NAVER_BLOG").await.expect(200);
        assert_eq!(p.naver.deletes(), 1);
        assert!(p.naver.live_tokens(&member).is_empty(), "the member's tokens are revoked at Naver");
        assert_eq!(state(&connection(&owner, "CHANNEL_NAVER_BLOG").await), "CONNECTION_STATE_NOT_CONNECTED");
        p.stop().await;
    })
    .await
    .expect("the test finishes in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_oauth_callback_and_connection_routes_refuse_attacks_and_hurt_nobody() {
    tokio::time::timeout(BOUND, async {
        let p = Platform::start().await;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
        let alice = sign_up(&p.edge, "alice-channels@example.com").await;
        let bob = sign_up(&p.edge, "bob-channels@example.com").await;
        let bystander = sign_up(&p.edge, "carol-channels@example.com").await;
        let mut bystanders = Bystanders::new();
        bystanders.listing(&bystander);
        let callback = |query: &str| p.url(&format!("{}?{query}", kem_distribution::OAUTH_CALLBACK_PATH));

        // Malformed states and codes: 400 before any lookup, whatever token comes along.
        let long = "A".repeat(10_000);
        let good_shape = "A".repeat(43);
        for query in [
            "code=c".to_owned(),
            "".to_owned(),
            format!("state={long}&code=c"),
            "state=..%2F..%2Fetc%2Fpasswd&code=c".to_owned(),
            format!("state={}%00&code=c", "a".repeat(42)),
            format!("state={}%0A&code=c", "a".repeat(42)),
            format!("state={}%1B&code=c", "a".repeat(42)),
            format!("state=%F0%9F%92%A3{}&code=c", "a".repeat(39)),
            format!("state={good_shape}&code={long}"),
            format!("state={good_shape}&code=a%00b"),
        ] {
            let reply = reply_of(http.get(callback(&query)).send().await.expect("an answer")).await;
            assert_eq!(reply.status, 400, "{:.80}: {}", query, reply.body);
            assert!(reply.body.to_string().len() < 2048, "the answer quotes the input");
        }
        // Well formed but never issued: 404.
        let reply =
            reply_of(http.get(callback(&format!("state={good_shape}&code=c"))).send().await.expect("answer")).await;
        assert_eq!(reply.status, 404, "{}", reply.body);

        // Owner routes: no token or a forged one is 401 before any service.
        let forged = p.edge.signed_in(FORGED);
        for caller in [&p.edge, &forged] {
            assert_eq!(caller.get(CONNECTIONS).await.status, 401);
            assert_eq!(caller.post(START, json!({"channel": "CHANNEL_INSTAGRAM"})).await.status, 401);
            assert_eq!(caller.delete(INSTAGRAM_CONNECTION).await.status, 401);
        }
        // Start: the channel by shape.
        for body in [
            json!({"channel": "CHANNEL_UNSPECIFIED"}),
            json!({"channel": "CHANNEL_NOPE"}),
            json!({"channel": "x".repeat(10_000)}),
            json!({"channel": "CHANNEL_INSTAGRAM\u{0}"}),
            json!({}),
        ] {
            let reply = alice.post(START, body.clone()).await;
            assert_eq!(reply.status, 400, "{:.80}: {}", body.to_string(), reply.body);
        }
        // Naver needs a board, by shape; a channel that needs no account cannot be connected.
        for cafe in [
            None,
            Some(json!({"clubId": "12a", "menuId": "7"})),
            Some(json!({"clubId": "1", "menuId": "9".repeat(21)})),
        ] {
            let mut body = json!({"channel": "CHANNEL_NAVER_BLOG"});
            if let Some(cafe) = cafe {
                body["naverCafe"] = cafe;
            }
            let reply = alice.post(START, body.clone()).await;
            assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        }
        let reply = alice.post(START, json!({"channel": "CHANNEL_GENIE_TV"})).await;
        assert_eq!((reply.status, reason(&reply)), (400, "CONNECTION_NOT_NEEDED".to_owned()), "{}", reply.body);
        // The owner declining on the consent screen: the callback says so and connects nothing.
        p.ig.consent(Consent::Deny);
        let url = start_instagram(&p.ig, &alice).await;
        let denied = reply_of(browser().get(&url).send().await.expect("the consent flow")).await;
        assert_eq!((denied.status, reason(&denied)), (400, "AUTHORIZATION_DENIED".to_owned()), "{}", denied.body);
        assert_eq!(state(&connection(&alice, "CHANNEL_INSTAGRAM").await), "CONNECTION_STATE_NOT_CONNECTED");
        for channel in ["CHANNEL_UNSPECIFIED", "CHANNEL_NOPE", "%00", &long] {
            let reply = alice.delete(&format!("{CONNECTIONS}/{channel}")).await;
            assert_eq!(reply.status, 400, "DELETE {channel:.40}: {}", reply.body);
        }

        // Twenty callbacks racing with one fresh state: exactly one connects.
        let shop = p.ig.add_account("alice_cafe");
        p.ig.consent(Consent::approve(&shop));
        let url = callback_url(&start_instagram(&p.ig, &alice).await).await;
        assert!(url.starts_with(&callback("")), "{url}");
        let issued = p.ig.tokens_issued();
        let mut racers = JoinSet::new();
        for _ in 0..20 {
            let (http, url) = (http.clone(), url.clone());
            // Turned away by the edge's admission control (503, Retry-After: 1) on a slow shared
            // machine: back after that second, as a client told so does.
            racers.spawn(async move {
                for _ in 0..10 {
                    let status = http.get(&url).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                    if status != 503 {
                        return status;
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
        assert_eq!(statuses, HashMap::from([(200, 1), (404, 19)]), "one connection, the rest STATE_UNKNOWN");
        assert_eq!(p.ig.tokens_issued(), issued + 2, "one code exchange (short- and long-lived token)");
        assert_eq!(state(&connection(&alice, "CHANNEL_INSTAGRAM").await), "CONNECTION_STATE_ACTIVE");
        // Replayed after success: 404, and the connection stays.
        let replay = reply_of(http.get(&url).send().await.expect("answer")).await;
        assert_eq!(replay.status, 404, "{}", replay.body);

        // Another owner sees nothing of it; completing Alice's state as Bob connects Bob nothing.
        assert_eq!(state(&connection(&bob, "CHANNEL_INSTAGRAM").await), "CONNECTION_STATE_NOT_CONNECTED");
        let bob_before = connection(&bob, "CHANNEL_INSTAGRAM").await;
        let second_shop = p.ig.add_account("alice_second");
        p.ig.consent(Consent::approve(&second_shop));
        let url = callback_url(&start_instagram(&p.ig, &alice).await).await;
        let as_bob =
            reply_of(http.get(&url).bearer_auth(bob.token().unwrap_or_default()).send().await.expect("answer")).await;
        assert!(as_bob.status == 200 || as_bob.status == 404, "{} {}", as_bob.status, as_bob.body);
        assert_eq!(connection(&bob, "CHANNEL_INSTAGRAM").await, bob_before, "Bob's list is unchanged");
        if as_bob.status == 404 {
            // Refused for Bob without using the state up: Alice's browser still completes it.
            reply_of(http.get(&url).send().await.expect("answer")).await.expect(200);
        }
        let alices = connection(&alice, "CHANNEL_INSTAGRAM").await;
        assert_eq!(
            (state(&alices), alices["accountName"].as_str()),
            ("CONNECTION_STATE_ACTIVE", Some("alice_second")),
            "the state connects the owner who started it: {alices}"
        );
        assert_eq!(connection(&bob, "CHANNEL_INSTAGRAM").await, bob_before, "Bob's list is unchanged");
        // Bob deleting his (absent) connection leaves Alice's alone.
        bob.delete(INSTAGRAM_CONNECTION).await.expect(200);
        assert_eq!(state(&connection(&alice, "CHANNEL_INSTAGRAM").await), "CONNECTION_STATE_ACTIVE");

        // Deleting twice: both 200, then not connected.
        for _ in 0..2 {
            let removed = alice.delete(INSTAGRAM_CONNECTION).await.expect(200);
            assert_eq!(removed.str("/connection/state"), "CONNECTION_STATE_NOT_CONNECTED", "{}", removed.body);
        }
        assert_eq!(state(&connection(&alice, "CHANNEL_INSTAGRAM").await), "CONNECTION_STATE_NOT_CONNECTED");

        bystanders.assert_unharmed().await;
        p.stop().await;
    })
    .await
    .expect("the test finishes in time");
}

/// Well-behaved traffic during the attacks; every answer must be the expected one.
struct Bystanders {
    stop: Arc<AtomicBool>,
    tasks: JoinSet<(u64, Vec<String>)>,
}

impl Bystanders {
    fn new() -> Bystanders {
        Bystanders { stop: Arc::new(AtomicBool::new(false)), tasks: JoinSet::new() }
    }

    /// An owner listing their connections and their events, in a loop.
    fn listing(&mut self, owner: &Rest) {
        let (owner, stop) = (owner.clone(), self.stop.clone());
        self.tasks.spawn(async move {
            let (mut ok, mut failures) = (0, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                for reply in [owner.get(CONNECTIONS).await, owner.get("/api/v1/events?pageSize=5").await] {
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

    async fn assert_unharmed(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        while let Some(joined) = self.tasks.join_next().await {
            let (ok, failures) = joined.expect("bystander task");
            assert!(
                failures.is_empty(),
                "a well-behaved client saw {} failures: {:?}",
                failures.len(),
                failures.first()
            );
            assert!(ok > 0, "a well-behaved client made no successful call");
        }
    }
}

/// Every byte of every row of every table of the database at `url` (text as text, bytea raw),
/// for grepping.
pub(crate) async fn every_row(url: &str) -> Vec<u8> {
    let store = Store::connect(&StoreConfig::new(url)).await.expect("connect to the test database");
    let columns = kem_kit::store::query(
        "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS d FROM information_schema.columns \
         WHERE table_schema = current_schema()",
    )
    .fetch_all(store.primary())
    .await
    .expect("list the columns");
    let mut bytes = Vec::new();
    for column in columns {
        let (table, name, kind) = (
            column.get::<String>("t").expect("table"),
            column.get::<String>("c").expect("column"),
            column.get::<String>("d").expect("type"),
        );
        let sql = if kind == "bytea" {
            format!("SELECT \"{name}\" AS v FROM \"{table}\"")
        } else {
            format!("SELECT convert_to(\"{name}\"::text, 'UTF8') AS v FROM \"{table}\"")
        };
        let rows = kem_kit::store::query(kem_kit::store::AssertSqlSafe(sql))
            .fetch_all(store.primary())
            .await
            .unwrap_or_else(|e| panic!("read {table}.{name}: {e}"));
        for row in rows {
            bytes.extend(row.get::<Option<Vec<u8>>>("v").expect("bytes").unwrap_or_default());
            bytes.push(0);
        }
    }
    store.close().await;
    bytes
}

pub(crate) fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}
