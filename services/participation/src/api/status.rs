//! [`ParticipationError`] → `tonic::Status` with `google.rpc` details: `ErrorInfo` (domain
//! `kem.participation`, the reason the contract names), `BadRequest` field violations (camelCase
//! paths), `RetryInfo` where retrying helps. Infrastructure details are logged, never sent.

use std::time::Duration;

use kem_kit::status::{bad_request, error_info, retry_info};
use kem_proto::status::with_details;
use tonic::Code;

use crate::app::ParticipationError;
use crate::domain::event::{Closed, EventStatus};
use crate::domain::violation::Concern;

/// `ErrorInfo.domain` of every participation error.
pub const DOMAIN: &str = "kem.participation";

fn info(reason: &str, metadata: &[(&str, String)]) -> prost_types::Any {
    error_info(DOMAIN, reason, metadata)
}

fn status(code: Code, message: &str, reason: &str, metadata: &[(&str, String)]) -> tonic::Status {
    with_details(code, message, vec![info(reason, metadata)])
}

fn retry_later(reason: &str, message: &str) -> tonic::Status {
    with_details(Code::Unavailable, message, vec![info(reason, &[]), retry_info(Duration::from_secs(1))])
}

fn not_open(closed: Closed) -> tonic::Status {
    let (message, status_name) = match closed {
        Closed::NotPublished(status) => (
            format!(
                "응모할 수 없는 이벤트입니다. The event is not accepting entries: it is {}, not published.",
                status.contract_name()
            ),
            status.contract_name(),
        ),
        Closed::NotStarted => (
            "아직 응모 기간이 아닙니다. The event has not started yet; entries open at the start of its period."
                .to_owned(),
            EventStatus::Published.contract_name(),
        ),
        Closed::PeriodOver => (
            "응모 기간이 끝났습니다. The event's entry period is over.".to_owned(),
            EventStatus::Published.contract_name(),
        ),
    };
    status(
        Code::FailedPrecondition,
        &message,
        "EVENT_NOT_OPEN",
        &[("why", closed.code().to_owned()), ("status", status_name.to_owned())],
    )
}

/// The status a use-case error becomes.
pub fn to_status(error: ParticipationError) -> tonic::Status {
    match error {
        ParticipationError::InvalidArgument(violations) => {
            let reason = match violations.concern() {
                Some(Concern::Consent) => "CONSENT_REQUIRED",
                Some(Concern::Age) => "AGE_CONFIRMATION_REQUIRED",
                Some(Concern::TermsOutdated) => "TERMS_OUTDATED",
                None => "INVALID_ARGUMENT",
            };
            let message = format!(
                "invalid request: {}",
                violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ")
            );
            let request = bad_request(violations.into_iter().map(|v| (v.field, v.description)));
            with_details(Code::InvalidArgument, &message, vec![info(reason, &[]), request])
        }
        ParticipationError::EventNotFound => {
            status(Code::NotFound, "이벤트를 찾을 수 없습니다. The event does not exist.", "EVENT_NOT_FOUND", &[])
        }
        ParticipationError::EventNotOpen(closed) => not_open(closed),
        ParticipationError::EntriesClosed => status(
            Code::FailedPrecondition,
            "응모가 마감되었습니다. Entries are closed: the winners have been drawn.",
            "EVENT_NOT_OPEN",
            &[("why", "drawn".to_owned())],
        ),
        ParticipationError::EventFull { capacity } => status(
            Code::FailedPrecondition,
            &format!("선착순 응모가 마감되었습니다. This first-come event already has its {capacity} entries."),
            "EVENT_FULL",
            &[("capacity", capacity.to_string())],
        ),
        ParticipationError::DuplicateEntry => status(
            Code::AlreadyExists,
            "이미 응모하셨습니다. This phone number has already entered the event.",
            "DUPLICATE_ENTRY",
            &[],
        ),
        ParticipationError::EventNotEnded(event_status) => status(
            Code::FailedPrecondition,
            &format!(
                "이벤트 종료 후 추첨할 수 있습니다. Winners can be drawn once the event has ended; it is {}.",
                event_status.contract_name()
            ),
            "EVENT_NOT_ENDED",
            &[("status", event_status.contract_name().to_owned())],
        ),
        ParticipationError::NoEntries => status(
            Code::FailedPrecondition,
            "추첨할 응모자가 없습니다. The event has no eligible entries to draw from.",
            "NO_ENTRIES",
            &[],
        ),
        ParticipationError::AlreadyDrawn { draw_id } => status(
            Code::AlreadyExists,
            "이미 당첨자를 추첨했습니다. Winners were already drawn; set redraw to replace them.",
            "ALREADY_DRAWN",
            &[("draw_id", draw_id)],
        ),
        ParticipationError::EventActive => status(
            Code::FailedPrecondition,
            "The event is still published; its entries can be anonymized once it has ended.",
            "EVENT_ACTIVE",
            &[],
        ),
        ParticipationError::EventServiceUnavailable(cause) => {
            tracing::warn!(cause = ?cause, "event service unavailable");
            retry_later(
                "EVENT_SERVICE_UNAVAILABLE",
                "The event service cannot be reached right now and nothing was recorded; retry shortly.",
            )
        }
        ParticipationError::EventLookupFailed(cause) => {
            tracing::error!(cause = ?cause, "event lookup failed");
            status(Code::Internal, "internal error", "INTERNAL", &[])
        }
        ParticipationError::Unavailable(cause) => {
            tracing::warn!(%cause, "participation storage unavailable");
            retry_later(
                "STORAGE_UNAVAILABLE",
                "The participation service is temporarily unavailable and nothing was recorded; retry shortly.",
            )
        }
        ParticipationError::Internal(cause) => {
            tracing::error!(%cause, "participation internal error");
            status(Code::Internal, "internal error", "INTERNAL", &[])
        }
    }
}

