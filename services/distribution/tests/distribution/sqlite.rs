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
