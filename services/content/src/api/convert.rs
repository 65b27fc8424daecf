//! Protobuf ↔ domain, shared by the gRPC adapter and the infrastructure (queue messages, reports to
//! the event service): enums, timestamps, images, style states, failures as `google.rpc.Status`.
//!
//! Failures map to statuses per the contracts (content `StyleGenerationState.error`, event
//! `Job.error`), with `ErrorInfo` in domain [`DOMAIN`]:
//!
//! | failure | code | reason |
//! |---|---|---|
//! | moderated | FAILED_PRECONDITION | `CONTENT_MODERATED` |
//! | rate limited | RESOURCE_EXHAUSTED | `PROVIDER_RATE_LIMITED` (+ RetryInfo) |
//! | provider failing | UNAVAILABLE | `PROVIDER_UNAVAILABLE` (+ RetryInfo) |
//! | breaker open | UNAVAILABLE | `PROVIDER_CIRCUIT_OPEN` (+ RetryInfo) |
//! | provider timeout | DEADLINE_EXCEEDED | `PROVIDER_TIMEOUT` |
//! | refused as invalid | INVALID_ARGUMENT | `PROVIDER_REJECTED_INPUT` |
//! | credentials / account | INTERNAL | `PROVIDER_MISCONFIGURED` |
//! | outside the contract | INTERNAL | `PROVIDER_CONTRACT_VIOLATION` |
//! | blob store | UNAVAILABLE | `BLOB_STORE_UNAVAILABLE` (+ RetryInfo) |
//! | job deadline | DEADLINE_EXCEEDED | `JOB_DEADLINE_EXCEEDED` |
//! | invalid request | INVALID_ARGUMENT | `INVALID_REQUEST` (+ BadRequest) |
//! | defect | INTERNAL | `INTERNAL` |

use std::time::Duration;

use kem_kit::status::{bad_request, error_info, retry_info};
use kem_proto::google::rpc::Status as RpcStatus;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::content::v1 as proto;
use kem_proto::kem::event::v1 as event;
use kem_proto::kem::messaging::v1 as msg;
use tonic::Code;

use crate::domain::failure::{Failure, FailureKind};
use crate::domain::image::{GenerationState, Image, StyleState, content_uri};
use crate::domain::outcome::{JobOutcome, ProviderSummary};
use crate::domain::prompt::{Brief, Business};
use crate::domain::publication::{EventStage, Publication};
use crate::domain::request::{EnumInput, RequestInput, SizeInput};
use crate::domain::values::{Channel, ImageStyle, ProviderKind};

/// `ErrorInfo.domain` of every content-service error.
pub const DOMAIN: &str = "kem.content";

// ---- enums --------------------------------------------------------------------------------------

/// The proto value of a channel (the kit's vocabulary).
pub fn channel_to_proto(channel: Channel) -> common::Channel {
    channel.to_proto()
}

/// A channel number as received: unset for 0, unknown for numbers outside the enum.
pub fn channel_from_proto(number: i32) -> EnumInput<Channel> {
    match Channel::from_number(number) {
        Some(channel) => EnumInput::Known(channel),
        None if number == common::Channel::Unspecified as i32 => EnumInput::Unset,
        None => EnumInput::Unknown(number),
    }
}

/// The proto value of a style.
pub fn style_to_proto(style: ImageStyle) -> common::ImageStyle {
    match style {
        ImageStyle::Simple => common::ImageStyle::Simple,
        ImageStyle::Fancy => common::ImageStyle::Fancy,
        ImageStyle::Trendy => common::ImageStyle::Trendy,
    }
}

/// A style number as received.
pub fn style_from_proto(number: i32) -> EnumInput<ImageStyle> {
    match common::ImageStyle::try_from(number) {
        Ok(common::ImageStyle::Unspecified) => EnumInput::Unset,
        Ok(common::ImageStyle::Simple) => EnumInput::Known(ImageStyle::Simple),
        Ok(common::ImageStyle::Fancy) => EnumInput::Known(ImageStyle::Fancy),
        Ok(common::ImageStyle::Trendy) => EnumInput::Known(ImageStyle::Trendy),
        Err(_) => EnumInput::Unknown(number),
    }
}

