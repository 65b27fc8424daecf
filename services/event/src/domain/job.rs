//! Asynchronous jobs (async request-reply): PENDING → RUNNING → SUCCEEDED / FAILED.
//!
//! A job is created with the queue message that asks a worker (ai, content) for the work, and the
//! worker reports back with ReportJobResult. Reports are idempotent: once a job is terminal the
//! first terminal report has won and later ones leave it unchanged ([`JobChange::Unchanged`]).

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::validation::{PrizeInput, ValidationError, validate_prize};
use super::values::{Channel, ImageStyle, Millis, ProviderInfo, Recommendation, char_len};

/// How many recommendations a succeeded recommendations job holds.
pub const RECOMMENDATIONS_PER_JOB: usize = 3;
/// Longest extra instructions for the AI, in characters.
pub const INSTRUCTIONS_MAX: usize = 500;
/// Longest recommendation concept, in characters (it becomes the event description).
const CONCEPT_MAX: usize = super::validation::DESCRIPTION_MAX;

/// What a job produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobKind {
    /// Trend analysis and three recommendations (ai).
    #[serde(rename = "RECOMMENDATIONS")]
    Recommendations,
    /// Images (content).
    #[serde(rename = "IMAGES")]
    Images,
}

impl JobKind {
    /// Stable storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Recommendations => "RECOMMENDATIONS",
            JobKind::Images => "IMAGES",
        }
    }

    /// The kind stored as `text`.
    pub fn parse(text: &str) -> Option<JobKind> {
        [JobKind::Recommendations, JobKind::Images].into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobState {
    /// Queued; no worker started it.
    #[serde(rename = "PENDING")]
    Pending,
    /// A worker is on it.
    #[serde(rename = "RUNNING")]
    Running,
    /// Finished with a result. Terminal.
    #[serde(rename = "SUCCEEDED")]
    Succeeded,
    /// Finished with an error. Terminal.
    #[serde(rename = "FAILED")]
    Failed,
}

impl JobState {
    /// Every state.
    pub const ALL: [JobState; 4] = [JobState::Pending, JobState::Running, JobState::Succeeded, JobState::Failed];

    /// Stable storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
        }
    }

    /// The state stored as `text`.
    pub fn parse(text: &str) -> Option<JobState> {
        JobState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// SUCCEEDED or FAILED.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the owner asked for, kept with the job (and sent to the worker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobRequest {
    /// RequestRecommendations.
    Recommendations {
        /// Extra instructions for the AI.
        additional_instructions: String,
    },
    /// RequestImages.
    Images {
        /// Channels to size images for.
        channels: Vec<Channel>,
        /// Styles to generate.
        styles: Vec<ImageStyle>,
    },
}

impl JobRequest {
    /// The kind of job this request starts.
    pub fn kind(&self) -> JobKind {
        match self {
            JobRequest::Recommendations { .. } => JobKind::Recommendations,
            JobRequest::Images { .. } => JobKind::Images,
        }
    }
}

/// Result of a recommendations job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecommendationsResult {
    /// Exactly three.
    pub recommendations: Vec<Recommendation>,
    /// The trend summary they are based on.
    pub trend_summary: String,
    /// Who produced them.
    pub provider: Option<ProviderInfo>,
}

/// Result of an images job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImagesResult {
    /// Content image ids, at least one.
    pub image_ids: Vec<String>,
    /// Who produced them.
    pub provider: Option<ProviderInfo>,
    /// Outcome per requested style (partial results name the styles that failed).
    #[serde(default)]
    pub style_results: Vec<StyleResult>,
    /// The requested styles (wire enum values) that failed, in request order.
    #[serde(default)]
    pub failed_styles: Vec<i32>,
}

/// Outcome of one style of an images job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StyleResult {
    /// The style (wire enum value).
    pub style: i32,
    /// Its images (a subset of the job's image ids).
    pub image_ids: Vec<String>,
    /// Why (part of) it failed.
    pub error: Option<JobFailure>,
}

/// A job's result; the variant matches the job's kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobResult {
    /// Of a RECOMMENDATIONS job.
    Recommendations(RecommendationsResult),
    /// Of an IMAGES job.
    Images(ImagesResult),
}

/// One `google.protobuf.Any` detail of a failure, kept as it came.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureDetail {
    /// Type URL.
    pub type_url: String,
    /// Encoded message.
    pub value: Vec<u8>,
}

/// Why a job failed: a `google.rpc.Status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    /// gRPC code (never OK).
    pub code: i32,
    /// Message for the owner.
    pub message: String,
    /// Details (ErrorInfo, RetryInfo, …).
    pub details: Vec<FailureDetail>,
}

