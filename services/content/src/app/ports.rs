//! What the use cases need from the outside world, as traits the infrastructure implements.

use std::time::Duration;

use bytes::Bytes;

use crate::domain::failure::Failure;
use crate::domain::image::{Image, Render, StyleState};
use crate::domain::outcome::JobOutcome;
use crate::domain::prompt::{Caption, Prompt};
use crate::domain::values::{ImageSize, ImageStyle, Millis, ProviderKind};

/// A storage failure, as the use cases see it. `Clone` so cache-aside can share one load's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// Transient: the database is unreachable, overloaded or timed out (UNAVAILABLE; retry).
    #[error("the content database is unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt data (INTERNAL).
    #[error("the content database failed: {0}")]
    Failed(String),
}

/// Result of claiming an event for an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The event is (now) known to belong to this owner.
    Owned,
    /// The event is known to belong to another owner.
    OwnedByOther(String),
}

/// Images, renders, style states and job progress, in the service's database.
#[async_trait::async_trait]
pub trait ImageRepository: Send + Sync + 'static {
    /// Records that `event_id` belongs to `owner_id` (first request), or tells who owns it.
    async fn claim_event(&self, event_id: &str, owner_id: &str, now: Millis) -> Result<Claim, RepoError>;

    /// The owner of `event_id`, if content has heard of the event.
    async fn event_owner(&self, event_id: &str) -> Result<Option<String>, RepoError>;

    /// Upserts the generation state of some styles of an event.
    async fn save_style_states(&self, event_id: &str, states: &[StyleState]) -> Result<(), RepoError>;

    /// The generation state of each style of an event that has one, in style order.
    async fn style_states(&self, event_id: &str) -> Result<Vec<StyleState>, RepoError>;

    /// The images already recorded for `job_id`, by slot key (progress of an earlier delivery).
    async fn job_images(&self, job_id: &str) -> Result<Vec<(String, Image)>, RepoError>;

    /// An image of `event_id` made for the same style, size and render (a re-request reuses it).
    async fn reusable_image(
        &self,
        event_id: &str,
        style: ImageStyle,
        size: &ImageSize,
        render_key: &str,
    ) -> Result<Option<Image>, RepoError>;

    /// Records `image` as the result of `slot` of `job_id`, inserting it when `new`. Exactly one
    /// image per job and slot: when another delivery recorded the slot first, nothing is inserted
    /// and that image is returned.
    async fn record_image(&self, job_id: &str, slot: &str, image: &Image, new: bool) -> Result<Image, RepoError>;

    /// The images of an event, newest first, optionally of one style.
    async fn list_images(&self, event_id: &str, style: Option<ImageStyle>) -> Result<Vec<Image>, RepoError>;

    /// One image.
    async fn find_image(&self, image_id: &str) -> Result<Option<Image>, RepoError>;

    /// The render stored under `render_key`, fresh or not.
    async fn find_render(&self, render_key: &str) -> Result<Option<Render>, RepoError>;

    /// Stores (or replaces) a render.
    async fn save_render(&self, render: &Render) -> Result<(), RepoError>;

    /// Forgets renders made before `before`. Returns how many.
    async fn purge_renders(&self, before: Millis) -> Result<u64, RepoError>;

    /// Whether the work message `message_id` was finished by `consumer`.
    async fn job_finished(&self, consumer: &str, message_id: &str) -> Result<bool, RepoError>;

    /// Marks the work message finished (inbox) and stores the final style states, atomically.
    /// `false` when it was already finished (nothing stored).
    async fn finish_job(
        &self,
        consumer: &str,
        message_id: &str,
        event_id: &str,
        states: &[StyleState],
    ) -> Result<bool, RepoError>;
}

/// Renders by key, through a cache (never failing because of the cache).
#[async_trait::async_trait]
pub trait RenderIndex: Send + Sync + 'static {
    /// The render under `key`, if stored (fresh or not).
    async fn find(&self, key: &str) -> Result<Option<Render>, RepoError>;

    /// Stores a render and caches it.
    async fn save(&self, render: &Render) -> Result<(), RepoError>;
}

