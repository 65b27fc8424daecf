//! The owner's store account at a KT partner (issue #21), against the crate's partner server as
//! the authorization server of our contract `partner/v1`: the connect flow through the partner's
//! consent screen (PKCE S256 required, checked at the partner), campaigns submitted with the
//! store's token reaching that store only, refresh before the one-hour expiry with rotation and
//! reuse detection, revocation → NEEDS_RECONNECT with the other channels unaffected, another
//! owner's state or code, concurrent completes, hostile values, and no token in clear at rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kem_distribution::domain::Channel;
use kem_distribution::infra::channels::form_decode;
use kem_distribution::infra::local::partner_server::PartnerServerConfig;
use kem_distribution::infra::local::partner_server::oauth::s256;
use kem_kit::Secret;
use kem_kit::clock::{Clock, ManualClock};
use kem_kit::external::ProviderMode;
use kem_kit::store;
use kem_proto::kem::distribution::v1 as pb;
use kem_testkit::eventually;
use tonic::Code;

use crate::support::partner::{CLIENT_ID, CLIENT_SECRET, TestPartner};
use crate::support::*;

const STORE_A: (&str, &str) = ("st-a-1001", "카페 온도");
const STORE_B: (&str, &str) = ("st-b-2002", "빵집 보리");

fn state_of_connection(c: &pb::ChannelConnection) -> pb::ConnectionState {
    pb::ConnectionState::try_from(c.state).unwrap_or(pb::ConnectionState::Unspecified)
}

/// Every channel on its contract server, and 지니TV's partner with per-store authorization on
/// `clock` (the callback of the service registered exactly); the other KT channels stay on the
/// platform's client credentials.
async fn setup(clock: Option<ManualClock>) -> (Providers, TestPartner, kem_distribution::DistributionConfig) {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let mut partner = PartnerServerConfig {
        clients: vec![(CLIENT_ID.to_owned(), Secret::new(CLIENT_SECRET))],
        review_step: Duration::from_millis(1),
        retry_after: Duration::ZERO,
        redirect_uris: vec![format!("{}{}", config.public_base_url, kem_distribution::OAUTH_CALLBACK_PATH)],
        ..PartnerServerConfig::default()
    };
    if let Some(clock) = clock {
        partner.clock = Arc::new(clock);
    }
    let genie = TestPartner::with_config(partner).await;
    let provider =
        fast(kem_distribution::infra::channels::partner::provider_config(Channel::GenieTv, genie.base_url()));
    config.partners.get_mut(&Channel::GenieTv).expect("genie").mode =
        ProviderMode::Real { config: provider, credentials: Secret::new(CLIENT_SECRET) };
    config.partner_store_accounts.insert(Channel::GenieTv);
    (providers, genie, config)
}

/// Connects `owner` to `store` at `partner` through the consent screen.
async fn connect_store(h: &Harness, partner: &TestPartner, owner: &str, store: (&str, &str)) -> pb::ChannelConnection {
    partner.state.sign_in(store.0, store.1);
    let started = h.start_connection(owner, Channel::GenieTv.number(), None).await.expect("start");
    let redirect = consent(&started.authorization_url).await;
    h.complete(None, &redirect).await.expect("complete")
}