/// `google.rpc.Code.DEADLINE_EXCEEDED`.
pub const CODE_DEADLINE_EXCEEDED: i32 = 4;
/// Largest `google.rpc.Code`.
const CODE_MAX: i32 = 16;

impl JobFailure {
    /// The failure the job-timeout sweeper records.
    pub fn deadline_exceeded(kind: JobKind) -> JobFailure {
        let worker = match kind {
            JobKind::Recommendations => "the AI service",
            JobKind::Images => "the content service",
        };
        JobFailure {
            code: CODE_DEADLINE_EXCEEDED,
            message: format!("{worker} did not finish the job before its deadline; request a new one to try again"),
            details: Vec::new(),
        }
    }
}

/// A worker's report (ReportJobResult).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// The worker started.
    Started,
    /// Recommendations succeeded.
    Recommendations(RecommendationsResult),
    /// Images succeeded.
    Images(ImagesResult),
    /// The job failed.
    Failed(JobFailure),
}

impl Report {
    fn name(&self) -> &'static str {
        match self {
            Report::Started => "started",
            Report::Recommendations(_) => "recommendations",
            Report::Images(_) => "images",
            Report::Failed(_) => "error",
        }
    }
}

/// An asynchronous job of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Job id (UUID).
    pub id: String,
    /// The event.
    pub event_id: String,
    /// The event's owner (GetJob is owner-scoped).
    pub owner_id: String,
    /// What was asked for (implies the kind).
    pub request: JobRequest,
    /// Where it is.
    pub state: JobState,
    /// Set when SUCCEEDED.
    pub result: Option<JobResult>,
    /// Set when FAILED.
    pub failure: Option<JobFailure>,
    /// Created.
    pub created_at: Millis,
    /// Last state change.
    pub updated_at: Millis,
    /// After this the sweeper fails it with DEADLINE_EXCEEDED.
    pub deadline_at: Millis,
}

/// What a report does to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobChange {
    /// Nothing (already running, or already terminal: the first terminal report won).
    Unchanged,
    /// The job moves from `from` to the returned job's state.
    Updated {
        /// State the store must still find (guarded update).
        from: JobState,
        /// The job after the report.
        job: Box<Job>,
    },
}

/// A report the job cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The outcome does not match the job's kind (INVALID_ARGUMENT).
    #[error("job {job_id} is a {kind} job; a report of {reported} does not apply to it")]
    WrongKind {
        /// The job.
        job_id: String,
        /// Its kind.
        kind: JobKind,
        /// What was reported.
        reported: &'static str,
    },
    /// The outcome is malformed (INVALID_ARGUMENT with field violations).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl Job {
    /// A new PENDING job.
    pub fn new(
        id: String,
        event_id: String,
        owner_id: String,
        request: JobRequest,
        now: Millis,
        timeout_ms: i64,
    ) -> Job {
        Job {
            id,
            event_id,
            owner_id,
            request,
            state: JobState::Pending,
            result: None,
            failure: None,
            created_at: now,
            updated_at: now,
            deadline_at: now.saturating_add(timeout_ms),
        }
    }

    /// The job's kind.
    pub fn kind(&self) -> JobKind {
        self.request.kind()
    }

    /// The recommendations of a succeeded recommendations job.
    pub fn recommendations(&self) -> Option<&RecommendationsResult> {
        match &self.result {
            Some(JobResult::Recommendations(r)) if self.state == JobState::Succeeded => Some(r),
            _ => None,
        }
    }

    /// The image ids of a succeeded images job.
    pub fn image_ids(&self) -> &[String] {
        match &self.result {
            Some(JobResult::Images(r)) if self.state == JobState::Succeeded => &r.image_ids,
            _ => &[],
        }
    }

    /// Applies a worker's report (validated first: a malformed or wrong-kind report is an error
    /// even when the job is already terminal, since it shows a worker bug).
    pub fn apply(&self, report: Report, now: Millis) -> Result<JobChange, ReportError> {
        let wrong_kind =
            || ReportError::WrongKind { job_id: self.id.clone(), kind: self.kind(), reported: report.name() };
        match (&report, self.kind()) {
            (Report::Recommendations(r), JobKind::Recommendations) => validate_recommendations(r)?,
            (Report::Images(r), JobKind::Images) => validate_images(r)?,
            (Report::Recommendations(_) | Report::Images(_), _) => return Err(wrong_kind()),
            (Report::Failed(f), _) => validate_failure(f)?,
            (Report::Started, _) => {}
        }
        let mut job = self.clone();
        match (self.state, report) {
            (JobState::Succeeded | JobState::Failed, _) => return Ok(JobChange::Unchanged),
            (JobState::Running, Report::Started) => return Ok(JobChange::Unchanged),
            (JobState::Pending, Report::Started) => job.state = JobState::Running,
            (_, Report::Recommendations(r)) => {
                job.state = JobState::Succeeded;
                job.result = Some(JobResult::Recommendations(r));
            }
            (_, Report::Images(r)) => {
                job.state = JobState::Succeeded;
                job.result = Some(JobResult::Images(r));
            }
            (_, Report::Failed(f)) => {
                job.state = JobState::Failed;
                job.failure = Some(f);
            }
        }
        job.updated_at = now;
        Ok(JobChange::Updated { from: self.state, job: Box::new(job) })
    }
}

