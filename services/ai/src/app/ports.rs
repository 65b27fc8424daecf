//! The ports the use cases depend on, implemented in `infra`: the language model (Claude or the
//! local stand-in), the reporter of job outcomes (the event service over the mesh) and the job
//! ledger (the service's database).
//!
//! Each has two implementations really used: the model is Claude or the local stand-in `kem up`
//! runs without an API key; the reporter and the ledger have in-memory doubles the job use
//! case's tests ([`super::jobs`]) run on.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::store::StoreError;

use crate::domain::input::{EventBrief, TrendQuery};
use crate::domain::output::{Generated, ProviderStamp, TrendAnalysis};
use crate::domain::values::Day;

use super::error::AppError;

/// What the model is asked to do, in structured form. A real model reads the prompt; the local
/// stand-in reads this.
#[derive(Debug, Clone)]
pub enum Task {
    /// Trend analysis for a category and area, as of a day.
    Trends {
        /// The query.
        query: TrendQuery,
        /// Today in Korea time.
        today: Day,
    },
    /// Three recommendations for an event.
    Recommendations {
        /// The event's inputs.
        brief: Box<EventBrief>,
        /// The trend analysis they build on.
        trend: Box<TrendAnalysis>,
    },
}

impl Task {
    /// `trends` or `recommendations` (log field and metric label).
    pub fn name(&self) -> &'static str {
        match self {
            Task::Trends { .. } => "trends",
            Task::Recommendations { .. } => "recommendations",
        }
    }
}

/// Who speaks a turn of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// Our side.
    User,
    /// The model.
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// Who says it.
    pub speaker: Speaker,
    /// What is said.
    pub text: String,
}

/// One call to the model.
#[derive(Debug, Clone)]
pub struct ModelRequest {
    /// The task, structured.
    pub task: Task,
    /// System prompt.
    pub system: String,
    /// The conversation so far, starting and ending with a user turn.
    pub turns: Vec<Turn>,
    /// Output token cap.
    pub max_tokens: u32,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// It finished.
    EndTurn,
    /// It hit `max_tokens` (the answer is cut off).
    MaxTokens,
    /// A stop sequence.
    StopSequence,
    /// It refused for policy reasons.
    Refusal,
    /// Another reason (tool use, newer values).
    Other(String),
}

/// Tokens one call consumed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Input tokens billed.
    pub input: u64,
    /// Output tokens billed.
    pub output: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write: u64,
}

/// The model's answer.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The text of the answer.
    pub text: String,
    /// Why it stopped.
    pub stop_reason: StopReason,
    /// Tokens consumed.
    pub usage: TokenUsage,
    /// The provider's request id (empty for the local stand-in).
    pub request_id: String,
    /// The model that answered.
    pub model: String,
}

/// Why the model gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Down, overloaded (529), failing (5xx), unreachable, or its circuit breaker is open.
    #[error("{provider} is unavailable: {detail}")]
    Unavailable {
        /// The provider.
        provider: String,
        /// What happened.
        detail: String,
        /// When to try again, if known.
        retry_after: Option<Duration>,
        /// The breaker is open: the call was not made.
        circuit_open: bool,
    },
    /// Rate limited (429) beyond what the retries could wait out.
    #[error("{provider} is rate limiting us: {detail}")]
    RateLimited {
        /// The provider.
        provider: String,
        /// What it said.
        detail: String,
        /// When to try again, if known.
        retry_after: Option<Duration>,
    },
    /// Spend limit or billing problem: no retry helps until someone acts.
    #[error("{provider} quota is exhausted: {detail}")]
    QuotaExhausted {
        /// The provider.
        provider: String,
        /// What it said.
        detail: String,
    },
    /// No answer in time.
    #[error("{provider} did not answer within {after:?}")]
    Timeout {
        /// The provider.
        provider: String,
        /// How long it was given.
        after: Duration,
    },
    /// The provider refused the content under its policy.
    #[error("{provider} refused the content: {detail}")]
    Refused {
        /// The provider.
        provider: String,
        /// What it said.
        detail: String,
    },
    /// Our integration is wrong: credentials refused, request refused as invalid, an answer
    /// outside the wire contract.
    #[error("the {provider} integration failed: {detail}")]
    Misconfigured {
        /// The provider.
        provider: String,
        /// What happened (may quote the provider; never credentials).
        detail: String,
    },
}

impl ModelError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ModelError::Unavailable { .. } | ModelError::RateLimited { .. } | ModelError::Timeout { .. })
    }

    /// The provider that failed.
    pub fn provider(&self) -> &str {
        match self {
            ModelError::Unavailable { provider, .. }
            | ModelError::RateLimited { provider, .. }
            | ModelError::QuotaExhausted { provider, .. }
            | ModelError::Timeout { provider, .. }
            | ModelError::Refused { provider, .. }
            | ModelError::Misconfigured { provider, .. } => provider,
        }
    }
}

