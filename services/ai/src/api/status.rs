//! [`AppError`] as a `google.rpc.Status` (for RPC errors and for the error of a FAILED job),
//! following the contract in `kem/ai/v1/ai.proto`: `ErrorInfo` with domain `kem.ai` and a stable
//! reason, `RetryInfo` where waiting helps, `BadRequest` for invalid requests.
//!
//! | error | code | reason |
//! |---|---|---|
//! | invalid request | INVALID_ARGUMENT | (`BadRequest` field violations) |
//! | Claude down, overloaded, failing, breaker open | UNAVAILABLE | `PROVIDER_UNAVAILABLE` |
//! | Claude timeout, or no time left | DEADLINE_EXCEEDED | `PROVIDER_TIMEOUT` / `DEADLINE_EXCEEDED` |
//! | Claude rate limit or spend limit | RESOURCE_EXHAUSTED | `PROVIDER_QUOTA` |
//! | output still malformed after the repair | INTERNAL | `PROVIDER_BAD_OUTPUT` |
//! | content refused by Claude | FAILED_PRECONDITION | `CONTENT_MODERATED` |
//! | credentials or request refused, answer outside the wire contract | INTERNAL | `PROVIDER_MISCONFIGURED` |

use std::time::Duration;

use kem_kit::status::{bad_request, error_info, retry_info};
use kem_proto::google::rpc::Status;

use crate::app::error::AppError;
use crate::app::ports::ModelError;

/// `ErrorInfo.domain` of every ai error.
pub const ERROR_DOMAIN: &str = "kem.ai";

/// Advice given with UNAVAILABLE when the provider named no delay.
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// Problems of malformed output quoted in the error message.
const QUOTED_PROBLEMS: usize = 3;

fn info(reason: &str, metadata: &[(&str, String)]) -> prost_types::Any {
    error_info(ERROR_DOMAIN, reason, metadata)
}

/// The `google.rpc.Status` of `error`.
pub fn rpc_status(error: &AppError) -> Status {
    use tonic::Code;
    let (code, message, details) = match error {
        AppError::Invalid(invalid) => {
            let request = bad_request(invalid.0.iter().map(|p| (p.field.clone(), p.problem.clone())));
            (Code::InvalidArgument, error.to_string(), vec![request])
        }
        AppError::Model(model) => {
            let provider = ("provider", model.provider().to_owned());
            match model {
                ModelError::Unavailable { retry_after, circuit_open, .. } => (
                    Code::Unavailable,
                    if *circuit_open {
                        format!("{} is failing and its circuit breaker is open; try again later", model.provider())
                    } else {
                        format!("{} is temporarily unavailable; try again later", model.provider())
                    },
                    vec![
                        info("PROVIDER_UNAVAILABLE", &[provider, ("circuit_open", circuit_open.to_string())]),
                        retry_info(retry_after.unwrap_or(DEFAULT_RETRY)),
                    ],
                ),
                ModelError::RateLimited { retry_after, .. } => {
                    let mut details = vec![info("PROVIDER_QUOTA", &[provider, ("limit", "rate".to_owned())])];
                    details.extend(retry_after.map(retry_info));
                    (
                        Code::ResourceExhausted,
                        format!("{} is rate limiting kem; try again later", model.provider()),
                        details,
                    )
                }
                ModelError::QuotaExhausted { .. } => (
                    Code::ResourceExhausted,
                    format!("the {} quota (spend limit or billing) is exhausted", model.provider()),
                    vec![info("PROVIDER_QUOTA", &[provider, ("limit", "spend".to_owned())])],
                ),
                ModelError::Timeout { after, .. } => (
                    Code::DeadlineExceeded,
                    format!("{} did not answer within {after:?}", model.provider()),
                    vec![info("PROVIDER_TIMEOUT", &[provider])],
                ),
                ModelError::Refused { detail, .. } => (
                    Code::FailedPrecondition,
                    format!("{} refused the content: {detail}", model.provider()),
                    vec![info("CONTENT_MODERATED", &[provider])],
                ),
                // Details may quote the provider's error; the message stays generic.
                ModelError::Misconfigured { .. } => (
                    Code::Internal,
                    format!("the {} integration is misconfigured or answered outside its contract", model.provider()),
                    vec![info("PROVIDER_MISCONFIGURED", &[provider])],
                ),
            }
        }
        AppError::BadOutput { provider, error: output } => {
            let quoted: Vec<&str> = output.problems.iter().take(QUOTED_PROBLEMS).map(String::as_str).collect();
            let more = output.problems.len().saturating_sub(QUOTED_PROBLEMS);
            let mut message = format!(
                "{provider} returned recommendations that do not match the contract even after one repair attempt: {}",
                quoted.join("; ")
            );
            if more > 0 {
                message.push_str(&format!(" (and {more} more problems)"));
            }
            let metadata = [("provider", provider.clone()), ("problems", output.problems.len().to_string())];
            (Code::Internal, message, vec![info("PROVIDER_BAD_OUTPUT", &metadata)])
        }
        AppError::DeadlineExceeded { .. } => {
            (Code::DeadlineExceeded, error.to_string(), vec![info("DEADLINE_EXCEEDED", &[])])
        }
    };
    Status { code: code as i32, message, details }
}

