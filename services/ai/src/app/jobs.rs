//! The `ai-event-generation` job: generate three recommendations for an event and report the
//! outcome to the event service, exactly once in effect although messages arrive at least once.
//!
//! How a delivery is handled:
//! 1. A message the inbox has seen, or a job the ledger has finished, is a duplicate: done.
//! 2. A job whose deadline passed is not reported (the event service fails it with
//!    DEADLINE_EXCEEDED itself): recorded as expired, done.
//! 3. `started` is reported (best effort; NOT_FOUND means the event was deleted: dropped, done).
//! 4. The result stored by an earlier delivery is reused; otherwise it is generated (cache first)
//!    and stored before reporting, so a redelivery after a crash never asks the model again.
//! 5. A transient failure (model down, slow or throttled) abandons the message for a retry while
//!    attempts and time remain; then, or on a permanent failure, FAILED is reported.
//! 6. The outcome is reported (ReportJobResult is idempotent: the first terminal report wins), and
//!    the final state is recorded together with the message id in the inbox. An unreachable event
//!    service means a retry; the stored result makes it cheap.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kem_kit::clock::Clock;
use tokio::time::Instant;

use crate::domain::input::{EventBrief, InvalidInput};
use crate::domain::output::Generated;

use super::error::AppError;
use super::metrics::{AiMetrics, bump};
use super::ports::{JobLedger, JobRef, JobReporter, JobState, ReportError};
use super::recommendations::RecommendationService;

/// When a job retries and how much time it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobPolicy {
    /// Deliveries after which a transient failure is reported as FAILED instead of retried
    /// (keep it below the queue's dead-letter threshold so every job ends reported).
    pub max_attempts: u32,
    /// Longest one delivery may spend generating (also the budget of jobs without a deadline).
    pub generation_budget: Duration,
    /// Time kept before the job's deadline for reporting the outcome.
    pub report_reserve: Duration,
    /// Least time worth starting another delivery with; less and a transient failure is final.
    pub min_retry_window: Duration,
}

impl Default for JobPolicy {
    /// 5 attempts, 90 s per delivery, 3 s kept for reporting, 15 s for a retry to be worth it.
    fn default() -> Self {
        JobPolicy {
            max_attempts: 5,
            generation_budget: Duration::from_secs(90),
            report_reserve: Duration::from_secs(3),
            min_retry_window: Duration::from_secs(15),
        }
    }
}

/// One delivery of a job message, decoded.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// The queue message id (`job:<job_id>`), the inbox key.
    pub message_id: String,
    /// The event service's job id.
    pub job_id: String,
    /// The event.
    pub event_id: String,
    /// The event's owner (logs).
    pub owner_id: String,
    /// The validated brief, or why the message's inputs are unusable (reported as FAILED).
    pub brief: Result<EventBrief, InvalidInput>,
    /// After this the job must not be reported.
    pub deadline: Option<SystemTime>,
    /// Which delivery this is (1 = first).
    pub delivery: u32,
}

/// What to do with the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Done (handled, or nothing left to do): complete it.
    Complete,
    /// Try again later: abandon it.
    Retry(String),
    /// Can never succeed: dead-letter it for inspection.
    DeadLetter(String),
}

/// The job use case.
pub struct JobService {
    recommendations: RecommendationService,
    reporter: Arc<dyn JobReporter>,
    ledger: Arc<dyn JobLedger>,
    policy: JobPolicy,
    metrics: Arc<AiMetrics>,
    clock: Arc<dyn Clock>,
}

impl JobService {
    /// Jobs generated with `recommendations`, reported through `reporter`, remembered in `ledger`,
    /// their deadlines read against `clock`.
    pub fn new(
        recommendations: RecommendationService,
        reporter: Arc<dyn JobReporter>,
        ledger: Arc<dyn JobLedger>,
        policy: JobPolicy,
        metrics: Arc<AiMetrics>,
        clock: Arc<dyn Clock>,
    ) -> JobService {
        JobService { recommendations, reporter, ledger, policy, metrics, clock }
    }

