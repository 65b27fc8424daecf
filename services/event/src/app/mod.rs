//! The use cases of the event service, one method of [`EventApp`] per RPC, grouped by what they
//! do:
//!
//! - [`edit`]: the owner creates, updates and deletes an event;
//! - [`lifecycle`]: the owner moves an event along its lifecycle (selecting a recommendation and
//!   an image, publishing, ending);
//! - [`jobs`]: asynchronous jobs — requesting recommendations and images, workers' reports,
//!   polling, and failing the jobs past their deadline;
//! - [`queries`]: reads — the owner's list and event, and the mesh-internal reads of
//!   participation and distribution;
//! - [`public`]: the public view of a published event (GetPublicEvent);
//! - [`schedule`]: what the scheduler does on its own — ending events at the end of their period
//!   and drawing the winners of auto-draw events, each event claimed by one replica;
//! - [`ports`]: what they exchange with the adapters, [`error`]: how they fail, [`page`]: the
//!   ListEvents page token, [`ids`]: new ids.
//!
//! Every write follows the same shape: read the event from the primary, let the domain decide
//! (lifecycle, validation), then store the new version *guarded* by the status and version read
//! (`UPDATE … WHERE status = $s AND version = $v`) together with any new job and the outgoing
//! messages in one transaction. When a concurrent request won the race the guard finds nothing,
//! and the use case starts over from a fresh read (a bounded number of times), so two requests can
//! never both move an event, and a stale etag is reported as ABORTED.

pub mod edit;
pub mod error;
pub mod ids;
pub mod jobs;
pub mod lifecycle;
pub mod page;
pub mod ports;
pub mod public;
pub mod queries;
pub mod schedule;

use std::sync::Arc;
use std::time::Duration;

pub use edit::UpdateCommand;
pub use error::{AppError, Resource};
pub use ports::{
    AutoDrawOutcome, Clock, CloseEntriesError, Due, Inserted, Lease, ListQuery, PeerError, RepoError, Saved,
    ScheduledDraw,
};
pub use public::PublicView;
pub use queries::{BATCH_MAX, Batch, EventPage};
pub use schedule::ScheduleReport;

use crate::domain::event::{Event, Modified};
use crate::domain::job::Job;
use crate::domain::message::Outgoing;
use crate::domain::validation::ValidationError;
use crate::infra::{CachedEvents, MeshConnectionCheck, MeshEntryGate, MeshStoreDirectory, SqlEventRepository};

/// How many times a write starts over after losing a race before answering ABORTED.
const MAX_ATTEMPTS: usize = 5;

/// Tunables of the use cases.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// A job not finished this long after its creation is failed with DEADLINE_EXCEEDED.
    pub job_timeout: Duration,
    /// Suggested delay between GetJob polls of an unfinished job.
    pub job_poll_interval: Duration,
    /// ListEvents page size when none is asked for.
    pub default_page_size: usize,
    /// Largest ListEvents page; larger requests are coerced down.
    pub max_page_size: usize,
    /// Base of the public links (`https://kem.example`, no trailing slash).
    pub public_base_url: String,
    /// How long after an auto-draw event ends its winners are drawn.
    pub auto_draw_delay: Duration,
}

/// The event service's use cases, over its adapters.
pub struct EventApp {
    repository: SqlEventRepository,
    cache: CachedEvents,
    stores: MeshStoreDirectory,
    entries: MeshEntryGate,
    connections: MeshConnectionCheck,
    clock: Arc<dyn Clock>,
    settings: AppSettings,
}

impl std::fmt::Debug for EventApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventApp").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn require_id(field: &str, id: &str) -> Result<(), AppError> {
    if id.trim().is_empty() { Err(ValidationError::one(field, "is required").into()) } else { Ok(()) }
}

impl EventApp {
    /// Use cases over the given adapters: events and jobs in `repository` (read by id through
    /// `cache`), owners' store profiles from `stores`, participation's entry gate `entries`, distribution's connection check `connections`,
    /// and "now" from `clock`.
    pub fn new(
        repository: SqlEventRepository,
        cache: CachedEvents,
        stores: MeshStoreDirectory,
        entries: MeshEntryGate,
        connections: MeshConnectionCheck,
        clock: Arc<dyn Clock>,
        settings: AppSettings,
    ) -> EventApp {
        EventApp { repository, cache, stores, entries, connections, clock, settings }
    }

    /// The settings in force.
    pub fn settings(&self) -> &AppSettings {
        &self.settings
    }

    /// The owner's event, read fresh from the primary (for writes).
    async fn load_owned(&self, owner: &str, event_id: &str) -> Result<Event, AppError> {
        match self.load(event_id).await? {
            event if event.owner_id == owner => Ok(event),
            _ => Err(AppError::not_found(Resource::Event, event_id)),
        }
    }

    /// Any owner's event, read fresh from the primary (for the system's writes).
    async fn load(&self, event_id: &str) -> Result<Event, AppError> {
        require_id("eventId", event_id)?;
        self.repository.find_event(event_id).await?.ok_or_else(|| AppError::not_found(Resource::Event, event_id))
    }

    fn check_etag(event: &Event, etag: &str) -> Result<(), AppError> {
        event.check_etag(etag).map_err(|source| AppError::Etag { event_id: event.id.clone(), source })
    }

    /// Stores a modification with its analytics fact (when the status changed) and `extra`
    /// messages; `Ok(None)` when a concurrent change won (start over).
    async fn save(
        &self,
        modified: Modified,
        new_job: Option<&Job>,
        mut outgoing: Vec<Outgoing>,
    ) -> Result<Option<Event>, AppError> {
        if let Some((from, _)) = modified.status_change() {
            outgoing.push(Outgoing::StateChanged { from: Some(from), event: modified.event.clone() });
        }
        match self.repository.save_event(&modified, new_job, &outgoing).await? {
            Saved::Done => {
                self.cache.invalidate(&modified.event.id).await;
                Ok(Some(modified.event))
            }
            Saved::Conflict => Ok(None),
        }
    }
}