/// `error` as a tonic status carrying its `google.rpc.Status` in `grpc-status-details-bin`.
pub fn to_status(error: &AppError) -> tonic::Status {
    let status = rpc_status(error);
    kem_proto::status::with_details(tonic::Code::from(status.code), &status.message, status.details)
}

#[cfg(test)]
mod tests {
    use kem_proto::google::rpc::BadRequest;
    use prost::Message;

    use super::*;
    use crate::domain::input::InvalidInput;
    use crate::domain::parse::OutputError;

    fn reason(status: &tonic::Status) -> String {
        kem_proto::status::error_info_of(status).map(|i| format!("{}/{}", i.domain, i.reason)).unwrap_or_default()
    }

    #[test]
    fn each_error_has_its_code_and_reason() {
        let p = || "claude".to_owned();
        let cases = [
            (
                AppError::Model(ModelError::Unavailable {
                    provider: p(),
                    detail: "529".into(),
                    retry_after: None,
                    circuit_open: true,
                }),
                tonic::Code::Unavailable,
                "kem.ai/PROVIDER_UNAVAILABLE",
            ),
            (
                AppError::Model(ModelError::Timeout { provider: p(), after: Duration::from_secs(10) }),
                tonic::Code::DeadlineExceeded,
                "kem.ai/PROVIDER_TIMEOUT",
            ),
            (
                AppError::Model(ModelError::RateLimited {
                    provider: p(),
                    detail: "x".into(),
                    retry_after: Some(Duration::from_secs(2)),
                }),
                tonic::Code::ResourceExhausted,
                "kem.ai/PROVIDER_QUOTA",
            ),
            (
                AppError::Model(ModelError::QuotaExhausted { provider: p(), detail: "x".into() }),
                tonic::Code::ResourceExhausted,
                "kem.ai/PROVIDER_QUOTA",
            ),
            (
                AppError::Model(ModelError::Refused { provider: p(), detail: "x".into() }),
                tonic::Code::FailedPrecondition,
                "kem.ai/CONTENT_MODERATED",
            ),
            (
                AppError::Model(ModelError::Misconfigured { provider: p(), detail: "sk-ant-secret".into() }),
                tonic::Code::Internal,
                "kem.ai/PROVIDER_MISCONFIGURED",
            ),
            (
                AppError::BadOutput { provider: p(), error: OutputError { problems: vec!["a".into(); 5] } },
                tonic::Code::Internal,
                "kem.ai/PROVIDER_BAD_OUTPUT",
            ),
            (AppError::DeadlineExceeded { what: "x" }, tonic::Code::DeadlineExceeded, "kem.ai/DEADLINE_EXCEEDED"),
        ];
        for (error, code, expected) in cases {
            let status = to_status(&error);
            assert_eq!(status.code(), code, "{error}");
            assert_eq!(reason(&status), expected, "{error}");
            assert!(!status.message().contains("sk-ant"), "no provider detail leaks: {}", status.message());
        }
        let bad =
            to_status(&AppError::BadOutput { provider: p(), error: OutputError { problems: vec!["a".into(); 5] } });
        assert!(bad.message().contains("(and 2 more problems)"), "{}", bad.message());
    }

    #[test]
    fn invalid_requests_carry_field_violations() {
        let status = to_status(&AppError::Invalid(InvalidInput::one("region", "must not be empty")));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let details = kem_proto::status::details(&status).expect("details");
        let request = BadRequest::decode(details.details[0].value.as_slice()).expect("bad request");
        assert_eq!(request.field_violations[0].field, "region");
    }
}
