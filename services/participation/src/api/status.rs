//! [`ParticipationError`] → `tonic::Status` with `google.rpc` details: `ErrorInfo` (domain
//! `kem.participation`, the reason the contract names), `BadRequest` field violations (camelCase
//! paths), `RetryInfo` where retrying helps. Infrastructure details are logged, never sent.

use std::time::Duration;

use kem_kit::status::{bad_request, error_info, retry_info};
use kem_proto::status::with_details;
use tonic::Code;

use crate::app::ParticipationError;
use crate::domain::event::{Closed, EventStatus};
use crate::domain::export::RevealRefusal;
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

/// An epoch-millisecond time as RFC 3339 UTC (ErrorInfo metadata).
fn rfc3339(ms: i64) -> String {
    crate::domain::notice::civil(ms, false)
        .map_or_else(String::new, |(y, mo, d, h, mi, s)| format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"))
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
        ParticipationError::WithdrawAfterDraw => status(
            Code::FailedPrecondition,
            "이미 추첨이 끝나 응모를 취소할 수 없습니다. Winners were drawn: the entry can no longer be withdrawn.",
            "ALREADY_DRAWN",
            &[],
        ),
        ParticipationError::ClaimNotFound => status(
            Code::NotFound,
            "당첨 정보를 찾을 수 없습니다. No winner of this event has this phone and claim code.",
            "CLAIM_NOT_FOUND",
            &[],
        ),
        ParticipationError::ClaimExpired { deadline_ms } => status(
            Code::FailedPrecondition,
            "수령 기한이 지났습니다. The claim deadline has passed.",
            "CLAIM_EXPIRED",
            &[("deadline", rfc3339(deadline_ms))],
        ),
        ParticipationError::PrizeRedrawn => status(
            Code::FailedPrecondition,
            "수령 기한이 지나 경품이 다른 참여자에게 돌아갔습니다. The prize went to another participant.",
            "PRIZE_REDRAWN",
            &[],
        ),
        ParticipationError::TooManyAttempts { retry_after } => with_details(
            Code::ResourceExhausted,
            "잘못된 코드를 너무 많이 입력했습니다. Too many wrong codes; try again later.",
            vec![info("TOO_MANY_ATTEMPTS", &[]), retry_info(retry_after)],
        ),
        ParticipationError::NotDrawn => {
            status(Code::FailedPrecondition, "아직 추첨하지 않았습니다. No winners were drawn yet.", "NOT_DRAWN", &[])
        }
        ParticipationError::ClaimPeriodOpen { deadline_ms } => status(
            Code::FailedPrecondition,
            "아직 수령 기한이 남은 당첨자가 있습니다. A winner's claim deadline has not passed yet.",
            "CLAIM_PERIOD_OPEN",
            &[("deadline", rfc3339(deadline_ms))],
        ),
        ParticipationError::NothingToRedraw => status(
            Code::FailedPrecondition,
            "모든 당첨자가 경품을 수령했습니다. Every prize was claimed: nothing to redraw.",
            "NOTHING_TO_REDRAW",
            &[],
        ),
        ParticipationError::VerificationNotRequired => status(
            Code::FailedPrecondition,
            "이 이벤트는 휴대전화 인증이 필요하지 않습니다. The event does not verify phones.",
            "VERIFICATION_NOT_REQUIRED",
            &[],
        ),
        ParticipationError::CodeRateLimited { retry_after } => with_details(
            Code::ResourceExhausted,
            "인증번호를 너무 자주 요청했습니다. Codes are sent at most once a minute and five times a day.",
            vec![info("CODE_RATE_LIMITED", &[]), retry_info(retry_after)],
        ),
        ParticipationError::VerificationRequired => with_details(
            Code::InvalidArgument,
            "휴대전화 인증번호가 필요합니다. The event verifies phones: send the one-time code.",
            vec![
                info("VERIFICATION_REQUIRED", &[]),
                bad_request([(
                    "verificationCode".to_owned(),
                    "the one-time code sent to the phone is required".to_owned(),
                )]),
            ],
        ),
        ParticipationError::VerificationFailed => with_details(
            Code::InvalidArgument,
            "인증번호가 맞지 않거나 만료되었습니다. The one-time code is wrong or expired.",
            vec![
                info("VERIFICATION_FAILED", &[]),
                bad_request([("verificationCode".to_owned(), "is wrong or expired".to_owned())]),
            ],
        ),
        ParticipationError::EntryNotFound => {
            status(Code::NotFound, "응모 내역을 찾을 수 없습니다. No entry matches.", "ENTRY_NOT_FOUND", &[])
        }
        ParticipationError::SmsUnavailable(cause) => {
            tracing::warn!(%cause, "SMS provider unavailable for a one-time code");
            retry_later("SMS_UNAVAILABLE", "The SMS provider cannot send now and no code was sent; retry shortly.")
        }
        ParticipationError::EventActive => status(
            Code::FailedPrecondition,
            "The event is still published; its entries can be anonymized once it has ended.",
            "EVENT_ACTIVE",
            &[],
        ),
        ParticipationError::PhoneBlocked => status(
            Code::FailedPrecondition,
            "응모할 수 없습니다. This phone number cannot enter the event.",
            "BLOCKED",
            &[],
        ),
        // No RetryInfo: the count only grows, so retrying never passes.
        ParticipationError::AddressLimit { max } => status(
            Code::ResourceExhausted,
            &format!(
                "이 네트워크에서 더 이상 응모할 수 없습니다. This network address already made the event's {max} entries."
            ),
            "ADDRESS_LIMIT",
            &[("max_entries_per_address", max.to_string())],
        ),
        ParticipationError::RevealNotAllowed(why) => status(
            Code::FailedPrecondition,
            match why {
                RevealRefusal::NotWinners => {
                    "Full names and phones can be exported for winners only (kind EXPORT_KIND_WINNERS)."
                }
                RevealRefusal::NotDrawn => "Nothing was drawn yet: there are no winners to reveal.",
                RevealRefusal::RetentionOver => {
                    "The retention period is over: winners' full names and phones can no longer be exported."
                }
            },
            "REVEAL_NOT_ALLOWED",
            &[("why", why.code().to_owned())],
        ),
        ParticipationError::DataErased => status(
            Code::FailedPrecondition,
            "개인정보가 파기되었습니다. The personal data was anonymized (retention period over).",
            "DATA_ERASED",
            &[],
        ),
        ParticipationError::BlockEntryNotFound => {
            status(Code::NotFound, "The event has no entry with this id.", "ENTRY_NOT_FOUND", &[])
        }
        ParticipationError::BlockNotFound => {
            status(Code::NotFound, "The event has no block with this id.", "BLOCK_NOT_FOUND", &[])
        }
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
            (ParticipationError::PhoneBlocked, Code::FailedPrecondition, "BLOCKED"),
            (ParticipationError::AddressLimit { max: 10 }, Code::ResourceExhausted, "ADDRESS_LIMIT"),
            (
                ParticipationError::RevealNotAllowed(RevealRefusal::NotWinners),
                Code::FailedPrecondition,
                "REVEAL_NOT_ALLOWED",
            ),
            (ParticipationError::DataErased, Code::FailedPrecondition, "DATA_ERASED"),
            (ParticipationError::BlockEntryNotFound, Code::NotFound, "ENTRY_NOT_FOUND"),
            (ParticipationError::BlockNotFound, Code::NotFound, "BLOCK_NOT_FOUND"),
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