fn validate_recommendations(result: &RecommendationsResult) -> Result<(), ValidationError> {
    let mut errors = ValidationError::default();
    let field = "recommendations.recommendations";
    if result.recommendations.len() != RECOMMENDATIONS_PER_JOB {
        errors.push(
            field,
            format!(
                "exactly {RECOMMENDATIONS_PER_JOB} recommendations are required, got {}",
                result.recommendations.len()
            ),
        );
    }
    let mut ids = HashSet::new();
    for (i, rec) in result.recommendations.iter().enumerate() {
        let at = |name: &str| format!("{field}[{i}].{name}");
        if rec.id.trim().is_empty() {
            errors.push(at("recommendationId"), "is required");
        } else if !ids.insert(rec.id.as_str()) {
            errors.push(at("recommendationId"), format!("{:?} is used by two recommendations", rec.id));
        }
        let title_len = char_len(rec.title.trim());
        if title_len == 0 || title_len > super::validation::TITLE_MAX {
            errors.push(at("title"), format!("must be 1 to {} characters", super::validation::TITLE_MAX));
        }
        if char_len(&rec.concept) > CONCEPT_MAX {
            errors.push(at("concept"), format!("must be at most {CONCEPT_MAX} characters"));
        }
        if let Some(prize) = &rec.prize_suggestion {
            let input = PrizeInput {
                name: prize.name.clone(),
                description: prize.description.clone(),
                winner_count: prize.winner_count,
                unit_value: prize.unit_value.map(|m| m.amount_krw),
            };
            validate_prize(&input, &at("prizeSuggestion"), &mut errors);
        }
    }
    errors.into_result(())
}

fn validate_images(result: &ImagesResult) -> Result<(), ValidationError> {
    let mut errors = ValidationError::default();
    if result.image_ids.is_empty() {
        errors
            .push("images.imageIds", "at least one image id is required; report an error when no image could be made");
    }
    let mut seen = HashSet::new();
    for (i, id) in result.image_ids.iter().enumerate() {
        if id.trim().is_empty() {
            errors.push(format!("images.imageIds[{i}]"), "must not be empty");
        } else if !seen.insert(id.as_str()) {
            errors.push(format!("images.imageIds[{i}]"), format!("{id:?} is listed twice"));
        }
    }
    errors.into_result(())
}

