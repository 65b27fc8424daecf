//! Publications as the event service records them (`kem.event.v1.EventService/
//! GetEventForDistribution` over the mesh; the contract allows the distribution workload).
//!
//! PublishEvent commits PUBLISHED and the `distribution-jobs` message together and answers; the
//! message reaches this service a moment later. In between, the event service is the only one
//! that knows about the publication, so GetStatus asks it instead of answering "never
//! published". The event service reads the answer from its primary database, never a cache, so
//! it is current whichever replica of either service handles the call; nothing is cached here for
//! the same reason (a publication can happen at any moment, and the lookup only runs until the
//! job has been taken).

use std::time::Duration;

use kem_kit::runtime::{PeerError, Peers};
use kem_proto::kem::event::v1::event_service_client::EventServiceClient;
use kem_proto::kem::event::v1::{EventStatus, GetEventForDistributionRequest};
use tonic::Code;

use crate::domain::Channel;

/// Longest wait for the event service.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// A publication the event service has recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The event.
    pub event_id: String,
    /// Its owner.
    pub owner_id: String,
    /// The channels it was published to.
    pub channels: Vec<Channel>,
    /// When it was published (ms since the epoch).
    pub published_at_ms: i64,
}

/// Why the event service could not tell, kept faithful to what it answered: its client errors
/// stay client errors, and only real unavailability is UNAVAILABLE.
#[derive(Debug, thiserror::Error)]
pub enum PublicationLookupError {
    /// No client to the event service (its address is not known yet, or is invalid).
    #[error("no channel to the event service")]
    NoChannel(#[source] PeerError),
    /// The event service could not be reached or answered with a transient error.
    #[error("the event service is unavailable")]
    Unavailable(#[source] tonic::Status),
    /// The event service refused the event id itself (the caller's mistake).
    #[error("the event service refused the event id")]
    InvalidId(#[source] tonic::Status),
    /// The event service refused us or failed (a defect or a deployment problem).
    #[error("the event service lookup failed")]
    Failed(#[source] tonic::Status),
}

/// What a failed lookup means for the caller.
fn classify(status: tonic::Status) -> PublicationLookupError {
    match status.code() {
        Code::InvalidArgument => PublicationLookupError::InvalidId(status),
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted | Code::Cancelled => {
            PublicationLookupError::Unavailable(status)
        }
        _ => PublicationLookupError::Failed(status),
    }
}

/// The event service reached through the mesh.
#[derive(Clone)]
pub struct MeshPublications {
    peers: Peers,
}

impl std::fmt::Debug for MeshPublications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshPublications").finish_non_exhaustive()
    }
}

impl MeshPublications {
    /// Reaches the `event` peer through `peers`.
    pub fn new(peers: Peers) -> MeshPublications {
        MeshPublications { peers }
    }

    /// The publication of `event_id`, or `None` when the event does not exist or was never
    /// published (an ENDED event was published: its deliveries still go out).
    pub async fn publication(&self, event_id: &str) -> Result<Option<Publication>, PublicationLookupError> {
        let channel = self.peers.channel("event").map_err(PublicationLookupError::NoChannel)?;
        let mut request = tonic::Request::new(GetEventForDistributionRequest { event_id: event_id.to_owned() });
        request.set_timeout(LOOKUP_TIMEOUT);
        let mut client = EventServiceClient::new(channel);
        let answer = match tokio::time::timeout(LOOKUP_TIMEOUT, client.get_event_for_distribution(request)).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) if status.code() == Code::NotFound => return Ok(None),
            Ok(Err(status)) => return Err(classify(status)),
            Err(_) => {
                let status = tonic::Status::deadline_exceeded(format!("no answer within {LOOKUP_TIMEOUT:?}"));
                return Err(PublicationLookupError::Unavailable(status));
            }
        };
        let published = matches!(EventStatus::try_from(answer.status), Ok(EventStatus::Published | EventStatus::Ended));
        let channels: Vec<Channel> = answer.channels.iter().filter_map(|n| Channel::from_number(*n)).collect();
        if !published || channels.is_empty() {
            return Ok(None);
        }
        let published_at_ms = answer
            .publish_time
            .map(|t| {
                t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos.clamp(0, 999_999_999)) / 1_000_000)
            })
            .unwrap_or_default();
        Ok(Some(Publication { event_id: answer.event_id, owner_id: answer.owner_id, channels, published_at_ms }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_statuses_keep_their_meaning() {
        assert!(matches!(classify(tonic::Status::invalid_argument("x")), PublicationLookupError::InvalidId(_)));
        assert!(matches!(classify(tonic::Status::unavailable("x")), PublicationLookupError::Unavailable(_)));
        for status in [tonic::Status::internal("x"), tonic::Status::permission_denied("x"), tonic::Status::unknown("x")]
        {
            assert!(matches!(classify(status), PublicationLookupError::Failed(_)), "never UNAVAILABLE");
        }
    }
}
