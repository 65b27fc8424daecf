//! [`UserError`] → `tonic::Status` with `google.rpc` details: `ErrorInfo` (domain `kem.user`,
//! the reason the contract names), `BadRequest` field violations, `RetryInfo` where waiting helps.

use std::time::Duration;

use kem_kit::status::{bad_request, error_info, retry_info};
use kem_proto::status::with_details;
use tonic::Code;

use crate::app::UserError;
use crate::domain::{BusinessStatus, Verification};

/// `ErrorInfo.domain` of every user-service error.
pub const DOMAIN: &str = "kem.user";

/// A status with `ErrorInfo` and any further details.
fn status(
    code: Code,
    message: String,
    reason: &str,
    metadata: &[(&str, String)],
    more: Vec<prost_types::Any>,
) -> tonic::Status {
    let mut details = vec![error_info(DOMAIN, reason, metadata)];
    details.extend(more);
    with_details(code, &message, details)
}

/// Whole seconds, rounded up, at least 1.
fn seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// The reason and the bilingual explanation of an inactive business.
fn inactive(v: &Verification) -> (&'static str, String) {
    let number = &v.business_number;
    match v.status {
        BusinessStatus::Suspended => (
            "BUSINESS_SUSPENDED",
            format!(
                "휴업 중인 사업자는 가입할 수 없습니다. The National Tax Service reports business number {number} as \
                 temporarily suspended (휴업자); only active businesses (계속사업자) can register."
            ),
        ),
        BusinessStatus::Closed => {
            let date = v.closed_date();
            let on = if date.is_empty() { String::new() } else { format!(" on {date}") };
            (
                "BUSINESS_CLOSED",
                format!(
                    "폐업한 사업자는 가입할 수 없습니다. The National Tax Service reports business number {number} as \
                     closed (폐업자){on}; only active businesses (계속사업자) can register."
                ),
            )
        }
        BusinessStatus::Unregistered | BusinessStatus::Active => (
            "BUSINESS_NOT_REGISTERED",
            format!(
                "국세청에 등록되지 않은 사업자등록번호입니다. The National Tax Service does not know business number \
                 {number}; check the number on your business registration certificate."
            ),
        ),
    }
}