fn validate_failure(failure: &JobFailure) -> Result<(), ValidationError> {
    if (1..=CODE_MAX).contains(&failure.code) {
        Ok(())
    } else {
        Err(ValidationError::one(
            "error.code",
            format!("must be a google.rpc.Code other than OK, got {}", failure.code),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str) -> Recommendation {
        Recommendation {
            id: id.into(),
            title: format!("추천 {id}"),
            concept: "점심 스탬프".into(),
            participation_method: None,
            participation_mechanic: String::new(),
            prize_suggestion: None,
            expected_participants: 100,
            expected_cost_per_entry: None,
            recommended_channels: vec![Channel::Instagram],
            channel_copies: Vec::new(),
        }
    }

    fn recs(n: usize) -> RecommendationsResult {
        RecommendationsResult {
            recommendations: (1..=n).map(|i| rec(&i.to_string())).collect(),
            trend_summary: "따뜻한 음료 수요 증가".into(),
            provider: None,
        }
    }

    fn images() -> ImagesResult {
        ImagesResult {
            image_ids: vec!["img-1".into(), "img-2".into()],
            provider: None,
            style_results: Vec::new(),
            failed_styles: Vec::new(),
        }
    }

    fn failure() -> JobFailure {
        JobFailure { code: 14, message: "provider down".into(), details: Vec::new() }
    }

    fn job(kind: JobKind, state: JobState) -> Job {
        let request = match kind {
            JobKind::Recommendations => JobRequest::Recommendations { additional_instructions: String::new() },
            JobKind::Images => {
                JobRequest::Images { channels: vec![Channel::Instagram], styles: vec![ImageStyle::Simple] }
            }
        };
        let mut job = Job::new("j".into(), "e".into(), "o".into(), request, 100, 1_000);
        job.state = state;
        job
    }

    fn success(kind: JobKind) -> Report {
        match kind {
            JobKind::Recommendations => Report::Recommendations(recs(3)),
            JobKind::Images => Report::Images(images()),
        }
    }

    /// Every (state, report) pair of both kinds.
    #[test]
    fn every_report_in_every_state() {
        for kind in [JobKind::Recommendations, JobKind::Images] {
            for state in JobState::ALL {
                let reports =
                    [("started", Report::Started), ("success", success(kind)), ("error", Report::Failed(failure()))];
                for (name, report) in reports {
                    let change = job(kind, state).apply(report, 500).expect("valid report");
                    let want = match (state, name) {
                        (JobState::Pending, "started") => Some(JobState::Running),
                        (JobState::Pending | JobState::Running, "success") => Some(JobState::Succeeded),
                        (JobState::Pending | JobState::Running, "error") => Some(JobState::Failed),
                        _ => None,
                    };
                    match (want, change) {
                        (None, JobChange::Unchanged) => {}
                        (Some(to), JobChange::Updated { from, job }) => {
                            assert_eq!((from, job.state, job.updated_at), (state, to, 500), "{kind} {state} {name}");
                            assert_eq!(job.result.is_some(), to == JobState::Succeeded);
                            assert_eq!(job.failure.is_some(), to == JobState::Failed);
                        }
                        (want, got) => panic!("{kind} {state} {name}: want {want:?}, got {got:?}"),
                    }
                }
            }
        }
    }

    #[test]
    fn the_wrong_kind_is_rejected_in_every_state() {
        for state in JobState::ALL {
            let error =
                job(JobKind::Recommendations, state).apply(Report::Images(images()), 1).expect_err("wrong kind");
            assert!(matches!(error, ReportError::WrongKind { reported: "images", .. }), "{error:?}");
            let error = job(JobKind::Images, state).apply(Report::Recommendations(recs(3)), 1).expect_err("wrong kind");
            assert!(matches!(error, ReportError::WrongKind { reported: "recommendations", .. }), "{error:?}");
        }
    }

    #[test]
    fn recommendations_must_be_exactly_three_with_unique_ids() {
        for n in [0, 2, 4] {
            let error = job(JobKind::Recommendations, JobState::Running)
                .apply(Report::Recommendations(recs(n)), 1)
                .expect_err("count");
            assert!(
                matches!(&error, ReportError::Invalid(v) if v.violations[0].field == "recommendations.recommendations")
            );
        }
        let mut result = recs(3);
        result.recommendations[2].id = "1".into();
        result.recommendations[1].title = String::new();
        let Err(ReportError::Invalid(v)) =
            job(JobKind::Recommendations, JobState::Pending).apply(Report::Recommendations(result), 1)
        else {
            panic!("duplicate ids accepted")
        };
        let fields: Vec<&str> = v.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["recommendations.recommendations[1].title", "recommendations.recommendations[2].recommendationId"]
        );
    }

    #[test]
    fn images_need_ids_and_errors_need_a_code() {
        let empty = ImagesResult {
            image_ids: Vec::new(),
            provider: None,
            style_results: Vec::new(),
            failed_styles: Vec::new(),
        };
        assert!(job(JobKind::Images, JobState::Running).apply(Report::Images(empty), 1).is_err());
        let ok = JobFailure { code: 0, ..failure() };
        assert!(job(JobKind::Images, JobState::Running).apply(Report::Failed(ok), 1).is_err());
    }

    #[test]
    fn deadlines_and_results_are_exposed() {
        let job = job(JobKind::Images, JobState::Pending);
        assert_eq!(job.deadline_at, 1_100);
        assert!(job.image_ids().is_empty(), "no images before success");
        let JobChange::Updated { job, .. } = job.apply(Report::Images(images()), 2).expect("apply") else {
            panic!("not updated")
        };
        assert_eq!(job.image_ids(), ["img-1".to_owned(), "img-2".to_owned()]);
        assert_eq!(JobFailure::deadline_exceeded(JobKind::Images).code, CODE_DEADLINE_EXCEEDED);
    }

    #[test]
    fn names_round_trip() {
        for state in JobState::ALL {
            assert_eq!(JobState::parse(state.as_str()), Some(state));
        }
        for kind in [JobKind::Recommendations, JobKind::Images] {
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
    }
}
