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

/// Why the participation service did not confirm that an event's entries are closed. Either way
/// nothing is known to be closed, so EndEvent does not end the event.
#[derive(Debug, thiserror::Error)]
pub enum CloseEntriesError {
    /// It could not be reached or answered with a transient error: retrying helps.
    #[error("the participation service is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// It refused the call (a defect or a deployment problem, e.g. the mesh policy).
    #[error("the participation service refused to close the entries")]
    Refused(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The time: the kit's injected clock (a `ManualClock` in tests about time).
pub use kem_kit::clock::Clock;