    /// The counters.
    pub fn metrics(&self) -> &Arc<AiMetrics> {
        &self.metrics
    }

    /// Time left before the job's deadline by the service's clock (`None`: no deadline; zero
    /// once passed).
    fn time_left(&self, spec: &JobSpec) -> Option<Duration> {
        spec.deadline.map(|deadline| deadline.duration_since(self.clock.now()).unwrap_or_default())
    }

    /// Handles one delivery.
    pub async fn run(&self, spec: JobSpec) -> Disposition {
        let jobs = &self.metrics.jobs;
        let job = JobRef {
            job_id: spec.job_id.clone(),
            event_id: spec.event_id.clone(),
            input_hash: spec.brief.as_ref().map(EventBrief::input_hash).unwrap_or_default(),
        };
        match self.ledger.seen(&spec.message_id).await {
            Ok(true) => {
                bump(&jobs.duplicates);
                tracing::info!(job_id = %job.job_id, "message already processed; skipping the redelivery");
                return Disposition::Complete;
            }
            Ok(false) => {}
            Err(error) => return Disposition::Retry(error.to_string()),
        }
        let record = match self.ledger.get(&job.job_id).await {
            Ok(record) => record,
            Err(error) => return Disposition::Retry(error.to_string()),
        };
        if let Some(record) = &record
            && record.state.is_final()
        {
            bump(&jobs.duplicates);
            tracing::info!(job_id = %job.job_id, state = record.state.as_str(), "job already finished; skipping");
            return self.finish(&spec, &job, record.state, None).await;
        }
        let until_deadline = self.time_left(&spec);
        if until_deadline.is_some_and(|left| left.is_zero()) {
            return self.expired(&spec, &job, "the deadline passed before the job could be worked").await;
        }
        match self.reporter.started(&job.job_id).await {
            Ok(()) => {}
            Err(ReportError::JobGone { .. }) => return self.dropped(&spec, &job).await,
            // The outcome report decides; a lost `started` only delays RUNNING.
            Err(error) => tracing::warn!(job_id = %job.job_id, %error, "could not report the job as started"),
        }
        let outcome = match (&spec.brief, record.and_then(|r| r.result)) {
            (Err(invalid), _) => Err(AppError::Invalid(invalid.clone())),
            (Ok(_), Some(mut stored)) => {
                tracing::info!(job_id = %job.job_id, "reusing the result generated by an earlier delivery");
                stored.cached = true;
                stored.trend.cached = true;
                Ok(stored)
            }
            (Ok(brief), None) => self.generate(&job, brief, until_deadline).await,
        };
        match outcome {
            Ok(result) => self.report_success(&spec, &job, &result).await,
            Err(error) if error.is_transient() && self.may_retry(&spec) => {
                bump(&jobs.retried);
                tracing::warn!(job_id = %job.job_id, delivery = spec.delivery, %error, "transient failure; the job will be retried");
                if let Err(ledger) = self.ledger.record_attempt(&job, &error.to_string()).await {
                    tracing::warn!(job_id = %job.job_id, %ledger, "could not count the attempt");
                }
                Disposition::Retry(error.to_string())
            }
            Err(error) => self.report_failure(&spec, &job, &error).await,
        }
    }

    async fn generate(
        &self,
        job: &JobRef,
        brief: &EventBrief,
        until_deadline: Option<Duration>,
    ) -> Result<Generated, AppError> {
        let budget = until_deadline
            .map(|left| left.saturating_sub(self.policy.report_reserve))
            .unwrap_or(self.policy.generation_budget)
            .min(self.policy.generation_budget);
        let result = self.recommendations.generate(brief, Instant::now() + budget).await?;
        // Stored before reporting: a redelivery (lost report, crash) reuses it.
        if let Err(error) = self.ledger.save_result(job, &result).await {
            tracing::warn!(job_id = %job.job_id, %error, "could not store the result; a redelivery will use the cache");
        }
        Ok(result)
    }

