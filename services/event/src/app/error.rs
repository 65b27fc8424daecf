//! What a use case can fail with; the gRPC adapter maps each variant to a status with details.

use std::fmt;

use crate::domain::event::EtagMismatch;
use crate::domain::job::JobKind;
use crate::domain::lifecycle::IllegalTransition;
use crate::domain::validation::ValidationError;
use crate::domain::values::Millis;

use super::ports::{CloseEntriesError, PeerError, RepoError};

/// A resource that can be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// An event (or another owner's).
    Event,
    /// A job (or one of another owner's events).
    Job,
    /// A recommendation id not in the latest succeeded recommendations.
    Recommendation,
    /// An image id not produced for this event.
    Image,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resource::Event => "event",
            Resource::Job => "job",
            Resource::Recommendation => "recommendation",
            Resource::Image => "image",
        })
    }
}

/// A use case failure.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Invalid fields (INVALID_ARGUMENT, BadRequest).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Missing, or not the caller's (NOT_FOUND; never revealing another owner's event).
    #[error("{resource} {id:?} not found")]
    NotFound {
        /// What.
        resource: Resource,
        /// Which.
        id: String,
    },
    /// The lifecycle does not allow the action now (FAILED_PRECONDITION naming the status).
    #[error("{source}")]
    Illegal {
        /// The event.
        event_id: String,
        /// The refused transition.
        source: IllegalTransition,
    },
    /// A stale etag (ABORTED).
    #[error("{source}")]
    Etag {
        /// The event.
        event_id: String,
        /// What was sent and what is current.
        source: EtagMismatch,
    },
    /// Concurrent changes kept winning the race (ABORTED; retry).
    #[error("event {event_id} is being changed concurrently; read it again and retry")]
    Contended {
        /// The event or job.
        event_id: String,
    },
    /// Publishing after the period ended (FAILED_PRECONDITION, PERIOD_OVER).
    #[error("the event's period is over (it ended at {end} ms since the epoch); change the period before publishing")]
    PeriodOver {
        /// The event.
        event_id: String,
        /// The period's end.
        end: Millis,
    },
    /// SelectRecommendation before any recommendations job succeeded (FAILED_PRECONDITION).
    #[error(
        "no recommendations job of event {event_id} has succeeded yet; request recommendations and wait for the job"
    )]
    RecommendationsNotReady {
        /// The event.
        event_id: String,
    },
    /// RequestImages without a selected recommendation (FAILED_PRECONDITION).
    #[error("event {event_id} has no selected recommendation; select one before generating images")]
    NoRecommendationSelected {
        /// The event.
        event_id: String,
    },
    /// RequestRecommendations for an event lacking inputs (INVALID_ARGUMENT, EVENT_INCOMPLETE).
    #[error("event {event_id} lacks {} for recommendations; update the event first", missing.join(" and "))]
    EventIncomplete {
        /// The event.
        event_id: String,
        /// Missing fields (proto names).
        missing: Vec<&'static str>,
    },
    /// A worker reported an outcome of the wrong kind (INVALID_ARGUMENT).
    #[error("job {job_id} is a {kind} job; a report of {reported} does not apply to it")]
    WrongJobKind {
        /// The job.
        job_id: String,
        /// Its kind.
        kind: JobKind,
        /// What was reported.
        reported: &'static str,
    },
    /// EndEvent could not have the participation service close the event's entries, so the
    /// event was not ended (UNAVAILABLE when retrying helps, else INTERNAL).
    #[error("the entries of event {event_id} could not be closed; the event was not ended")]
    EntriesNotClosed {
        /// The event.
        event_id: String,
        /// What participation answered.
        source: CloseEntriesError,
    },
    /// PublishEvent could not learn the store's name from the user service, which the terms
    /// need, so nothing was published (UNAVAILABLE when retrying helps, else INTERNAL).
    #[error("the store name for the terms of event {event_id} could not be read; the event was not published")]
    StoreUnknown {
        /// The event.
        event_id: String,
        /// What the user service answered.
        source: PeerError,
    },
    /// PublishEvent to channels that need an account the owner has not connected or must
    /// reconnect (FAILED_PRECONDITION, CHANNEL_NOT_CONNECTED); nothing was published.
    #[error(
        "these channels need your account connected before publishing: {}; connect them (POST \
         /api/v1/channels/connections:start) or publish without them",
        .channels.iter().map(|c| format!("{} ({})", c.channel.as_str(), c.state)).collect::<Vec<_>>().join(", ")
    )]
    ChannelsNotConnected {
        /// The event.
        event_id: String,
        /// Every such channel, with its state and distribution's note.
        channels: Vec<crate::infra::UnusableChannel>,
    },
    /// The database failed: UNAVAILABLE when it is unavailable (retry), else INTERNAL (a bug or
    /// corrupt data; details only in logs).
    #[error(transparent)]
    Storage(#[from] RepoError),
}

impl AppError {
    pub(crate) fn not_found(resource: Resource, id: &str) -> AppError {
        AppError::NotFound { resource, id: id.to_owned() }
    }

    pub(crate) fn illegal(event_id: &str, source: IllegalTransition) -> AppError {
        AppError::Illegal { event_id: event_id.to_owned(), source }
    }
}
