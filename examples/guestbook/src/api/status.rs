//! [`GuestbookError`] → `tonic::Status` with `google.rpc` details: an `ErrorInfo` (domain
//! `kem.guestbook`, the reason the contract names) on every error, a `BadRequest` naming each
//! field on INVALID_ARGUMENT, a `RetryInfo` where retrying helps. The gateway turns these into
//! HTTP problem responses; infrastructure details are logged, never sent.

use std::time::Duration;

use kem_kit::status::{bad_request, error_info, retry_info};
use kem_proto::status::with_details;
use tonic::Code;

use crate::app::GuestbookError;

/// `ErrorInfo.domain` of every guestbook error.
pub const DOMAIN: &str = "kem.guestbook";

/// The status a use-case error becomes.
pub fn to_status(error: GuestbookError) -> tonic::Status {
    match error {
        GuestbookError::InvalidArgument(violations) => {
            // Descriptions never quote the value (see `kem_kit::validate`), so the message is
            // safe to send back however hostile the input was.
            let summary: Vec<String> = violations.iter().map(ToString::to_string).collect();
            let message = format!("invalid request: {}", summary.join("; "));
            let fields = violations.into_iter().map(|v| (v.field, v.description));
            with_details(
                Code::InvalidArgument,
                &message,
                vec![error_info(DOMAIN, "INVALID_ARGUMENT", &[]), bad_request(fields)],
            )
        }
        GuestbookError::RequestIdReused => with_details(
            Code::AlreadyExists,
            "this request id already signed the guestbook with another name or message; send a new request id",
            vec![error_info(DOMAIN, "REQUEST_ID_REUSED", &[])],
        ),
        GuestbookError::Unavailable(cause) => {
            tracing::warn!(%cause, "guestbook storage unavailable");
            with_details(
                Code::Unavailable,
                "the guestbook is temporarily unavailable and nothing was stored; retry shortly",
                vec![error_info(DOMAIN, "STORAGE_UNAVAILABLE", &[]), retry_info(Duration::from_secs(1))],
            )
        }
        GuestbookError::Internal(cause) => {
            tracing::error!(%cause, "guestbook internal error");
            with_details(Code::Internal, "internal error", vec![error_info(DOMAIN, "INTERNAL", &[])])
        }
    }
}
