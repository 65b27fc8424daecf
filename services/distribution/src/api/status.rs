//! [`DistributionError`] → `tonic::Status` with `google.rpc` details: `ErrorInfo` (domain
//! `kem.distribution`, a stable reason), `BadRequest` field violations (camelCase, as REST clients
//! see them), `RetryInfo` where waiting helps.

use std::time::Duration;

use kem_kit::status::{bad_request, error_info, retry_info};
use kem_kit::validate::excerpt;
use kem_proto::status::with_details;
use tonic::Code;

use crate::app::DistributionError;

/// `ErrorInfo.domain` of every distribution error.
pub const DOMAIN: &str = "kem.distribution";

fn info(reason: &str, metadata: &[(&str, String)]) -> prost_types::Any {
    error_info(DOMAIN, reason, metadata)
}

/// The status a use-case error becomes. Infrastructure details are logged, never sent.
pub fn to_status(error: DistributionError) -> tonic::Status {
    let message = error.to_string();
    match error {
        DistributionError::InvalidArgument(violations) => {
            let request = bad_request(violations.into_iter().map(|v| (v.field, v.description)));
            with_details(Code::InvalidArgument, &message, vec![info("INVALID_ARGUMENT", &[]), request])
        }
        DistributionError::EventNotFound(event_id) => with_details(
            Code::NotFound,
            "no distribution for this event: it was never published, or it is not yours",
            vec![info("EVENT_NOT_FOUND", &[("event_id", excerpt(&event_id))])],
        ),
        DistributionError::ChannelNotPublished { event_id, channel } => with_details(
            Code::NotFound,
            &message,
            vec![info(
                "DELIVERY_NOT_FOUND",
                &[("event_id", excerpt(&event_id)), ("channel", channel.to_proto().as_str_name().to_owned())],
            )],
        ),
        DistributionError::NotFailed { channel, state } => with_details(
            Code::FailedPrecondition,
            &message,
            vec![info(
                "DELIVERY_NOT_FAILED",
                &[
                    ("channel", channel.to_proto().as_str_name().to_owned()),
                    ("state", format!("DELIVERY_STATE_{}", state.as_str())),
                ],
            )],
        ),
        DistributionError::EventEnded(event_id) => with_details(
            Code::FailedPrecondition,
            "the event has ended, so its deliveries can no longer be retried",
            vec![info("EVENT_ENDED", &[("event_id", excerpt(&event_id))])],
        ),
        DistributionError::EventServiceUnavailable(cause) => {
            tracing::warn!(cause = ?cause, "event service unavailable");
            with_details(
                Code::Unavailable,
                "the event service cannot be reached right now to tell whether the event was published; retry shortly",
                vec![info("EVENT_SERVICE_UNAVAILABLE", &[]), retry_info(Duration::from_secs(1))],
            )
        }
        DistributionError::EventLookupFailed(cause) => {
            tracing::error!(cause = ?cause, "event lookup failed");
            with_details(Code::Internal, "internal error", vec![info("INTERNAL", &[])])
        }
        DistributionError::Unavailable(cause) => {
            tracing::warn!(%cause, "distribution storage unavailable");
            with_details(
                Code::Unavailable,
                "the distribution service is temporarily unavailable; retry shortly",
                vec![info("STORAGE_UNAVAILABLE", &[]), retry_info(Duration::from_secs(1))],
            )
        }
        DistributionError::Internal(cause) => {
            tracing::error!(%cause, "distribution internal error");
            with_details(Code::Internal, "internal error", vec![info("INTERNAL", &[])])
        }
        DistributionError::ConnectionNotNeeded(channel) => with_details(
            Code::FailedPrecondition,
            &message,
            vec![info("CONNECTION_NOT_NEEDED", &[("channel", channel_name(channel))])],
        ),
        DistributionError::TooManyAttempts { minutes } => with_details(
            Code::ResourceExhausted,
            &message,
            vec![info("TOO_MANY_ATTEMPTS", &[]), retry_info(Duration::from_secs(minutes.saturating_mul(60)))],
        ),
        DistributionError::StateUnknown => with_details(Code::NotFound, &message, vec![info("STATE_UNKNOWN", &[])]),
        DistributionError::AuthorizationDenied { channel, .. } => with_details(
            Code::FailedPrecondition,
            &message,
            vec![info("AUTHORIZATION_DENIED", &[("channel", channel_name(channel))])],
        ),
        DistributionError::MissingPermission { channel, ref missing } => with_details(
            Code::FailedPrecondition,
            &message,
            vec![info("MISSING_PERMISSION", &[("channel", channel_name(channel)), ("missing", missing.join(","))])],
        ),
        DistributionError::LoginUnavailable { channel, cause } => {
            tracing::warn!(%channel, %cause, "login provider unavailable");
            with_details(
                Code::Unavailable,
                &message,
                vec![
                    info("PROVIDER_UNAVAILABLE", &[("channel", channel_name(channel))]),
                    retry_info(Duration::from_secs(5)),
                ],
            )
        }
        DistributionError::LoginFailed { channel, cause } => {
            tracing::error!(%channel, %cause, "login provider answered outside its contract");
            with_details(Code::Internal, &message, vec![info("INTERNAL", &[("channel", channel_name(channel))])])
        }
        DistributionError::SenderNotRegistered { ref channel_id, .. } => with_details(
            Code::FailedPrecondition,
            &message,
            vec![info(
                "SENDER_NOT_REGISTERED",
                &[
                    ("channel", channel_name(crate::domain::Channel::KakaoChannel)),
                    ("kakaoChannelId", channel_id.clone()),
                ],
            )],
        ),
        DistributionError::AccountTaken { ref channel_id } => with_details(
            Code::FailedPrecondition,
            &message,
            vec![info(
                "ACCOUNT_TAKEN",
                &[
                    ("channel", channel_name(crate::domain::Channel::KakaoChannel)),
                    ("kakaoChannelId", channel_id.clone()),
                ],
            )],
        ),
        DistributionError::Sealing(cause) => {
            tracing::error!(%cause, "a connection token cannot be sealed or opened");
            with_details(Code::Internal, "internal error", vec![info("INTERNAL", &[])])
        }
    }
}

