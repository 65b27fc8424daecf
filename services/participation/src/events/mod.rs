//! The event facts participation depends on, from the event service's internal
//! `GetEventForParticipation` over the mesh, cached briefly.
//!
//! [`EventDirectory`] is the port the use cases call; [`MeshEvents`] is its implementation: a
//! cache-aside (Redis in production, in-process for `kem up`; single-flight per event, so a burst
//! of entries costs one call) in front of the balanced mTLS client of the event service.
//!
//! Staleness is bounded by the cache TTL and only matters for manual status changes (periods are
//! checked against the clock on every entry). Callers that must see the latest status — draws,
//! anonymization, and an entry refused for a status that may still become PUBLISHED — ask for
//! [`EventDirectory::fresh_facts`], which also refreshes the cache for everyone else.

mod mesh;

pub use mesh::MeshEvents;

use crate::model::event::EventFacts;

/// Why event facts could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// The event service could not be reached or answered with a transient error.
    #[error("the event service is unavailable: {0}")]
    Unavailable(String),
    /// The event service refused us or answered something unusable (a deployment problem).
    #[error("the event service lookup failed: {0}")]
    Failed(String),
}

/// Where event facts come from.
#[async_trait::async_trait]
pub trait EventDirectory: Send + Sync + 'static {
    /// The facts of `event_id` (possibly a few seconds old); `None` when there is no such event.
    async fn facts(&self, event_id: &str) -> Result<Option<EventFacts>, LookupError>;

    /// The facts as the event service has them now.
    async fn fresh_facts(&self, event_id: &str) -> Result<Option<EventFacts>, LookupError>;
}
