//! Naver Login against the contract server: the owner connects Naver with their cafe board,
//! articles are posted with their token, the one-hour token is refreshed before it expires
//! (`expires_in` arrives as a string), a withdrawn consent needs reconnecting, and removing the
//! connection deletes the token at Naver and makes the channel owner-assisted again.

use std::time::Duration;

use kem_distribution::domain::Channel;
use kem_kit::clock::ManualClock;
use kem_kit::store;
use kem_proto::kem::distribution::v1 as pb;
use tonic::Code;

use crate::support::naver::{NaverConsent, NaverServer};
use crate::support::*;

fn connection_state(c: &pb::ChannelConnection) -> pb::ConnectionState {
    pb::ConnectionState::try_from(c.state).unwrap_or(pb::ConnectionState::Unspecified)
}

#[tokio::test]
async fn naver_connects_posts_with_the_owners_token_refreshes_and_disconnects() {
    let clock = ManualClock::starting_now();
    let mut providers = Providers::start().await;
    providers.naver = NaverServer::start_with_clock(clock.clone()).await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start_with_clock(config, clock.clone()).await;
    let member = providers.naver.default_member();

    let started =
        h.start_connection(OWNER, Channel::NaverBlog.number(), Some((naver::CLUB, naver::MENU))).await.expect("start");
    assert!(started.authorization_url.starts_with(&format!("{}/oauth2.0/authorize?", providers.naver.base_url())));
    let redirect = consent(&started.authorization_url).await;
    let connected = h.complete(None, &redirect).await.expect("complete");
    assert_eq!(connection_state(&connected), pb::ConnectionState::Active);
    assert_eq!((connected.account_id.as_str(), connected.account_name.as_str()), (member.id.as_str(), "케이엠"));
    let cafe = connected.naver_cafe.clone().expect("the board");
    assert_eq!((cafe.club_id.as_str(), cafe.menu_id.as_str()), (naver::CLUB, naver::MENU));
    let first_expiry = connected.expire_time.expect("expiry").seconds;
    assert!((first_expiry - (clock.now_ms() / 1_000 + 3_600)).abs() < 5, "one hour, read from a string");

    // Sealed at rest: no live token of the member appears in the row.
    let row = store::query("SELECT access_token, refresh_token FROM channel_connections WHERE channel = 'NAVER_BLOG'")
        .fetch_one(h.store().primary())
        .await
        .expect("the row");
    let mut bytes = row.get::<Vec<u8>>("access_token").expect("sealed");
    bytes.extend(row.get::<Option<Vec<u8>>>("refresh_token").expect("sealed").expect("a refresh token"));
    for token in providers.naver.live_tokens(&member) {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "no plaintext token");
    }

    // The article goes to the owner's board as the owner.
    h.publish("evt-cafe", &[Channel::NaverBlog]).await;
    let status = h.settled("evt-cafe").await;
    let naver = delivery(&status, Channel::NaverBlog);
    assert_eq!(naver.state, pb::DeliveryState::Published as i32, "{status:#?}");
    assert!(naver.permalink.starts_with("https://cafe.naver.com/"), "{naver:#?}");
    assert_eq!(naver.provider.map(|p| p.name), Some("naver-cafe".into()));
    let articles = providers.naver.articles();
    assert_eq!(articles.len(), 1);
    assert_eq!((articles[0].member_id.as_str(), articles[0].club.as_str()), (member.id.as_str(), naver::CLUB));
    assert_eq!(articles[0].subject, "평일 점심 스탬프 이벤트", "decoded twice, as Naver reads it");

    // 56 minutes later the job refreshes the access token (the refresh token is kept).
    clock.advance(Duration::from_secs(56 * 60));
    kem_testkit::eventually("the refreshed Naver token to be stored", Duration::from_secs(10), || async {
        h.connection(OWNER, Channel::NaverBlog).await.refresh_time.is_some()
    })
    .await;
    assert_eq!(providers.naver.refreshes(), 1);
    let after = h.connection(OWNER, Channel::NaverBlog).await;
    assert_eq!(connection_state(&after), pb::ConnectionState::Active);
    assert!(after.expire_time.expect("expiry").seconds >= first_expiry + 55 * 60, "{after:#?}");
    assert!(after.refresh_time.is_some());
    // And again an hour later: the stored refresh token still works.
    clock.advance(Duration::from_secs(56 * 60));
    let second = after.refresh_time;
    kem_testkit::eventually("a second refresh to be stored", Duration::from_secs(10), || async {
        h.connection(OWNER, Channel::NaverBlog).await.refresh_time != second
    })
    .await;
    assert_eq!(providers.naver.refreshes(), 2);

    // Removing it deletes the token at Naver; Naver is owner-assisted again.
    let removed = h.delete_connection(OWNER, Channel::NaverBlog.number()).await.expect("delete");
    assert_eq!(connection_state(&removed), pb::ConnectionState::NotConnected);
    assert_eq!(providers.naver.deletes(), 1);
    assert!(providers.naver.live_tokens(&member).iter().all(|t| t == naver::TOKEN), "only the fixture's token lives");
    h.delete_connection(OWNER, Channel::NaverBlog.number()).await.expect("idempotent");
    assert_eq!(providers.naver.deletes(), 1, "nothing left to delete");
    h.publish("evt-after", &[Channel::NaverBlog]).await;
    let status = h.settled("evt-after").await;
    assert_eq!(state_of(&status, Channel::NaverBlog), pb::DeliveryState::AwaitingOwner);
    h.cleanup().await;
}

#[tokio::test]
async fn a_withdrawn_naver_consent_needs_reconnecting() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start(config).await;
    assert_eq!(connection_state(&h.connection(OWNER, Channel::NaverBlog).await), pb::ConnectionState::Active);
    providers.naver.revoke(&providers.naver.default_member());

    h.publish("evt-withdrawn", &[Channel::NaverBlog, Channel::KakaoChannel]).await;
    let status = h.settled("evt-withdrawn").await;
    let error = delivery(&status, Channel::NaverBlog).last_error.expect("an error");
    assert_eq!((error.reason.as_str(), error.retryable), ("AUTH_REQUIRED", false), "{error:#?}");
    assert!(error.message.contains("reconnect your Naver account"), "{error:#?}");
    assert_eq!(state_of(&status, Channel::KakaoChannel), pb::DeliveryState::Published);
    let connection = h.connection(OWNER, Channel::NaverBlog).await;
    assert_eq!(connection_state(&connection), pb::ConnectionState::NeedsReconnect);
    let unusable = h.check(OWNER, &[Channel::NaverBlog, Channel::KakaoChannel]).await.expect("check");
    assert_eq!(unusable.iter().map(|c| c.channel).collect::<Vec<_>>(), vec![Channel::NaverBlog.number()]);

    // Declining on Naver's screen: AUTHORIZATION_DENIED, nothing changes.
    providers.naver.consent(NaverConsent::Deny);
    let started =
        h.start_connection(OWNER, Channel::NaverBlog.number(), Some((naver::CLUB, naver::MENU))).await.expect("start");
    let denied = consent(&started.authorization_url).await;
    let status = expect_code(h.complete(None, &denied).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "AUTHORIZATION_DENIED");
    assert_eq!(connection_state(&h.connection(OWNER, Channel::NaverBlog).await), pb::ConnectionState::NeedsReconnect);
    h.connect(OWNER, Channel::NaverBlog).await;
    assert_eq!(connection_state(&h.connection(OWNER, Channel::NaverBlog).await), pb::ConnectionState::Active);
    h.cleanup().await;
}
