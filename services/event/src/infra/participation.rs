//! The participation service's entry gate over the mesh
//! (`kem.participation.v1.ParticipationService/CloseEntries`, which the contract allows for the
//! event workload only). EndEvent calls it before it commits, so "ENDED" is never answered while
//! a participation replica could still accept an entry.

use std::time::Duration;

use kem_kit::runtime::Peers;
use kem_proto::kem::participation::v1::CloseEntriesRequest;
use kem_proto::kem::participation::v1::participation_service_client::ParticipationServiceClient;
use tonic::Code;

use crate::app::CloseEntriesError;
use crate::domain::values::Millis;

/// Longest wait for participation. Closing waits only for the entries in flight at that moment,
/// so an answer comes in milliseconds; the bound keeps an owner's EndEvent from hanging on a
/// stuck peer (they retry: EndEvent is idempotent).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// CloseEntries through the balanced mTLS client of the `participation` peer.
#[derive(Clone)]
pub struct MeshEntryGate {
    peers: Peers,
}

impl std::fmt::Debug for MeshEntryGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshEntryGate").finish_non_exhaustive()
    }
}

/// Epoch milliseconds as a protobuf timestamp.
fn timestamp(ms: Millis) -> prost_types::Timestamp {
    // 0..=999 ms in nanoseconds fits an i32.
    prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

/// Only "not now" statuses are unavailability; anything else participation answers for a
/// well-formed event id is a defect or a deployment problem, reported as such.
fn classify(status: tonic::Status) -> CloseEntriesError {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted | Code::Cancelled => {
            CloseEntriesError::Unavailable(Box::new(status))
        }
        _ => CloseEntriesError::Refused(Box::new(status)),
    }
}

impl MeshEntryGate {
    /// Reaches participation through `peers`.
    pub fn new(peers: Peers) -> MeshEntryGate {
        MeshEntryGate { peers }
    }

    /// Closes `event_id`'s entries for good, the event having ended at `ended_at`. `Ok` means
    /// every participation replica refuses entries from now on and a draw will consider only the
    /// entries accepted before. Idempotent.
    pub async fn close_entries(&self, event_id: &str, ended_at: Millis) -> Result<(), CloseEntriesError> {
        // No address yet (a peer still starting under `kem up`) passes like any unavailability.
        let channel = self.peers.channel("participation").map_err(|e| CloseEntriesError::Unavailable(Box::new(e)))?;
        let mut request = tonic::Request::new(CloseEntriesRequest {
            event_id: event_id.to_owned(),
            close_time: Some(timestamp(ended_at)),
        });
        request.set_timeout(CLOSE_TIMEOUT);
        let mut client = ParticipationServiceClient::new(channel);
        match tokio::time::timeout(CLOSE_TIMEOUT, client.close_entries(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(classify(status)),
            Err(elapsed) => Err(CloseEntriesError::Unavailable(Box::new(elapsed))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_statuses_are_unavailable() {
        for status in [tonic::Status::unavailable("x"), tonic::Status::deadline_exceeded("x")] {
            assert!(matches!(classify(status), CloseEntriesError::Unavailable(_)));
        }
        for status in
            [tonic::Status::permission_denied("x"), tonic::Status::internal("x"), tonic::Status::invalid_argument("x")]
        {
            assert!(matches!(classify(status), CloseEntriesError::Refused(_)));
        }
    }

    #[test]
    fn close_times_are_exact_to_the_millisecond() {
        assert_eq!(timestamp(1_234), prost_types::Timestamp { seconds: 1, nanos: 234_000_000 });
        assert_eq!(timestamp(-1), prost_types::Timestamp { seconds: -1, nanos: 999_000_000 });
    }
}
