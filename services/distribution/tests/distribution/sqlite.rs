//! `kem up`'s mode: embedded SQLite, the in-process cache, and every channel on its built-in
//! local provider — partner channels through the in-process local partner server.

use kem_distribution::domain::Channel;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::distribution::v1 as pb;

use crate::support::*;

#[tokio::test]
async fn local_providers_deliver_on_sqlite() {
    let h = Harness::sqlite(fast_config()).await;

    h.publish("evt-local", &Channel::ALL).await;
    let status = h.settled("evt-local").await;

    assert_eq!(status.state, pb::DistributionState::Completed as i32, "{status:#?}");
    for channel in
        [Channel::UridongneTv, Channel::RingoBiz, Channel::GenieTv, Channel::Instagram, Channel::KakaoChannel]
    {
        let d = delivery(&status, channel);
        assert_eq!(d.state, pb::DeliveryState::Published as i32, "{d:#?}");
        let provider = d.provider.expect("provider");
        assert_eq!(provider.kind, common::ProviderKind::Local as i32, "{channel}: {provider:?}");
        assert!(provider.name.starts_with("local:"), "{provider:?}");
    }
    let partner = delivery(&status, Channel::GenieTv);
    assert_eq!(partner.provider.map(|p| p.name), Some("local:kt-partner".into()));
    assert!(
        partner.external_id.starts_with("pj-") && ["SCHEDULED", "LIVE"].contains(&partner.provider_status.as_str())
    );
    let ig = delivery(&status, Channel::Instagram);
    assert!(ig.permalink.starts_with("https://local.invalid/instagram/p/local-ig-"), "{ig:#?}");
    assert_eq!(state_of(&status, Channel::NaverBlog), pb::DeliveryState::AwaitingOwner);

    // The same SQL backs Retry and the outcomes on SQLite.
    let retried = h.retry(OWNER, "evt-local", &[]).await.expect("nothing to retry");
    assert_eq!(retried.state, pb::DistributionState::Completed as i32);
    let refused =
        expect_code(h.retry(OWNER, "evt-local", &[Channel::Instagram.number()]).await, tonic::Code::FailedPrecondition);
    assert_eq!(reason(&refused), "DELIVERY_NOT_FAILED");
    let outcomes = h.outcomes("evt-local").await;
    assert_eq!(outcomes.len(), 5, "{outcomes:#?}");
    assert!(
        outcomes.iter().all(|(_, o)| o.provider.as_ref().is_some_and(|p| p.kind == common::ProviderKind::Local as i32))
    );
    h.cleanup().await;
}

#[tokio::test]
async fn on_a_local_stand_in_no_channel_needs_a_connection() {
    let h = Harness::sqlite(fast_config()).await;
    let list = h.connections(OWNER).await.expect("list");
    assert_eq!(list.len(), 6);
    for c in &list {
        assert_eq!(c.state, pb::ConnectionState::NotNeeded as i32, "{c:#?}");
        assert!(!c.note.is_empty(), "{c:#?}");
    }
    assert!(list[3].note.contains("local stand-in"), "{}", list[3].note);
    let refused = expect_code(
        h.start_connection(OWNER, Channel::Instagram.number(), None).await,
        tonic::Code::FailedPrecondition,
    );
    assert_eq!(reason(&refused), "CONNECTION_NOT_NEEDED");
    assert!(h.check(OWNER, &Channel::ALL).await.expect("check").is_empty());
    h.cleanup().await;
}

#[tokio::test]
async fn connections_use_the_same_sql_on_sqlite() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::sqlite(config).await;
    h.connect_all(OWNER).await;
    let list = h.connections(OWNER).await.expect("list");
    assert_eq!(list[3].state, pb::ConnectionState::Active as i32, "Instagram: {:#?}", list[3]);
    assert_eq!(list[4].state, pb::ConnectionState::Active as i32, "Naver: {:#?}", list[4]);

    // Single use on SQLite too.
    let started = h.start_connection(OWNER, Channel::Instagram.number(), None).await.expect("start");
    let redirect = consent(&started.authorization_url).await;
    h.complete(None, &redirect).await.expect("first");
    assert_eq!(reason(&expect_code(h.complete(None, &redirect).await, tonic::Code::NotFound)), "STATE_UNKNOWN");

    h.publish("evt-sqlite", &[Channel::Instagram, Channel::NaverBlog]).await;
    let status = h.settled("evt-sqlite").await;
    assert_eq!(status.state, pb::DistributionState::Completed as i32, "{status:#?}");
    assert_eq!(state_of(&status, Channel::NaverBlog), pb::DeliveryState::Published);
    let removed = h.delete_connection(OWNER, Channel::NaverBlog.number()).await.expect("delete");
    assert_eq!(removed.state, pb::ConnectionState::NotConnected as i32);
    h.cleanup().await;
}

#[tokio::test]
async fn kakao_channels_connect_once_per_owner_and_send_in_batches_on_sqlite() {
    use crate::support::participation::phones;
    use crate::support::sens::PLUS_FRIEND;
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = std::sync::Arc::new(Harness::sqlite(config).await);

    // The same unique index settles owners racing for one channel on SQLite.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..10 {
        let h = h.clone();
        let owner = if i == 0 { OWNER.to_owned() } else { format!("racer-{i}") };
        tasks.spawn(async move { (owner.clone(), h.start_kakao(&owner, PLUS_FRIEND).await) });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("joined") {
            (owner, Ok(_)) => winners.push(owner),
            (_, Err(status)) => assert_eq!(reason(&status), "ACCOUNT_TAKEN", "{status:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    if winners[0] != OWNER {
        h.delete_connection(&winners[0], Channel::KakaoChannel.number()).await.expect("delete");
        h.start_kakao(OWNER, PLUS_FRIEND).await.expect("OWNER connects");
    }

    h.participation.set(OWNER, &phones(201));
    h.publish("evt-sqlite-kakao", &[Channel::KakaoChannel]).await;
    let status = h.settled("evt-sqlite-kakao").await;
    assert_eq!(state_of(&status, Channel::KakaoChannel), pb::DeliveryState::Published, "{status:#?}");
    assert_eq!(providers.sens.calls(), 3, "100 + 100 + 1");
    assert_eq!(providers.sens.recipients(), phones(201));
    let h = std::sync::Arc::into_inner(h).expect("the only reference");
    h.cleanup().await;
}
