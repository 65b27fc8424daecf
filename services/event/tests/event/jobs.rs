//! Asynchronous request-reply: the whole owner journey with real queue consumers standing in for
//! the AI and content services, idempotent reports, job dedupe and the job-timeout sweeper.

use std::sync::Arc;
use std::time::Duration;

use kem_event::EventConfig;
use kem_kit::clock::ManualClock;
use kem_mesh::Shutdown;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1 as proto;
use kem_proto::kem::messaging::v1 as msg;
use prost::Message;
use tokio::sync::Mutex;
use tonic::Code;

use crate::support::*;

fn state(job: &proto::Job) -> proto::JobState {
    proto::JobState::try_from(job.state).unwrap_or(proto::JobState::Unspecified)
}

#[tokio::test]
async fn the_full_journey_through_real_queue_consumers() {
    let h = Harness::new().await;
    let workers = Shutdown::new();
    let ai_seen = Arc::new(Mutex::new(Vec::new()));
    let content_seen = Arc::new(Mutex::new(Vec::new()));
    let ai = spawn_ai_worker(h.ctx.queue.clone(), h.api.clone(), ai_seen.clone(), workers.clone());
    let content = spawn_content_worker(h.ctx.queue.clone(), h.api.clone(), content_seen.clone(), workers.clone());

    let event = h.create(OWNER, sample_event("여름 아이스커피 이벤트")).await;
    let id = event.event_id.clone();

    // Recommendations: PENDING at once, SUCCEEDED through the AI worker.
    let job = h.request_recommendations(OWNER, &id).await.expect("recommend");
    assert_eq!((state(&job), job.kind), (proto::JobState::Pending, proto::JobKind::Recommendations as i32));
    assert!(job.poll_interval.is_some(), "unfinished jobs suggest a poll interval");
    let done = finished_job(&h, OWNER, &job.job_id).await;
    assert_eq!(state(&done), proto::JobState::Succeeded, "{done:?}");
    assert!(done.poll_interval.is_none());
    let Some(proto::job::Result::Recommendations(result)) = &done.result else {
        panic!("no recommendations: {done:?}")
    };
    assert_eq!(result.recommendations.len(), 3);
    let work = ai_seen.lock().await.clone();
    assert_eq!(work.len(), 1, "one request message");
    let request = &work[0];
    assert_eq!(
        (request.job_id.as_str(), request.event_id.as_str(), request.owner_id.as_str()),
        (job.job_id.as_str(), id.as_str(), OWNER)
    );
    assert_eq!(request.objective, common::EventObjective::NewCustomers as i32);
    assert_eq!(request.additional_instructions, "평일 점심 위주로");
    assert_eq!((request.budget, request.period), (event.budget, event.period));
    assert!(ts_ms(&request.deadline) > ts_ms(&request.request_time));
    assert_eq!(h.get(OWNER, &id).await.expect("get").recommendations_job_id, job.job_id);

    // Select the second recommendation: copied into the event, RECOMMENDED.
    let selected = h.select_recommendation(OWNER, &id, "rec-2").await.expect("select");
    assert_eq!(selected.status, proto::EventStatus::Recommended as i32);
    assert_eq!(
        (selected.title.as_str(), selected.description.as_str()),
        ("추천 이벤트 rec-2", "rec-2: 점심 스탬프 적립 이벤트")
    );
    assert_eq!(selected.participation_method, common::ParticipationMethod::FirstCome as i32);
    assert_eq!(selected.selected_recommendation.as_ref().map(|r| r.recommendation_id.as_str()), Some("rec-2"));
    assert_eq!(
        selected.channels,
        vec![common::Channel::Instagram as i32, common::Channel::NaverBlog as i32],
        "the recommendation's channels"
    );
    let again = h.select_recommendation(OWNER, &id, "rec-2").await.expect("select again");
    assert_eq!(again.etag, selected.etag, "selecting the same recommendation is a no-op");

    // Images through the content worker, then select one: CONTENT_READY.
    let images_job = h.request_images(OWNER, &id).await.expect("generate images");
    assert_eq!(images_job.kind, proto::JobKind::Images as i32);
    let done = finished_job(&h, OWNER, &images_job.job_id).await;
    assert_eq!(state(&done), proto::JobState::Succeeded, "{done:?}");
    let Some(proto::job::Result::Images(images)) = &done.result else { panic!("no images: {done:?}") };
    assert_eq!(images.image_ids.len(), 2 * 3, "2 channels x 3 styles");
    let work = content_seen.lock().await.clone();
    assert_eq!(work.len(), 1);
    assert_eq!(work[0].channels, selected.channels, "the event's channels by default");
    assert_eq!(work[0].styles.len(), 3, "all styles by default");
    assert_eq!(work[0].recommendation.as_ref().map(|r| r.recommendation_id.as_str()), Some("rec-2"));
    let expect_not_found = expect_code(h.select_image(OWNER, &id, "not-an-image").await, Code::NotFound);
    assert_eq!(reason(&expect_not_found), "IMAGE_NOT_FOUND");
    let image = images.image_ids[1].clone();
    let ready = h.select_image(OWNER, &id, &image).await.expect("select image");
    assert_eq!(
        (ready.status, ready.selected_image_id.as_str()),
        (proto::EventStatus::ContentReady as i32, image.as_str())
    );

    // Publish: PUBLISHED, and exactly one distribution job with the channels, copy and image.
    let channels = [common::Channel::Instagram, common::Channel::KakaoChannel, common::Channel::GenieTv];
    let published = h.publish(OWNER, &id, &channels).await.expect("publish");
    assert_eq!(published.status, proto::EventStatus::Published as i32);
    assert_eq!(published.channels, channels.iter().map(|c| *c as i32).collect::<Vec<_>>());
    assert!(published.publish_time.is_some());
    let deliveries = h.messages("distribution-jobs").await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let delivery = &deliveries[0];
    assert_eq!(delivery.id, format!("dist:{id}"));
    assert_eq!(delivery.content_type, "application/protobuf");
    assert_eq!(delivery.properties.get("type").map(String::as_str), Some("kem.messaging.v1.DistributionJob"));
    let body = msg::DistributionJob::decode(delivery.body.as_slice()).expect("decodes");
    assert_eq!(
        (body.event_id.as_str(), body.owner_id.as_str(), body.image_id.as_str()),
        (id.as_str(), OWNER, image.as_str())
    );
    let delivered: Vec<i32> = body.deliveries.iter().map(|d| d.channel).collect();
    assert_eq!(delivered, published.channels);
    let copies: Vec<String> = body.deliveries.iter().map(|d| d.copy.clone().unwrap_or_default().text).collect();
    assert_eq!(copies[0], "rec-2 인스타 문구");
    assert_eq!(copies[1], "rec-2 카카오 문구");
    assert_eq!(
        copies[2], "추천 이벤트 rec-2\n\nrec-2: 점심 스탬프 적립 이벤트",
        "no copy for 지니TV: title and description"
    );

    // Published events are frozen; publishing twice is refused and enqueues nothing.
    let status = expect_code(h.publish(OWNER, &id, &channels).await, Code::FailedPrecondition);
    assert_eq!(metadata(&status, "status"), "EVENT_STATUS_PUBLISHED");
    let status = expect_code(
        h.update(OWNER, &id, proto::Event { title: "늦은 수정".into(), ..Default::default() }, &["title"]).await,
        Code::FailedPrecondition,
    );
    assert_eq!(
        (reason(&status), metadata(&status, "status")),
        ("INVALID_TRANSITION".into(), "EVENT_STATUS_PUBLISHED".into())
    );
    expect_code(h.request_recommendations(OWNER, &id).await, Code::FailedPrecondition);

    // End, twice.
    let ended = h.end(OWNER, &id).await.expect("end");
    assert_eq!(ended.status, proto::EventStatus::Ended as i32);
    assert!(ended.end_time.is_some());
    assert_eq!(h.end(OWNER, &id).await.expect("end again"), ended, "ending an ended event returns it unchanged");
    assert_eq!(h.messages("distribution-jobs").await.len(), 1, "still exactly one distribution job");

    // Exactly one analytics fact per status change, in order.
    let facts = h.analytics(&id).await;
    let names: Vec<String> = facts.iter().map(|(mid, _)| mid.clone()).collect();
    let want: Vec<String> = ["created", "recommended", "content_ready", "published", "ended"]
        .iter()
        .map(|f| format!("evt:{id}:{f}"))
        .collect();
    assert_eq!(names, want);
    let transitions: Vec<(i32, i32)> = facts
        .iter()
        .map(|(_, fact)| match &fact.fact {
            Some(msg::analytics_event::Fact::StateChanged(c)) => (c.from_status, c.to_status),
            other => panic!("not a state change: {other:?}"),
        })
        .collect();
    use proto::EventStatus as S;
    assert_eq!(
        transitions,
        vec![
            (S::Unspecified as i32, S::Draft as i32),
            (S::Draft as i32, S::Recommended as i32),
            (S::Recommended as i32, S::ContentReady as i32),
            (S::ContentReady as i32, S::Published as i32),
            (S::Published as i32, S::Ended as i32),
        ]
    );
    if let Some(msg::analytics_event::Fact::StateChanged(published)) = &facts[3].1.fact {
        assert_eq!(published.budget, event.budget, "budget for cost per entry and ROI");
        assert_eq!(published.channels, ended.channels);
    }

    workers.trigger();
    let (ai, content) = (ai.await.expect("ai worker"), content.await.expect("content worker"));
    assert_eq!(
        (ai.completed, ai.dead_lettered, content.completed, content.dead_lettered),
        (1, 0, 1, 0),
        "{ai:?} {content:?}"
    );
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_returns_the_unfinished_job() {
    let h = Harness::new().await;
    let event = h.create(OWNER, sample_event("중복 요청")).await;
    let first = h.request_recommendations(OWNER, &event.event_id).await.expect("first");
    let second = h.request_recommendations(OWNER, &event.event_id).await.expect("second");
    assert_eq!(second.job_id, first.job_id);

    // Concurrent requests on another event: one job.
    let other = h.create(OWNER, sample_event("동시 요청")).await;
    let racing: Vec<_> = (0..6)
        .map(|_| {
            let api = h.api.clone();
            let id = other.event_id.clone();
            tokio::spawn(async move {
                use kem_proto::kem::event::v1::event_service_server::EventService;
                let request =
                    proto::RequestRecommendationsRequest { event_id: id, additional_instructions: String::new() };
                api.request_recommendations(req(OWNER, request))
                    .await
                    .map(|r| r.into_inner().job.unwrap_or_default().job_id)
            })
        })
        .collect();
    let mut ids = Vec::new();
    for handle in racing {
        ids.push(handle.await.expect("task").expect("request"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let messages = h.messages("ai-event-generation").await;
    assert_eq!(messages.len(), 2, "one message per job: {messages:?}");

    // Once the job finished, a new request starts a new job.
    h.report(&first.job_id, recommendations_outcome(&["a", "b", "c"])).await.expect("report");
    let third = h.request_recommendations(OWNER, &event.event_id).await.expect("third");
    assert_ne!(third.job_id, first.job_id);
    assert_eq!(h.get(OWNER, &event.event_id).await.expect("get").recommendations_job_id, third.job_id);
    h.cleanup().await;
}

#[tokio::test]
async fn reports_are_idempotent_and_checked() {
    let h = Harness::new().await;
    let event = h.create(OWNER, sample_event("보고")).await;
    let job = h.request_recommendations(OWNER, &event.event_id).await.expect("recommend");

    let started = proto::report_job_result_request::Outcome::Started(proto::JobStarted::default());
    let running = h.report(&job.job_id, started.clone()).await.expect("started");
    assert_eq!(state(&running), proto::JobState::Running);
    assert_eq!(h.report(&job.job_id, started.clone()).await.expect("started again"), running);

    // Malformed and mismatched reports change nothing.
    let status = expect_code(h.report(&job.job_id, recommendations_outcome(&["a", "b"])).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["recommendations.recommendations"]);
    let status = expect_code(h.report(&job.job_id, images_outcome(&["img"])).await, Code::InvalidArgument);
    assert_eq!(reason(&status), "JOB_KIND_MISMATCH");
    let status = expect_code(h.report(&job.job_id, error_outcome(Code::Ok, "fine")).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["error.code"]);
    let status = expect_code(h.report("3c5d2b1a-0000-4000-8000-00000000000f", started.clone()).await, Code::NotFound);
    assert_eq!(reason(&status), "JOB_NOT_FOUND");
    let empty = proto::ReportJobResultRequest { job_id: job.job_id.clone(), outcome: None };
    {
        use kem_proto::kem::event::v1::event_service_server::EventService;
        expect_code(h.api.report_job_result(tonic::Request::new(empty)).await, Code::InvalidArgument);
    }

    // The first terminal report wins; every later one returns the stored job unchanged.
    let succeeded = h.report(&job.job_id, recommendations_outcome(&["x", "y", "z"])).await.expect("success");
    assert_eq!(state(&succeeded), proto::JobState::Succeeded);
    for later in [recommendations_outcome(&["p", "q", "r"]), error_outcome(Code::Unavailable, "late failure"), started]
    {
        assert_eq!(h.report(&job.job_id, later).await.expect("late report"), succeeded);
    }
    assert_eq!(h.get_job(OWNER, &job.job_id).await.expect("get"), succeeded);
    expect_code(h.select_recommendation(OWNER, &event.event_id, "p").await, Code::NotFound);
    h.select_recommendation(OWNER, &event.event_id, "y").await.expect("the stored result is selectable");

    // A failure is reported to the owner as a google.rpc.Status.
    let images = h.request_images(OWNER, &event.event_id).await.expect("images");
    let failed = h.report(&images.job_id, error_outcome(Code::Unavailable, "image provider down")).await.expect("fail");
    assert_eq!(state(&failed), proto::JobState::Failed);
    let error = failed.error.clone().expect("error");
    assert_eq!((error.code, error.message.as_str()), (Code::Unavailable as i32, "image provider down"));
    assert!(failed.result.is_none());
    assert_eq!(h.report(&images.job_id, images_outcome(&["late"])).await.expect("late success"), failed);
    h.cleanup().await;
}

#[tokio::test]
async fn selections_are_validated_against_job_results() {
    let h = Harness::new().await;
    let event = h.create(OWNER, sample_event("선택")).await;
    let id = event.event_id.clone();
    let status = expect_code(h.select_recommendation(OWNER, &id, "rec-1").await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "RECOMMENDATIONS_NOT_READY");
    expect_code(h.request_images(OWNER, &id).await, Code::FailedPrecondition);
    let status = expect_code(h.select_image(OWNER, &id, "img").await, Code::FailedPrecondition);
    assert_eq!(metadata(&status, "status"), "EVENT_STATUS_DRAFT");
    let status = expect_code(h.publish(OWNER, &id, &[common::Channel::Instagram]).await, Code::FailedPrecondition);
    assert_eq!(metadata(&status, "status"), "EVENT_STATUS_DRAFT");
    expect_code(h.end(OWNER, &id).await, Code::FailedPrecondition);

    let job = h.request_recommendations(OWNER, &id).await.expect("recommend");
    h.report(&job.job_id, recommendations_outcome(&["rec-1", "rec-2", "rec-3"])).await.expect("report");
    let status = expect_code(h.select_recommendation(OWNER, &id, "rec-9").await, Code::NotFound);
    assert_eq!(reason(&status), "RECOMMENDATION_NOT_FOUND");
    expect_code(h.select_recommendation(OTHER, &id, "rec-1").await, Code::NotFound);
    expect_code(h.get_job(OTHER, &job.job_id).await, Code::NotFound);
    h.select_recommendation(OWNER, &id, "rec-1").await.expect("select");

    // Invalid image requests.
    {
        use kem_proto::kem::event::v1::event_service_server::EventService;
        let request = proto::RequestImagesRequest { event_id: id.clone(), channels: vec![0], styles: vec![1, 9] };
        let status = expect_code(h.api.request_images(req(OWNER, request)).await, Code::InvalidArgument);
        assert_eq!(violations(&status), vec!["channels[0]", "styles[1]"]);
    }
    // An image of another event is not this event's.
    let other = h.content_ready(OWNER, "다른 이벤트").await;
    let status = expect_code(h.select_image(OWNER, &id, "img-b").await, Code::NotFound);
    assert_eq!(reason(&status), "IMAGE_NOT_FOUND", "{other:?}");

    // Publishing needs channels, and a period that is not over.
    let request_channels: &[common::Channel] = &[];
    let status = expect_code(h.publish(OWNER, &other.event_id, request_channels).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["channels"]);
    let past = proto::Event {
        period: Some(common::Period {
            start_time: Some(ts(SystemClock.now_ms() - 20_000)),
            end_time: Some(ts(SystemClock.now_ms() - 10_000)),
        }),
        ..Default::default()
    };
    h.update(OWNER, &other.event_id, past, &["period"]).await.expect("move the period into the past");
    let status =
        expect_code(h.publish(OWNER, &other.event_id, &[common::Channel::Instagram]).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "PERIOD_OVER");
    h.cleanup().await;
}

#[tokio::test]
async fn unfinished_jobs_fail_at_their_deadline() {
    let config = EventConfig {
        job_timeout: Duration::from_secs(1),
        job_sweep_interval: Duration::from_millis(100),
        ..EventConfig::default()
    };
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(config, clock.clone()).await;
    let event = h.create(OWNER, sample_event("시간 초과")).await;
    // Nobody consumes ai-event-generation; its deadline passes.
    let job = h.request_recommendations(OWNER, &event.event_id).await.expect("recommend");
    clock.advance(Duration::from_secs(1));
    let failed = finished_job(&h, OWNER, &job.job_id).await;
    assert_eq!(state(&failed), proto::JobState::Failed);
    assert_eq!(failed.error.as_ref().map(|e| e.code), Some(Code::DeadlineExceeded as i32), "{failed:?}");
    // A worker reporting late finds the job failed.
    let late = h.report(&job.job_id, recommendations_outcome(&["a", "b", "c"])).await.expect("late");
    assert_eq!(late, failed);
    // The owner can start over.
    let retry = h.request_recommendations(OWNER, &event.event_id).await.expect("retry");
    assert_ne!(retry.job_id, job.job_id);
    h.cleanup().await;
}
