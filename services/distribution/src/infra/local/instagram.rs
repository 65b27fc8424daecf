//! The built-in Instagram stand-in `kem up` uses without a Graph token.

use crate::domain::{Channel, ProviderLabel, StepOutcome, keys};
use crate::infra::channels::instagram::{PROVIDER, no_image};
use crate::infra::channels::{ChannelClient, Step};

/// The built-in stand-in (`local:instagram-graph`): "publishes" at once with a deterministic
/// media id and a permalink under the reserved `.invalid` domain, so nobody mistakes it for a
/// real post.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalInstagram;

#[async_trait::async_trait]
impl ChannelClient for LocalInstagram {
    fn channel(&self) -> Channel {
        Channel::Instagram
    }

    fn provider(&self) -> ProviderLabel {
        ProviderLabel::local(PROVIDER)
    }

    fn retry_after_timeout_is_safe(&self) -> bool {
        true
    }

    async fn advance(&self, step: &Step<'_>) -> StepOutcome {
        if step.image_url.is_none() {
            return StepOutcome::fail(no_image());
        }
        let d = step.delivery;
        let media = keys::local_id("local-ig", &d.event_id, d.channel, d.generation);
        tracing::info!(event_id = %d.event_id, media = %media, provider = "local:instagram-graph",
            "LOCAL Instagram stand-in 'published' the post (demo, nothing was posted)");
        let permalink = format!("https://local.invalid/instagram/p/{media}");
        StepOutcome::published(media, permalink, "PUBLISHED")
    }
}