fn http() -> reqwest::Client {
    let tls = kem_kit::external::tls_client_config(None).expect("rustls with ring");
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// `POST <base>/oauth2/token` (or `/oauth2/revoke`) with `pairs`: status and JSON answer.
async fn form_post(url: &str, pairs: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let body = kem_distribution::infra::channels::form_body(pairs);
    let response = http()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("the partner answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// The authorize redirect for `query`: status and the redirect's query (empty when none).
async fn authorize(partner: &TestPartner, query: &[(&str, &str)]) -> (u16, HashMap<String, String>) {
    let url =
        format!("{}/oauth2/authorize?{}", partner.base_url(), kem_distribution::infra::channels::form_body(query));
    let response = http().get(url).send().await.expect("the partner answers");
    let status = response.status().as_u16();
    let location = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or_default().to_owned();
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or_default();
    (status, form_decode(query).into_iter().collect())
}

#[tokio::test]
async fn a_store_connects_at_the_partner_and_its_campaigns_go_to_that_store() {
    let (providers, genie, config) = setup(None).await;
    let h = Harness::start_unconnected(config).await;

    // Real partner with store accounts: required; the other KT channels keep the platform's client.
    assert_eq!(state_of_connection(&h.connection(OWNER, Channel::GenieTv).await), pb::ConnectionState::NotConnected);
    assert_eq!(state_of_connection(&h.connection(OWNER, Channel::RingoBiz).await), pb::ConnectionState::NotNeeded);
    let unusable = h.check(OWNER, &[Channel::GenieTv, Channel::RingoBiz]).await.expect("check");
    assert_eq!(unusable.iter().map(|c| c.channel).collect::<Vec<_>>(), vec![Channel::GenieTv.number()]);

    genie.state.sign_in(STORE_A.0, STORE_A.1);
    let started = h.start_connection(OWNER, Channel::GenieTv.number(), None).await.expect("start");
    let url = &started.authorization_url;
    assert!(
        url.starts_with(&format!("{}/oauth2/authorize?response_type=code&client_id={CLIENT_ID}", genie.base_url()))
    );
    assert!(url.contains("&code_challenge_method=S256") && url.contains("&scope=ads.write+ads.read"), "{url}");
    let redirect = consent(url).await;
    assert!(redirect["code"].starts_with("pc-"), "{redirect:?}");
    let connected = h.complete(None, &redirect).await.expect("complete");
    assert_eq!(state_of_connection(&connected), pb::ConnectionState::Active);
    assert_eq!((connected.account_id.as_str(), connected.account_name.as_str()), STORE_A);
    let expiry = connected.expire_time.expect("an expiry").seconds;
    assert!((expiry - (SystemClock.now_ms() / 1_000 + 3_600)).abs() < 5, "one hour");

    // The code_verifier was kept sealed with the attempt: no 43-character verifier in clear.
    let attempt = store::query("SELECT code_verifier FROM connection_attempts WHERE channel = 'GENIE_TV'")
        .fetch_one(h.store().primary())
        .await
        .expect("the attempt");
    let sealed: Vec<u8> = attempt.get::<Option<Vec<u8>>>("code_verifier").expect("column").expect("a verifier");
    assert!(sealed.len() > 43 && std::str::from_utf8(&sealed).is_err(), "sealed, not base64url text");

    // No token of the store in clear in the row.
    let row = store::query("SELECT access_token, refresh_token FROM channel_connections WHERE channel = 'GENIE_TV'")
        .fetch_one(h.store().primary())
        .await
        .expect("the row");
    let mut bytes = row.get::<Vec<u8>>("access_token").expect("sealed");
    bytes.extend(row.get::<Option<Vec<u8>>>("refresh_token").expect("sealed").expect("a refresh token"));
    let mut live = genie.state.access_tokens_of(STORE_A.0);
    live.extend(genie.state.refresh_tokens_of(STORE_A.0).into_iter().map(|(t, _)| t));
    assert_eq!(live.len(), 2);
    for token in live {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "no plaintext token");
    }

    // The campaign is submitted with the store's token: the partner books it for store A.
    h.publish("evt-store", &[Channel::GenieTv, Channel::RingoBiz]).await;
    let status = h.settled("evt-store").await;
    assert_eq!(state_of(&status, Channel::GenieTv), pb::DeliveryState::Published, "{status:#?}");
    assert_eq!(state_of(&status, Channel::RingoBiz), pb::DeliveryState::Published, "{status:#?}");
    let stores: Vec<Option<String>> = genie.state.job_stores().into_iter().map(|(_, s)| s).collect();
    assert_eq!(stores, vec![Some(STORE_A.0.to_owned())]);
    assert!(providers.partner(Channel::RingoBiz).state.jobs_created() == 1);

    // Another store's token does not see store A's job.
    connect_store(&h, &genie, OTHER, STORE_B).await;
    let job_id = genie.state.job_stores().remove(0).0;
    let token_b = genie.state.access_tokens_of(STORE_B.0).remove(0);
    let token_a = genie.state.access_tokens_of(STORE_A.0).remove(0);
    let get = |token: String| {
        let url = format!("{}/jobs/{job_id}", genie.base_url());
        async move {
            let response = http().get(url).bearer_auth(token).send().await.expect("answer");
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (status, body["code"].as_str().unwrap_or_default().to_owned())
        }
    };
    assert_eq!(get(token_b).await, (404, "job_not_found".to_owned()));
    assert_eq!(get(token_a).await.0, 200);
    h.cleanup().await;
}

#[tokio::test]
async fn pkce_is_required_and_checked_at_the_partner() {
    let clock = ManualClock::starting_now();
    let (_providers, genie, config) = setup(Some(clock.clone())).await;
    let callback = format!("{}{}", config.public_base_url, kem_distribution::OAUTH_CALLBACK_PATH);
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = s256(verifier);
    let base = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", callback.as_str()),
        ("state", "s-1"),
        ("scope", "ads.write ads.read"),
    ];
    let with = |extra: &[(&'static str, &str)]| {
        let mut all: Vec<(&str, String)> = base.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        all.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        all
    };
    let call = |pairs: Vec<(&'static str, String)>| {
        let genie = &genie;
        async move {
            let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            authorize(genie, &borrowed).await
        }
    };

    // No challenge, plain, or a malformed challenge: back to the client with invalid_request.
    for extra in [
        vec![],
        vec![("code_challenge", challenge.as_str()), ("code_challenge_method", "plain")],
        vec![("code_challenge", verifier), ("code_challenge_method", "plain")],
        vec![("code_challenge", "short"), ("code_challenge_method", "S256")],
    ] {
        let (status, back) = call(with(&extra)).await;
        assert_eq!((status, back.get("error").map(String::as_str)), (302, Some("invalid_request")), "{extra:?}");
        assert_eq!(back.get("state").map(String::as_str), Some("s-1"));
        assert!(!back.contains_key("code"));
    }
    // A redirect URI not registered exactly: an error page, never a redirect.
    for redirect in [format!("{callback}/"), format!("{callback}?x=1"), "https://evil.example/cb".to_owned()] {
        let mut pairs = with(&[("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")]);
        pairs[2].1 = redirect.clone();
        let (status, back) = call(pairs).await;
        assert_eq!((status, back.is_empty()), (400, true), "{redirect}");
    }

    let good = with(&[("code_challenge", challenge.as_str()), ("code_challenge_method", "S256")]);
    let (status, back) = call(good.clone()).await;
    assert_eq!(status, 302);
    let code = back["code"].clone();
    let token_url = format!("{}/oauth2/token", genie.base_url());
    let exchange = |verifier: Option<&str>, code: &str| {
        let mut pairs = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("client_id", CLIENT_ID.to_owned()),
            ("client_secret", CLIENT_SECRET.to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", callback.clone()),
        ];
        if let Some(v) = verifier {
            pairs.push(("code_verifier", v.to_owned()));
        }
        let url = token_url.clone();
        async move {
            let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form_post(&url, &borrowed).await
        }
    };
    let (status, answer) = exchange(None, &code).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_request")), "missing verifier");
    let wrong = "x".repeat(43);
    let (status, answer) = exchange(Some(&wrong), &code).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_grant")), "wrong verifier");
    let (status, answer) = exchange(Some(&challenge), &code).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_grant")), "the challenge is not the verifier");
    let (status, answer) = exchange(Some(verifier), &code).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["store_id"].as_str(), Some("st-0001"));
    assert!(answer["refresh_token"].as_str().is_some_and(|t| !t.is_empty()));
    // Single use: a second exchange fails and revokes what the first one got.
    assert!(genie.state.store_granted("st-0001"));
    let (status, answer) = exchange(Some(verifier), &code).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_grant")));
    assert!(!genie.state.store_granted("st-0001"), "a replayed code revokes its grant");

    // Codes expire after 60 s (the partner's clock).
    let (_, back) = call(good).await;
    clock.advance(Duration::from_secs(61));
    let (status, answer) = exchange(Some(verifier), &back["code"]).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_grant")), "{answer}");
    assert!(answer["error_description"].as_str().unwrap_or_default().contains("expired"));
}

#[tokio::test]
async fn store_tokens_refresh_before_expiry_and_rotate() {
    let clock = ManualClock::starting_now();
    let (_providers, genie, config) = setup(Some(clock.clone())).await;
    let h = Harness::start_with_clock(config, clock.clone()).await;
    let connected = connect_store(&h, &genie, OWNER, STORE_A).await;
    let first_expiry = connected.expire_time.expect("expiry").seconds;
    let first: Vec<(String, bool)> = genie.state.refresh_tokens_of(STORE_A.0);
    assert_eq!(first.len(), 1);
    let old_refresh = first[0].0.clone();

    // 56 minutes on: within five minutes of expiry, the refresh job renews the token.
    clock.advance(Duration::from_secs(56 * 60));
    eventually("the store token to be refreshed", Duration::from_secs(10), || async {
        h.connection(OWNER, Channel::GenieTv).await.expire_time.is_some_and(|t| t.seconds > first_expiry)
    })
    .await;
    let after = h.connection(OWNER, Channel::GenieTv).await;
    assert_eq!(state_of_connection(&after), pb::ConnectionState::Active);
    let tokens = genie.state.refresh_tokens_of(STORE_A.0);
    assert_eq!(tokens.len(), 2, "rotated: {tokens:?}");
    assert!(tokens.iter().any(|(t, current)| t == &old_refresh && !current), "the old one is spent");
    let new_refresh = tokens.iter().find(|(_, current)| *current).map(|(t, _)| t.clone()).expect("a current one");
    // The row holds the new refresh token (sealed): not the old one, not the new one in clear.
    let row = store::query("SELECT refresh_token FROM channel_connections WHERE channel = 'GENIE_TV'")
        .fetch_one(h.store().primary())
        .await
        .expect("row");
    let sealed = row.get::<Option<Vec<u8>>>("refresh_token").expect("column").expect("sealed");
    for token in [&old_refresh, &new_refresh] {
        assert!(!sealed.windows(token.len()).any(|w| w == token.as_bytes()));
    }

    // Presenting the rotated-away refresh token again is reuse: the partner revokes the grant…
    let token_url = format!("{}/oauth2/token", genie.base_url());
    let (status, answer) = form_post(
        &token_url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("refresh_token", &old_refresh),
        ],
    )
    .await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid_grant")));
    assert!(!genie.state.store_granted(STORE_A.0));
    // …so the owner's stored (current) token dies too: the next campaign is refused, the
    // connection needs reconnecting, and the delivery fails AUTH_REQUIRED.
    h.publish("evt-reuse", &[Channel::GenieTv]).await;
    let status = h.settled("evt-reuse").await;
    let genie_delivery = delivery(&status, Channel::GenieTv);
    assert_eq!(genie_delivery.state, pb::DeliveryState::Failed as i32, "{genie_delivery:#?}");
    assert_eq!(genie_delivery.last_error.expect("error").reason, "AUTH_REQUIRED");
    assert_eq!(state_of_connection(&h.connection(OWNER, Channel::GenieTv).await), pb::ConnectionState::NeedsReconnect);
    h.cleanup().await;
}

