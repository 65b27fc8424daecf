//! EndEvent is immediate: participation closes the event's entries before ENDED is committed and
//! answered; when participation cannot confirm, the event is not ended and the owner retries.
//! And GetEventForDistribution: the publication facts, current on every replica.

use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1 as proto;
use kem_proto::kem::event::v1::event_service_server::EventService;
use tonic::{Code, Request, Status};

use crate::support::*;

async fn published(h: &Harness, title: &str) -> proto::Event {
    let ready = h.content_ready(OWNER, title).await;
    h.publish(OWNER, &ready.event_id, &[common::Channel::Instagram]).await.expect("publish")
}

#[tokio::test]
async fn end_closes_entries_before_it_commits_and_answers() {
    let h = Harness::new().await;
    let event = published(&h, "마감").await;
    assert!(h.participation.closes().is_empty(), "nothing closed before EndEvent");

    let ended = h.end(OWNER, &event.event_id).await.expect("end");
    assert_eq!(ended.status, proto::EventStatus::Ended as i32);
    let closes = h.participation.closes();
    assert_eq!(closes.len(), 1, "{closes:?}");
    assert_eq!(closes[0].event_id, event.event_id);
    assert_eq!(closes[0].close_time_ms, ts_ms(&ended.end_time), "participation learns the end time");
    assert_eq!(closes[0].stored_status, "PUBLISHED", "entries close before ENDED is committed");

    // Ending again answers the ended event and closes again (a no-op at participation), so an
    // ENDED answer is never given for entries that might still be open.
    assert_eq!(h.end(OWNER, &event.event_id).await.expect("end again"), ended);
    let closes = h.participation.closes();
    assert_eq!(closes.len(), 2);
    assert_eq!((closes[1].stored_status.as_str(), closes[1].close_time_ms), ("ENDED", ts_ms(&ended.end_time)));
    h.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_participation_leaves_the_event_published_until_a_retry() {
    let h = Harness::new().await;
    let event = published(&h, "재시도").await;

    // The mesh retries the idempotent CloseEntries (3 attempts); every attempt fails here.
    h.participation.fail_with(vec![Status::unavailable("participation database down"); 3]);
    let refused = expect_code(h.end(OWNER, &event.event_id).await, Code::Unavailable);
    assert_eq!(reason(&refused), "PARTICIPATION_UNAVAILABLE");
    let current = h.get(OWNER, &event.event_id).await.expect("get");
    assert_eq!(current.status, proto::EventStatus::Published as i32, "not ended without a confirmed close");

    h.participation.fail_with(Vec::new());
    let ended = h.end(OWNER, &event.event_id).await.expect("the owner's retry ends it");
    assert_eq!(ended.status, proto::EventStatus::Ended as i32);
    assert_eq!(h.participation.closes().last().map(|c| c.stored_status.as_str()), Some("PUBLISHED"));
    h.cleanup().await;
}

#[tokio::test]
async fn a_refusing_participation_is_an_internal_error_not_unavailability() {
    let h = Harness::new().await;
    let event = published(&h, "거부").await;
    h.participation.fail_with(vec![Status::permission_denied("the event workload may not call this")]);
    expect_code(h.end(OWNER, &event.event_id).await, Code::Internal);
    let current = h.get(OWNER, &event.event_id).await.expect("get");
    assert_eq!(current.status, proto::EventStatus::Published as i32);
    // Other refusals (e.g. an id participation calls malformed) are not UNAVAILABLE either.
    h.participation.fail_with(vec![Status::invalid_argument("eventId")]);
    expect_code(h.end(OWNER, &event.event_id).await, Code::Internal);
    h.cleanup().await;
}

#[tokio::test]
async fn distribution_reads_the_publication_fresh_on_any_replica() {
    let h = Harness::new().await;
    let other = h.replica().await;
    let ready = h.content_ready(OWNER, "배포").await;
    // The other replica caches the event as CONTENT_READY.
    let cached = proto::GetEventForParticipationRequest { event_id: ready.event_id.clone() };
    let facts = other.get_event_for_participation(Request::new(cached.clone())).await.expect("facts").into_inner();
    assert_eq!(facts.status, proto::EventStatus::ContentReady as i32);

    let event = h
        .publish(OWNER, &ready.event_id, &[common::Channel::Instagram, common::Channel::KakaoChannel])
        .await
        .expect("publish");
    let request = proto::GetEventForDistributionRequest { event_id: ready.event_id.clone() };
    let publication = other.get_event_for_distribution(Request::new(request)).await.expect("publication").into_inner();
    assert_eq!(publication.status, proto::EventStatus::Published as i32, "read from the primary, not the cache");
    assert_eq!((publication.event_id.as_str(), publication.owner_id.as_str()), (ready.event_id.as_str(), OWNER));
    assert_eq!(publication.channels, vec![common::Channel::Instagram as i32, common::Channel::KakaoChannel as i32]);
    assert_eq!(publication.publish_time, event.publish_time);

    let missing = proto::GetEventForDistributionRequest { event_id: "3c5d2b1a-0000-4000-8000-000000000000".into() };
    expect_code(h.api.get_event_for_distribution(Request::new(missing)).await, Code::NotFound);
    let empty = proto::GetEventForDistributionRequest::default();
    expect_code(h.api.get_event_for_distribution(Request::new(empty)).await, Code::InvalidArgument);
    h.cleanup().await;
}
