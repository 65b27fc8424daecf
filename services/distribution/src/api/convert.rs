//! Domain → `kem.distribution.v1` messages.

use kem_proto::kem::distribution::v1 as pb;

use crate::app::EventDistribution;
use crate::domain::{Delivery, DeliveryState, OverallState};
use crate::infra::messages::{provider_info, timestamp};

/// The contract's delivery state.
pub fn delivery_state(state: DeliveryState) -> pb::DeliveryState {
    match state {
        DeliveryState::Pending => pb::DeliveryState::Pending,
        DeliveryState::Sending => pb::DeliveryState::Sending,
        DeliveryState::Published => pb::DeliveryState::Published,
        DeliveryState::Failed => pb::DeliveryState::Failed,
        DeliveryState::QueuedRateLimited => pb::DeliveryState::QueuedRateLimited,
        DeliveryState::AwaitingOwner => pb::DeliveryState::AwaitingOwner,
    }
}

/// The contract's overall state.
pub fn overall(state: OverallState) -> pb::DistributionState {
    match state {
        OverallState::InProgress => pb::DistributionState::InProgress,
        OverallState::Completed => pb::DistributionState::Completed,
        OverallState::PartiallyFailed => pb::DistributionState::PartiallyFailed,
        OverallState::Failed => pb::DistributionState::Failed,
    }
}

/// One delivery as the owner sees it (`now_ms` hides internal recovery deadlines).
pub fn delivery(d: &Delivery, now_ms: i64) -> pb::ChannelDelivery {
    pb::ChannelDelivery {
        channel: d.channel.number(),
        state: delivery_state(d.state) as i32,
        attempts: d.attempts,
        last_error: d.last_error.as_ref().map(|e| pb::DeliveryError {
            reason: e.failure.reason.as_str().to_owned(),
            message: e.failure.message.clone(),
            retryable: e.failure.retryable,
            provider_code: e.failure.provider_code.clone(),
            time: Some(timestamp(e.at_ms)),
        }),
        external_id: d.external_id.clone(),
        permalink: d.permalink.clone(),
        provider_status: d.provider_status.clone(),
        next_attempt_time: d.visible_next_attempt(now_ms).map(timestamp),
        published_time: d.published_at.map(timestamp),
        update_time: Some(timestamp(d.updated_at)),
        manual_post: d.manual_post.as_ref().filter(|_| d.state == DeliveryState::AwaitingOwner).map(|p| {
            pb::ManualPost {
                title: p.title.clone(),
                html_body: p.html_body.clone(),
                image_uris: p.image_uris.clone(),
                editor_url: p.editor_url.clone(),
            }
        }),
        provider: Some(provider_info(d)),
    }
}

/// GetStatus's answer.
pub fn status(e: &EventDistribution, now_ms: i64) -> pb::GetStatusResponse {
    pb::GetStatusResponse {
        event_id: e.event_id.clone(),
        state: overall(e.state) as i32,
        deliveries: e.deliveries.iter().map(|d| delivery(d, now_ms)).collect(),
        update_time: Some(timestamp(e.update_time)),
    }
}

/// Retry's answer.
pub fn retried(e: &EventDistribution, now_ms: i64) -> pb::RetryResponse {
    pb::RetryResponse {
        state: overall(e.state) as i32,
        deliveries: e.deliveries.iter().map(|d| delivery(d, now_ms)).collect(),
    }
}
