//! Job reports to the event service: `kem.event.v1.EventService/ReportJobResult` over the mesh
//! (mTLS as the `content` workload; the event service's policy admits `content` for it). The
//! method is IDEMPOTENT, so the mesh client retries transient failures, and the first terminal
//! report wins at the event service: repeating a report after a crash is harmless.

use std::time::Duration;

use kem_kit::runtime::Peers;
use kem_proto::kem::event::v1 as event;
use kem_proto::kem::event::v1::event_service_client::EventServiceClient;
use tonic::Code;

use crate::api::convert;
use crate::app::ports::ReportError;
use crate::domain::failure::Failure;
use crate::domain::outcome::JobOutcome;
use crate::domain::values::Millis;

/// Reports over the mesh to the `event` peer.
#[derive(Clone)]
pub struct MeshJobReporter {
    peers: Peers,
    timeout: Duration,
}

impl std::fmt::Debug for MeshJobReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshJobReporter").field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

impl MeshJobReporter {
    /// Reports through `peers`, each call bounded by `timeout`.
    pub fn new(peers: Peers, timeout: Duration) -> MeshJobReporter {
        MeshJobReporter { peers, timeout }
    }

    async fn report(
        &self,
        job_id: &str,
        outcome: event::report_job_result_request::Outcome,
    ) -> Result<(), ReportError> {
        let channel = self.peers.channel("event").map_err(|e| ReportError::Unavailable(e.to_string()))?;
        let mut client = EventServiceClient::new(channel);
        let mut request =
            tonic::Request::new(event::ReportJobResultRequest { job_id: job_id.to_owned(), outcome: Some(outcome) });
        request.set_timeout(self.timeout);
        match tokio::time::timeout(self.timeout + Duration::from_millis(500), client.report_job_result(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(classify(&status)),
            Err(_) => {
                Err(ReportError::Unavailable(format!("ReportJobResult did not answer within {:?}", self.timeout)))
            }
        }
    }
}

fn classify(status: &tonic::Status) -> ReportError {
    let text = format!("ReportJobResult: {:?}: {}", status.code(), status.message());
    match status.code() {
        Code::NotFound => ReportError::JobGone(text),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => ReportError::Rejected(text),
        // Everything else (unavailable, deadline, denied by a policy being rolled out, internal)
        // may pass: the message is retried with backoff and dead-lettered after its deliveries.
        _ => ReportError::Unavailable(text),
    }
}

impl MeshJobReporter {
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
    fn statuses_decide_what_happens_to_the_work() {
        assert!(matches!(classify(&tonic::Status::not_found("job")), ReportError::JobGone(_)));
        assert!(matches!(classify(&tonic::Status::invalid_argument("kind")), ReportError::Rejected(_)));
        for code in [Code::Unavailable, Code::DeadlineExceeded, Code::PermissionDenied, Code::Internal] {
            assert!(matches!(classify(&tonic::Status::new(code, "x")), ReportError::Unavailable(_)), "{code:?}");
        }
    }
}
