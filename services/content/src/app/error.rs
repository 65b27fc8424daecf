//! What a read use case can fail with; the gRPC adapter maps each variant to a status.

use super::ports::{BlobError, EventError, RepoError};

/// A resource that can be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// An event's images (another owner's).
    Event,
    /// An image (missing, another owner's, or not public).
    Image,
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Resource::Event => "event",
            Resource::Image => "image",
        })
    }
}

/// A use case failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// Invalid fields (INVALID_ARGUMENT, BadRequest with camelCase fields).
    #[error("invalid request: {}", .0.iter().map(|(f, d)| format!("{f} {d}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, String)>),
    /// Missing, or not the caller's, or not public (NOT_FOUND; never revealing another owner's
    /// resource or an unpublished event's image).
    #[error("{resource} {id:?} not found")]
    NotFound {
        /// What.
        resource: Resource,
        /// Which.
        id: String,
    },
    /// The image's bytes are missing or do not match their checksum (DATA_LOSS).
    #[error("the bytes of image {image_id} are {problem}")]
    DataLoss {
        /// The image.
        image_id: String,
        /// `missing from the blob store` or `corrupt`.
        problem: &'static str,
    },
    /// The stored image cannot be converted to the asked format (too large, not decodable):
    /// FAILED_PRECONDITION.
    #[error("image {image_id} cannot be converted: {problem}")]
    Unconvertible {
        /// The image.
        image_id: String,
        /// Why.
        problem: String,
    },
    /// The database failed: UNAVAILABLE when it is unavailable (retry), else INTERNAL (a bug or
    /// corrupt data; details only in logs).
    #[error(transparent)]
    Storage(#[from] RepoError),
    /// The blob store failed: UNAVAILABLE when it is unavailable (retry), else INTERNAL (details
    /// only in logs).
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The event service could not tell whether an image is public: UNAVAILABLE when it is
    /// unavailable (retry), else INTERNAL (details only in logs).
    #[error(transparent)]
    Event(#[from] EventError),
}

/// What the queue should do with a work message the use case could not finish.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WorkError {
    /// Transient (event service down): deliver again later.
    #[error("retry later: {0}")]
    Retry(String),
    /// The database failed (unavailable, or a defect that may be passing): deliver again later.
    #[error("retry later: {0}")]
    Storage(#[from] RepoError),
    /// The message can never be worked (no job to report to): dead-letter it.
    #[error("rejected: {0}")]
    Reject(String),
}
