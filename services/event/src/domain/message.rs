//! The messages the event service sends, as domain facts. The infrastructure encodes them (the
//! `kem.messaging.v1` contract) and writes them to the outbox in the transaction that stores the
//! change they describe.

use super::event::Event;
use super::job::Job;
use super::lifecycle::EventStatus;
use super::values::{Channel, Millis, StoreProfile};

/// A message to send once the change it belongs to commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// Ask the AI service for recommendations (`ai-event-generation`).
    GenerateRecommendations {
        /// The new job.
        job: Job,
        /// The event as it is when the job starts.
        event: Event,
        /// The owner's store, when the user service could tell.
        store: Option<StoreProfile>,
    },
    /// Ask the content service for images (`content-generation`).
    GenerateImages {
        /// The new job.
        job: Job,
        /// The event as it is when the job starts.
        event: Event,
        /// The owner's store, when the user service could tell.
        store: Option<StoreProfile>,
    },
    /// Deliver a published event to its channels (`distribution-jobs`).
    Distribute {
        /// The event as published.
        event: Event,
        /// The entry link of each channel it was published to (`<public base>/e/<id>?ch=<slug>`),
        /// in channel order: the public view's `channel_links`.
        entry_links: Vec<(Channel, String)>,
    },
    /// The event changed status (`analytics-aggregation`); `from` is `None` for a creation.
    StateChanged {
        /// Status before.
        from: Option<EventStatus>,
        /// The event after the change.
        event: Event,
    },
    /// A DRAFT event was deleted (`analytics-aggregation`).
    Deleted {
        /// The event as it was.
        event: Event,
        /// When.
        at: Millis,
    },
}
