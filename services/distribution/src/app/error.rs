//! What the owner-facing use cases can fail with.

use kem_kit::store::StoreError;

use crate::domain::{Channel, DeliveryState};
use crate::infra::connections::{ConnectionStoreError, LoginError};
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
    /// The channel publishes without the owner's account.
    #[error("{0} needs no connection: it publishes without your own account")]
    ConnectionNotNeeded(Channel),
    /// Too many connection attempts are pending.
    #[error("too many connection attempts are pending; finish one or wait {minutes} minutes for them to expire")]
    TooManyAttempts {
        /// How long until the oldest expires, at most.
        minutes: u64,
    },
    /// The state is unknown, expired or already used.
    #[error("this connection attempt is unknown, expired or already used; start connecting again")]
    StateUnknown,
    /// The provider reported an error, or refused the code.
    #[error("{channel} did not authorize the connection: {detail}")]
    AuthorizationDenied {
        /// The channel.
        channel: Channel,
        /// What the provider said.
        detail: String,
    },
    /// The owner did not grant a permission publishing needs.
    #[error("{channel} was connected without the permission publishing needs ({}); connect again and allow it", missing.join(", "))]
    MissingPermission {
        /// The channel.
        channel: Channel,
        /// The permissions missing.
        missing: Vec<String>,
    },
    /// The provider could not be reached.
    #[error("{channel} could not be reached to complete the connection; start connecting again")]
    LoginUnavailable {
        /// The channel.
        channel: Channel,
        /// What happened.
        #[source]
        cause: LoginError,
    },
    /// The provider answered outside its contract.
    #[error("{channel} answered the connection unexpectedly")]
    LoginFailed {
        /// The channel.
        channel: Channel,
        /// What happened.
        #[source]
        cause: LoginError,
    },
    /// The Kakao channel is not an active sender profile of the platform's SENS service.
    #[error("Kakao channel {channel_id} cannot send through kem yet: {detail}")]
    SenderNotRegistered {
        /// The channel id (normal form).
        channel_id: String,
        /// Why, and how to register it.
        detail: String,
    },
    /// Another owner has the Kakao channel connected.
    #[error(
        "Kakao channel {channel_id} is already connected to another kem account; if it is yours, ask kem support to \
         move it"
    )]
    AccountTaken {
        /// The channel id (normal form).
        channel_id: String,
    },
    /// A stored token could not be sealed or opened (a key missing after a rotation).
    #[error("a connection token could not be sealed or opened: {0}")]
    Sealing(#[source] ConnectionStoreError),
}

impl From<ConnectionStoreError> for DistributionError {
    fn from(error: ConnectionStoreError) -> Self {
        match error {
            ConnectionStoreError::Store(store) => DistributionError::from(store),
            sealing @ ConnectionStoreError::Seal { .. } => DistributionError::Sealing(sealing),
        }
    }
}

impl From<StoreError> for DistributionError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() { DistributionError::Unavailable(error) } else { DistributionError::Internal(error) }
    }
}
