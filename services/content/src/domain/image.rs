//! Generated images, cached renders, and the generation state of each style of an event.

use serde::{Deserialize, Serialize};

use super::failure::Failure;
use super::values::{ImageSize, ImageStyle, Millis, Provenance};

/// Path of the bytes of an image at the edge (owner JWT required).
pub fn content_uri(image_id: &str) -> String {
    format!("/api/v1/images/{image_id}/content")
}

/// A stored image of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Image id (UUID).
    pub id: String,
    /// The event it was made for.
    pub event_id: String,
    /// The event's owner.
    pub owner_id: String,
    /// The job that first produced it.
    pub job_id: String,
    /// Its style.
    pub style: ImageStyle,
    /// Its size and channel.
    pub size: ImageSize,
    /// MIME type (`image/png`).
    pub content_type: String,
    /// Where the bytes are in the blob store.
    pub blob_key: String,
    /// Size of the bytes.
    pub size_bytes: i64,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    /// The prompt sent to the provider.
    pub prompt: String,
    /// Content address of the generation it was made from.
    pub render_key: String,
    /// The provider's seed (0 when unknown).
    pub seed: i64,
    /// Which provider made it.
    pub provenance: Provenance,
    /// Whether it came from the cache instead of a fresh provider call.
    pub cached: bool,
    /// When it was stored.
    pub created_at: Millis,
}

/// A provider's output, remembered by its render key so identical requests are not generated
/// again while it is fresh (24 h).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Render {
    /// The content address of the request (see `prompt::render_key`).
    pub render_key: String,
    /// Where the provider's bytes are.
    pub blob_key: String,
    /// Their MIME type.
    pub content_type: String,
    /// Pixel width of the provider's image.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// Size of the bytes.
    pub size_bytes: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// The provider's seed.
    pub seed: i64,
    /// Who made it.
    pub provenance: Provenance,
    /// When it was made.
    pub created_at: Millis,
}

impl Render {
    /// Whether it may still be used at `now` with lifetime `ttl_ms`.
    pub fn is_fresh(&self, now: Millis, ttl_ms: i64) -> bool {
        self.created_at.saturating_add(ttl_ms) > now
    }
}

/// Generation state of a style of an event (its latest generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GenerationState {
    /// Queued.
    Pending,
    /// Being generated.
    Running,
    /// Every image of the style was made.
    Succeeded,
    /// Some or all of its images could not be made.
    Failed,
}

impl GenerationState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            GenerationState::Pending => "PENDING",
            GenerationState::Running => "RUNNING",
            GenerationState::Succeeded => "SUCCEEDED",
            GenerationState::Failed => "FAILED",
        }
    }

    /// The state stored as `name`.
    pub fn parse(name: &str) -> Option<GenerationState> {
        [GenerationState::Pending, GenerationState::Running, GenerationState::Succeeded, GenerationState::Failed]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// Where one style of an event stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StyleState {
    /// The style.
    pub style: ImageStyle,
    /// Its state.
    pub state: GenerationState,
    /// The job of the latest generation.
    pub job_id: String,
    /// Why it failed (FAILED only).
    pub error: Option<Failure>,
    /// When the state last changed.
    pub updated_at: Millis,
}

/// The encoding a public image is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PublicFormat {
    /// The stored bytes (PNG), unchanged.
    #[default]
    Stored,
    /// Converted to JPEG (Instagram content publishing takes nothing else).
    Jpeg,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_renders_expire() {
        for s in
            [GenerationState::Pending, GenerationState::Running, GenerationState::Succeeded, GenerationState::Failed]
        {
            assert_eq!(GenerationState::parse(s.as_str()), Some(s));
        }
        assert_eq!(content_uri("i-1"), "/api/v1/images/i-1/content");
        let render = Render {
            render_key: "k".into(),
            blob_key: "b".into(),
            content_type: "image/png".into(),
            width: 1,
            height: 1,
            size_bytes: 1,
            sha256: "s".into(),
            seed: 1,
            provenance: Provenance {
                kind: super::super::values::ProviderKind::Local,
                name: "local:stability-ai".into(),
                model: "m".into(),
                request_id: String::new(),
            },
            created_at: 1_000,
        };
        assert!(render.is_fresh(1_999, 1_000));
        assert!(!render.is_fresh(2_000, 1_000));
    }
}
