//! Channel connections with Instagram Login against the contract server: the owner connects
//! through the consent screen (Start → authorize redirect → Complete), the account publishes
//! the owner's posts, tokens are sealed at rest and never shown, refreshed before they expire,
//! and a revoked account needs reconnecting while the other channels publish. The OAuth state is
//! single use, expires, belongs to its owner and survives no garbage.

use std::collections::HashMap;
use std::time::Duration;

use kem_distribution::domain::Channel;
use kem_kit::clock::ManualClock;
use kem_kit::store;
use kem_proto::kem::distribution::v1 as pb;
use tonic::Code;

use crate::support::instagram::{Consent, IgServer, SCOPE_BASIC, SCOPE_PUBLISH};
use crate::support::*;

const DAY: Duration = Duration::from_secs(86_400);

fn state_of_connection(c: &pb::ChannelConnection) -> pb::ConnectionState {
    pb::ConnectionState::try_from(c.state).unwrap_or(pb::ConnectionState::Unspecified)
}

/// Every byte of every connection row, for grepping.
async fn raw_rows(h: &Harness) -> Vec<u8> {
    let rows = store::query(
        "SELECT owner_id, channel, state, account_id, account_name, scopes, access_token, refresh_token, key_id, note \
         FROM channel_connections",
    )
    .fetch_all(h.store().primary())
    .await
    .expect("read the rows");
    let mut bytes = Vec::new();
    for row in rows {
        for text in ["owner_id", "channel", "state", "account_id", "account_name", "scopes", "key_id", "note"] {
            bytes.extend(row.get::<String>(text).expect("text").into_bytes());
        }
        bytes.extend(row.get::<Vec<u8>>("access_token").expect("sealed"));
        bytes.extend(row.get::<Option<Vec<u8>>>("refresh_token").expect("sealed").unwrap_or_default());
    }
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn an_owner_connects_instagram_and_publishes_through_their_own_account() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start_unconnected(config).await;

    // Before: Instagram and Kakao need the owner's own account (Kakao: their channel), Naver is
    // owner-assisted until connected, the platform's partner account carries the rest.
    let list = h.connections(OWNER).await.expect("list");
    let channels: Vec<i32> = list.iter().map(|c| c.channel).collect();
    assert_eq!(channels, vec![1, 2, 3, 4, 5, 6], "Channel enum order");
    let states: Vec<pb::ConnectionState> = list.iter().map(state_of_connection).collect();
    use pb::ConnectionState::{Active, NotConnected, NotNeeded};
    assert_eq!(states, vec![NotNeeded, NotNeeded, NotNeeded, NotConnected, NotConnected, NotConnected]);
    assert!(list.iter().all(|c| !c.note.is_empty()), "every state says why: {list:#?}");
    assert!(list[0].note.contains("partner"), "{}", list[0].note);
    assert!(list[5].note.contains("Kakao Talk Channel"), "{}", list[5].note);
    assert!(list[4].note.contains("yourself"), "Naver still publishes owner-assisted: {}", list[4].note);

    let shop = providers.instagram.add_account("bakery_seoul");
    providers.instagram.consent(Consent::approve(&shop));
    let started = h.start_connection(OWNER, Channel::Instagram.number(), None).await.expect("start");
    let url = &started.authorization_url;
    assert!(url.starts_with(&format!("{}/oauth/authorize?client_id=", providers.instagram.base_url())), "{url}");
    assert!(url.contains("scope=instagram_business_basic%2Cinstagram_business_content_publish"), "{url}");
    assert!(!url.contains("code_challenge"), "no PKCE: neither provider documents it");
    let redirect = consent(url).await;
    let state = redirect["state"].clone();
    assert_eq!(state.len(), 43, "256 bits, base64url");
    let connected = h.complete(None, &redirect).await.expect("complete");
    assert_eq!(state_of_connection(&connected), Active);
    assert_eq!(
        (connected.account_id.as_str(), connected.account_name.as_str()),
        (shop.user_id.as_str(), "bakery_seoul")
    );
    assert!(connected.scopes.iter().any(|s| s == SCOPE_PUBLISH), "{connected:#?}");
    let expire = connected.expire_time.expect("an expiry").seconds;
    let in_60_days = (SystemClock.now_ms() / 1_000) + 60 * 86_400;
    assert!((expire - in_60_days).abs() < 60, "a long-lived token: {expire} vs {in_60_days}");
    assert!(connected.connect_time.is_some() && connected.refresh_time.is_none());

    // No token anywhere: not in the rows (sealed), not in any answer.
    let tokens = providers.instagram.live_tokens(&shop);
    assert_eq!(tokens.len(), 2, "the short- and the long-lived token");
    let rows = raw_rows(&h).await;
    assert!(!rows.is_empty());
    let listed = format!("{:?}", h.connections(OWNER).await.expect("list"));
    for token in &tokens {
        assert!(!contains(&rows, token), "the database holds no plaintext token");
        assert!(!listed.contains(token.as_str()), "no answer carries a token");
    }
    assert!(contains(&rows, &shop.user_id), "the account id is plain (it is not a secret)");
    assert_eq!(state_of_connection(&h.connection(OWNER, Channel::Instagram).await), Active);
    assert_eq!(
        state_of_connection(&h.connection(OTHER, Channel::Instagram).await),
        NotConnected,
        "another owner sees nothing of it"
    );

    // Publishing goes through the shop's account (the pre-registered platform token is unused),
    // and Kakao from the owner's own channel.
    h.connect(OWNER, Channel::KakaoChannel).await;
    h.publish("evt-own", &[Channel::Instagram, Channel::KakaoChannel]).await;
    let status = h.settled("evt-own").await;
    assert_eq!(status.state, pb::DistributionState::Completed as i32, "{status:#?}");
    assert_eq!(providers.instagram.publishes(), 1);
    assert!(h.check(OWNER, &[Channel::Instagram, Channel::NaverBlog]).await.expect("check").is_empty());

    // Removing it: NOT_CONNECTED, idempotent, and Instagram is then refused up front.
    let removed = h.delete_connection(OWNER, Channel::Instagram.number()).await.expect("delete");
    assert_eq!(state_of_connection(&removed), NotConnected);
    assert!(removed.account_id.is_empty() && removed.expire_time.is_none());
    let again = h.delete_connection(OWNER, Channel::Instagram.number()).await.expect("delete again");
    assert_eq!(state_of_connection(&again), NotConnected);
    let unusable = h.check(OWNER, &[Channel::Instagram, Channel::GenieTv]).await.expect("check");
    assert_eq!(unusable.len(), 1);
    assert_eq!((unusable[0].channel, state_of_connection(&unusable[0])), (Channel::Instagram.number(), NotConnected));
    assert_eq!(reason(&expect_code(h.delete_connection(OWNER, 0).await, Code::InvalidArgument)), "INVALID_ARGUMENT");
    h.cleanup().await;
}