    /// Whether another delivery is allowed and still has time to be worth it.
    fn may_retry(&self, spec: &JobSpec) -> bool {
        spec.delivery < self.policy.max_attempts
            && self.time_left(spec).is_none_or(|left| left > self.policy.min_retry_window + self.policy.report_reserve)
    }

    async fn report_success(&self, spec: &JobSpec, job: &JobRef, result: &Generated) -> Disposition {
        if self.time_left(spec).is_some_and(|left| left.is_zero()) {
            return self.expired(spec, job, "the deadline passed before the result could be reported").await;
        }
        match self.reporter.succeeded(&job.job_id, result).await {
            Ok(()) => {
                bump(&self.metrics.jobs.succeeded);
                tracing::info!(job_id = %job.job_id, event_id = %job.event_id, owner_id = %spec.owner_id,
                    provider = %result.provider.name, cached = result.cached, "job SUCCEEDED reported");
                self.finish(spec, job, JobState::Succeeded, None).await
            }
            Err(error) => self.report_error(spec, job, error).await,
        }
    }

    async fn report_failure(&self, spec: &JobSpec, job: &JobRef, error: &AppError) -> Disposition {
        if self.time_left(spec).is_some_and(|left| left.is_zero()) {
            return self.expired(spec, job, "the deadline passed before the failure could be reported").await;
        }
        match self.reporter.failed(&job.job_id, error).await {
            Ok(()) => {
                bump(&self.metrics.jobs.failed);
                tracing::warn!(job_id = %job.job_id, event_id = %job.event_id, %error, "job FAILED reported");
                self.finish(spec, job, JobState::Failed, Some(&error.to_string())).await
            }
            Err(report) => self.report_error(spec, job, report).await,
        }
    }

    async fn report_error(&self, spec: &JobSpec, job: &JobRef, error: ReportError) -> Disposition {
        match error {
            ReportError::JobGone { .. } => self.dropped(spec, job).await,
            ReportError::Unavailable(reason) if self.time_left(spec).is_some_and(|left| left.is_zero()) => {
                self.expired(spec, job, &format!("the event service was unreachable until the deadline: {reason}"))
                    .await
            }
            ReportError::Unavailable(reason) => {
                bump(&self.metrics.jobs.retried);
                Disposition::Retry(format!("reporting job {}: {reason}", job.job_id))
            }
            ReportError::Refused(reason) => {
                bump(&self.metrics.jobs.dead_lettered);
                tracing::error!(job_id = %job.job_id, %reason, "the event service refused the report; dead-lettering");
                Disposition::DeadLetter(format!("the event service refused the report of job {}: {reason}", job.job_id))
            }
        }
    }

    /// The job's deadline passed: the event service fails it itself, so nothing is reported.
    async fn expired(&self, spec: &JobSpec, job: &JobRef, why: &str) -> Disposition {
        bump(&self.metrics.jobs.expired);
        tracing::warn!(job_id = %job.job_id, event_id = %job.event_id, why, "job expired; not reporting it");
        self.finish(spec, job, JobState::Expired, Some(why)).await
    }

    async fn dropped(&self, spec: &JobSpec, job: &JobRef) -> Disposition {
        bump(&self.metrics.jobs.dropped);
        tracing::info!(job_id = %job.job_id, event_id = %job.event_id, "job no longer exists (event deleted); dropping it");
        self.finish(spec, job, JobState::Dropped, None).await
    }

