//! The adapters the use cases run on, built on the platform kit: the SQL repository with its
//! transactional outbox, the event cache, the queue-message encoder, store profiles from the user
//! service, the participation service's methods, the job-timeout sweeper and the event scheduler
//! (ending events at the end of their period, drawing auto-draw events), and distribution's check
//! of the owner's channel connections before a publication. Each has one
//! implementation, so the use cases hold them as concrete types (no port traits).

pub mod cache;
pub mod connections;
pub mod messages;
pub mod participation;
pub mod repository;
pub mod scheduler;
pub mod stores;
pub mod sweeper;

pub use cache::CachedEvents;
pub use connections::{MeshConnectionCheck, UnusableChannel};
pub use participation::MeshEntryGate;
pub use repository::SqlEventRepository;
pub use stores::MeshStoreDirectory;

use tonic::Code;

use crate::app::PeerError;

/// A peer's error status as the use cases see it: only "not now" statuses are unavailability
/// (retrying helps); anything else a peer answers for a well-formed request is a defect or a
/// deployment problem, reported as a refusal.
pub(crate) fn peer_error(peer: &'static str, status: tonic::Status) -> PeerError {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted | Code::Cancelled => {
            PeerError::Unavailable { peer, source: Box::new(status) }
        }
        _ => PeerError::Refused { peer, source: Box::new(status) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_statuses_are_unavailable() {
        for status in [tonic::Status::unavailable("x"), tonic::Status::deadline_exceeded("x")] {
            assert!(matches!(peer_error("participation", status), PeerError::Unavailable { .. }));
        }
        for status in
            [tonic::Status::permission_denied("x"), tonic::Status::internal("x"), tonic::Status::invalid_argument("x")]
        {
            assert!(matches!(peer_error("user", status), PeerError::Refused { peer: "user", .. }));
        }
    }
}
