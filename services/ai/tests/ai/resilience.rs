//! Provider trouble — 429 with retry-after, 529, timeouts, an outage that opens the breaker,
//! refused credentials, an exhausted spend limit — each ending in the right job state with no
//! lost job and no extra work.

use std::time::Duration;

use kem_mesh::breaker::BreakerConfig;
use kem_proto::kem::event::v1::report_job_result_request::Outcome;
use tonic::Code;

use crate::claude::{ClaudeServer, Kind, Reply};
use crate::support::{Harness, claude_config, failure, job, reason, recommendations_request};

const WITHIN: Duration = Duration::from_secs(30);

fn succeeded(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Recommendations(result) if result.recommendations.len() == 3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_waited_out_as_retry_after_says() {
    let claude = ClaudeServer::start().await;
    claude.then(Kind::Recommendations, [Reply::RateLimited { retry_after_secs: 1 }, Reply::Valid]);
    let h = Harness::start(claude_config(&claude, |_| {})).await;
    h.send(&job("job-429")).await;
    assert!(succeeded(&h.outcome("job-429", WITHIN).await));
    let calls = claude.calls(Kind::Recommendations);
    assert_eq!(calls.len(), 2);
    let waited = calls[1].at.duration_since(calls[0].at);
    assert!(waited >= Duration::from_secs(1), "retry-after: 1 was honoured ({waited:?})");
    assert_eq!(h.events.terminal_reports("job-429").len(), 1);
    assert_eq!(h.metric("kem_external_requests_total{provider=\"claude\",outcome=\"ok\"}"), 2.0);
    assert_eq!(h.metric("kem_external_retries_total{provider=\"claude\"}"), 1.0);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overloaded_provider_is_retried() {
    let claude = ClaudeServer::start().await;
    claude.then(Kind::Recommendations, [Reply::Overloaded, Reply::ServerError, Reply::Valid]);
    let h = Harness::start(claude_config(&claude, |_| {})).await;
    h.send(&job("job-529")).await;
    assert!(succeeded(&h.outcome("job-529", WITHIN).await));
    assert_eq!(claude.count(Kind::Recommendations), 3, "529, 500, then the answer");
    assert_eq!(h.events.terminal_reports("job-529").len(), 1);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_attempt_is_retried() {
    let claude = ClaudeServer::start().await;
    claude.then(Kind::Recommendations, [Reply::Hang(Duration::from_secs(5)), Reply::Valid]);
    let h = Harness::start(claude_config(&claude, |p| p.timeout = Duration::from_secs(1))).await;
    h.send(&job("job-slow")).await;
    assert!(succeeded(&h.outcome("job-slow", WITHIN).await));
    let calls = claude.calls(Kind::Recommendations);
    assert_eq!(calls.len(), 2);
    assert!(calls[1].at.duration_since(calls[0].at) >= Duration::from_secs(1), "the first attempt got its 1 s");
    assert_eq!(h.metric("kem_external_requests_total{provider=\"claude\",outcome=\"ok\"}"), 2.0);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_under_repeated_failure_and_calls_fail_fast() {
    let claude = ClaudeServer::start().await;
    claude.always(Kind::Trends, Reply::ServerError);
    let mut config = claude_config(&claude, |p| {
        p.max_attempts = 1;
        p.breaker = BreakerConfig {
            failure_rate_threshold: 0.5,
            minimum_calls: 3,
            open_duration: Duration::from_secs(60),
            ..BreakerConfig::default()
        };
    });
    config.jobs.max_attempts = 2;
    let h = Harness::start(config).await;
    let mut event = h.event_client();
    for budget in 1..=6 {
        let error = event.generate_recommendations(recommendations_request(budget * 10_000)).await.expect_err("down");
        assert_eq!(error.code(), Code::Unavailable, "{error:?}");
        let info = kem_proto::status::error_info_of(&error).expect("ErrorInfo");
        assert_eq!((info.domain.as_str(), info.reason.as_str()), ("kem.ai", "PROVIDER_UNAVAILABLE"));
        let open = info.metadata.get("circuit_open").map(String::as_str);
        assert_eq!(open, Some(if budget <= 3 { "false" } else { "true" }), "call {budget}");
    }
    assert_eq!(claude.total(), 3, "once open, nothing reaches the provider");
    assert_eq!(h.metric("kem_external_breaker_state{provider=\"claude\"}"), 2.0);

    // A job meanwhile: retried once, then reported FAILED (UNAVAILABLE) — not lost, no calls.
    h.send(&job("job-open")).await;
    let error = failure(&h.outcome("job-open", WITHIN).await);
    assert_eq!(error.code, Code::Unavailable as i32);
    assert_eq!(reason(&error), "kem.ai/PROVIDER_UNAVAILABLE");
    assert_eq!(claude.total(), 3);
    h.drained(Duration::from_secs(5)).await;
    assert_eq!(h.ledger_state("job-open").await.as_deref(), Some("FAILED"));
    assert_eq!(h.metric("kem_ai_jobs_total{outcome=\"retried\"}"), 1.0);
    h.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_and_spend_limits_fail_the_job_without_retries() {
    let claude = ClaudeServer::start().await;
    claude.then(Kind::Trends, [Reply::Unauthorized]);
    let h = Harness::start(claude_config(&claude, |_| {})).await;
    h.send(&job("job-401")).await;
    let error = failure(&h.outcome("job-401", WITHIN).await);
    assert_eq!((error.code, reason(&error).as_str()), (Code::Internal as i32, "kem.ai/PROVIDER_MISCONFIGURED"));
    assert!(!error.message.contains("x-api-key"), "provider details stay in the logs: {}", error.message);
    assert_eq!(claude.total(), 1, "401 is not retried");

    claude.then(Kind::Trends, [Reply::SpendLimit]);
    h.send(&job("job-spend")).await;
    let error = failure(&h.outcome("job-spend", WITHIN).await);
    assert_eq!((error.code, reason(&error).as_str()), (Code::ResourceExhausted as i32, "kem.ai/PROVIDER_QUOTA"));
    assert_eq!(claude.total(), 2, "a spend limit is not retried");
    h.drained(Duration::from_secs(5)).await;
    h.cleanup().await;
}