    /// Records the final state with the message id; a failure to record means a retry (the
    /// report is idempotent, so reporting again is harmless).
    async fn finish(&self, spec: &JobSpec, job: &JobRef, state: JobState, error: Option<&str>) -> Disposition {
        match self.ledger.finish(&spec.message_id, job, state, error).await {
            Ok(_) => Disposition::Complete,
            Err(error) => Disposition::Retry(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use kem_kit::cache::{CacheAside, MemoryCache};
    use kem_kit::clock::SystemClock;

    use super::*;
    use crate::app::cache::ResultCache;
    use crate::app::generation::ModelPath;
    use crate::app::ports::{Completion, JobRecord, LanguageModel, LedgerError, ModelError, ModelRequest};
    use crate::app::trends::TrendService;
    use crate::domain::input::BriefInput;
    use crate::domain::output::ProviderStamp;
    use crate::domain::values::{Category, Objective};
    use crate::infra::local::LocalModel;

    /// A model that is down.
    struct Down;

    #[async_trait::async_trait]
    impl LanguageModel for Down {
        fn source(&self) -> ProviderStamp {
            ProviderStamp { local: false, name: "claude".into(), model: "m".into(), request_id: String::new() }
        }

        async fn complete(&self, _: &ModelRequest, _: Duration) -> Result<Completion, ModelError> {
            Err(ModelError::Unavailable {
                provider: "claude".into(),
                detail: "529".into(),
                retry_after: None,
                circuit_open: false,
            })
        }
    }

    #[derive(Default)]
    struct Reporter {
        calls: Mutex<Vec<String>>,
        refuse: bool,
    }

    #[async_trait::async_trait]
    impl JobReporter for Reporter {
        async fn started(&self, _: &str) -> Result<(), ReportError> {
            self.calls.lock().expect("lock").push("started".into());
            Ok(())
        }

        async fn succeeded(&self, _: &str, _: &Generated) -> Result<(), ReportError> {
            self.calls.lock().expect("lock").push("succeeded".into());
            if self.refuse {
                Err(ReportError::Refused(Box::new(std::io::Error::other("three expected"))))
            } else {
                Ok(())
            }
        }

        async fn failed(&self, _: &str, error: &AppError) -> Result<(), ReportError> {
            self.calls.lock().expect("lock").push(format!("failed: {error}"));
            Ok(())
        }
    }

    #[derive(Default)]
    struct Ledger {
        seen: Mutex<Vec<String>>,
        jobs: Mutex<HashMap<String, JobRecord>>,
    }

    #[async_trait::async_trait]
    impl JobLedger for Ledger {
        async fn seen(&self, message_id: &str) -> Result<bool, LedgerError> {
            Ok(self.seen.lock().expect("lock").iter().any(|m| m == message_id))
        }

        async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, LedgerError> {
            Ok(self.jobs.lock().expect("lock").get(job_id).cloned())
        }

        async fn record_attempt(&self, job: &JobRef, _: &str) -> Result<(), LedgerError> {
            let mut jobs = self.jobs.lock().expect("lock");
            let record = jobs.entry(job.job_id.clone()).or_insert(JobRecord {
                state: JobState::Working,
                result: None,
                attempts: 0,
            });
            record.attempts += 1;
            Ok(())
        }

        async fn save_result(&self, job: &JobRef, result: &Generated) -> Result<(), LedgerError> {
            let mut jobs = self.jobs.lock().expect("lock");
            let record = jobs.entry(job.job_id.clone()).or_insert(JobRecord {
                state: JobState::Working,
                result: None,
                attempts: 0,
            });
            record.result = Some(result.clone());
            Ok(())
        }

        async fn finish(
            &self,
            message_id: &str,
            job: &JobRef,
            state: JobState,
            _: Option<&str>,
        ) -> Result<bool, LedgerError> {
            self.seen.lock().expect("lock").push(message_id.to_owned());
            let mut jobs = self.jobs.lock().expect("lock");
            let record = jobs.entry(job.job_id.clone()).or_insert(JobRecord {
                state: JobState::Working,
                result: None,
                attempts: 0,
            });
            if !record.state.is_final() {
                record.state = state;
            }
            Ok(true)
        }
    }

    fn service(model: Arc<dyn LanguageModel>, reporter: Arc<Reporter>, ledger: Arc<Ledger>) -> JobService {
        let metrics = Arc::new(AiMetrics::default());
        let path = Arc::new(ModelPath::new(model, metrics.clone()));
        let cache = CacheAside::new(Arc::new(MemoryCache::new(100)));
        let ttl = Duration::from_secs(60);
        let trends = TrendService::new(path.clone(), ResultCache::new(cache.clone(), "trends", ttl), 512);
        let recommendations =
            RecommendationService::new(trends, path, ResultCache::new(cache, "recommendations", ttl), 2_048);
        let policy = JobPolicy { max_attempts: 3, min_retry_window: Duration::ZERO, ..JobPolicy::default() };
        JobService::new(recommendations, reporter, ledger, policy, metrics, Arc::new(SystemClock))
    }

    fn spec(delivery: u32) -> JobSpec {
        let brief = EventBrief::new(BriefInput {
            objective: Some(Objective::Awareness),
            category: Some(Category::Beauty),
            period_ms: Some((1_761_922_800_000, 1_761_922_800_000 + 86_400_000)),
            ..BriefInput::default()
        });
        JobSpec {
            message_id: "job:j".into(),
            job_id: "j".into(),
            event_id: "e".into(),
            owner_id: "o".into(),
            brief,
            deadline: Some(SystemTime::now() + Duration::from_secs(60)),
            delivery,
        }
    }

    fn calls(reporter: &Reporter) -> Vec<String> {
        reporter.calls.lock().expect("lock").clone()
    }

    #[tokio::test]
    async fn transient_failures_retry_until_the_last_attempt_then_fail() {
        let (reporter, ledger) = (Arc::new(Reporter::default()), Arc::new(Ledger::default()));
        let jobs = service(Arc::new(Down), reporter.clone(), ledger.clone());
        assert!(matches!(jobs.run(spec(1)).await, Disposition::Retry(reason) if reason.contains("529")));
        assert!(matches!(jobs.run(spec(2)).await, Disposition::Retry(_)));
        assert_eq!(ledger.get("j").await.expect("get").map(|r| r.attempts), Some(2));
        assert_eq!(jobs.run(spec(3)).await, Disposition::Complete);
        let reported = calls(&reporter);
        assert_eq!(reported.len(), 4, "{reported:?}");
        assert!(reported[3].starts_with("failed: claude is unavailable"), "{reported:?}");
        assert_eq!(ledger.get("j").await.expect("get").map(|r| r.state), Some(JobState::Failed));
        // A redelivery after the end changes nothing.
        assert_eq!(jobs.run(spec(4)).await, Disposition::Complete);
        assert_eq!(calls(&reporter).len(), 4);
    }

    #[tokio::test]
    async fn a_stored_result_is_reported_without_the_model_and_a_refused_report_is_dead_lettered() {
        let (reporter, ledger) =
            (Arc::new(Reporter { refuse: true, ..Reporter::default() }), Arc::new(Ledger::default()));
        let local = service(Arc::new(LocalModel), reporter.clone(), ledger.clone());
        assert!(
            matches!(local.run(spec(1)).await, Disposition::DeadLetter(reason) if reason.contains("three expected"))
        );
        let stored = ledger.get("j").await.expect("get").expect("record");
        assert_eq!(stored.state, JobState::Working, "not finished: the report did not land");
        assert!(stored.result.is_some(), "the generated result was stored before reporting");

        // The model is down now, but the stored result is all a redelivery needs.
        let reporter = Arc::new(Reporter::default());
        let down = service(Arc::new(Down), reporter.clone(), ledger.clone());
        assert_eq!(down.run(spec(2)).await, Disposition::Complete);
        assert_eq!(calls(&reporter), ["started", "succeeded"]);
        assert_eq!(ledger.get("j").await.expect("get").map(|r| r.state), Some(JobState::Succeeded));
    }
}
