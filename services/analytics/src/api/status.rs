//! [`AnalyticsError`] → `tonic::Status` with `google.rpc` details (domain `kem.analytics`).
//!
//! | error | code | details |
//! |---|---|---|
//! | invalid fields | INVALID_ARGUMENT | ErrorInfo `INVALID_ARGUMENT`, BadRequest (camelCase field paths) |
//! | unknown, deleted or another owner's event | NOT_FOUND | ErrorInfo `EVENT_NOT_FOUND` (metadata `eventId`) |
//! | database down | UNAVAILABLE | ErrorInfo `DATABASE_UNAVAILABLE`, RetryInfo |
//! | bug / corrupt data | INTERNAL | ErrorInfo `INTERNAL` (the cause is logged, never sent) |

use std::time::Duration;

use kem_kit::status::{bad_request, retry_info};
use kem_kit::validate::excerpt;
use kem_proto::status::{error_info, with_details};
use tonic::Code;

use crate::app::AnalyticsError;

/// `ErrorInfo.domain` of every analytics error.
pub const DOMAIN: &str = "kem.analytics";

fn info(reason: &str) -> prost_types::Any {
    kem_kit::status::error_info(DOMAIN, reason, &[])
}

/// The status of a use-case error.
pub fn to_status(error: AnalyticsError) -> tonic::Status {
    match error {
        AnalyticsError::Invalid(violations) => {
            let message = AnalyticsError::Invalid(violations.clone()).to_string();
            let request = bad_request(violations.into_iter().map(|v| (v.field, v.description)));
            with_details(Code::InvalidArgument, &message, vec![info("INVALID_ARGUMENT"), request])
        }
        AnalyticsError::EventNotFound { event_id } => {
            // Event ids are shape-checked first; quote an excerpt all the same, so no path can
            // put a caller's huge value into a message or a trailer.
            let event_id = excerpt(&event_id);
            error_info(
                Code::NotFound,
                &format!("event {event_id} not found"),
                DOMAIN,
                "EVENT_NOT_FOUND",
                &[("eventId", event_id.as_str())],
            )
        }
        AnalyticsError::Unavailable(cause) => {
            tracing::warn!(%cause, "analytics storage unavailable");
            with_details(
                Code::Unavailable,
                "analytics is temporarily unavailable; retry shortly",
                vec![info("DATABASE_UNAVAILABLE"), retry_info(Duration::from_secs(1))],
            )
        }
        AnalyticsError::Storage(cause) => {
            tracing::error!(%cause, "analytics internal error");
            error_info(Code::Internal, "internal error", DOMAIN, "INTERNAL", &[])
        }
        AnalyticsError::Internal(cause) => {
            tracing::error!(%cause, "analytics internal error");
            error_info(Code::Internal, "internal error", DOMAIN, "INTERNAL", &[])
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kem_kit::store::StoreError;
    use kem_proto::google::rpc::BadRequest;
    use prost::Message;

    use super::*;
    use crate::domain::FieldViolation;
    use crate::infra::repository::RepositoryError;

    #[test]
    fn each_error_has_its_code_and_reason() {
        let cases = [
            (
                AnalyticsError::Invalid(vec![FieldViolation::new("reportId", "required")]),
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
            ),
            (AnalyticsError::EventNotFound { event_id: "e".into() }, Code::NotFound, "EVENT_NOT_FOUND"),
            (
                AnalyticsError::Unavailable(Arc::new(RepositoryError::Store(StoreError::Database {
                    action: "acquire a connection",
                    source: sqlx::Error::PoolTimedOut,
                }))),
                Code::Unavailable,
                "DATABASE_UNAVAILABLE",
            ),
            (
                AnalyticsError::Storage(Arc::new(RepositoryError::Corrupt {
                    what: "event channels",
                    reason: "secret detail".into(),
                })),
                Code::Internal,
                "INTERNAL",
            ),
            (AnalyticsError::Internal("secret detail".into()), Code::Internal, "INTERNAL"),
        ];
        for (error, code, reason) in cases {
            let status = to_status(error);
            assert_eq!(status.code(), code);
            let info = kem_proto::status::error_info_of(&status).expect("ErrorInfo");
            assert_eq!((info.domain.as_str(), info.reason.as_str()), (DOMAIN, reason));
            assert!(!status.message().contains("secret detail") && !status.message().contains("pool"));
        }
    }

    #[test]
    fn invalid_fields_travel_as_bad_request() {
        let status = to_status(AnalyticsError::Invalid(vec![
            FieldViolation::new("reportId", "required"),
            FieldViolation::new("observeTime", "required"),
        ]));
        let details = kem_proto::status::details(&status).expect("details");
        let request = details
            .details
            .iter()
            .find(|d| d.type_url.ends_with("google.rpc.BadRequest"))
            .and_then(|d| BadRequest::decode(d.value.as_slice()).ok())
            .expect("BadRequest");
        let fields: Vec<&str> = request.field_violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["reportId", "observeTime"]);
    }
}