/// A language model: Claude over HTTP, or the built-in local stand-in.
#[async_trait::async_trait]
pub trait LanguageModel: Send + Sync + 'static {
    /// Who answers (name, model, local or not).
    fn source(&self) -> ProviderStamp;

    /// One call, within `budget` (all retries included).
    async fn complete(&self, request: &ModelRequest, budget: Duration) -> Result<Completion, ModelError>;
}

/// The mesh's or the transport's error under a [`ReportError`] (a gRPC status, a missing peer),
/// kept whole as its source so the cause chain reaches the logs.
pub type ReportCause = Box<dyn std::error::Error + Send + Sync>;

/// Why a job report did not land.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The job does not exist (its event was deleted meanwhile): drop the work.
    #[error("job {job_id} no longer exists at the event service (its event was deleted?): {source}")]
    JobGone {
        /// The job.
        job_id: String,
        /// The event service's answer.
        #[source]
        source: ReportCause,
    },
    /// The event service cannot be reached or failed: try again later.
    #[error("the event service is unavailable (the report is retried): {0}")]
    Unavailable(#[source] ReportCause),
    /// The event service refused the report as invalid: retrying the same report cannot help.
    #[error("the event service refused the report (retrying it cannot help; compare the ai and event contracts): {0}")]
    Refused(#[source] ReportCause),
}

/// Where job progress and outcomes go (the event service's ReportJobResult).
#[async_trait::async_trait]
pub trait JobReporter: Send + Sync + 'static {
    /// The job is being worked on (PENDING → RUNNING).
    async fn started(&self, job_id: &str) -> Result<(), ReportError>;
    /// The job succeeded with `result`.
    async fn succeeded(&self, job_id: &str, result: &Generated) -> Result<(), ReportError>;
    /// The job failed with `error`.
    async fn failed(&self, job_id: &str, error: &AppError) -> Result<(), ReportError>;
}

/// Where a job stands in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Being worked on; a result may be stored.
    Working,
    /// Reported SUCCEEDED.
    Succeeded,
    /// Reported FAILED.
    Failed,
    /// Dropped: its event was deleted.
    Dropped,
    /// Its deadline passed before it could be reported (the event service fails it).
    Expired,
}

impl JobState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Working => "WORKING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::Dropped => "DROPPED",
            JobState::Expired => "EXPIRED",
        }
    }

    /// The state stored as `text`.
    pub fn parse(text: &str) -> Option<JobState> {
        [JobState::Working, JobState::Succeeded, JobState::Failed, JobState::Dropped, JobState::Expired]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Whether the job is done with (nothing more will be reported).
    pub fn is_final(self) -> bool {
        self != JobState::Working
    }
}

/// A job as the ledger knows it.
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// Where it stands.
    pub state: JobState,
    /// The generated result, once there is one (reused by redeliveries).
    pub result: Option<Generated>,
    /// Deliveries that failed transiently so far.
    pub attempts: u32,
}

/// The identity of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    /// The event service's job id.
    pub job_id: String,
    /// The event.
    pub event_id: String,
    /// Hex SHA-256 of the brief (empty when the brief is invalid).
    pub input_hash: String,
}

/// Why the ledger could not be read or written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    /// The database failed (shared, so the error stays `Clone`).
    #[error("job ledger: {0}")]
    Store(#[source] Arc<StoreError>),
    /// A stored value this version cannot read, or a value it cannot store.
    #[error("job ledger: {0}")]
    Corrupt(String),
}

/// What the service remembers about the jobs it worked, so that at-least-once delivery has
/// exactly-once effects: the idempotent inbox of queue messages, each job's final state and its
/// generated result.
#[async_trait::async_trait]
pub trait JobLedger: Send + Sync + 'static {
    /// Whether `message_id` was already processed to the end.
    async fn seen(&self, message_id: &str) -> Result<bool, LedgerError>;
    /// The job's record, if any.
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, LedgerError>;
    /// Counts a transiently failed delivery.
    async fn record_attempt(&self, job: &JobRef, error: &str) -> Result<(), LedgerError>;
    /// Stores the generated result before it is reported.
    async fn save_result(&self, job: &JobRef, result: &Generated) -> Result<(), LedgerError>;
    /// Records the final state together with the message in the inbox (one transaction);
    /// `false` when the message was already recorded.
    async fn finish(
        &self,
        message_id: &str,
        job: &JobRef,
        state: JobState,
        error: Option<&str>,
    ) -> Result<bool, LedgerError>;
}