/// A blob store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// Unreachable, throttled or failing: try again later (UNAVAILABLE).
    #[error("the blob store is unavailable: {0}")]
    Unavailable(String),
    /// Refused or broken in a way retrying cannot fix (credentials, a bad key, corrupt data).
    #[error("the blob store failed: {0}")]
    Failed(String),
}

/// Where image bytes live: a local directory (`kem up`) or Azure Blob Storage (production).
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// `local-dir` or `azure-blob`, for logs.
    fn kind(&self) -> &'static str;

    /// Stores `bytes` under `key` (a content address: storing the same key again is a no-op).
    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), BlobError>;

    /// The bytes under `key`; `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError>;
}

/// One generation asked of an image provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderRequest {
    /// What to draw.
    pub prompt: Prompt,
    /// The text the local renderer draws.
    pub caption: Caption,
    /// The style.
    pub style: ImageStyle,
    /// The size the image is for.
    pub width: u32,
    /// The size the image is for.
    pub height: u32,
    /// The provider aspect ratio closest to the size (`4:5`).
    pub aspect_ratio: String,
    /// The seed.
    pub seed: i64,
}

/// A provider's image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The bytes.
    pub bytes: Bytes,
    /// Their MIME type (`image/png`).
    pub content_type: String,
    /// Pixel width.
    pub width: u32,
    /// Pixel height.
    pub height: u32,
    /// The seed used (0 when unknown).
    pub seed: i64,
    /// The provider's request id (empty when none).
    pub request_id: String,
}

/// Who an image generator is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorLabel {
    /// Real or local.
    pub kind: ProviderKind,
    /// `stability-ai` or `local:stability-ai`.
    pub name: String,
    /// Model or renderer version.
    pub model: String,
}

/// An image provider: Stability AI, or the built-in local renderer.
#[async_trait::async_trait]
pub trait ImageGenerator: Send + Sync + 'static {
    /// Who it is (provenance of its images).
    fn label(&self) -> GeneratorLabel;

    /// Whether it renders exactly the requested pixel size (the local renderer), rather than an
    /// aspect ratio whose output is then fitted to each size (Stability AI).
    fn renders_exact_size(&self) -> bool;

    /// Generates one image within `budget` (retries included).
    async fn generate(&self, request: &RenderRequest, budget: Duration) -> Result<Generated, Failure>;
}

/// A decoded image could not be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("image processing failed: {0}")]
pub struct ImagingError(pub String);

/// Pixel work: fitting a provider image to a channel's exact size.
#[async_trait::async_trait]
pub trait Imaging: Send + Sync + 'static {
    /// `bytes` (PNG) scaled to cover `width`×`height` and centre-cropped, as PNG.
    async fn fit(&self, bytes: Bytes, width: u32, height: u32) -> Result<Bytes, ImagingError>;
}

/// Why a report to the event service did not land.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// The job no longer exists (its event was deleted): drop the work.
    #[error("the job is gone: {0}")]
    JobGone(String),
    /// The event service refused the report as invalid: retrying the same report cannot help.
    #[error("the event service refused the report: {0}")]
    Rejected(String),
    /// The event service could not be reached or failed: retry later.
    #[error("the event service is unavailable: {0}")]
    Unavailable(String),
}

/// Reports job progress and outcomes to the event service.
#[async_trait::async_trait]
pub trait JobReporter: Send + Sync + 'static {
    /// The worker started the job.
    async fn started(&self, job_id: &str, now: Millis) -> Result<(), ReportError>;

    /// The job's outcome (images, or a failure).
    async fn finished(&self, job_id: &str, outcome: &JobOutcome) -> Result<(), ReportError>;

    /// The job failed before any image was attempted (an invalid request).
    async fn failed(&self, job_id: &str, failure: &Failure) -> Result<(), ReportError>;
}

/// The time, injectable so tests control it.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now(&self) -> Millis;
}