fn channel_name(channel: crate::domain::Channel) -> String {
    channel.to_proto().as_str_name().to_owned()
}

#[cfg(test)]
mod tests {
    use kem_proto::google::rpc::BadRequest;
    use prost::Message;

    use super::*;
    use kem_kit::store::StoreError;

    use crate::app::FieldViolation;
    use crate::domain::{Channel, DeliveryState};
    use crate::infra::connections::LoginError;
    use crate::infra::publications::PublicationLookupError;
    use kem_kit::external::ProviderError;

    #[test]
    fn each_error_has_its_code_reason_and_details() {
        let cases = [
            (
                DistributionError::InvalidArgument(vec![FieldViolation::new("channels[0]", "x")]),
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
            ),
            (DistributionError::EventNotFound("e".into()), Code::NotFound, "EVENT_NOT_FOUND"),
            (
                DistributionError::ChannelNotPublished { event_id: "e".into(), channel: Channel::GenieTv },
                Code::NotFound,
                "DELIVERY_NOT_FOUND",
            ),
            (
                DistributionError::NotFailed { channel: Channel::Instagram, state: DeliveryState::Published },
                Code::FailedPrecondition,
                "DELIVERY_NOT_FAILED",
            ),
            (DistributionError::EventEnded("e".into()), Code::FailedPrecondition, "EVENT_ENDED"),
            (
                DistributionError::Unavailable(StoreError::Invalid("pool".into())),
                Code::Unavailable,
                "STORAGE_UNAVAILABLE",
            ),
            (
                DistributionError::EventServiceUnavailable(PublicationLookupError::Unavailable(
                    tonic::Status::unavailable("password=x"),
                )),
                Code::Unavailable,
                "EVENT_SERVICE_UNAVAILABLE",
            ),
            (
                DistributionError::EventLookupFailed(PublicationLookupError::Failed(tonic::Status::internal(
                    "password=x",
                ))),
                Code::Internal,
                "INTERNAL",
            ),
            (DistributionError::Internal(StoreError::Invalid("password=x".into())), Code::Internal, "INTERNAL"),
            (
                DistributionError::ConnectionNotNeeded(Channel::GenieTv),
                Code::FailedPrecondition,
                "CONNECTION_NOT_NEEDED",
            ),
            (DistributionError::TooManyAttempts { minutes: 10 }, Code::ResourceExhausted, "TOO_MANY_ATTEMPTS"),
            (DistributionError::StateUnknown, Code::NotFound, "STATE_UNKNOWN"),
            (
                DistributionError::SenderNotRegistered { channel_id: "@kem".into(), detail: "register it".into() },
                Code::FailedPrecondition,
                "SENDER_NOT_REGISTERED",
            ),
            (DistributionError::AccountTaken { channel_id: "@kem".into() }, Code::FailedPrecondition, "ACCOUNT_TAKEN"),
            (
                DistributionError::AuthorizationDenied { channel: Channel::Instagram, detail: "access_denied".into() },
                Code::FailedPrecondition,
                "AUTHORIZATION_DENIED",
            ),
            (
                DistributionError::MissingPermission {
                    channel: Channel::Instagram,
                    missing: vec!["instagram_business_content_publish".into()],
                },
                Code::FailedPrecondition,
                "MISSING_PERMISSION",
            ),
            (
                DistributionError::LoginUnavailable {
                    channel: Channel::NaverBlog,
                    cause: LoginError::Unavailable(ProviderError::Timeout {
                        provider: "naver-login".into(),
                        after: std::time::Duration::from_secs(1),
                    }),
                },
                Code::Unavailable,
                "PROVIDER_UNAVAILABLE",
            ),
        ];
        for (error, code, reason) in cases {
            let status = to_status(error);
            assert_eq!(status.code(), code);
            let info = kem_proto::status::error_info_of(&status).expect("ErrorInfo");
            assert_eq!((info.domain.as_str(), info.reason.as_str()), (DOMAIN, reason));
            assert!(!status.message().contains("password"));
        }
        let status = to_status(DistributionError::InvalidArgument(vec![FieldViolation::new("channels[0]", "x")]));
        let details = kem_proto::status::details(&status).expect("details");
        let br = details.details.iter().find(|d| d.type_url.ends_with("BadRequest")).expect("BadRequest");
        assert_eq!(BadRequest::decode(br.value.as_slice()).expect("decodes").field_violations[0].field, "channels[0]");
    }
}