/// The status a use-case error becomes. Infrastructure details are logged, never sent.
pub fn to_status(error: UserError) -> tonic::Status {
    match error {
        UserError::InvalidArgument { violations, reason } => {
            let message = format!(
                "invalid request: {}",
                violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ")
            );
            let request = bad_request(violations.into_iter().map(|v| (v.field, v.description)));
            status(Code::InvalidArgument, message, reason, &[], vec![request])
        }
        UserError::EmailTaken => status(
            Code::AlreadyExists,
            "이미 가입된 이메일입니다. This email is already registered; sign in instead.".to_owned(),
            "EMAIL_TAKEN",
            &[],
            Vec::new(),
        ),
        UserError::BusinessNotActive { verification } => {
            let (reason, message) = inactive(&verification);
            let metadata = [
                ("business_number", verification.business_number.clone()),
                ("nts_status_code", verification.nts_status_code.clone()),
                ("closed_date", verification.closed_date()),
                ("provider", verification.source.name.clone()),
            ];
            status(Code::FailedPrecondition, message, reason, &metadata, Vec::new())
        }
        UserError::NtsUnavailable { retry_after, cause } => {
            tracing::warn!(%cause, ?retry_after, "business verification unavailable");
            let message = format!(
                "사업자 상태 조회를 일시적으로 사용할 수 없습니다. The National Tax Service business status lookup is \
                 unavailable right now and nothing was created; retry in {} s.",
                seconds(retry_after)
            );
            status(Code::Unavailable, message, "NTS_UNAVAILABLE", &[], vec![retry_info(retry_after)])
        }
        UserError::NtsQuota { retry_after, cause } => {
            tracing::warn!(%cause, "NTS quota exhausted");
            let message =
                format!("The National Tax Service lookup quota is used up; retry in {} s.", seconds(retry_after));
            status(Code::ResourceExhausted, message, "NTS_QUOTA_EXCEEDED", &[], vec![retry_info(retry_after)])
        }
        UserError::InvalidCredentials => status(
            Code::Unauthenticated,
            "이메일 또는 비밀번호가 올바르지 않습니다. The email or password is incorrect.".to_owned(),
            "INVALID_CREDENTIALS",
            &[],
            Vec::new(),
        ),
        UserError::TooManyAttempts { retry_after } => status(
            Code::ResourceExhausted,
            format!(
                "로그인 시도가 너무 많습니다. Too many failed sign-ins for this account; retry in {} s.",
                seconds(retry_after)
            ),
            "TOO_MANY_ATTEMPTS",
            &[],
            vec![retry_info(retry_after)],
        ),
        UserError::InvalidRefreshToken => status(
            Code::Unauthenticated,
            "The refresh token is invalid, expired or revoked; sign in again.".to_owned(),
            "INVALID_REFRESH_TOKEN",
            &[],
            Vec::new(),
        ),
        UserError::RefreshTokenReused => status(
            Code::Unauthenticated,
            "The refresh token was already used, so the session has been revoked for safety; sign in again.".to_owned(),
            "REFRESH_TOKEN_REUSED",
            &[],
            Vec::new(),
        ),
        UserError::OwnerNotFound => {
            status(Code::NotFound, "owner not found".to_owned(), "OWNER_NOT_FOUND", &[], Vec::new())
        }
        UserError::Unavailable(cause) => {
            tracing::warn!(%cause, "user service dependency unavailable");
            let retry = Duration::from_secs(1);
            status(
                Code::Unavailable,
                "the user service is temporarily unavailable; retry shortly".to_owned(),
                "STORAGE_UNAVAILABLE",
                &[],
                vec![retry_info(retry)],
            )
        }
        UserError::Internal(cause) => {
            tracing::error!(%cause, "user service internal error");
            status(Code::Internal, "internal error".to_owned(), "INTERNAL", &[], Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use kem_proto::google::rpc::{BadRequest, RetryInfo};
    use prost::Message;

    use super::*;
    use crate::app::VerifyError;
    use crate::domain::FieldViolation;
    use crate::infra::NtsError;

    fn detail<M: Message + Default>(status: &tonic::Status, type_name: &str) -> Option<M> {
        kem_proto::status::details(status)?
            .details
            .iter()
            .find(|d| d.type_url.ends_with(type_name))
            .and_then(|d| M::decode(d.value.as_slice()).ok())
    }

    #[test]
    fn field_violations_carry_bad_request_and_the_reason() {
        let status = to_status(UserError::invalid(vec![FieldViolation::new("businessNumber", "check digit")]));
        assert_eq!(status.code(), Code::InvalidArgument);
        let info = kem_proto::status::error_info_of(&status).expect("ErrorInfo");
        assert_eq!((info.domain.as_str(), info.reason.as_str()), (DOMAIN, "BUSINESS_NUMBER_CHECKSUM"));
        let br: BadRequest = detail(&status, "google.rpc.BadRequest").expect("BadRequest");
        assert_eq!(br.field_violations[0].field, "businessNumber");
    }

    #[test]
    fn unavailable_and_lockout_carry_retry_info() {
        for (error, code) in [
            (
                UserError::NtsUnavailable {
                    retry_after: Duration::from_millis(2500),
                    cause: VerifyError::Nts(NtsError::Contract("x".into())),
                },
                Code::Unavailable,
            ),
            (UserError::TooManyAttempts { retry_after: Duration::from_secs(3) }, Code::ResourceExhausted),
        ] {
            let status = to_status(error);
            assert_eq!(status.code(), code);
            let retry: RetryInfo = detail(&status, "google.rpc.RetryInfo").expect("RetryInfo");
            assert!(retry.retry_delay.is_some_and(|d| d.seconds >= 2));
        }
    }

    #[test]
    fn internal_causes_are_not_sent() {
        let status = to_status(UserError::internal("password=hunter2 in DSN"));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }
}