#[tokio::test]
async fn a_revoked_store_needs_reconnecting_and_the_other_channels_publish() {
    let (providers, genie, config) = setup(None).await;
    let h = Harness::start_unconnected(config).await;
    connect_store(&h, &genie, OWNER, STORE_A).await;
    h.connect(OWNER, Channel::Instagram).await;

    // The store owner withdraws kem's access at the partner.
    genie.state.revoke_store(STORE_A.0);
    h.publish("evt-revoked", &[Channel::GenieTv, Channel::RingoBiz, Channel::Instagram]).await;
    let status = h.settled("evt-revoked").await;
    let genie_delivery = delivery(&status, Channel::GenieTv);
    assert_eq!(genie_delivery.state, pb::DeliveryState::Failed as i32, "{genie_delivery:#?}");
    let error = genie_delivery.last_error.clone().expect("error");
    assert_eq!((error.reason.as_str(), error.retryable), ("AUTH_REQUIRED", false), "{error:#?}");
    assert_eq!(state_of(&status, Channel::RingoBiz), pb::DeliveryState::Published);
    assert_eq!(state_of(&status, Channel::Instagram), pb::DeliveryState::Published);
    assert_eq!(genie.state.jobs_created(), 0);
    assert_eq!(providers.partner(Channel::RingoBiz).state.jobs_created(), 1);

    let connection = h.connection(OWNER, Channel::GenieTv).await;
    assert_eq!(state_of_connection(&connection), pb::ConnectionState::NeedsReconnect);
    // The event service refuses to publish that channel (CHANNEL_NOT_CONNECTED), only that one.
    let unusable = h.check(OWNER, &[Channel::GenieTv, Channel::RingoBiz, Channel::Instagram]).await.expect("check");
    assert_eq!(unusable.iter().map(|c| c.channel).collect::<Vec<_>>(), vec![Channel::GenieTv.number()]);

    // Reconnecting, then removing the connection revokes the new grant at the partner.
    connect_store(&h, &genie, OWNER, STORE_A).await;
    assert!(genie.state.store_granted(STORE_A.0));
    let removed = h.delete_connection(OWNER, Channel::GenieTv.number()).await.expect("delete");
    assert_eq!(state_of_connection(&removed), pb::ConnectionState::NotConnected);
    assert!(!genie.state.store_granted(STORE_A.0), "revoked at the partner");
    h.cleanup().await;
}

