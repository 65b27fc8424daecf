//! Use-case errors → gRPC statuses with `google.rpc` details (domain `kem.event`).
//!
//! | error | code | details |
//! |---|---|---|
//! | invalid fields | INVALID_ARGUMENT | BadRequest (camelCase field paths) |
//! | missing / another owner's | NOT_FOUND | ErrorInfo `EVENT_NOT_FOUND`, `JOB_NOT_FOUND`, `RECOMMENDATION_NOT_FOUND`, `IMAGE_NOT_FOUND` |
//! | illegal transition | FAILED_PRECONDITION | ErrorInfo `INVALID_TRANSITION` (metadata `status` = current status, `action`), PreconditionFailure |
//! | period over | FAILED_PRECONDITION | ErrorInfo `PERIOD_OVER`, PreconditionFailure |
//! | channel not connected | FAILED_PRECONDITION | ErrorInfo `CHANNEL_NOT_CONNECTED` (metadata `channels`), one PreconditionFailure violation per channel |
//! | no recommendations yet | FAILED_PRECONDITION | ErrorInfo `RECOMMENDATIONS_NOT_READY`, PreconditionFailure |
//! | stale etag | ABORTED | ErrorInfo `ETAG_MISMATCH` (metadata `etag` = current) |
//! | lost races repeatedly | ABORTED | ErrorInfo `CONCURRENT_MODIFICATION` |
//! | incomplete event | INVALID_ARGUMENT | ErrorInfo `EVENT_INCOMPLETE`, BadRequest |
//! | report of the wrong kind | INVALID_ARGUMENT | ErrorInfo `JOB_KIND_MISMATCH`, BadRequest |
//! | database down | UNAVAILABLE | ErrorInfo `DATABASE_UNAVAILABLE` |
//! | EndEvent: participation could not close the entries | UNAVAILABLE | ErrorInfo `PARTICIPATION_UNAVAILABLE`, RetryInfo |
//! | PublishEvent: the user service could not name the store for the terms | UNAVAILABLE | ErrorInfo `USER_UNAVAILABLE`, RetryInfo |
//! | bug / corrupt data | INTERNAL | none (details in the log only) |

use std::time::Duration;

use kem_kit::status::{bad_request, error_info, retry_info};
use kem_kit::validate::excerpt;
use kem_proto::google::rpc::{PreconditionFailure, precondition_failure};
use kem_proto::status::{any, with_details as status};
use tonic::Code;

use super::convert;
use crate::app::{AppError, PeerError, RepoError, Resource};

/// The `ErrorInfo.domain` of every event-service error.
pub const DOMAIN: &str = "kem.event";

fn info(reason: &str, metadata: &[(&str, &str)]) -> prost_types::Any {
    let metadata: Vec<(&str, String)> = metadata.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    error_info(DOMAIN, reason, &metadata)
}

fn precondition(kind: &str, event_id: &str, description: &str) -> prost_types::Any {
    let failure = PreconditionFailure {
        violations: vec![precondition_failure::Violation {
            r#type: kind.to_owned(),
            subject: format!("events/{event_id}"),
            description: description.to_owned(),
        }],
    };
    any("google.rpc.PreconditionFailure", &failure)
}

fn not_found_reason(resource: Resource) -> (&'static str, &'static str) {
    match resource {
        Resource::Event => ("EVENT_NOT_FOUND", "eventId"),
        Resource::Job => ("JOB_NOT_FOUND", "jobId"),
        Resource::Recommendation => ("RECOMMENDATION_NOT_FOUND", "recommendationId"),
        Resource::Image => ("IMAGE_NOT_FOUND", "imageId"),
    }
}

