//! Hostile text and ids at the boundary: NUL and other control or bidi characters in any string
//! field are INVALID_ARGUMENT naming the field (PostgreSQL refused them with a 500 before), ids
//! are checked by shape before any database call, and no status quotes more than a short excerpt
//! of what was sent.

use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1 as proto;
use kem_proto::kem::event::v1::event_service_server::EventService;
use tonic::{Code, Request, Status};

use kem_testkit::status::{expect_invalid_field, expect_no_echo};

use crate::support::*;

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    expect_invalid_field(result, field);
}

fn assert_short(status: &Status) {
    expect_no_echo(status);
    assert!(!status.message().contains("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), "input echoed");
}

async fn create(h: &Harness, event: proto::Event, request_id: &str) -> Result<proto::Event, Status> {
    let request = proto::CreateEventRequest { event: Some(event), request_id: request_id.to_owned() };
    Ok(h.api.create_event(req(OWNER, request)).await?.into_inner().event.unwrap_or_default())
}

#[tokio::test]
async fn control_characters_in_every_text_field_are_invalid_arguments() {
    let h = Harness::new().await;
    type Set = fn(&mut proto::Event, &str);
    let fields: [(&str, Set); 5] = [
        ("event.title", |e, bad| e.title = format!("점심{bad}이벤트")),
        ("event.description", |e, bad| e.description = format!("설명{bad}")),
        ("event.targetAudience", |e, bad| e.target_audience = format!("직장인{bad}")),
        ("event.prize.name", |e, bad| e.prize.get_or_insert_default().name = format!("커{bad}피")),
        ("event.prize.description", |e, bad| e.prize.get_or_insert_default().description = format!("{bad}매장")),
    ];
    for (field, set) in fields {
        for bad in ["\u{0}", "\u{1b}[2J", "\u{7f}", "\u{2028}", "\u{202e}"] {
            let mut event = sample_event("평일 점심 이벤트");
            set(&mut event, bad);
            assert_invalid(create(&h, event, "").await, field);
        }
    }
    // Line breaks are prose: fine in a description, refused in a title.
    let mut event = sample_event("평일 점심 이벤트");
    event.description = "첫 줄\n\t둘째 줄\r\n끝".into();
    create(&h, event, "").await.expect("a multi-line description");
    assert_invalid(create(&h, sample_event("두 줄\n제목"), "").await, "event.title");
    assert_invalid(create(&h, sample_event("idempotent"), "key\u{0}").await, "requestId");

    // The same rules on update, and nothing was stored by the refused requests.
    let draft = h.create(OWNER, sample_event("수정할 이벤트")).await;
    let mut change = proto::Event { title: "새\u{0}제목".into(), ..Default::default() };
    assert_invalid(h.update(OWNER, &draft.event_id, change.clone(), &["title"]).await, "event.title");
    change.title = "x".repeat(16_000);
    assert_invalid(h.update(OWNER, &draft.event_id, change, &["title"]).await, "event.title");
    let huge_path = format!("{}\u{0}", "x".repeat(16_000));
    assert_invalid(h.update(OWNER, &draft.event_id, proto::Event::default(), &[&huge_path]).await, "updateMask");
    let etag = proto::Event { title: "ok".into(), etag: "x".repeat(16_000), ..Default::default() };
    assert_invalid(h.update(OWNER, &draft.event_id, etag, &["title"]).await, "event.etag");
    let foreign = proto::Event { title: "ok".into(), event_id: "../other".into(), ..Default::default() };
    assert_invalid(h.update(OWNER, &draft.event_id, foreign, &["title"]).await, "event.eventId");
    let list = h.api.list_events(req(OWNER, proto::ListEventsRequest::default())).await.expect("list");
    assert_eq!(list.into_inner().events.len(), 2, "only the two valid events exist");

    let request = proto::RequestRecommendationsRequest {
        event_id: draft.event_id.clone(),
        additional_instructions: "평일\u{0}".into(),
    };
    assert_invalid(h.api.request_recommendations(req(OWNER, request)).await, "additionalInstructions");
    h.cleanup().await;
}

#[tokio::test]
async fn every_id_is_checked_by_shape_before_the_database() {
    let h = Harness::new().await;
    let draft = h.create(OWNER, sample_event("id 검사")).await;
    let good = draft.event_id.clone();
    let garbage = ["x".repeat(16_000), "%00".to_owned(), "\u{0}".to_owned(), "../../etc/passwd".to_owned()];
    for bad in &garbage {
        let bad = bad.as_str();
        assert_invalid(h.get(OWNER, bad).await, "eventId");
        assert_invalid(h.update(OWNER, bad, sample_event("t"), &["title"]).await, "eventId");
        let delete = proto::DeleteEventRequest { event_id: bad.into(), ..Default::default() };
        assert_invalid(h.api.delete_event(req(OWNER, delete)).await, "eventId");
        assert_invalid(h.request_recommendations(OWNER, bad).await, "eventId");
        assert_invalid(h.select_recommendation(OWNER, bad, "rec-1").await, "eventId");
        assert_invalid(h.request_images(OWNER, bad).await, "eventId");
        assert_invalid(h.select_image(OWNER, bad, "img-1").await, "eventId");
        assert_invalid(h.publish(OWNER, bad, &[common::Channel::Instagram]).await, "eventId");
        assert_invalid(h.end(OWNER, bad).await, "eventId");
        assert_invalid(h.get_job(OWNER, bad).await, "jobId");
        let facts = proto::GetEventForParticipationRequest { event_id: bad.into() };
        assert_invalid(h.api.get_event_for_participation(Request::new(facts)).await, "eventId");
        let started = proto::report_job_result_request::Outcome::Started(proto::JobStarted::default());
        assert_invalid(h.report(bad, started).await, "jobId");
        let batch = proto::BatchGetEventsRequest { event_ids: vec![good.clone(), bad.into()] };
        assert_invalid(h.api.batch_get_events(Request::new(batch)).await, "eventIds[1]");
        let page = proto::ListEventsRequest { page_token: bad.into(), ..Default::default() };
        assert_invalid(h.api.list_events(req(OWNER, page)).await, "pageToken");
        // Ids minted by peers (ai, content) only have to look like ids.
        assert_invalid(h.select_recommendation(OWNER, &good, bad).await, "recommendationId");
        assert_invalid(h.select_image(OWNER, &good, bad).await, "imageId");
        let delete = proto::DeleteEventRequest { event_id: good.clone(), etag: bad.into(), allow_missing: false };
        if bad.len() > 64 || bad.contains('\u{0}') {
            assert_invalid(h.api.delete_event(req(OWNER, delete)).await, "etag");
        }
    }
    // A well-formed id that does not exist is still NOT_FOUND, with a short message.
    let missing = expect_code(h.get(OWNER, "3c5d2b1a-0000-4000-8000-000000000000").await, Code::NotFound);
    assert_short(&missing);
    assert!(h.get(OWNER, &good).await.is_ok(), "the real event is untouched");
    h.cleanup().await;
}

#[tokio::test]
async fn worker_reports_get_the_same_character_rules() {
    let h = Harness::new().await;
    let draft = h.create(OWNER, sample_event("보고 검사")).await;
    let job = h.request_recommendations(OWNER, &draft.event_id).await.expect("job");
    let mut outcome = recommendations_outcome(&["rec-a", "rec-b", "rec-c"]);
    if let proto::report_job_result_request::Outcome::Recommendations(r) = &mut outcome {
        r.recommendations[1].title = "제목\u{0}".into();
        r.recommendations[2].recommendation_id = "rec c/../\u{0}".into();
    }
    let status = expect_code(h.report(&job.job_id, outcome).await, Code::InvalidArgument);
    let fields = violations(&status);
    assert!(fields.contains(&"recommendations.recommendations[1].title".to_owned()), "{fields:?}");
    assert!(fields.contains(&"recommendations.recommendations[2].recommendationId".to_owned()), "{fields:?}");
    assert_invalid(h.report(&job.job_id, error_outcome(Code::Unavailable, "down\u{0}")).await, "error.message");
    assert_invalid(h.report(&job.job_id, images_outcome(&["img\u{0}"])).await, "images.imageIds[0]");
    // The job is still open for a valid report.
    h.report(&job.job_id, recommendations_outcome(&["rec-a", "rec-b", "rec-c"])).await.expect("a valid report");
    h.cleanup().await;
}
