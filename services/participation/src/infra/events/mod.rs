//! The event facts participation depends on, from the event service's internal
//! `GetEventForParticipation` over the mesh, cached briefly.
//!
//! [`MeshEvents`] is what the use cases call: a cache-aside (Redis in production, in-process for
//! `kem up`; single-flight per event, so a burst of entries costs one call) in front of the
//! balanced mTLS client of the event service.
//!
//! Staleness is bounded by the cache TTL and only matters for manual status changes (periods are
//! checked against the clock on every entry), and never for the end of an event: EndEvent closes
//! the entry gate in participation's own database before it answers
//! ([`repository::gate`](crate::infra::repository::gate)), so an entry is refused at once whatever
//! the cache says. Callers that must see the latest status — draws, anonymization, and an entry
//! refused for a status that may still become PUBLISHED — ask for [`MeshEvents::fresh_facts`],
//! which also refreshes the cache for everyone else.

mod mesh;

use std::sync::Arc;

pub use mesh::MeshEvents;

use kem_kit::runtime::PeerError;

/// What went wrong reaching the event service: no channel could be made, or its answer.
/// Cloneable, because one lookup's outcome is shared with every entry waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerFailure {
    /// No client to the event service (its address is not known yet, or is invalid).
    #[error("no channel to the event service")]
    NoChannel(#[source] Arc<PeerError>),
    /// The event service (or the mesh on its behalf) answered with this status.
    #[error("the event service answered {:?}: {}", .0.code(), .0.message())]
    Status(#[source] tonic::Status),
}

/// Why event facts could not be had. Each variant says what the caller of participation should
/// hear: the event service's own client errors stay client errors, and only real unavailability
/// is UNAVAILABLE (which the edge counts against participation's health).
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    /// The event service could not be reached or answered with a transient error.
    #[error("the event service is unavailable")]
    Unavailable(#[source] PeerFailure),
    /// The event service refused the event id itself (INVALID_ARGUMENT): the caller's mistake.
    #[error("the event service refused the event id")]
    InvalidId(#[source] PeerFailure),
    /// The event service refused us or failed (a defect or a deployment problem).
    #[error("the event service lookup failed")]
    Failed(#[source] PeerFailure),
}