fn business_from_proto(number: i32) -> Option<Business> {
    use common::BusinessCategory as B;
    Some(match B::try_from(number).ok()? {
        B::Unspecified => return None,
        B::Restaurant => Business::Restaurant,
        B::Cafe => Business::Cafe,
        B::Bakery => Business::Bakery,
        B::Bar => Business::Bar,
        B::Beauty => Business::Beauty,
        B::Retail => Business::Retail,
        B::Fitness => Business::Fitness,
        B::Education => Business::Education,
        B::Healthcare => Business::Healthcare,
        B::LocalService => Business::LocalService,
        B::Other => Business::Other,
    })
}

fn kind_to_proto(kind: ProviderKind) -> common::ProviderKind {
    match kind {
        ProviderKind::External => common::ProviderKind::External,
        ProviderKind::Local => common::ProviderKind::Local,
    }
}

fn state_to_proto(state: GenerationState) -> proto::GenerationState {
    match state {
        GenerationState::Pending => proto::GenerationState::Pending,
        GenerationState::Running => proto::GenerationState::Running,
        GenerationState::Succeeded => proto::GenerationState::Succeeded,
        GenerationState::Failed => proto::GenerationState::Failed,
    }
}

// ---- time ---------------------------------------------------------------------------------------

/// Milliseconds ↔ Timestamp (sub-millisecond precision dropped; out-of-range nanos clamped;
/// saturating): the kit's one conversion.
pub use kem_kit::clock::{ms_from_timestamp as millis_of, timestamp_from_ms as timestamp};

// ---- images -------------------------------------------------------------------------------------

/// Image → proto.
pub fn image(image: &Image) -> proto::Image {
    proto::Image {
        image_id: image.id.clone(),
        event_id: image.event_id.clone(),
        style: style_to_proto(image.style) as i32,
        channel: channel_to_proto(image.size.channel) as i32,
        width: i32::try_from(image.size.width).unwrap_or(i32::MAX),
        height: i32::try_from(image.size.height).unwrap_or(i32::MAX),
        content_type: image.content_type.clone(),
        uri: content_uri(&image.id),
        size_bytes: image.size_bytes,
        sha256: image.sha256.clone(),
        prompt: image.prompt.clone(),
        seed: image.seed,
        provider: Some(common::ProviderInfo {
            kind: kind_to_proto(image.provenance.kind) as i32,
            name: image.provenance.name.clone(),
            model: image.provenance.model.clone(),
            request_id: image.provenance.request_id.clone(),
            cached: image.cached,
        }),
        create_time: Some(timestamp(image.created_at)),
    }
}

/// The event service's publication facts → domain. Every status before publication (and any
/// status this version does not know) is unpublished: nothing is public by mistake.
pub fn publication(answer: &event::GetEventForDistributionResponse) -> Publication {
    let stage = match event::EventStatus::try_from(answer.status) {
        Ok(event::EventStatus::Published) => EventStage::Published,
        Ok(event::EventStatus::Ended) => EventStage::Ended,
        _ => EventStage::Unpublished,
    };
    Publication { event_id: answer.event_id.clone(), stage, selected_image_id: answer.selected_image_id.clone() }
}

/// Style state → proto.
pub fn style_state(state: &StyleState) -> proto::StyleGenerationState {
    proto::StyleGenerationState {
        style: style_to_proto(state.style) as i32,
        state: state_to_proto(state.state) as i32,
        error: state.error.as_ref().map(failure_status),
        update_time: Some(timestamp(state.updated_at)),
    }
}

// ---- failures -----------------------------------------------------------------------------------

