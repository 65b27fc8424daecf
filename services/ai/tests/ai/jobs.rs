//! The `ai-event-generation` consumer end to end: a job message in, one ReportJobResult out —
//! exactly once in effect, through malformed output, redelivery, crashes and an unreachable
//! event service.

use std::collections::HashSet;
use std::time::Duration;

use kem_kit::queue::Queue;
use kem_kit::queue::names::AI_EVENT_GENERATION;
use kem_kit::store;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1::report_job_result_request::Outcome;
use prost::Message;
use serde_json::json;

use kem_testkit::{eventually, eventually_holds};

use crate::claude::{ClaudeServer, Kind, Reply};
use crate::support::{Harness, claude_config, failure, job, reason, test_config};

const WITHIN: Duration = Duration::from_secs(30);

fn recommendations(outcome: &Outcome) -> &kem_proto::kem::event::v1::RecommendationsResult {
    match outcome {
        Outcome::Recommendations(result) => result,
        other => panic!("expected SUCCEEDED, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_reported_succeeded_once_with_three_recommendations() {
    let claude = ClaudeServer::start().await;
    let h = Harness::start(claude_config(&claude, |_| {})).await;
    h.send(&job("job-ok")).await;
    let outcome = h.outcome("job-ok", WITHIN).await;
    let result = recommendations(&outcome);
    assert_eq!(result.recommendations.len(), 3);
    let ids: HashSet<&str> = result.recommendations.iter().map(|r| r.recommendation_id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    let owners = [common::Channel::Instagram as i32, common::Channel::KakaoChannel as i32];
    for rec in &result.recommendations {
        assert!(rec.recommended_channels.iter().all(|c| owners.contains(c)), "only the owner's channels");
        assert_eq!(rec.channel_copies.len(), rec.recommended_channels.len());
    }
    assert_eq!(result.trend_summary, "연말을 맞아 인증샷 이벤트 반응이 좋아요.");
    let provider = result.provider.clone().expect("provider");
    assert_eq!((provider.kind, provider.name.as_str()), (common::ProviderKind::External as i32, "claude"));

    h.drained(Duration::from_secs(5)).await;
    let reports = h.events.reports("job-ok");
    assert!(matches!(reports.first().and_then(|r| r.outcome.as_ref()), Some(Outcome::Started(_))), "started first");
    assert_eq!(h.events.terminal_reports("job-ok").len(), 1, "exactly one outcome report");
    assert_eq!(h.ledger_state("job-ok").await.as_deref(), Some("SUCCEEDED"));
    assert_eq!((claude.count(Kind::Trends), claude.count(Kind::Recommendations)), (1, 1));
    assert_eq!(h.metric("kem_ai_jobs_total{outcome=\"succeeded\"}"), 1.0);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_output_is_repaired_once() {
    let claude = ClaudeServer::start().await;
    let chatty = "다음은 요청하신 추천입니다!\n{\"recommendations\": \"곧 보내 드릴게요\"}";
    claude.then(Kind::Recommendations, [Reply::Text(chatty.to_owned()), Reply::Valid]);
    let h = Harness::start(claude_config(&claude, |_| {})).await;
    h.send(&job("job-repair")).await;
    let outcome = h.outcome("job-repair", WITHIN).await;
    assert_eq!(recommendations(&outcome).recommendations.len(), 3);
    let calls = claude.calls(Kind::Recommendations);
    assert_eq!(calls.len(), 2, "the first answer and one repair");
    let messages = calls[1].body["messages"].as_array().expect("messages").clone();
    assert_eq!(messages.len(), 3);
    assert_eq!((messages[1]["role"].as_str(), messages[1]["content"].as_str()), (Some("assistant"), Some(chatty)));
    let repair = messages[2]["content"].as_str().unwrap_or_default();
    assert!(repair.contains("rejected") && repair.contains("does not start with '{'"), "{repair}");
    assert_eq!(h.metric("kem_ai_output_repairs_total{provider=\"claude\",task=\"recommendations\"}"), 1.0);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_malformed_twice_fails_the_job_clearly() {
    let claude = ClaudeServer::start().await;
    claude.always(Kind::Recommendations, Reply::Text(json!({"recommendations": []}).to_string()));
    let h = Harness::start(claude_config(&claude, |_| {})).await;
    h.send(&job("job-bad")).await;
    let error = failure(&h.outcome("job-bad", WITHIN).await);
    assert_eq!(error.code, tonic::Code::Internal as i32);
    assert_eq!(reason(&error), "kem.ai/PROVIDER_BAD_OUTPUT");
    assert!(
        error.message.contains("even after one repair attempt") && error.message.contains("exactly 3"),
        "{}",
        error.message
    );
    h.drained(Duration::from_secs(5)).await;
    assert_eq!(claude.count(Kind::Recommendations), 2, "one repair attempt, no more");
    assert_eq!(h.events.terminal_reports("job-bad").len(), 1);
    assert_eq!(h.ledger_state("job-bad").await.as_deref(), Some("FAILED"));
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_messages_are_dead_lettered_and_bad_inputs_fail_the_job() {
    let h = Harness::start(test_config()).await;
    h.send_raw("job:garbage", vec![0xff, 0xff, 0xff], "application/protobuf", true).await;
    h.send_raw("job:untyped", job("untyped").encode_to_vec(), "application/protobuf", false).await;
    h.send_raw("job:json", b"{}".to_vec(), "application/json", true).await;
    let queue = h.svc.queue.clone();
    let dead_letters = || async { queue.dead_letters(AI_EVENT_GENERATION, 10).await.expect("dead letters") };
    eventually("the three messages are dead-lettered", WITHIN, || async { dead_letters().await.len() == 3 }).await;
    let dead = dead_letters().await;
    assert!(dead.iter().all(|d| d.message.delivery_count == 1), "dead-lettered at once, not retried: {dead:?}");
    assert!(h.events.reports("untyped").is_empty());

    // A decodable message whose inputs are invalid is the job's failure, reported as such.
    let mut incomplete = job("job-incomplete");
    incomplete.period = None;
    h.send(&incomplete).await;
    let error = failure(&h.outcome("job-incomplete", WITHIN).await);
    assert_eq!(error.code, tonic::Code::InvalidArgument as i32);
    assert!(error.message.contains("period"), "{}", error.message);
    assert_eq!(h.metric("kem_ai_jobs_total{outcome=\"dead_lettered\"}"), 3.0);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_changes_nothing() {
    let claude = ClaudeServer::start().await;
    let h = Harness::start(claude_config(&claude, |_| {})).await;
    h.send(&job("job-dup")).await;
    h.outcome("job-dup", WITHIN).await;
    h.drained(Duration::from_secs(5)).await;
    let reports = h.events.reports("job-dup").len();

    // The broker delivers the very same message again (a completion that was lost).
    store::query("DELETE FROM kem_queue_messages WHERE queue = $1 AND id = $2")
        .bind(AI_EVENT_GENERATION)
        .bind("job:job-dup")
        .execute(h.svc.ctx.store.primary())
        .await
        .expect("forget the delivery");
    h.send(&job("job-dup")).await;
    let registry = h.registry.clone();
    eventually_holds("the redelivery is skipped", WITHIN, || {
        registry.render().contains("kem_ai_jobs_total{outcome=\"duplicate\"} 1")
    })
    .await;
    // The producer sends the job again under another message id.
    h.send_raw("job:job-dup:retry", job("job-dup").encode_to_vec(), "application/protobuf", true).await;
    eventually_holds("the second copy is skipped", WITHIN, || {
        registry.render().contains("kem_ai_jobs_total{outcome=\"duplicate\"} 2")
    })
    .await;
    h.drained(Duration::from_secs(5)).await;

    assert_eq!(h.events.reports("job-dup").len(), reports, "no further report at all");
    assert_eq!(h.events.terminal_reports("job-dup").len(), 1);
    assert_eq!((claude.count(Kind::Trends), claude.count(Kind::Recommendations)), (1, 1), "no second generation");
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_killed_mid_job_still_completes_it_exactly_once() {
    let claude = ClaudeServer::start().await;
    // The first recommendations call hangs; the consumer is killed while it waits.
    claude.then(Kind::Recommendations, [Reply::Hang(Duration::from_secs(30))]);
    let replica = |claude: &ClaudeServer| {
        let mut config = claude_config(claude, |p| p.timeout = Duration::from_secs(25));
        config.consumer.lock_for = Duration::from_secs(2);
        config
    };
    // The harness's own instance consumes another queue: replicas A and B do the work here.
    let mut idle = test_config();
    idle.consumer.queue = "ai-event-generation-idle".to_owned();
    let h = Harness::start(idle).await;
    let a = h.start_replica(replica(&claude)).await;
    h.send(&job("job-crash")).await;
    eventually_holds("replica A is waiting on the model", WITHIN, || claude.count(Kind::Recommendations) == 1).await;
    // A drains, then cancels its handler.
    assert!(a.drained(WITHIN).await, "replica A stopped");
    assert!(h.events.outcome("job-crash").is_none(), "A reported nothing");

    let b = h.start_replica(replica(&claude)).await;
    let outcome = h.outcome("job-crash", WITHIN).await;
    assert_eq!(recommendations(&outcome).recommendations.len(), 3);
    h.drained(Duration::from_secs(10)).await;
    assert_eq!(h.events.terminal_reports("job-crash").len(), 1, "completed exactly once");
    assert_eq!(claude.count(Kind::Trends), 1, "B took the trend analysis from the shared cache");
    assert_eq!(claude.count(Kind::Recommendations), 2, "the hung call, then B's");
    assert_eq!(h.ledger_state("job-crash").await.as_deref(), Some("SUCCEEDED"));
    b.trigger();
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_event_service_delays_the_report_without_new_work() {
    let claude = ClaudeServer::start().await;
    let h = Harness::start(claude_config(&claude, |_| {})).await;
    // More failures than the mesh client's own retries absorb: the first report is lost.
    h.events.fail_next_outcomes(4);
    h.send(&job("job-later")).await;
    let outcome = h.outcome("job-later", WITHIN).await;
    assert_eq!(recommendations(&outcome).recommendations.len(), 3);
    h.drained(Duration::from_secs(5)).await;
    assert!(h.metric("kem_ai_jobs_total{outcome=\"retried\"}") >= 1.0, "the report was retried by redelivery");
    assert_eq!(claude.count(Kind::Recommendations), 1, "the stored result was reported, not regenerated");
    assert_eq!(h.ledger_state("job-later").await.as_deref(), Some("SUCCEEDED"));
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_and_expired_jobs_are_dropped_without_work() {
    let claude = ClaudeServer::start().await;
    let h = Harness::start(claude_config(&claude, |_| {})).await;
    h.events.forget("job-gone");
    h.send(&job("job-gone")).await;
    let mut late = job("job-late");
    late.deadline = Some(kem_ai::api::convert::timestamp(1_000));
    h.send(&late).await;
    h.drained(WITHIN).await;
    let ledger = (h.ledger_state("job-gone").await, h.ledger_state("job-late").await);
    assert_eq!((ledger.0.as_deref(), ledger.1.as_deref()), (Some("DROPPED"), Some("EXPIRED")));
    assert!(h.events.reports("job-late").is_empty(), "nothing is reported after the deadline");
    assert!(h.events.outcome("job-gone").is_none());
    assert_eq!(claude.total(), 0, "no model call for either");
    h.cleanup().await;
}