/// The gRPC status of a use-case error.
pub fn to_status(error: AppError) -> tonic::Status {
    let message = error.to_string();
    match &error {
        AppError::Invalid(invalid) => {
            let violations = invalid.violations.iter().map(|v| (v.field.clone(), v.description.clone()));
            status(Code::InvalidArgument, &message, vec![bad_request(violations)])
        }
        AppError::NotFound { resource, id } => {
            let (reason, key) = not_found_reason(*resource);
            // Ids are shape-checked at the boundary; quote an excerpt all the same, so no path
            // can put a caller's huge value into a message or a trailer.
            let id = excerpt(id);
            let message = format!("{resource} \"{id}\" not found");
            status(Code::NotFound, &message, vec![info(reason, &[(key, &id)])])
        }
        AppError::Illegal { event_id, source } => {
            let current = convert::status_to_proto(source.current).as_str_name();
            status(
                Code::FailedPrecondition,
                &message,
                vec![
                    info(
                        "INVALID_TRANSITION",
                        &[("status", current), ("action", source.action.verb()), ("eventId", event_id)],
                    ),
                    precondition("STATE", event_id, &message),
                ],
            )
        }
        AppError::PeriodOver { event_id, .. } => status(
            Code::FailedPrecondition,
            &message,
            vec![info("PERIOD_OVER", &[("eventId", event_id)]), precondition("PERIOD", event_id, &message)],
        ),
        AppError::ChannelsNotConnected { event_id, channels } => {
            let names: Vec<&str> = channels.iter().map(|c| c.channel.as_str()).collect();
            let failure = PreconditionFailure {
                violations: channels
                    .iter()
                    .map(|c| precondition_failure::Violation {
                        r#type: "CHANNEL_NOT_CONNECTED".to_owned(),
                        subject: format!("channels/{}", c.channel.as_str()),
                        description: format!("{}: {}", c.state, c.note),
                    })
                    .collect(),
            };
            status(
                Code::FailedPrecondition,
                &message,
                vec![
                    info("CHANNEL_NOT_CONNECTED", &[("channels", &names.join(",")), ("eventId", event_id)]),
                    any("google.rpc.PreconditionFailure", &failure),
                ],
            )
        }
        AppError::RecommendationsNotReady { event_id } => status(
            Code::FailedPrecondition,
            &message,
            vec![
                info("RECOMMENDATIONS_NOT_READY", &[("eventId", event_id)]),
                precondition("RECOMMENDATIONS", event_id, &message),
            ],
        ),
        AppError::NoRecommendationSelected { event_id } => status(
            Code::FailedPrecondition,
            &message,
            vec![
                info("NO_RECOMMENDATION_SELECTED", &[("eventId", event_id)]),
                precondition("RECOMMENDATION", event_id, &message),
            ],
        ),
        AppError::Etag { event_id, source } => status(
            Code::Aborted,
            &message,
            vec![info("ETAG_MISMATCH", &[("eventId", event_id), ("etag", &source.current)])],
        ),
        AppError::Contended { event_id } => {
            status(Code::Aborted, &message, vec![info("CONCURRENT_MODIFICATION", &[("eventId", event_id)])])
        }
        AppError::EventIncomplete { event_id, missing } => {
            let violations =
                missing.iter().map(|m| (format!("event.{m}"), "is required for recommendations".to_owned()));
            status(
                Code::InvalidArgument,
                &message,
                vec![info("EVENT_INCOMPLETE", &[("eventId", event_id)]), bad_request(violations)],
            )
        }
        AppError::WrongJobKind { job_id, kind, reported } => status(
            Code::InvalidArgument,
            &message,
            vec![
                info("JOB_KIND_MISMATCH", &[("jobId", job_id), ("kind", kind.as_str()), ("reported", reported)]),
                bad_request([("outcome".to_owned(), format!("a {kind} job takes no {reported} outcome"))]),
            ],
        ),
        AppError::EntriesNotClosed { event_id, source: PeerError::Unavailable { source: cause, .. } } => {
            tracing::warn!(%event_id, error = %cause, "EndEvent refused: participation did not close the entries");
            status(
                Code::Unavailable,
                "the event was not ended: the participation service could not confirm that entries are closed; \
                 retry shortly",
                vec![info("PARTICIPATION_UNAVAILABLE", &[("eventId", event_id)]), retry_info(Duration::from_secs(1))],
            )
        }
        AppError::EntriesNotClosed { event_id, source: PeerError::Refused { source: cause, .. } } => {
            tracing::error!(%event_id, error = %cause, "EndEvent failed: participation refused to close the entries");
            tonic::Status::internal("internal error in the event service")
        }
        AppError::StoreUnknown { event_id, source: PeerError::Unavailable { source: cause, .. } } => {
            tracing::warn!(%event_id, error = %cause, "PublishEvent refused: the user service did not name the store");
            status(
                Code::Unavailable,
                "the event was not published: the store's name for the participants' terms could not be read from \
                 the user service; retry shortly",
                vec![info("USER_UNAVAILABLE", &[("eventId", event_id)]), retry_info(Duration::from_secs(1))],
            )
        }
        AppError::StoreUnknown { event_id, source: PeerError::Refused { source: cause, .. } } => {
            tracing::error!(%event_id, error = %cause, "PublishEvent failed: the user service refused GetOwner");
            tonic::Status::internal("internal error in the event service")
        }
        AppError::Storage(detail @ RepoError::Unavailable(_)) => {
            tracing::warn!(error = %detail, "event request failed: database unavailable");
            status(
                Code::Unavailable,
                "the event service cannot reach its database right now; retry shortly",
                vec![info("DATABASE_UNAVAILABLE", &[])],
            )
        }
        AppError::Storage(detail) => {
            tracing::error!(error = %detail, "event request failed: internal error");
            tonic::Status::internal("internal error in the event service")
        }
    }
}