fn code_and_reason(kind: &FailureKind) -> (Code, &'static str) {
    match kind {
        FailureKind::Moderated => (Code::FailedPrecondition, "CONTENT_MODERATED"),
        FailureKind::RateLimited => (Code::ResourceExhausted, "PROVIDER_RATE_LIMITED"),
        FailureKind::Unavailable => (Code::Unavailable, "PROVIDER_UNAVAILABLE"),
        FailureKind::CircuitOpen => (Code::Unavailable, "PROVIDER_CIRCUIT_OPEN"),
        FailureKind::Timeout => (Code::DeadlineExceeded, "PROVIDER_TIMEOUT"),
        FailureKind::Rejected => (Code::InvalidArgument, "PROVIDER_REJECTED_INPUT"),
        FailureKind::Misconfigured => (Code::Internal, "PROVIDER_MISCONFIGURED"),
        FailureKind::ProviderContract => (Code::Internal, "PROVIDER_CONTRACT_VIOLATION"),
        FailureKind::Storage => (Code::Unavailable, "BLOB_STORE_UNAVAILABLE"),
        FailureKind::Deadline => (Code::DeadlineExceeded, "JOB_DEADLINE_EXCEEDED"),
        FailureKind::InvalidRequest { .. } => (Code::InvalidArgument, "INVALID_REQUEST"),
        FailureKind::Internal => (Code::Internal, "INTERNAL"),
    }
}

/// The `google.rpc.Status` of a failure (see the module table).
pub fn failure_status(failure: &Failure) -> RpcStatus {
    let (code, reason) = code_and_reason(&failure.kind);
    let metadata: Vec<(&str, String)> = failure.provider.iter().map(|p| ("provider", p.clone())).collect();
    let mut details = vec![error_info(DOMAIN, reason, &metadata)];
    let retry = match failure.kind {
        FailureKind::RateLimited | FailureKind::Unavailable | FailureKind::CircuitOpen | FailureKind::Storage => {
            Some(failure.retry_after_ms.unwrap_or(1_000))
        }
        _ => None,
    };
    details.extend(retry.map(|ms| retry_info(Duration::from_millis(ms))));
    if let FailureKind::InvalidRequest { violations } = &failure.kind {
        details.push(bad_request(violations.iter().cloned()));
    }
    RpcStatus { code: code as i32, message: failure.message.clone(), details }
}

// ---- job outcome --------------------------------------------------------------------------------

fn provider_info(provider: &ProviderSummary) -> common::ProviderInfo {
    common::ProviderInfo {
        kind: kind_to_proto(provider.kind) as i32,
        name: provider.name.clone(),
        model: provider.model.clone(),
        request_id: provider.request_id.clone(),
        cached: provider.cached,
    }
}

/// The `ReportJobResult` outcome of a finished job.
pub fn report_outcome(outcome: &JobOutcome) -> event::report_job_result_request::Outcome {
    use event::report_job_result_request::Outcome;
    match outcome {
        JobOutcome::Images { image_ids, styles, failed, provider } => Outcome::Images(event::ImagesResult {
            image_ids: image_ids.clone(),
            provider: Some(provider_info(provider)),
            style_results: styles
                .iter()
                .map(|s| event::ImageStyleResult {
                    style: style_to_proto(s.style) as i32,
                    image_ids: s.image_ids.clone(),
                    error: s.error.as_ref().map(failure_status),
                })
                .collect(),
            failed_styles: failed.iter().map(|s| style_to_proto(*s) as i32).collect(),
        }),
        JobOutcome::Failed { failure, .. } => Outcome::Error(failure_status(failure)),
    }
}

// ---- queue messages -----------------------------------------------------------------------------

