//! The event service over the mesh (mTLS as the `content` workload; the contracts admit
//! `content` for both methods):
//!
//! - job reports, `kem.event.v1.EventService/ReportJobResult`: IDEMPOTENT, so the mesh client
//!   retries transient failures, and the first terminal report wins at the event service:
//!   repeating a report after a crash is harmless;
//! - publications, `GetEventForDistribution`: NO_SIDE_EFFECTS (retried by the mesh client too),
//!   read from the event database's primary, so whether an image is public is current the moment
//!   PublishEvent has answered. The answer is not cached here: the use case caches its decision.

use std::time::Duration;

use kem_kit::runtime::{PeerError, Peers};
use kem_proto::kem::event::v1 as event;
use kem_proto::kem::event::v1::event_service_client::EventServiceClient;
use tonic::Code;

use crate::api::convert;
use crate::app::ports::{EventError, ReportError};
use crate::domain::failure::Failure;
use crate::domain::outcome::JobOutcome;
use crate::domain::publication::Publication;
use crate::domain::values::Millis;

/// Longest wait for a publication: a reader of a public image is waiting on it.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The `event` peer, reached through the mesh.
#[derive(Clone)]
pub struct MeshEvents {
    peers: Peers,
    timeout: Duration,
}

impl std::fmt::Debug for MeshEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshEvents").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl MeshEvents {
    /// Calls through `peers`, each report bounded by `timeout`.
    pub fn new(peers: Peers, timeout: Duration) -> MeshEvents {
        MeshEvents { peers, timeout }
    }

    fn client(&self) -> Result<EventServiceClient<kem_mesh::client::BalancedChannel>, PeerError> {
        self.peers.channel("event").map(EventServiceClient::new)
    }

    async fn report(
        &self,
        job_id: &str,
        outcome: event::report_job_result_request::Outcome,
    ) -> Result<(), ReportError> {
        let mut client = self.client().map_err(|e| ReportError::Unavailable(Box::new(e)))?;
        let mut request =
            tonic::Request::new(event::ReportJobResultRequest { job_id: job_id.to_owned(), outcome: Some(outcome) });
        request.set_timeout(self.timeout);
        match tokio::time::timeout(self.timeout + Duration::from_millis(500), client.report_job_result(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(classify(status)),
            Err(elapsed) => Err(ReportError::Unavailable(Box::new(NoAnswer {
                call: "ReportJobResult",
                within: self.timeout,
                source: elapsed,
            }))),
        }
    }

    /// The publication of `event_id`, or `None` when the event service does not know the event
    /// (deleted).
    pub async fn publication(&self, event_id: &str) -> Result<Option<Publication>, EventError> {
        let mut client = self.client().map_err(|e| EventError::Unavailable(e.to_string()))?;
        let mut request = tonic::Request::new(event::GetEventForDistributionRequest { event_id: event_id.to_owned() });
        request.set_timeout(LOOKUP_TIMEOUT);
        match tokio::time::timeout(LOOKUP_TIMEOUT, client.get_event_for_distribution(request)).await {
            Ok(Ok(response)) => Ok(Some(convert::publication(&response.into_inner()))),
            Ok(Err(status)) if status.code() == Code::NotFound => Ok(None),
            Ok(Err(status)) => Err(classify_lookup(&status)),
            Err(_) => Err(EventError::Unavailable(format!(
                "GetEventForDistribution did not answer within {LOOKUP_TIMEOUT:?}"
            ))),
        }
    }
}

/// A mesh call that did not answer in time.
#[derive(Debug, thiserror::Error)]
#[error("{call} did not answer within {within:?}")]
struct NoAnswer {
    call: &'static str,
    within: Duration,
    #[source]
    source: tokio::time::error::Elapsed,
}

fn classify(status: tonic::Status) -> ReportError {
    let code = status.code();
    let cause = Box::new(status);
    match code {
        Code::NotFound => ReportError::JobGone(cause),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => ReportError::Rejected(cause),
        // Everything else (unavailable, deadline, denied by a policy being rolled out, internal)
        // may pass: the message is retried with backoff and dead-lettered after its deliveries.
        _ => ReportError::Unavailable(cause),
    }
}

/// A failed publication lookup: only real unavailability is worth a retry by the reader; a
/// refusal (the stored event id, a policy) or a failure at the event service is a defect.
fn classify_lookup(status: &tonic::Status) -> EventError {
    let text = format!("GetEventForDistribution: {:?}: {}", status.code(), status.message());
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted | Code::Cancelled => {
            EventError::Unavailable(text)
        }
        _ => EventError::Failed(text),
    }
}

impl MeshEvents {
    /// The worker started the job.
    pub async fn started(&self, job_id: &str, now: Millis) -> Result<(), ReportError> {
        let started = event::JobStarted { start_time: Some(convert::timestamp(now)) };
        self.report(job_id, event::report_job_result_request::Outcome::Started(started)).await
    }

    /// The job's outcome (images, or a failure).
    pub async fn finished(&self, job_id: &str, outcome: &JobOutcome) -> Result<(), ReportError> {
        self.report(job_id, convert::report_outcome(outcome)).await
    }

    /// The job failed before any image was attempted (an invalid request).
    pub async fn failed(&self, job_id: &str, failure: &Failure) -> Result<(), ReportError> {
        self.report(job_id, event::report_job_result_request::Outcome::Error(convert::failure_status(failure))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_statuses_keep_their_meaning() {
        for code in [Code::Unavailable, Code::DeadlineExceeded, Code::ResourceExhausted] {
            assert!(matches!(classify_lookup(&tonic::Status::new(code, "x")), EventError::Unavailable(_)), "{code:?}");
        }
        for code in [Code::InvalidArgument, Code::PermissionDenied, Code::Internal, Code::Unknown] {
            assert!(matches!(classify_lookup(&tonic::Status::new(code, "x")), EventError::Failed(_)), "{code:?}");
        }
    }

    #[test]
    fn statuses_decide_what_happens_to_the_work() {
        assert!(matches!(classify(tonic::Status::not_found("job")), ReportError::JobGone(_)));
        assert!(matches!(classify(tonic::Status::invalid_argument("kind")), ReportError::Rejected(_)));
        for code in [Code::Unavailable, Code::DeadlineExceeded, Code::PermissionDenied, Code::Internal] {
            assert!(matches!(classify(tonic::Status::new(code, "x")), ReportError::Unavailable(_)), "{code:?}");
        }
        let gone = classify(tonic::Status::not_found("no job j1"));
        let status = std::error::Error::source(&gone).and_then(|s| s.downcast_ref::<tonic::Status>());
        assert_eq!(status.map(tonic::Status::message), Some("no job j1"), "the status is the source");
    }
}