#[cfg(test)]
mod tests {
    use kem_proto::google::rpc::BadRequest;
    use prost::Message as _;

    use super::*;
    use crate::domain::violation::{FieldViolation, Violations};
    use crate::infra::events::{LookupError, PeerFailure};

    fn bad_request_of(status: &tonic::Status) -> Option<BadRequest> {
        kem_proto::status::details(status)?
            .details
            .iter()
            .find(|d| d.type_url.ends_with("google.rpc.BadRequest"))
            .and_then(|d| BadRequest::decode(d.value.as_slice()).ok())
    }

    #[test]
    fn consent_violations_carry_consent_required_and_field_paths() {
        let mut violations = Violations::default();
        violations.push(FieldViolation::consent("privacyConsent.granted", "must be granted"));
        violations.push(FieldViolation::new("phone", "bad"));
        let status = to_status(ParticipationError::InvalidArgument(violations));
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = kem_proto::status::error_info_of(&status).expect("ErrorInfo");
        assert_eq!((info.domain.as_str(), info.reason.as_str()), (DOMAIN, "CONSENT_REQUIRED"));
        let fields: Vec<String> =
            bad_request_of(&status).expect("BadRequest").field_violations.into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["privacyConsent.granted", "phone"]);
    }

    #[test]
    fn age_and_terms_violations_carry_their_reasons() {
        for (violation, reason) in [
            (FieldViolation::age("age14OrOlder", "must be true"), "AGE_CONFIRMATION_REQUIRED"),
            (
                FieldViolation::terms_outdated("privacyConsent.consentTextVersion", "not the event's terms"),
                "TERMS_OUTDATED",
            ),
        ] {
            let field = violation.field.clone();
            let status = to_status(ParticipationError::InvalidArgument(violation.into()));
            assert_eq!(status.code(), Code::InvalidArgument);
            let info = kem_proto::status::error_info_of(&status).expect("ErrorInfo");
            assert_eq!((info.domain.as_str(), info.reason.as_str()), (DOMAIN, reason));
            let fields: Vec<String> =
                bad_request_of(&status).expect("BadRequest").field_violations.into_iter().map(|v| v.field).collect();
            assert_eq!(fields, [field]);
        }
        // A missing consent names the status before a missing age confirmation.
        let mut both = Violations::default();
        both.push(FieldViolation::age("age14OrOlder", "must be true"));
        both.push(FieldViolation::consent("privacyConsent", "required"));
        let status = to_status(ParticipationError::InvalidArgument(both));
        assert_eq!(kem_proto::status::error_info_of(&status).map(|i| i.reason).as_deref(), Some("CONSENT_REQUIRED"));
    }

    #[test]
    fn contract_reasons() {
        for (error, code, reason) in [
            (ParticipationError::DuplicateEntry, Code::AlreadyExists, "DUPLICATE_ENTRY"),
            (ParticipationError::EventNotOpen(Closed::PeriodOver), Code::FailedPrecondition, "EVENT_NOT_OPEN"),
            (ParticipationError::EntriesClosed, Code::FailedPrecondition, "EVENT_NOT_OPEN"),
            (ParticipationError::EventFull { capacity: 3 }, Code::FailedPrecondition, "EVENT_FULL"),
            (ParticipationError::EventNotEnded(EventStatus::Published), Code::FailedPrecondition, "EVENT_NOT_ENDED"),
            (ParticipationError::NoEntries, Code::FailedPrecondition, "NO_ENTRIES"),
            (ParticipationError::AlreadyDrawn { draw_id: "d".into() }, Code::AlreadyExists, "ALREADY_DRAWN"),
            (ParticipationError::EventActive, Code::FailedPrecondition, "EVENT_ACTIVE"),
            (ParticipationError::EventNotFound, Code::NotFound, "EVENT_NOT_FOUND"),
            (
                ParticipationError::EventServiceUnavailable(LookupError::Unavailable(PeerFailure::Status(
                    tonic::Status::unavailable("x"),
                ))),
                Code::Unavailable,
                "EVENT_SERVICE_UNAVAILABLE",
            ),
            (
                ParticipationError::from(LookupError::Failed(PeerFailure::Status(tonic::Status::internal("x")))),
                Code::Internal,
                "INTERNAL",
            ),
            (
                ParticipationError::from(LookupError::InvalidId(PeerFailure::Status(tonic::Status::invalid_argument(
                    "x",
                )))),
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
            ),
        ] {
            let status = to_status(error);
            assert_eq!(status.code(), code);
            assert_eq!(kem_proto::status::error_info_of(&status).map(|i| i.reason).as_deref(), Some(reason));
        }
    }

    #[test]
    fn internal_causes_stay_in_the_logs() {
        let status = to_status(ParticipationError::internal("postgres://kem:hunter2@db"));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }
}
