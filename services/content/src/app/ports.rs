//! What the use cases exchange with the adapters they run on (`infra`), and the ports with more
//! than one implementation:
//!
//! - [`BlobStore`]: a local directory (`kem up`) or Azure Blob Storage (production);
//! - [`ImageGenerator`]: Stability AI, or the built-in local renderer (`kem up` without a key);
//! - [`Clock`]: the kit's injected clock.
//!
//! The adapters with one implementation are called directly as concrete types
//! ([`SqlImageRepository`](crate::infra::SqlImageRepository),
//! [`CachedRenders`](crate::infra::CachedRenders), [`PngImaging`](crate::infra::PngImaging),
//! [`MeshEvents`](crate::infra::MeshEvents)); their inputs and errors live here.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kem_kit::store::StoreError;

use crate::domain::failure::Failure;
use crate::domain::prompt::{Caption, Prompt};
use crate::domain::values::{ImageStyle, ProviderKind};

/// A storage failure, as the use cases see it. `Clone` (the store's error is shared) so
/// cache-aside can share one load's error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RepoError {
    /// Transient: the database is unreachable, overloaded or timed out (UNAVAILABLE; retry).
    #[error("the content database is unavailable: {0}")]
    Unavailable(#[source] Arc<StoreError>),
    /// The database failed a statement: a bug or a schema problem (INTERNAL).
    #[error("the content database failed: {0}")]
    Failed(#[source] Arc<StoreError>),
    /// A stored value this version cannot read, or a value it cannot store: a bug or corrupt
    /// data (INTERNAL).
    #[error("the content database failed: {0}")]
    Corrupt(String),
}

/// Result of claiming an event for an owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The event is (now) known to belong to this owner.
    Owned,
    /// The event is known to belong to another owner.
    OwnedByOther(String),
}

/// The failure under a port error (I/O, the HTTP provider, the mesh), kept whole as the error's
/// source so the cause chain reaches the logs, and shared so the error stays `Clone`.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// A blob store failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BlobError {
    /// Unreachable, throttled or failing: try again later (UNAVAILABLE).
    #[error("the blob store is unavailable ({doing}): {source}; it is retried later")]
    Unavailable {
        /// What was being done (`write images/ab/x.png`).
        doing: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// Refused or broken in a way retrying cannot fix (credentials, a bad key, corrupt data).
    #[error("the blob store failed ({doing}): {source}; check the store's credentials, container and permissions")]
    Failed {
        /// What was being done.
        doing: String,
        /// Why.
        #[source]
        source: Cause,
    },
    /// A key that would leave the store (`..`, an absolute path): a defect in the caller.
    #[error("blob key {0:?} is not a plain relative path")]
    BadKey(String),
}

impl BlobError {
    /// [`BlobError::Unavailable`] while `doing`, because of `source`.
    pub fn unavailable(doing: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> BlobError {
        BlobError::Unavailable { doing: doing.into(), source: Arc::new(source) }
    }

    /// [`BlobError::Failed`] while `doing`, because of `source`.
    pub fn failed(doing: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> BlobError {
        BlobError::Failed { doing: doing.into(), source: Arc::new(source) }
    }
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

/// The mesh's or the transport's error under a [`ReportError`] (a gRPC status, a missing peer, no
/// answer in time).
pub type ReportCause = Box<dyn std::error::Error + Send + Sync>;

/// Why a report to the event service did not land; the source is what the mesh answered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The job no longer exists (its event was deleted): drop the work.
    #[error("the job is gone at the event service (its event was deleted): {0}")]
    JobGone(#[source] ReportCause),
    /// The event service refused the report as invalid: retrying the same report cannot help.
    #[error("the event service refused the report (retrying the same report cannot help): {0}")]
    Rejected(#[source] ReportCause),
    /// The event service could not be reached or failed: retry later.
    #[error("the event service is unavailable (the report is retried later): {0}")]
    Unavailable(#[source] ReportCause),
}

/// Why the event service could not say whether an event is published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event service could not be reached or answered with a transient error (UNAVAILABLE;
    /// retry).
    #[error("the event service is unavailable: {0}")]
    Unavailable(String),
    /// The event service refused the question or failed: a defect or a deployment problem
    /// (INTERNAL; details only in logs).
    #[error("the event service lookup failed: {0}")]
    Failed(String),
}

/// The time: the kit's injected clock (the context's; a `ManualClock` in tests about time).
pub use kem_kit::clock::Clock;
