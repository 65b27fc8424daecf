//! GetStatus is PENDING, not NOT_FOUND, from the moment PublishEvent answers: before the
//! `distribution-jobs` message is consumed, the event service's record of the publication
//! (GetEventForDistribution) answers for it. The event service's statuses keep their meaning.

use kem_distribution::domain::Channel;
use kem_proto::kem::distribution::v1 as pb;
use kem_proto::kem::event::v1::EventStatus;
use tonic::{Code, Status};

use crate::support::*;

/// A fresh UUID-shaped event id, as the event service mints them.
fn event_id() -> String {
    let hex = format!("{:032x}", rand::random::<u128>());
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

#[tokio::test]
async fn a_publication_is_pending_before_its_job_is_consumed() {
    let h = Harness::start(fast_config()).await;
    let id = event_id();
    let channels = [Channel::Instagram, Channel::KakaoChannel];

    // Never published: NOT_FOUND, as before.
    assert_eq!(reason(&expect_code(h.status(OWNER, &id).await, Code::NotFound)), "EVENT_NOT_FOUND");
    h.events.draft(&id, OWNER, EventStatus::ContentReady);
    assert_eq!(reason(&expect_code(h.status(OWNER, &id).await, Code::NotFound)), "EVENT_NOT_FOUND");

    // PublishEvent has committed and answered; its job is not on the queue yet.
    let published_at = SystemClock.now_ms() - 5;
    h.events.publish(&id, OWNER, &channels, published_at);
    let status = h.status(OWNER, &id).await.expect("pending at once");
    assert_eq!(status.state, pb::DistributionState::InProgress as i32);
    assert_eq!(status.event_id, id);
    let listed: Vec<i32> = status.deliveries.iter().map(|d| d.channel).collect();
    assert_eq!(listed, channels.iter().map(|c| c.number()).collect::<Vec<_>>());
    for channel in channels {
        let d = delivery(&status, channel);
        assert_eq!((state_of(&status, channel), d.attempts), (pb::DeliveryState::Pending, 0));
        assert!(d.last_error.is_none() && d.published_time.is_none());
        assert_eq!(d.update_time, Some(ts(published_at)));
        assert!(d.provider.as_ref().is_some_and(|p| !p.name.is_empty()), "labelled with its provider: {d:?}");
    }
    // Owners only see their own; a Retry has nothing to re-queue yet.
    assert_eq!(reason(&expect_code(h.status(OTHER, &id).await, Code::NotFound)), "EVENT_NOT_FOUND");
    let retried = h.retry(OWNER, &id, &[]).await.expect("nothing to retry");
    assert_eq!(retried.state, pb::DistributionState::InProgress as i32);
    let named = expect_code(h.retry(OWNER, &id, &[Channel::Instagram.number()]).await, Code::FailedPrecondition);
    assert_eq!(reason(&named), "DELIVERY_NOT_FAILED");
    let other_channel = expect_code(h.retry(OWNER, &id, &[Channel::GenieTv.number()]).await, Code::NotFound);
    assert_eq!(reason(&other_channel), "DELIVERY_NOT_FOUND");

    // The job arrives: the stored deliveries take over and are worked as usual.
    h.send(&job(&id, OWNER, &channels), &format!("dist:{id}")).await;
    let settled = h.settled(&id).await;
    assert_eq!(settled.state, pb::DistributionState::Completed as i32, "{settled:#?}");
    let lookups = h.events.lookups();
    h.status(OWNER, &id).await.expect("status");
    assert_eq!(h.events.lookups(), lookups, "stored deliveries need no lookup");
    h.cleanup().await;
}

#[tokio::test]
async fn the_event_services_answers_keep_their_meaning() {
    let h = Harness::start(fast_config()).await;
    let down = event_id();
    let broken = event_id();
    let refused = event_id();
    h.events.refuse(&down, Status::unavailable("event database down"));
    h.events.refuse(&broken, Status::internal("invalid byte sequence"));
    h.events.refuse(&refused, Status::invalid_argument("eventId is not an event id"));

    let unavailable = expect_code(h.status(OWNER, &down).await, Code::Unavailable);
    assert_eq!(reason(&unavailable), "EVENT_SERVICE_UNAVAILABLE");
    assert_eq!(reason(&expect_code(h.status(OWNER, &broken).await, Code::Internal)), "INTERNAL");
    let invalid = expect_code(h.status(OWNER, &refused).await, Code::InvalidArgument);
    assert_eq!(violations(&invalid), ["eventId"]);
    h.cleanup().await;
}