#[tokio::test]
async fn a_refused_store_token_is_refreshed_once_and_the_campaign_goes_through() {
    let (_providers, genie, config) = setup(None).await;
    let h = Harness::start_unconnected(config).await;
    connect_store(&h, &genie, OWNER, STORE_A).await;
    let before = genie.state.refresh_tokens_of(STORE_A.0);
    // The partner no longer knows the (unexpired) access token: 401 invalid_token.
    genie.state.drop_access_tokens(STORE_A.0);
    h.publish("evt-renewed", &[Channel::GenieTv]).await;
    let status = h.settled("evt-renewed").await;
    assert_eq!(state_of(&status, Channel::GenieTv), pb::DeliveryState::Published, "{status:#?}");
    let after = genie.state.refresh_tokens_of(STORE_A.0);
    assert_eq!((before.len(), after.len()), (1, 2), "one refresh, rotated");
    assert_eq!(genie.state.job_stores().into_iter().map(|(_, s)| s).collect::<Vec<_>>(), vec![Some(STORE_A.0.into())]);
    assert_eq!(state_of_connection(&h.connection(OWNER, Channel::GenieTv).await), pb::ConnectionState::Active);
    h.cleanup().await;
}

#[tokio::test]
async fn another_owners_state_or_code_cannot_complete() {
    let (_providers, genie, config) = setup(None).await;
    let h = Harness::start_unconnected(config).await;
    genie.state.sign_in(STORE_A.0, STORE_A.1);
    let mine = h.start_connection(OWNER, Channel::GenieTv.number(), None).await.expect("start");
    let my_redirect = consent(&mine.authorization_url).await;

    // Signed in as another owner, my state is unknown to them.
    let status = expect_code(h.complete(Some(OTHER), &my_redirect).await, Code::NotFound);
    assert_eq!(reason(&status), "STATE_UNKNOWN");
    // Their own state with my code: the partner refuses it (the code's challenge is mine).
    let theirs = h.start_connection(OTHER, Channel::GenieTv.number(), None).await.expect("start");
    let their_state = form_decode(theirs.authorization_url.split_once('?').map(|(_, q)| q).unwrap_or_default())
        .into_iter()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v)
        .expect("a state");
    let forged: HashMap<String, String> =
        [("state".to_owned(), their_state), ("code".to_owned(), my_redirect["code"].clone())].into();
    let status = expect_code(h.complete(Some(OTHER), &forged).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "AUTHORIZATION_DENIED");
    assert_eq!(state_of_connection(&h.connection(OTHER, Channel::GenieTv).await), pb::ConnectionState::NotConnected);
    // My code is still mine to use.
    let connected = h.complete(Some(OWNER), &my_redirect).await.expect("complete");
    assert_eq!(connected.account_id, STORE_A.0);

    // A declined consent comes back as AUTHORIZATION_DENIED and spends the state.
    genie.state.deny_next_consent(1);
    let started = h.start_connection(OTHER, Channel::GenieTv.number(), None).await.expect("start");
    let denied = consent(&started.authorization_url).await;
    assert_eq!(denied.get("error").map(String::as_str), Some("access_denied"));
    assert_eq!(reason(&expect_code(h.complete(None, &denied).await, Code::FailedPrecondition)), "AUTHORIZATION_DENIED");
    assert_eq!(reason(&expect_code(h.complete(None, &denied).await, Code::NotFound)), "STATE_UNKNOWN");
    h.cleanup().await;
}

