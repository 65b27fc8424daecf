//! Instagram's 24 h publishing limit queues a delivery; it is never a failure.

use std::time::Duration;

use kem_distribution::domain::Channel;
use kem_proto::kem::distribution::v1 as pb;
use kem_proto::kem::messaging::v1 as msg;
use kem_testkit::eventually_holds;

use crate::support::*;

#[tokio::test]
async fn an_exhausted_quota_queues_the_post_until_the_window_frees_up() {
    let providers = Providers::start().await;
    providers.instagram.quota(25, 25);
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start(config).await;

    h.publish("evt-quota", &[Channel::Instagram, Channel::KakaoChannel]).await;
    let status = h
        .wait_until("evt-quota", Duration::from_secs(10), "the post to be queued", |s| {
            state_of(s, Channel::Instagram) == pb::DeliveryState::QueuedRateLimited
                && state_of(s, Channel::KakaoChannel) == pb::DeliveryState::Published
        })
        .await;
    assert_eq!(status.state, pb::DistributionState::InProgress as i32, "a queued post is in progress");
    let ig = delivery(&status, Channel::Instagram);
    assert!(ig.next_attempt_time.is_some(), "the owner sees when it is tried again: {ig:#?}");
    assert_eq!(ig.attempts, 0, "waiting for the quota is not an attempt");
    let error = ig.last_error.expect("why it waits");
    assert_eq!((error.reason.as_str(), error.retryable), ("QUOTA_EXCEEDED", true));
    assert!(error.message.contains("25 of its 25"), "{error:#?}");
    assert_eq!(providers.instagram.state().containers_created, 0, "nothing is created past the quota");

    // It stays queued while the window is full (rechecked every 300 ms here): after two rechecks
    // (each a step, SENDING while it runs) it is queued again.
    let checks = providers.instagram.calls();
    eventually_holds("the quota is checked twice more", Duration::from_secs(10), || {
        providers.instagram.calls() >= checks + 2
    })
    .await;
    let still = h
        .wait_until("evt-quota", Duration::from_secs(10), "the post is queued again", |s| {
            state_of(s, Channel::Instagram) != pb::DeliveryState::Sending
        })
        .await;
    assert_eq!(state_of(&still, Channel::Instagram), pb::DeliveryState::QueuedRateLimited);
    assert!(h.outcomes("evt-quota").await.iter().all(|(_, o)| o.channel != Channel::Instagram.number()));

    // The moving window frees a slot: the post goes out.
    providers.instagram.quota(24, 25);
    let status = h.settled("evt-quota").await;
    let ig = delivery(&status, Channel::Instagram);
    assert_eq!((ig.state, ig.attempts), (pb::DeliveryState::Published as i32, 1), "{ig:#?}");
    assert_eq!(providers.instagram.publishes(), 1);
    let outcomes = h.outcomes("evt-quota").await;
    let ig: Vec<_> = outcomes.iter().filter(|(_, o)| o.channel == Channel::Instagram.number()).collect();
    assert_eq!(ig.len(), 1, "queued is never reported as failed");
    assert_eq!(ig[0].1.result, msg::DeliveryResult::Published as i32);
    h.cleanup().await;
}

#[tokio::test]
async fn a_quota_error_at_publish_keeps_the_container_for_later() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    // The limit endpoint still shows room, but another app uses the last slot first: the
    // publish call itself answers error 9/2207042.
    config.instagram.settings.check_quota = false;
    providers.instagram.quota(25, 25);
    let h = Harness::start(config).await;

    h.publish("evt-quota-race", &[Channel::Instagram]).await;
    let status = h
        .wait_until("evt-quota-race", Duration::from_secs(10), "the post to be queued", |s| {
            state_of(s, Channel::Instagram) == pb::DeliveryState::QueuedRateLimited
        })
        .await;
    let error = delivery(&status, Channel::Instagram).last_error.expect("error");
    assert_eq!((error.reason.as_str(), error.provider_code.as_str()), ("QUOTA_EXCEEDED", "9/2207042"));

    providers.instagram.quota(0, 25);
    let status = h.settled("evt-quota-race").await;
    assert_eq!(state_of(&status, Channel::Instagram), pb::DeliveryState::Published);
    let made = {
        let ig = providers.instagram.state();
        (ig.containers_created, ig.publishes)
    };
    assert_eq!(made, (1, 1), "the saved container was published, no second one made");
    h.cleanup().await;
}
