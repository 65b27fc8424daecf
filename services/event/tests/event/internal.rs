//! Mesh-internal methods (participation, analytics) and races between owners' requests.

use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1 as proto;
use kem_proto::kem::event::v1::event_service_server::EventService;
use tonic::{Code, Request};

use crate::support::*;

#[tokio::test]
async fn participation_reads_any_event_without_an_owner() {
    let h = Harness::new().await;
    let ready = h.content_ready(OWNER, "참여").await;
    h.publish(OWNER, &ready.event_id, &[common::Channel::Instagram, common::Channel::NaverBlog])
        .await
        .expect("publish");

    let request = proto::GetEventForParticipationRequest { event_id: ready.event_id.clone() };
    let facts = h.api.get_event_for_participation(Request::new(request)).await.expect("facts").into_inner();
    assert_eq!((facts.event_id.as_str(), facts.owner_id.as_str()), (ready.event_id.as_str(), OWNER));
    assert_eq!(facts.status, proto::EventStatus::Published as i32);
    assert_eq!(facts.channels, vec![common::Channel::Instagram as i32, common::Channel::NaverBlog as i32]);
    assert_eq!(facts.period, ready.period);
    assert_eq!(facts.prize.map(|p| p.winner_count), Some(20), "the selected recommendation's prize");
    assert_eq!(facts.participation_method, common::ParticipationMethod::FirstCome as i32);

    let missing = proto::GetEventForParticipationRequest { event_id: "3c5d2b1a-0000-4000-8000-000000000000".into() };
    expect_code(h.api.get_event_for_participation(Request::new(missing)).await, Code::NotFound);
    let empty = proto::GetEventForParticipationRequest::default();
    expect_code(h.api.get_event_for_participation(Request::new(empty)).await, Code::InvalidArgument);
    h.cleanup().await;
}

#[tokio::test]
async fn analytics_batch_reads_in_request_order() {
    let h = Harness::new().await;
    let a = h.create(OWNER, sample_event("a")).await;
    let b = h.create(OTHER, sample_event("b")).await;
    let ids = vec![b.event_id.clone(), "missing-1".into(), a.event_id.clone(), b.event_id.clone(), String::new()];
    let response = h
        .api
        .batch_get_events(Request::new(proto::BatchGetEventsRequest { event_ids: ids }))
        .await
        .expect("batch")
        .into_inner();
    let found: Vec<&str> = response.events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(found, vec![b.event_id.as_str(), a.event_id.as_str()], "request order, duplicates once");
    assert_eq!(response.missing_event_ids, vec!["missing-1".to_owned(), String::new()]);

    let too_many: Vec<String> = (0..101).map(|i| format!("id-{i}")).collect();
    let status = expect_code(
        h.api.batch_get_events(Request::new(proto::BatchGetEventsRequest { event_ids: too_many })).await,
        Code::InvalidArgument,
    );
    assert_eq!(violations(&status), vec!["eventIds"]);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publications_have_exactly_one_winner() {
    let h = Harness::new().await;
    let ready = h.content_ready(OWNER, "경쟁").await;
    let racing: Vec<_> = (0..6)
        .map(|_| {
            let api = h.api.clone();
            let id = ready.event_id.clone();
            tokio::spawn(async move {
                let request = proto::PublishEventRequest {
                    event_id: id,
                    channels: vec![common::Channel::Instagram as i32],
                    etag: String::new(),
                };
                api.publish_event(req(OWNER, request)).await.map(drop)
            })
        })
        .collect();
    let mut wins = 0;
    for handle in racing {
        match handle.await.expect("task") {
            Ok(()) => wins += 1,
            Err(status) => {
                assert!(matches!(status.code(), Code::FailedPrecondition | Code::Aborted), "{status:?}");
                if status.code() == Code::FailedPrecondition {
                    assert_eq!(metadata(&status, "status"), "EVENT_STATUS_PUBLISHED");
                }
            }
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(h.messages("distribution-jobs").await.len(), 1);
    let published: Vec<String> = h
        .analytics(&ready.event_id)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| id.ends_with(":published"))
        .collect();
    assert_eq!(published.len(), 1);
    h.cleanup().await;
}

#[tokio::test]
async fn stale_etags_lose_to_concurrent_changes() {
    let h = Harness::new().await;
    let ready = h.content_ready(OWNER, "etag").await;
    let first = proto::Event { title: "먼저".into(), etag: ready.etag.clone(), ..Default::default() };
    let written = h.update(OWNER, &ready.event_id, first.clone(), &["title"]).await.expect("first writer");
    // A retry of the same update (e.g. the mesh retrying after a lost response) is a no-op, even
    // though its etag is stale now.
    let retried = h.update(OWNER, &ready.event_id, first, &["title"]).await.expect("retried update");
    assert_eq!(retried.etag, written.etag);
    let request = proto::PublishEventRequest {
        event_id: ready.event_id.clone(),
        channels: vec![common::Channel::Instagram as i32],
        etag: ready.etag.clone(),
    };
    let status = expect_code(h.api.publish_event(req(OWNER, request)).await, Code::Aborted);
    assert_eq!(reason(&status), "ETAG_MISMATCH");
    assert_eq!(h.get(OWNER, &ready.event_id).await.expect("get").status, proto::EventStatus::ContentReady as i32);
    assert!(h.messages("distribution-jobs").await.is_empty());
    h.cleanup().await;
}