#[tokio::test]
async fn twenty_concurrent_completes_of_one_partner_state_connect_once() {
    let (_providers, genie, config) = setup(None).await;
    let h = Arc::new(Harness::start_unconnected(config).await);
    genie.state.sign_in(STORE_A.0, STORE_A.1);
    let started = h.start_connection(OWNER, Channel::GenieTv.number(), None).await.expect("start");
    let redirect = consent(&started.authorization_url).await;
    assert_eq!(h.race_completes(&redirect, 20).await, (1, 19));
    assert_eq!(genie.state.refresh_tokens_of(STORE_A.0).len(), 1, "one code exchange");
    let h = Arc::into_inner(h).expect("the only reference");
    h.cleanup().await;
}

#[tokio::test]
async fn hostile_state_and_code_values_never_reach_the_partner() {
    let (_providers, genie, config) = setup(None).await;
    let h = Harness::start_unconnected(config).await;
    genie.state.sign_in(STORE_A.0, STORE_A.1);
    let started = h.start_connection(OWNER, Channel::GenieTv.number(), None).await.expect("start");
    let redirect = consent(&started.authorization_url).await;
    let calls = genie.calls();
    let good_state = redirect["state"].clone();
    let q = |state: &str, code: &str| -> HashMap<String, String> {
        [("state".to_owned(), state.to_owned()), ("code".to_owned(), code.to_owned())].into()
    };
    for (state, code) in [
        ("a".repeat(10_000), "c".to_owned()),
        (format!("{}\n", &good_state[..42]), "c".to_owned()),
        (format!("{}\u{0}", &good_state[..42]), "c".to_owned()),
        ("' OR 1=1 --".to_owned(), "c".to_owned()),
        (good_state.clone(), "c".repeat(5_000)),
        (good_state.clone(), "pc-1\r\nX-Injected: 1".to_owned()),
        (good_state.clone(), "pc\u{0}1".to_owned()),
    ] {
        let status = expect_code(h.complete(None, &q(&state, &code)).await, Code::InvalidArgument);
        assert_eq!(reason(&status), "INVALID_ARGUMENT", "{:?}", &state[..state.len().min(20)]);
    }
    assert_eq!(genie.calls(), calls, "nothing reached the partner");
    // The state survived the garbage and still completes once.
    let connected = h.complete(None, &redirect).await.expect("complete");
    assert_eq!(connected.account_id, STORE_A.0);
    h.cleanup().await;
}
