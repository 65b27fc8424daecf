//! The built-in Kakao Channel stand-in `kem up` uses without SENS credentials.

use crate::domain::{Channel, ProviderLabel, StepOutcome, keys};
use crate::infra::channels::kakao::PROVIDER;
use crate::infra::channels::{ChannelClient, Step};

/// The built-in stand-in (`local:kakao-sens`): "sends" at once with a deterministic request id.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalKakao;

#[async_trait::async_trait]
impl ChannelClient for LocalKakao {
    fn channel(&self) -> Channel {
        Channel::KakaoChannel
    }

    fn provider(&self) -> ProviderLabel {
        ProviderLabel::local(PROVIDER)
    }

    fn retry_after_timeout_is_safe(&self) -> bool {
        true
    }

    async fn advance(&self, step: &Step<'_>) -> StepOutcome {
        let d = step.delivery;
        let request = keys::local_id("local-sens", &d.event_id, d.channel, d.generation);
        tracing::info!(event_id = %d.event_id, request = %request, provider = "local:kakao-sens",
            "LOCAL Kakao stand-in 'sent' the 친구톡 (demo, no message was sent)");
        StepOutcome::Published {
            external_id: request,
            permalink: String::new(),
            provider_status: "success".to_owned(),
            reach: Some(1),
            views: None,
        }
    }
}