/// The work request of a `GenerateImages` message (validated by the domain afterwards).
pub fn request_input(message: msg::GenerateImages) -> RequestInput {
    let recommendation = message.recommendation.unwrap_or_default();
    // The event's current title wins: the owner may have edited the recommendation's.
    let title = if message.title.trim().is_empty() { recommendation.title.clone() } else { message.title };
    let store = message.store.unwrap_or_default();
    let prize = message
        .prize
        .map(|p| p.name)
        .or_else(|| recommendation.prize_suggestion.map(|p| p.name))
        .filter(|n| !n.trim().is_empty());
    let period = message
        .period
        .and_then(|p| Some((millis_of(&p.start_time?), millis_of(&p.end_time?))))
        .filter(|(start, end)| end > start);
    RequestInput {
        job_id: message.job_id,
        event_id: message.event_id,
        owner_id: message.owner_id,
        brief: Brief {
            title,
            concept: recommendation.concept,
            description: message.description,
            prize,
            period,
            store_name: store.store_name,
            business: business_from_proto(store.business_category),
        },
        channels: message.channels.iter().copied().map(channel_from_proto).collect(),
        sizes: message
            .sizes
            .iter()
            .map(|s| SizeInput { channel: channel_from_proto(s.channel), width: s.width, height: s.height })
            .collect(),
        styles: message.styles.iter().copied().map(style_from_proto).collect(),
        deadline: message.deadline.as_ref().map(millis_of),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kem_proto::google::rpc::{BadRequest, ErrorInfo, RetryInfo};
    use prost::Message;

    #[test]
    fn enums_map_both_ways_and_keep_unknown_numbers() {
        for c in Channel::ALL {
            assert_eq!(channel_from_proto(channel_to_proto(c) as i32), EnumInput::Known(c));
        }
        for s in ImageStyle::ALL {
            assert_eq!(style_from_proto(style_to_proto(s) as i32), EnumInput::Known(s));
        }
        assert_eq!(channel_from_proto(0), EnumInput::Unset);
        assert_eq!(style_from_proto(99), EnumInput::Unknown(99));
    }

    #[test]
    fn failures_follow_the_contract_codes() {
        let moderated = failure_status(&Failure::new(FailureKind::Moderated, "flagged").with_provider("stability-ai"));
        assert_eq!(moderated.code, Code::FailedPrecondition as i32);
        let info = ErrorInfo::decode(moderated.details[0].value.as_slice()).expect("info");
        assert_eq!((info.domain.as_str(), info.reason.as_str()), (DOMAIN, "CONTENT_MODERATED"));
        assert_eq!(info.metadata.get("provider").map(String::as_str), Some("stability-ai"));

        let limited =
            failure_status(&Failure::new(FailureKind::RateLimited, "slow down").with_retry_after_ms(Some(60_000)));
        assert_eq!(limited.code, Code::ResourceExhausted as i32);
        let retry = RetryInfo::decode(limited.details[1].value.as_slice()).expect("retry info");
        assert_eq!(retry.retry_delay.map(|d| d.seconds), Some(60));

        let invalid = failure_status(&Failure::new(
            FailureKind::InvalidRequest { violations: vec![("channels[0]".into(), "is unset".into())] },
            "invalid",
        ));
        assert_eq!(invalid.code, Code::InvalidArgument as i32);
        let bad = BadRequest::decode(invalid.details[1].value.as_slice()).expect("bad request");
        assert_eq!(bad.field_violations[0].field, "channels[0]");
    }

    #[test]
    fn only_published_and_ended_statuses_are_published() {
        let answer = |status: event::EventStatus| event::GetEventForDistributionResponse {
            event_id: "e-1".into(),
            status: status as i32,
            selected_image_id: "i-1".into(),
            ..Default::default()
        };
        assert_eq!(publication(&answer(event::EventStatus::Published)).stage, EventStage::Published);
        assert_eq!(publication(&answer(event::EventStatus::Ended)).stage, EventStage::Ended);
        for status in [
            event::EventStatus::Unspecified,
            event::EventStatus::Draft,
            event::EventStatus::Recommended,
            event::EventStatus::ContentReady,
        ] {
            assert_eq!(publication(&answer(status)).stage, EventStage::Unpublished, "{status:?}");
        }
        let unknown = event::GetEventForDistributionResponse { status: 99, ..answer(event::EventStatus::Published) };
        assert_eq!(publication(&unknown).stage, EventStage::Unpublished);
        assert_eq!(publication(&answer(event::EventStatus::Published)).selected_image_id, "i-1");
    }

    #[test]
    fn timestamps_round_trip() {
        for ms in [0, 1, 999, 1_730_000_000_123, -1_001] {
            assert_eq!(millis_of(&timestamp(ms)), ms);
        }
    }
}
