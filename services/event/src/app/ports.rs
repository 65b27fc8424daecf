//! What the use cases need from the outside world, as traits the infrastructure implements.

use crate::domain::event::{Event, Modified};
use crate::domain::job::{Job, JobKind, JobState};
use crate::domain::lifecycle::EventStatus;
use crate::domain::message::Outgoing;
use crate::domain::values::{Millis, StoreProfile};

use super::page::Cursor;

/// A storage failure, as the use cases see it. `Clone` so cache-aside can share one load's error
/// with every caller waiting for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoError {
    /// Transient: the database is unreachable, overloaded or timed out (UNAVAILABLE; retry).
    #[error("the event database is unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt data (INTERNAL).
    #[error("the event database failed: {0}")]
    Failed(String),
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

/// Events and jobs, stored with their outgoing messages in one transaction per call.
#[async_trait::async_trait]
pub trait EventRepository: Send + Sync + 'static {
    /// Inserts a new event and its messages. With `request_id`, an event of the same owner and
    /// key created at or after `request_window_start` is returned instead (and nothing is
    /// stored); an older one releases the key.
    async fn insert_event(
        &self,
        event: &Event,
        request_id: Option<&str>,
        request_window_start: Millis,
        outgoing: &[Outgoing],
    ) -> Result<Inserted, RepoError>;

    /// The event, read from the primary (fresh).
    async fn find_event(&self, id: &str) -> Result<Option<Event>, RepoError>;

    /// The events among `ids` that exist (any order).
    async fn find_events(&self, ids: &[String]) -> Result<Vec<Event>, RepoError>;

    /// One page of an owner's events, newest first (`created_at DESC, id DESC`).
    async fn list_events(&self, query: &ListQuery) -> Result<Vec<Event>, RepoError>;

    /// Stores `change` if the event still has the expected status and version, plus `new_job`
    /// (refused as a conflict when the event already has an active job of that kind) and the
    /// messages, atomically.
    async fn save_event(
        &self,
        change: &Modified,
        new_job: Option<&Job>,
        outgoing: &[Outgoing],
    ) -> Result<Saved, RepoError>;

    /// Deletes `event` (and its jobs) if it still has the same status and version, with the
    /// messages, atomically.
    async fn delete_event(&self, event: &Event, outgoing: &[Outgoing]) -> Result<Saved, RepoError>;

    /// The job, read from the primary.
    async fn find_job(&self, id: &str) -> Result<Option<Job>, RepoError>;

    /// The PENDING or RUNNING job of `kind` of the event, if any (at most one exists).
    async fn active_job(&self, event_id: &str, kind: JobKind) -> Result<Option<Job>, RepoError>;

    /// Up to `limit` SUCCEEDED jobs of `kind` of the event, newest first.
    async fn succeeded_jobs(&self, event_id: &str, kind: JobKind, limit: usize) -> Result<Vec<Job>, RepoError>;

    /// Stores `job` if it is still in state `from`.
    async fn save_job(&self, from: JobState, job: &Job) -> Result<Saved, RepoError>;

    /// Fails every PENDING or RUNNING job whose deadline is at or before `now` with
    /// DEADLINE_EXCEEDED. Returns how many.
    async fn fail_expired_jobs(&self, now: Millis) -> Result<u64, RepoError>;
}

/// Event-by-id reads through a cache (never failing because of the cache).
#[async_trait::async_trait]
pub trait EventCache: Send + Sync + 'static {
    /// The event, from the cache or else from `repository` (then cached).
    async fn event(&self, repository: &dyn EventRepository, id: &str) -> Result<Option<Event>, RepoError>;

    /// Forgets the event after it changed.
    async fn invalidate(&self, id: &str);
}

/// The owners' store profiles (owned by the user service), to enrich work requests.
#[async_trait::async_trait]
pub trait StoreDirectory: Send + Sync + 'static {
    /// The owner's store, or `None` when it cannot be known right now. Never fails and never
    /// takes long: a work request is sent without the profile rather than delayed or refused.
    async fn store_profile(&self, owner_id: &str) -> Option<StoreProfile>;
}

/// No directory (tests, or a deployment without the user service): profiles are never known.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoStoreDirectory;

#[async_trait::async_trait]
impl StoreDirectory for NoStoreDirectory {
    async fn store_profile(&self, _owner_id: &str) -> Option<StoreProfile> {
        None
    }
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

/// The participation service's entry gate of an event (its `CloseEntries`).
#[async_trait::async_trait]
pub trait EntryGate: Send + Sync + 'static {
    /// Closes `event_id`'s entries for good, the event having ended at `ended_at`. `Ok` means
    /// every participation replica refuses entries from now on and a draw will consider only the
    /// entries accepted before. Idempotent.
    async fn close_entries(&self, event_id: &str, ended_at: Millis) -> Result<(), CloseEntriesError>;
}

/// The time: the kit's injected clock (a `ManualClock` in tests about time).
pub use kem_kit::clock::Clock;
