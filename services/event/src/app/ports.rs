//! What the use cases exchange with the adapters they run on (`infra`): the outcomes of storage
//! calls and the errors of storage and of the participation service, and the kit's injected
//! clock.
//!
//! The use cases call the adapters directly ([`SqlEventRepository`](crate::infra::SqlEventRepository),
//! [`CachedEvents`](crate::infra::CachedEvents), [`MeshStoreDirectory`](crate::infra::MeshStoreDirectory),
//! [`MeshEntryGate`](crate::infra::MeshEntryGate)): each has one implementation, and the tests run
//! the service on real databases and in-process peers. The clock is the one trait, so tests about
//! time move a `ManualClock`.

use std::sync::Arc;

use kem_kit::store::StoreError;

use crate::domain::event::Event;
use crate::domain::lifecycle::EventStatus;
use crate::domain::values::Millis;

use super::page::Cursor;

/// A storage failure, as the use cases see it. `Clone` (the store's error is shared) so
/// cache-aside can share one load's error with every caller waiting for it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RepoError {
    /// Transient: the database is unreachable, overloaded or timed out (UNAVAILABLE; retry).
    #[error("the event database is unavailable: {0}")]
    Unavailable(#[source] Arc<StoreError>),
    /// The database failed a statement: a bug or a schema problem (INTERNAL).
    #[error("the event database failed: {0}")]
    Failed(#[source] Arc<StoreError>),
    /// A stored value this version cannot read, or a value it cannot store: a bug or corrupt
    /// data (INTERNAL).
    #[error("the event database failed: {0}")]
    Corrupt(String),
}

/// Result of inserting an event with an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// The event was stored (and its messages enqueued).
    Created,
    /// An event with the same owner and request id exists: this one.
    Existing(Box<Event>),
}

/// Result of a guarded write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Stored (with its messages).
    Done,
    /// The row was no longer as read (concurrent change); nothing was stored.
    Conflict,
}

/// One page of an owner's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Whose events.
    pub owner_id: String,
    /// Only this status, if set.
    pub status: Option<EventStatus>,
    /// Start after this position (newest first).
    pub after: Option<Cursor>,
    /// Most rows to return.
    pub limit: usize,
}

/// Why a peer service (participation, user) did not give an answer a use case needs. Either way
/// nothing is known to have happened there, so the use case changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// It could not be reached or answered with a transient error: retrying helps.
    #[error("the {peer} service is unavailable")]
    Unavailable {
        /// Which service.
        peer: &'static str,
        /// What the call failed with.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// It refused the call (a defect or a deployment problem, e.g. the mesh policy).
    #[error("the {peer} service refused the call")]
    Refused {
        /// Which service.
        peer: &'static str,
        /// What it answered.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Why the participation service did not confirm that an event's entries are closed (EndEvent
/// does not end the event then).
pub type CloseEntriesError = PeerError;

/// What participation answered the scheduler's DrawWinnersOnSchedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduledDraw {
    /// The event has a draw: made by this call (`drawn_now`) or already before.
    Drawn {
        /// Whether this call made it.
        drawn_now: bool,
    },
    /// Nobody entered: there is nothing to draw (FAILED_PRECONDITION `NO_ENTRIES`).
    NoEntries,
}

/// How the scheduler settled an auto-draw event (stored; attempted once per event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoDrawOutcome {
    /// This scheduler's call made the draw.
    Drawn,
    /// The event had a draw already (the owner's, or an earlier call's).
    AlreadyDrawn,
    /// Nobody entered: nothing to draw.
    NoEntries,
    /// participation refused the draw (a defect or a deployment problem; the owner can still
    /// draw by hand).
    Failed,
}

impl AutoDrawOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoDrawOutcome::Drawn => "DRAWN",
            AutoDrawOutcome::AlreadyDrawn => "ALREADY_DRAWN",
            AutoDrawOutcome::NoEntries => "NO_ENTRIES",
            AutoDrawOutcome::Failed => "FAILED",
        }
    }
}

/// Work the scheduler looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// A PUBLISHED event whose period is over, to be ended.
    End,
    /// An ENDED auto-draw event not settled yet that ended at or before `ended_before`, to be
    /// drawn.
    Draw {
        /// The latest end of an event due (now − the auto-draw delay).
        ended_before: Millis,
    },
    /// An ENDED event whose participants' data is not anonymized yet and whose retention ran out
    /// after its end (or after a draw the scheduler learned of), its auto draw settled.
    Anonymize,
}

/// A scheduler replica's claim on an event: no other replica works on it until `until` (or until
/// it is released).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The scheduler replica.
    pub worker: String,
    /// When the claim is made.
    pub now: Millis,
    /// When it expires if the worker never releases it (a crashed replica).
    pub until: Millis,
}

/// The time: the kit's injected clock (a `ManualClock` in tests about time).
pub use kem_kit::clock::Clock;
