//! Use-case errors → gRPC statuses with `google.rpc` details (domain `kem.content`).
//!
//! | error | code | details |
//! |---|---|---|
//! | invalid fields | INVALID_ARGUMENT | BadRequest (camelCase fields) |
//! | missing / another owner's | NOT_FOUND | ErrorInfo `EVENT_NOT_FOUND` / `IMAGE_NOT_FOUND` |
//! | database down | UNAVAILABLE | ErrorInfo `DATABASE_UNAVAILABLE`, RetryInfo |
//! | blob store down | UNAVAILABLE | ErrorInfo `BLOB_STORE_UNAVAILABLE`, RetryInfo |
//! | event service down (public images) | UNAVAILABLE | ErrorInfo `EVENT_SERVICE_UNAVAILABLE`, RetryInfo |
//! | bytes missing or corrupt | DATA_LOSS | ErrorInfo `IMAGE_BYTES_LOST` |
//! | stored image not convertible to the asked format | FAILED_PRECONDITION | ErrorInfo `IMAGE_NOT_CONVERTIBLE` |
//! | bug / corrupt data | INTERNAL | none (details in the log only) |

use std::time::Duration;

use kem_kit::status::{bad_request, error_info, retry_info};
use kem_kit::validate::excerpt;
use kem_proto::status::with_details;
use tonic::Code;

use super::convert::DOMAIN;
use crate::app::{AppError, BlobError, EventError, RepoError, Resource};

fn info(reason: &str, metadata: &[(&str, String)]) -> prost_types::Any {
    error_info(DOMAIN, reason, metadata)
}

/// UNAVAILABLE with `reason` and a one-second RetryInfo (the edge's `Retry-After`).
fn unavailable(message: &str, reason: &str) -> tonic::Status {
    with_details(Code::Unavailable, message, vec![info(reason, &[]), retry_info(Duration::from_secs(1))])
}

/// The gRPC status of a use-case error.
pub fn to_status(error: AppError) -> tonic::Status {
    let message = error.to_string();
    match &error {
        AppError::Invalid(violations) => {
            with_details(Code::InvalidArgument, &message, vec![bad_request(violations.iter().cloned())])
        }
        AppError::NotFound { resource, id } => {
            let (reason, key) = match resource {
                Resource::Event => ("EVENT_NOT_FOUND", "eventId"),
                Resource::Image => ("IMAGE_NOT_FOUND", "imageId"),
            };
            // Ids are shape-checked at the boundary; quote an excerpt all the same, so no path
            // can put a caller's huge value into a message or a trailer.
            let id = excerpt(id);
            let message = format!("{resource} \"{id}\" not found");
            with_details(Code::NotFound, &message, vec![info(reason, &[(key, id)])])
        }
        AppError::Storage(detail @ RepoError::Unavailable(_)) => {
            tracing::warn!(error = %detail, "content request failed: database unavailable");
            unavailable(
                "the content service cannot reach its database right now; retry shortly",
                "DATABASE_UNAVAILABLE",
            )
        }
        AppError::Blob(detail @ BlobError::Unavailable { .. }) => {
            tracing::warn!(error = %detail, "content request failed: blob store unavailable");
            unavailable("the image store cannot be reached right now; retry shortly", "BLOB_STORE_UNAVAILABLE")
        }
        AppError::Event(detail @ EventError::Unavailable(_)) => {
            tracing::warn!(error = %detail, "content request failed: event service unavailable");
            unavailable(
                "the content service cannot reach the event service right now; retry shortly",
                "EVENT_SERVICE_UNAVAILABLE",
            )
        }
        AppError::DataLoss { image_id, .. } => with_details(
            Code::DataLoss,
            &format!("the bytes of image {image_id} are lost; generate the images again"),
            vec![info("IMAGE_BYTES_LOST", &[("imageId", image_id.clone())])],
        ),
        AppError::Unconvertible { image_id, problem } => {
            tracing::warn!(%image_id, %problem, "public image not convertible");
            with_details(
                Code::FailedPrecondition,
                &format!("image {image_id} cannot be converted to the asked format"),
                vec![info("IMAGE_NOT_CONVERTIBLE", &[("imageId", image_id.clone())])],
            )
        }
        AppError::Storage(detail) => {
            tracing::error!(error = %detail, "content request failed: internal error");
            tonic::Status::internal("internal error in the content service")
        }
        AppError::Blob(detail) => {
            tracing::error!(error = %detail, "content request failed: internal error");
            tonic::Status::internal("internal error in the content service")
        }
        AppError::Event(detail) => {
            tracing::error!(error = %detail, "content request failed: internal error");
            tonic::Status::internal("internal error in the content service")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kem_kit::store::StoreError;
    use kem_proto::google::rpc::BadRequest;

    use super::*;
    use prost::Message;

    #[test]
    fn every_error_maps_to_its_code_without_leaking_internals() {
        let cases = [
            (AppError::NotFound { resource: Resource::Image, id: "i".into() }, Code::NotFound, Some("IMAGE_NOT_FOUND")),
            (AppError::NotFound { resource: Resource::Event, id: "e".into() }, Code::NotFound, Some("EVENT_NOT_FOUND")),
            (
                AppError::Storage(RepoError::Unavailable(Arc::new(StoreError::Unhealthy {
                    target: "db at 10.0.0.1 down".into(),
                    role: "primary",
                    reason: "timeout".into(),
                }))),
                Code::Unavailable,
                Some("DATABASE_UNAVAILABLE"),
            ),
            (
                AppError::Blob(BlobError::unavailable("read images/x", std::io::Error::other("10.0.0.2"))),
                Code::Unavailable,
                Some("BLOB_STORE_UNAVAILABLE"),
            ),
            (AppError::DataLoss { image_id: "i".into(), problem: "corrupt" }, Code::DataLoss, Some("IMAGE_BYTES_LOST")),
            (
                AppError::Unconvertible { image_id: "i".into(), problem: "a 9000x9000 image".into() },
                Code::FailedPrecondition,
                Some("IMAGE_NOT_CONVERTIBLE"),
            ),
            (AppError::Storage(RepoError::Corrupt("bad json at 10.0.0.3".into())), Code::Internal, None),
            (
                AppError::Blob(BlobError::failed("write images/x", std::io::Error::other("refused at 10.0.0.3"))),
                Code::Internal,
                None,
            ),
            (AppError::Blob(BlobError::BadKey("../x".into())), Code::Internal, None),
            (
                AppError::Event(EventError::Unavailable("10.0.0.4 refused".into())),
                Code::Unavailable,
                Some("EVENT_SERVICE_UNAVAILABLE"),
            ),
            (AppError::Event(EventError::Failed("denied at 10.0.0.4".into())), Code::Internal, None),
        ];
        for (error, code, reason) in cases {
            let status = to_status(error);
            assert_eq!(status.code(), code);
            assert_eq!(kem_proto::status::error_info_of(&status).map(|i| i.reason).as_deref(), reason);
            assert!(!status.message().contains("10.0.0"), "no internals leak: {}", status.message());
        }
        let status = to_status(AppError::Invalid(vec![("eventId".into(), "is required".into())]));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = kem_proto::status::details(&status).expect("details");
        let request = BadRequest::decode(details.details[0].value.as_slice()).expect("bad request");
        assert_eq!(request.field_violations[0].field, "eventId");
    }
}
