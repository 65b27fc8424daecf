//! What a participation use case can fail with. The gRPC adapter turns each variant into a gRPC
//! status with `google.rpc` details (`api::status`).

use std::sync::Arc;

use crate::domain::event::{Closed, EventStatus};
use crate::domain::violation::{FieldViolation, Violations};
use crate::infra::events::LookupError;
use crate::infra::pii::PiiError;
use crate::infra::repository::RepositoryError;

/// What an internal error came from, shared so that a use-case error stays cloneable.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// A failed use case.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ParticipationError {
    /// Request fields are invalid (BadRequest).
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Violations),
    /// No such event, or another owner's.
    #[error("event not found")]
    EventNotFound,
    /// Entries are not accepted now.
    #[error("the event does not accept entries now ({})", .0.code())]
    EventNotOpen(Closed),
    /// Entries were closed because winners were drawn.
    #[error("entries are closed: winners were drawn")]
    EntriesClosed,
    /// A first-come event has all its entries.
    #[error("the event already has its {capacity} entries")]
    EventFull {
        /// The capacity (prize winner count).
        capacity: u32,
    },
    /// This phone already entered the event.
    #[error("this phone number already entered the event")]
    DuplicateEntry,
    /// Winners can only be drawn for an ENDED event.
    #[error("the event is {} and not ended", .0.contract_name())]
    EventNotEnded(EventStatus),
    /// Nothing to draw from.
    #[error("the event has no eligible entries")]
    NoEntries,
    /// Winners were drawn already and redraw was not asked for.
    #[error("winners were already drawn (draw {draw_id})")]
    AlreadyDrawn {
        /// The current draw.
        draw_id: String,
    },
    /// The event is still PUBLISHED (anonymization).
    #[error("the event is still published")]
    EventActive,
    /// The event service cannot be reached (or answered with a transient error).
    #[error("event service unavailable")]
    EventServiceUnavailable(#[source] LookupError),
    /// The event service refused us or failed: a defect or a deployment problem (INTERNAL, never
    /// UNAVAILABLE).
    #[error("event lookup failed")]
    EventLookupFailed(#[source] LookupError),
    /// A dependency (the database) failed in a way that may pass.
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[source] Arc<RepositoryError>),
    /// A defect, a broken invariant or a deployment problem.
    #[error("internal error: {0}")]
    Internal(#[source] Cause),
}

fn describe(violations: &Violations) -> String {
    violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ")
}

impl ParticipationError {
    /// A defect, a broken invariant or a deployment problem caused by `cause` (an error, or a
    /// message).
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ParticipationError {
        ParticipationError::Internal(Arc::from(cause.into()))
    }

    /// One field violation.
    pub fn field(field: &str, description: impl Into<String>) -> ParticipationError {
        ParticipationError::InvalidArgument(FieldViolation::new(field, description).into())
    }
}

impl From<Violations> for ParticipationError {
    fn from(violations: Violations) -> Self {
        ParticipationError::InvalidArgument(violations)
    }
}

impl From<RepositoryError> for ParticipationError {
    fn from(error: RepositoryError) -> Self {
        if error.is_transient() {
            ParticipationError::Unavailable(Arc::new(error))
        } else {
            ParticipationError::internal(error)
        }
    }
}

impl From<LookupError> for ParticipationError {
    /// Faithful to what the event service said: its client errors stay the caller's.
    fn from(error: LookupError) -> Self {
        match error {
            LookupError::Unavailable(_) => ParticipationError::EventServiceUnavailable(error),
            LookupError::InvalidId(_) => ParticipationError::field("eventId", "is not a valid event id"),
            LookupError::Failed(_) => ParticipationError::EventLookupFailed(error),
        }
    }
}

impl From<PiiError> for ParticipationError {
    fn from(error: PiiError) -> Self {
        ParticipationError::internal(error)
    }
}