#[tokio::test]
async fn the_state_is_single_use_bound_to_its_owner_and_refuses_garbage() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start_unconnected(config).await;
    let ig = Channel::Instagram.number();

    // Garbage, over-long or missing states and codes are INVALID_ARGUMENT before any lookup.
    let query = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    };
    let long = "a".repeat(10_000);
    let good_shape = "A".repeat(43);
    for bad in [
        query(&[("code", "c")]),
        query(&[("state", &long), ("code", "c")]),
        query(&[("state", "../../etc/passwd"), ("code", "c")]),
        query(&[("state", &format!("{}\u{0}", "a".repeat(42))), ("code", "c")]),
        query(&[("state", &format!("{}=", "a".repeat(42))), ("code", "c")]),
    ] {
        let status = expect_code(h.complete(None, &bad).await, Code::InvalidArgument);
        assert_eq!(violations(&status), vec!["state"], "{bad:?}");
        assert!(status.message().len() < 500);
    }
    let status = expect_code(h.complete(None, &query(&[("state", &good_shape)])).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["code"]);
    let status =
        expect_code(h.complete(None, &query(&[("state", &good_shape), ("code", &long)])).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["code"]);
    // Well-formed but never issued: unknown.
    let status = expect_code(h.complete(None, &query(&[("state", &good_shape), ("code", "c")])).await, Code::NotFound);
    assert_eq!(reason(&status), "STATE_UNKNOWN");

    // Another owner cannot use the state (and sees no connection); its owner still can, once.
    let started = h.start_connection(OWNER, ig, None).await.expect("start");
    let redirect = consent(&started.authorization_url).await;
    let status = expect_code(h.complete(Some(OTHER), &redirect).await, Code::NotFound);
    assert_eq!(reason(&status), "STATE_UNKNOWN");
    assert_eq!(state_of_connection(&h.connection(OTHER, Channel::Instagram).await), pb::ConnectionState::NotConnected);
    let connected = h.complete(Some(OWNER), &redirect).await.expect("its owner completes");
    assert_eq!(state_of_connection(&connected), pb::ConnectionState::Active);
    let status = expect_code(h.complete(None, &redirect).await, Code::NotFound);
    assert_eq!(reason(&status), "STATE_UNKNOWN", "single use");
    assert_eq!(state_of_connection(&h.connection(OTHER, Channel::Instagram).await), pb::ConnectionState::NotConnected);

    // The owner declining, or unticking the publishing permission.
    providers.instagram.consent(Consent::Deny);
    let started = h.start_connection(OWNER, ig, None).await.expect("start");
    let denied = consent(&started.authorization_url).await;
    assert_eq!(denied["error"], "access_denied");
    let status = expect_code(h.complete(None, &denied).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "AUTHORIZATION_DENIED");
    assert_eq!(reason(&expect_code(h.complete(None, &denied).await, Code::NotFound)), "STATE_UNKNOWN");
    let account = providers.instagram.default_account();
    providers.instagram.consent(Consent::Approve { account, scopes: vec![SCOPE_BASIC.into()] });
    let started = h.start_connection(OWNER, ig, None).await.expect("start");
    let narrowed = consent(&started.authorization_url).await;
    let status = expect_code(h.complete(None, &narrowed).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "MISSING_PERMISSION");
    assert!(status.message().contains("instagram_business_content_publish"), "{}", status.message());
    // A code the provider refuses (forged): AUTHORIZATION_DENIED; the connection made earlier stays.
    let started = h.start_connection(OWNER, ig, None).await.expect("start");
    let mut forged = consent(&started.authorization_url).await;
    forged.insert("code".into(), "AQBforged".into());
    let status = expect_code(h.complete(None, &forged).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "AUTHORIZATION_DENIED");
    assert_eq!(state_of_connection(&h.connection(OWNER, Channel::Instagram).await), pb::ConnectionState::Active);

    // Start's own checks.
    assert_eq!(
        reason(&expect_code(h.start_connection(OWNER, 0, None).await, Code::InvalidArgument)),
        "INVALID_ARGUMENT"
    );
    assert_eq!(
        reason(&expect_code(h.start_connection(OWNER, 99, None).await, Code::InvalidArgument)),
        "INVALID_ARGUMENT"
    );
    let status =
        expect_code(h.start_connection(OWNER, Channel::GenieTv.number(), None).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "CONNECTION_NOT_NEEDED");
    let status = expect_code(h.start_connection(OWNER, ig, Some(("1", "2"))).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["naverCafe"]);
    let naver = Channel::NaverBlog.number();
    assert_eq!(
        violations(&expect_code(h.start_connection(OWNER, naver, None).await, Code::InvalidArgument)),
        vec!["naverCafe"]
    );
    let twenty_one = "9".repeat(21);
    let status = expect_code(h.start_connection(OWNER, naver, Some(("12a", &twenty_one))).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["naverCafe.clubId", "naverCafe.menuId"]);

    // At most 10 pending attempts per owner; another owner is not affected.
    let mut pending = 0;
    let exhausted = loop {
        match h.start_connection(OWNER, ig, None).await {
            Ok(_) => pending += 1,
            Err(status) => break status,
        }
        assert!(pending <= 10, "the cap holds");
    };
    assert_eq!(exhausted.code(), Code::ResourceExhausted, "{exhausted:?}");
    assert!(h.start_connection(OTHER, ig, None).await.is_ok());
    h.cleanup().await;
}

