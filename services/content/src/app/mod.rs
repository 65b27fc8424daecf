//! The use cases, one method of [`ContentApp`] per RPC or message, grouped by what they do:
//!
//! - [`queries`]: listing and serving an event's images (owner-scoped), serving the public image
//!   of a published event, and the image metadata the event service checks;
//! - [`generation`]: working a `content-generation` request end to end;
//! - [`media`]: the renditions of the edge's public media route (original, JPEG, Instagram feed);
//! - [`ports`]: what they exchange with the adapters (and the two ports with more than one
//!   implementation: blob stores and image generators), [`error`]: how they fail,
//!   [`metrics`]: their counters.

pub mod error;
pub mod generation;
pub mod media;
pub mod metrics;
pub mod ports;
pub mod queries;

use std::sync::Arc;
use std::time::Duration;

use kem_kit::cache::CacheAside;

pub use error::{AppError, Resource, WorkError};
pub use generation::JobDisposition;
pub use ports::{
    BlobError, BlobStore, Claim, Clock, EventError, Generated, GeneratorLabel, ImageGenerator, ImagingError,
    RenderRequest, RepoError, ReportError,
};

use crate::infra::{CachedRenders, MeshEvents, PngImaging, SqlImageRepository};

/// Settings of the use cases.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// How long a render is reused for an identical request (24 h).
    pub render_ttl: Duration,
    /// Images of one job generated at once.
    pub parallelism: usize,
    /// Most time one image may take at the provider, retries included (the job's deadline
    /// shortens it).
    pub image_budget: Duration,
    /// Inbox consumer name of the `content-generation` worker.
    pub consumer: String,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            render_ttl: Duration::from_secs(24 * 3_600),
            parallelism: 3,
            image_budget: Duration::from_secs(30),
            consumer: "content".to_owned(),
        }
    }
}

/// The content service's use cases over its ports.
#[derive(Clone)]
pub struct ContentApp {
    pub(crate) repository: Arc<SqlImageRepository>,
    pub(crate) renders: CachedRenders,
    pub(crate) blobs: Arc<dyn BlobStore>,
    pub(crate) generator: Arc<dyn ImageGenerator>,
    pub(crate) imaging: PngImaging,
    pub(crate) events: MeshEvents,
    pub(crate) public_images: CacheAside,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) settings: AppSettings,
    pub(crate) metrics: Arc<metrics::ContentMetrics>,
}

/// The adapters [`ContentApp`] runs on.
pub struct Ports {
    /// Images, states, progress.
    pub repository: Arc<SqlImageRepository>,
    /// Cached renders.
    pub renders: CachedRenders,
    /// Image bytes.
    pub blobs: Arc<dyn BlobStore>,
    /// The image provider.
    pub generator: Arc<dyn ImageGenerator>,
    /// Pixel work.
    pub imaging: PngImaging,
    /// The event service (job reports, publications).
    pub events: MeshEvents,
    /// Which images are public (positive decisions only, see [`queries`]).
    pub public_images: CacheAside,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

impl ContentApp {
    /// The use cases over `ports`.
    pub fn new(ports: Ports, settings: AppSettings) -> ContentApp {
        ContentApp {
            repository: ports.repository,
            renders: ports.renders,
            blobs: ports.blobs,
            generator: ports.generator,
            imaging: ports.imaging,
            events: ports.events,
            public_images: ports.public_images,
            clock: ports.clock,
            settings,
            metrics: Arc::default(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &AppSettings {
        &self.settings
    }

    /// The use cases' counters.
    pub fn metrics(&self) -> &Arc<metrics::ContentMetrics> {
        &self.metrics
    }

    /// Who generates images.
    pub fn generator(&self) -> GeneratorLabel {
        self.generator.label()
    }

    /// Where bytes are stored.
    pub fn blob_store(&self) -> &'static str {
        self.blobs.kind()
    }
}

impl std::fmt::Debug for ContentApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContentApp")
            .field("generator", &self.generator.label().name)
            .field("blobs", &self.blobs.kind())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
