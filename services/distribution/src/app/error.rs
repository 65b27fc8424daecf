//! What the owner-facing use cases can fail with.

use kem_kit::store::StoreError;

use crate::domain::{Channel, DeliveryState};
use crate::infra::publications::PublicationLookupError;

/// One invalid field of a request (REST field name, camelCase, as clients see it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field path, e.g. `channels[1]`.
    pub field: String,
    /// What is wrong.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> FieldViolation {
        FieldViolation { field: field.into(), description: description.into() }
    }
}

/// Why GetStatus or Retry failed.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// The request is malformed.
    #[error("invalid request: {}", .0.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; "))]
    InvalidArgument(Vec<FieldViolation>),
    /// The caller has no published event by that id.
    #[error("event {0} has no deliveries")]
    EventNotFound(String),
    /// The event was not published to a named channel.
    #[error("event {event_id} was not published to {channel}")]
    ChannelNotPublished {
        /// The event.
        event_id: String,
        /// The channel named.
        channel: Channel,
    },
    /// A named channel is not FAILED, so there is nothing to retry.
    #[error("the {channel} delivery is {} and only FAILED deliveries can be retried", state.as_str())]
    NotFailed {
        /// The channel.
        channel: Channel,
        /// Its state.
        state: DeliveryState,
    },
    /// The event's period is over.
    #[error("event {0} has ended")]
    EventEnded(String),
    /// The event service, asked about a publication whose job has not arrived, cannot be
    /// reached now.
    #[error("event service unavailable")]
    EventServiceUnavailable(#[source] PublicationLookupError),
    /// The event service refused the lookup or failed (a defect or a deployment problem).
    #[error("event lookup failed")]
    EventLookupFailed(#[source] PublicationLookupError),
    /// The database cannot be reached now.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] StoreError),
    /// A defect (the database refused a statement, or a value could not be read).
    #[error("internal error: {0}")]
    Internal(#[source] StoreError),
}

impl From<StoreError> for DistributionError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() { DistributionError::Unavailable(error) } else { DistributionError::Internal(error) }
    }
}