#[tokio::test]
async fn twenty_concurrent_completes_of_one_state_connect_exactly_once() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = std::sync::Arc::new(Harness::start_unconnected(config).await);
    let started = h.start_connection(OWNER, Channel::Instagram.number(), None).await.expect("start");
    let redirect = consent(&started.authorization_url).await;
    let issued = providers.instagram.tokens_issued();

    assert_eq!(h.race_completes(&redirect, 20).await, (1, 19));
    assert_eq!(providers.instagram.tokens_issued(), issued + 2, "one code exchange: short- and long-lived");
    let h = std::sync::Arc::into_inner(h).expect("the only reference");
    h.cleanup().await;
}

#[tokio::test]
async fn an_expired_state_is_unknown() {
    let clock = ManualClock::starting_now();
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start_with_clock(config, clock.clone()).await;
    let started = h.start_connection(OWNER, Channel::Instagram.number(), None).await.expect("start");
    let expire = started.expire_time.expect("an expiry").seconds * 1_000;
    assert!((expire - clock.now_ms() - 600_000).abs() < 2_000, "ten minutes");
    let redirect = consent(&started.authorization_url).await;
    clock.advance(Duration::from_secs(601));
    let status = expect_code(h.complete(None, &redirect).await, Code::NotFound);
    assert_eq!(reason(&status), "STATE_UNKNOWN");
    h.cleanup().await;
}

