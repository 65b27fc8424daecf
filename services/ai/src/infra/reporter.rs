//! Job outcomes reported to the event service over the mesh
//! (`kem.event.v1.EventService/ReportJobResult`, an IDEMPOTENT method: the first terminal report
//! wins, so a redelivered message reporting again is harmless).

use std::time::Duration;

use kem_kit::runtime::Peers;
use kem_proto::kem::event::v1::event_service_client::EventServiceClient;
use kem_proto::kem::event::v1::report_job_result_request::Outcome;
use kem_proto::kem::event::v1::{JobStarted, ReportJobResultRequest};

use crate::api::{convert, status};
use crate::app::error::AppError;
use crate::app::ports::{JobReporter, ReportError};
use crate::app::trends::now_millis;
use crate::domain::output::Generated;

/// The mesh peer the reports go to.
pub const EVENT_SERVICE: &str = "event";

/// Reports through the event service's mesh channel.
#[derive(Clone)]
pub struct MeshJobReporter {
    peers: Peers,
    timeout: Duration,
}

impl MeshJobReporter {
    /// Reports through `peers`' channel to the event service, each call given `timeout`.
    pub fn new(peers: Peers, timeout: Duration) -> MeshJobReporter {
        MeshJobReporter { peers, timeout }
    }

    async fn report(&self, job_id: &str, outcome: Outcome) -> Result<(), ReportError> {
        let channel = self.peers.channel(EVENT_SERVICE).map_err(|e| ReportError::Unavailable(Box::new(e)))?;
        let mut request =
            tonic::Request::new(ReportJobResultRequest { job_id: job_id.to_owned(), outcome: Some(outcome) });
        request.set_timeout(self.timeout);
        match EventServiceClient::new(channel).report_job_result(request).await {
            Ok(_) => Ok(()),
            Err(status) => Err(report_error(job_id, status)),
        }
    }
}

/// How a refused report is read. Only answers saying the report itself is wrong are final;
/// anything that may be a deployment in progress (an event service without the method yet, a
/// policy being rolled out) or an outage is retried.
fn report_error(job_id: &str, status: tonic::Status) -> ReportError {
    use tonic::Code;
    let code = status.code();
    let source = Box::new(status);
    match code {
        Code::NotFound => ReportError::JobGone { job_id: job_id.to_owned(), source },
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange | Code::AlreadyExists => {
            ReportError::Refused(source)
        }
        _ => ReportError::Unavailable(source),
    }
}

#[async_trait::async_trait]
impl JobReporter for MeshJobReporter {
    async fn started(&self, job_id: &str) -> Result<(), ReportError> {
        let started = JobStarted { start_time: Some(convert::timestamp(now_millis())) };
        self.report(job_id, Outcome::Started(started)).await
    }

    async fn succeeded(&self, job_id: &str, result: &Generated) -> Result<(), ReportError> {
        self.report(job_id, Outcome::Recommendations(convert::recommendations_result(result))).await
    }

    async fn failed(&self, job_id: &str, error: &AppError) -> Result<(), ReportError> {
        self.report(job_id, Outcome::Error(status::rpc_status(error))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_of_the_report_itself_are_final() {
        let read = |code| report_error("j", tonic::Status::new(code, "x"));
        let gone = read(tonic::Code::NotFound);
        assert!(matches!(gone, ReportError::JobGone { ref job_id, .. } if job_id == "j"), "{gone:?}");
        let status = std::error::Error::source(&gone).and_then(|s| s.downcast_ref::<tonic::Status>());
        assert_eq!(status.map(tonic::Status::code), Some(tonic::Code::NotFound), "the status is the source");
        assert!(matches!(read(tonic::Code::InvalidArgument), ReportError::Refused(_)));
        for code in
            [tonic::Code::Unavailable, tonic::Code::Unimplemented, tonic::Code::PermissionDenied, tonic::Code::Internal]
        {
            assert!(matches!(read(code), ReportError::Unavailable(_)), "{code:?}");
        }
    }
}