#[cfg(test)]
mod tests {
    use kem_proto::google::rpc::BadRequest;
    use prost::Message;

    use std::sync::Arc;

    use kem_kit::store::StoreError;

    use super::*;
    use crate::domain::lifecycle::{Action, EventStatus, IllegalTransition};
    use crate::domain::validation::ValidationError;

    fn details(status: &tonic::Status) -> Vec<String> {
        kem_proto::status::details(status)
            .map(|s| s.details.into_iter().map(|d| d.type_url).collect())
            .unwrap_or_default()
    }

    #[test]
    fn illegal_transitions_name_the_current_status() {
        let error = AppError::Illegal {
            event_id: "e-1".into(),
            source: IllegalTransition { action: Action::Update, current: EventStatus::Published },
        };
        let status = to_status(error);
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert!(status.message().contains("PUBLISHED"), "{}", status.message());
        let info = kem_proto::status::error_info_of(&status).expect("error info");
        assert_eq!((info.domain.as_str(), info.reason.as_str()), (DOMAIN, "INVALID_TRANSITION"));
        assert_eq!(info.metadata.get("status").map(String::as_str), Some("EVENT_STATUS_PUBLISHED"));
        assert_eq!(
            details(&status),
            vec!["type.googleapis.com/google.rpc.ErrorInfo", "type.googleapis.com/google.rpc.PreconditionFailure"]
        );
    }

    #[test]
    fn field_violations_become_bad_requests() {
        let status = to_status(AppError::Invalid(ValidationError::one("event.title", "is required")));
        assert_eq!(status.code(), Code::InvalidArgument);
        let decoded = kem_proto::status::details(&status).expect("details");
        let request = BadRequest::decode(decoded.details[0].value.as_slice()).expect("bad request");
        assert_eq!(request.field_violations[0].field, "event.title");
    }

    #[test]
    fn every_error_maps_to_its_code() {
        let cases = [
            (AppError::not_found(Resource::Job, "j"), Code::NotFound, Some("JOB_NOT_FOUND")),
            (AppError::Contended { event_id: "e".into() }, Code::Aborted, Some("CONCURRENT_MODIFICATION")),
            (AppError::PeriodOver { event_id: "e".into(), end: 1 }, Code::FailedPrecondition, Some("PERIOD_OVER")),
            (
                AppError::Storage(RepoError::Unavailable(Arc::new(StoreError::Unhealthy {
                    target: "db down at 10.0.0.1".into(),
                    role: "primary",
                    reason: "timeout".into(),
                }))),
                Code::Unavailable,
                Some("DATABASE_UNAVAILABLE"),
            ),
            (
                AppError::EntriesNotClosed {
                    event_id: "e".into(),
                    source: PeerError::Unavailable {
                        peer: "participation",
                        source: Box::new(tonic::Status::unavailable("10.0.0.1 refused")),
                    },
                },
                Code::Unavailable,
                Some("PARTICIPATION_UNAVAILABLE"),
            ),
            (
                AppError::EntriesNotClosed {
                    event_id: "e".into(),
                    source: PeerError::Refused {
                        peer: "participation",
                        source: Box::new(tonic::Status::permission_denied("10.0.0.1")),
                    },
                },
                Code::Internal,
                None,
            ),
            (
                AppError::StoreUnknown {
                    event_id: "e".into(),
                    source: PeerError::Unavailable {
                        peer: "user",
                        source: Box::new(tonic::Status::unavailable("10.0.0.1")),
                    },
                },
                Code::Unavailable,
                Some("USER_UNAVAILABLE"),
            ),
            (
                AppError::StoreUnknown {
                    event_id: "e".into(),
                    source: PeerError::Refused { peer: "user", source: Box::new(tonic::Status::internal("10.0.0.1")) },
                },
                Code::Internal,
                None,
            ),
            (AppError::Storage(RepoError::Corrupt("bad json".into())), Code::Internal, None),
        ];
        for (error, code, reason) in cases {
            let status = to_status(error);
            assert_eq!(status.code(), code);
            assert_eq!(kem_proto::status::error_info_of(&status).map(|i| i.reason).as_deref(), reason);
            assert!(!status.message().contains("10.0.0.1") && !status.message().contains("json"), "no internals leak");
        }
    }
}