#[tokio::test]
async fn long_lived_tokens_are_refreshed_before_they_expire() {
    let clock = ManualClock::starting_now();
    let providers = Providers::start().await;
    let instagram = IgServer::start_with_clock(clock.clone()).await;
    let mut providers = providers;
    providers.instagram = instagram;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start_with_clock(config, clock.clone()).await;
    let connected = h.connect(OWNER, Channel::Instagram).await;
    let first_expiry = connected.expire_time.expect("expiry").seconds;
    let issued = providers.instagram.tokens_issued();

    // A day later nothing is due yet (refreshes start ten days before expiry).
    clock.advance(DAY);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(providers.instagram.refreshes(), 0);

    // 51 days after connecting: the job refreshes it, once, even with several replicas' rounds
    // running at the same moment (each connection is leased to one of them).
    clock.advance(50 * DAY);
    let api = h.api.clone();
    let rounds: Vec<_> = (0..5)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move { api.core().connections().refresh_due().await })
        })
        .collect();
    let mut refreshed_here = 0;
    for round in rounds {
        refreshed_here += round.await.expect("a round");
    }
    assert!(refreshed_here <= 1, "one refresh at most among the concurrent rounds");
    kem_testkit::eventually("the refreshed token to be stored", Duration::from_secs(10), || async {
        h.connection(OWNER, Channel::Instagram).await.refresh_time.is_some()
    })
    .await;
    assert_eq!(providers.instagram.refreshes(), 1);
    let after = h.connection(OWNER, Channel::Instagram).await;
    assert_eq!(state_of_connection(&after), pb::ConnectionState::Active);
    let new_expiry = after.expire_time.expect("expiry").seconds;
    assert!(new_expiry >= first_expiry + 50 * 86_400 - 60, "60 days from the refresh: {first_expiry} → {new_expiry}");
    assert!(after.refresh_time.is_some());
    assert_eq!(providers.instagram.tokens_issued(), issued + 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(providers.instagram.refreshes(), 1, "not refreshed again until it is due again");

    // Past the first token's expiry only the refreshed one lives, and the connection stays ACTIVE.
    clock.advance(10 * DAY);
    let account = providers.instagram.default_account();
    assert_eq!(providers.instagram.live_tokens(&account).len(), 1, "only the refreshed token");
    assert_eq!(state_of_connection(&h.connection(OWNER, Channel::Instagram).await), pb::ConnectionState::Active);
    h.cleanup().await;
}

#[tokio::test]
async fn a_revoked_account_needs_reconnecting_and_only_instagram_fails() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start(config).await;
    assert_eq!(state_of_connection(&h.connection(OWNER, Channel::Instagram).await), pb::ConnectionState::Active);
    providers.instagram.revoke(&providers.instagram.default_account());

    h.publish("evt-revoked", &Channel::ALL).await;
    let status = h.settled("evt-revoked").await;
    assert_eq!(status.state, pb::DistributionState::PartiallyFailed as i32, "{status:#?}");
    let ig = delivery(&status, Channel::Instagram);
    let error = ig.last_error.expect("an error");
    assert_eq!((error.reason.as_str(), error.retryable), ("AUTH_REQUIRED", false), "{error:#?}");
    assert!(error.provider_code.starts_with("190"), "{error:#?}");
    assert!(error.message.contains("reconnect your Instagram account"), "{error:#?}");
    assert_eq!(ig.attempts, 1);
    for channel in Channel::ALL.into_iter().filter(|c| *c != Channel::Instagram) {
        assert_eq!(state_of(&status, channel), pb::DeliveryState::Published, "{channel}");
    }
    let connection = h.connection(OWNER, Channel::Instagram).await;
    assert_eq!(state_of_connection(&connection), pb::ConnectionState::NeedsReconnect);
    assert!(connection.note.contains("190"), "{}", connection.note);
    let unusable = h.check(OWNER, &Channel::ALL).await.expect("check");
    assert_eq!(unusable.iter().map(|c| c.channel).collect::<Vec<_>>(), vec![Channel::Instagram.number()]);

    // The next publication's Instagram delivery fails at once, without calling Instagram.
    let calls = providers.instagram.calls();
    h.publish("evt-revoked-2", &[Channel::Instagram]).await;
    let status = h.settled("evt-revoked-2").await;
    let error = delivery(&status, Channel::Instagram).last_error.expect("an error");
    assert_eq!(error.reason, "AUTH_REQUIRED", "{error:#?}");
    assert!(error.message.contains("reconnect"), "{error:#?}");
    assert_eq!(providers.instagram.calls(), calls);

    // Reconnecting makes it ACTIVE again, and a retry publishes.
    h.connect(OWNER, Channel::Instagram).await;
    assert_eq!(state_of_connection(&h.connection(OWNER, Channel::Instagram).await), pb::ConnectionState::Active);
    h.retry(OWNER, "evt-revoked-2", &[]).await.expect("retry");
    let status = h.settled("evt-revoked-2").await;
    assert_eq!(state_of(&status, Channel::Instagram), pb::DeliveryState::Published, "{status:#?}");
    h.cleanup().await;
}

