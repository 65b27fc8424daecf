//! The same service on embedded SQLite (`kem up`): migrations, every query and the outbox run
//! there too.

use std::time::Duration;

use kem_event::EventConfig;
use kem_kit::store;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1 as proto;
use kem_proto::kem::event::v1::event_service_server::EventService;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn the_lifecycle_runs_on_embedded_sqlite() {
    let h = Harness::sqlite(test_config()).await;

    // Create with dedupe, list with pagination and a filter.
    let request =
        || proto::CreateEventRequest { event: Some(sample_event("임베디드")), request_id: "req-1".into() };
    let first = created(h.api.create_event(req(OWNER, request())).await);
    assert_eq!(created(h.api.create_event(req(OWNER, request())).await).event_id, first.event_id);
    for i in 0..4 {
        h.create(OWNER, sample_event(&format!("목록 {i}"))).await;
    }
    let mut token = String::new();
    let mut seen = Vec::new();
    loop {
        let page = h
            .api
            .list_events(req(OWNER, proto::ListEventsRequest { page_size: 2, page_token: token, ..Default::default() }))
            .await
            .expect("list")
            .into_inner();
        seen.extend(page.events.into_iter().map(|e| e.event_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.iter().collect::<std::collections::HashSet<_>>().len(), 5, "no duplicates across pages");

    // Update with a mask, cached reads invalidated.
    h.get(OWNER, &first.event_id).await.expect("cache");
    let patch = proto::Event { title: "SQLite 수정".into(), ..Default::default() };
    h.update(OWNER, &first.event_id, patch, &["title"]).await.expect("update");
    assert_eq!(h.get(OWNER, &first.event_id).await.expect("get").title, "SQLite 수정");

    // The whole lifecycle, with the partial unique index and guarded updates.
    let ready = h.content_ready(OWNER, "SQLite 여정").await;
    let again = h.request_images(OWNER, &ready.event_id).await.expect("images");
    assert_eq!(h.request_images(OWNER, &ready.event_id).await.expect("same").job_id, again.job_id);
    let published = h.publish(OWNER, &ready.event_id, &[common::Channel::GenieTv]).await.expect("publish");
    assert_eq!(published.status, proto::EventStatus::Published as i32);
    let status =
        expect_code(h.publish(OWNER, &ready.event_id, &[common::Channel::GenieTv]).await, Code::FailedPrecondition);
    assert_eq!(metadata(&status, "status"), "EVENT_STATUS_PUBLISHED");
    assert_eq!(h.end(OWNER, &ready.event_id).await.expect("end").status, proto::EventStatus::Ended as i32);

    // The sweeper's query: an overdue job fails.
    store::query("UPDATE event_jobs SET deadline_at = 0 WHERE id = $1")
        .bind(again.job_id.as_str())
        .execute(h.store().primary())
        .await
        .expect("make the job overdue");
    let failed = finished_job(&h, OWNER, &again.job_id).await;
    assert_eq!(failed.error.map(|e| e.code), Some(Code::DeadlineExceeded as i32));

    // Deleting a draft (and its jobs).
    let draft = h.create(OWNER, sample_event("삭제")).await;
    h.request_recommendations(OWNER, &draft.event_id).await.expect("job");
    let delete = proto::DeleteEventRequest { event_id: draft.event_id.clone(), ..Default::default() };
    h.api.delete_event(req(OWNER, delete)).await.expect("delete");
    expect_code(h.get(OWNER, &draft.event_id).await, Code::NotFound);

    // The outbox published to the SQLite-backed queue: one fact per change.
    let facts: Vec<String> = h.analytics(&ready.event_id).await.into_iter().map(|(id, _)| id).collect();
    let want: Vec<String> = ["created", "recommended", "content_ready", "published", "ended"]
        .iter()
        .map(|f| format!("evt:{}:{f}", ready.event_id))
        .collect();
    assert_eq!(facts, want);
    assert_eq!(h.messages("distribution-jobs").await.len(), 1);
    h.cleanup().await;
}

#[tokio::test]
async fn sqlite_rejects_what_postgres_rejects() {
    let h = Harness::sqlite(EventConfig { job_sweep_interval: Duration::from_secs(1), ..EventConfig::default() }).await;
    let event = h.create(OWNER, sample_event("검증")).await;
    expect_code(h.get(OTHER, &event.event_id).await, Code::NotFound);
    let status = expect_code(
        h.update(OWNER, &event.event_id, proto::Event::default(), &["owner_id"]).await,
        Code::InvalidArgument,
    );
    assert_eq!(violations(&status), vec!["updateMask"]);
    let job = h.request_recommendations(OWNER, &event.event_id).await.expect("job");
    h.report(&job.job_id, recommendations_outcome(&["a", "b", "c"])).await.expect("report");
    let twice = h.report(&job.job_id, recommendations_outcome(&["d", "e", "f"])).await.expect("report twice");
    let Some(proto::job::Result::Recommendations(result)) = twice.result else { panic!("no result") };
    assert_eq!(result.recommendations[0].recommendation_id, "a", "the first report won");
    h.cleanup().await;
}