#[tokio::test]
async fn an_owner_who_never_connected_instagram_is_told_to_connect_it() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start_unconnected(config).await;
    h.publish("evt-never", &[Channel::Instagram, Channel::KakaoChannel, Channel::NaverBlog]).await;
    let status = h.settled("evt-never").await;
    let error = delivery(&status, Channel::Instagram).last_error.expect("an error");
    assert_eq!((error.reason.as_str(), error.retryable), ("NOT_CONFIGURED", false), "{error:#?}");
    assert!(error.message.contains("connect your Instagram account"), "{error:#?}");
    let error = delivery(&status, Channel::KakaoChannel).last_error.expect("an error");
    assert_eq!((error.reason.as_str(), error.retryable), ("NOT_CONFIGURED", false), "{error:#?}");
    assert!(error.message.contains("connect your Kakao Channel"), "{error:#?}");
    assert_eq!(providers.sens.calls(), 0, "nothing is sent without the owner's own channel");
    assert_eq!(state_of(&status, Channel::NaverBlog), pb::DeliveryState::AwaitingOwner, "Naver is owner-assisted");
    assert_eq!(providers.instagram.publishes(), 0);
    let unusable = h.check(OWNER, &[Channel::Instagram, Channel::NaverBlog, Channel::Instagram]).await.expect("check");
    assert_eq!(unusable.len(), 1, "{unusable:#?}");
    assert_eq!(state_of_connection(&unusable[0]), pb::ConnectionState::NotConnected);
    assert_eq!(
        violations(&expect_code(h.check("", &[Channel::Instagram]).await, Code::InvalidArgument)),
        vec!["ownerId"]
    );
    assert!(h.check(OWNER, &[]).await.expect("nothing to check").is_empty());
    let request = pb::CheckChannelConnectionsRequest { owner_id: OWNER.into(), channels: vec![0] };
    use kem_proto::kem::distribution::v1::distribution_service_server::DistributionService as _;
    let status =
        expect_code(h.api.check_channel_connections(tonic::Request::new(request)).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["channels[0]"]);
    h.cleanup().await;
}

#[tokio::test]
async fn a_sealed_token_moved_to_another_owners_row_does_not_open() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start(config).await;
    let other = providers.instagram.add_account("other_shop");
    providers.instagram.consent(Consent::approve(&other));
    h.connect(OTHER, Channel::Instagram).await;

    // Someone with database access copies OTHER's sealed token into OWNER's row.
    store::query(
        "UPDATE channel_connections SET access_token = \
           (SELECT access_token FROM channel_connections WHERE owner_id = $1 AND channel = 'INSTAGRAM') \
         WHERE owner_id = $2 AND channel = 'INSTAGRAM'",
    )
    .bind(OTHER.to_owned())
    .bind(OWNER.to_owned())
    .execute(h.store().primary())
    .await
    .expect("copy the sealed value");

    h.publish("evt-moved", &[Channel::Instagram]).await;
    let status = h.settled("evt-moved").await;
    let error = delivery(&status, Channel::Instagram).last_error.expect("an error");
    assert_eq!(error.reason, "AUTH_REQUIRED", "the value is bound to its owner, channel and field: {error:#?}");
    assert_eq!(providers.instagram.publishes(), 0, "nothing was posted to the other shop's account");
    let connection = h.connection(OWNER, Channel::Instagram).await;
    assert_eq!(state_of_connection(&connection), pb::ConnectionState::NeedsReconnect);
    assert_eq!(state_of_connection(&h.connection(OTHER, Channel::Instagram).await), pb::ConnectionState::Active);
    h.cleanup().await;
}
