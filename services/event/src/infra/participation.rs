//! The participation service over the mesh (`kem.participation.v1.ParticipationService`), the
//! four methods the contract lets the event workload call:
//!
//! - `CloseEntries`: EndEvent (the owner's, or the scheduler's at the end of the period) calls it
//!   before it commits, so "ENDED" is never answered while a participation replica could still
//!   accept an entry;
//! - `DrawWinnersOnSchedule`: the scheduler draws the winners of an auto-draw event;
//! - `CountEntries`: the public view asks whether an ended event's winners were drawn, and the
//!   retention job when (the retention runs from the draw);
//! - `AnonymizeEntries`: the retention job erases the participants' personal data once the
//!   retention days have passed.

use std::time::Duration;

use kem_kit::runtime::Peers;
use kem_mesh::client::balanced::BalancedChannel;
use kem_proto::kem::participation::v1::participation_service_client::ParticipationServiceClient;
use kem_proto::kem::participation::v1::{
    AnonymizeEntriesRequest, CloseEntriesRequest, CountEntriesRequest, DrawWinnersOnScheduleRequest,
};
use tonic::Code;

use crate::app::{PeerError, ScheduledDraw};
use crate::domain::values::Millis;

use super::peer_error;

/// The peer's name in the mesh.
const PEER: &str = "participation";
/// Longest wait for CloseEntries. Closing waits only for the entries in flight at that moment,
/// so an answer comes in milliseconds; the bound keeps an owner's EndEvent from hanging on a
/// stuck peer (they retry: EndEvent is idempotent).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a scheduled draw (a draw reads every entry of the event once). The
/// scheduler's lease on the event outlasts it by far.
pub const DRAW_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for CountEntries on the public page: the answer only tells CLOSED from DRAWN, so
/// a slow participation service costs a public reader no more than this.
const COUNT_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for CountEntries and AnonymizeEntries in the retention job: nobody waits on it,
/// so it can give a loaded participation service more time than the public page does (anonymizing
/// rewrites every entry of the event once); the scheduler's lease outlasts both calls by far.
pub const RETENTION_TIMEOUT: Duration = Duration::from_secs(30);
/// participation's reason for a draw of an event nobody entered.
const NO_ENTRIES: &str = "NO_ENTRIES";
/// participation's reason for a draw of an event it does not know as ENDED yet.
const EVENT_NOT_ENDED: &str = "EVENT_NOT_ENDED";

/// The participation methods the event service calls, through the balanced mTLS client of the
/// `participation` peer.
#[derive(Clone)]
pub struct MeshEntryGate {
    peers: Peers,
}

impl std::fmt::Debug for MeshEntryGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshEntryGate").finish_non_exhaustive()
    }
}

use kem_kit::clock::{ms_from_timestamp as millis, timestamp_from_ms as timestamp};

fn unavailable(source: impl std::error::Error + Send + Sync + 'static) -> PeerError {
    PeerError::Unavailable { peer: PEER, source: Box::new(source) }
}

/// What a scheduled draw's answer means: a draw, nothing to draw, or an error to retry (only
/// "not now" answers, and participation not having seen the end yet) or not.
fn scheduled_draw(answer: Result<bool, tonic::Status>) -> Result<ScheduledDraw, PeerError> {
    match answer {
        Ok(drawn_now) => Ok(ScheduledDraw::Drawn { drawn_now }),
        Err(status) if status.code() == Code::FailedPrecondition => {
            match kem_proto::status::error_info_of(&status).map(|info| info.reason).as_deref() {
                Some(NO_ENTRIES) => Ok(ScheduledDraw::NoEntries),
                Some(EVENT_NOT_ENDED) => Err(unavailable(status)),
                _ => Err(peer_error(PEER, status)),
            }
        }
        Err(status) => Err(peer_error(PEER, status)),
    }
}

impl MeshEntryGate {
    /// Reaches participation through `peers`.
    pub fn new(peers: Peers) -> MeshEntryGate {
        MeshEntryGate { peers }
    }

    fn client(&self) -> Result<ParticipationServiceClient<BalancedChannel>, PeerError> {
        // No address yet (a peer still starting under `kem up`) passes like any unavailability.
        Ok(ParticipationServiceClient::new(self.peers.channel(PEER).map_err(unavailable)?))
    }

    /// Closes `event_id`'s entries for good, the event having ended at `ended_at`. `Ok` means
    /// every participation replica refuses entries from now on and a draw will consider only the
    /// entries accepted before. Idempotent.
    pub async fn close_entries(&self, event_id: &str, ended_at: Millis) -> Result<(), PeerError> {
        let mut client = self.client()?;
        let mut request = tonic::Request::new(CloseEntriesRequest {
            event_id: event_id.to_owned(),
            close_time: Some(timestamp(ended_at)),
        });
        request.set_timeout(CLOSE_TIMEOUT);
        match tokio::time::timeout(CLOSE_TIMEOUT, client.close_entries(request)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => Err(peer_error(PEER, status)),
            Err(elapsed) => Err(unavailable(elapsed)),
        }
    }

    /// Draws the winners of the ENDED auto-draw event `event_id` (participation's
    /// DrawWinnersOnSchedule: idempotent, a second call answers the existing draw).
    pub async fn draw_on_schedule(&self, event_id: &str) -> Result<ScheduledDraw, PeerError> {
        let mut client = self.client()?;
        let mut request = tonic::Request::new(DrawWinnersOnScheduleRequest { event_id: event_id.to_owned() });
        request.set_timeout(DRAW_TIMEOUT);
        match tokio::time::timeout(DRAW_TIMEOUT, client.draw_winners_on_schedule(request)).await {
            Ok(answer) => scheduled_draw(answer.map(|r| r.into_inner().drawn_now)),
            Err(elapsed) => Err(unavailable(elapsed)),
        }
    }

    /// When `event_id`'s current draw happened (`None` before any draw), from CountEntries, for
    /// the public page (a short wait).
    pub async fn draw_time(&self, event_id: &str) -> Result<Option<Millis>, PeerError> {
        self.draw_time_within(event_id, COUNT_TIMEOUT).await
    }

    /// Erases the personal data of every entry of `event_id` (participation's AnonymizeEntries,
    /// idempotent: a repeated call erases nothing more). Returns how many entries this call
    /// anonymized.
    pub async fn anonymize_entries(&self, event_id: &str) -> Result<i64, PeerError> {
        let mut client = self.client()?;
        // No create_before: every entry of the event, the whole retention having passed.
        let mut request =
            tonic::Request::new(AnonymizeEntriesRequest { event_id: event_id.to_owned(), create_before: None });
        request.set_timeout(RETENTION_TIMEOUT);
        match tokio::time::timeout(RETENTION_TIMEOUT, client.anonymize_entries(request)).await {
            Ok(Ok(response)) => Ok(response.into_inner().anonymized_count),
            Ok(Err(status)) => Err(peer_error(PEER, status)),
            Err(elapsed) => Err(unavailable(elapsed)),
        }
    }

    /// [`draw_time`](Self::draw_time) waiting at most `timeout`.
    pub async fn draw_time_within(&self, event_id: &str, timeout: Duration) -> Result<Option<Millis>, PeerError> {
        let mut client = self.client()?;
        let mut request = tonic::Request::new(CountEntriesRequest { event_ids: vec![event_id.to_owned()] });
        request.set_timeout(timeout);
        match tokio::time::timeout(timeout, client.count_entries(request)).await {
            Ok(Ok(response)) => Ok(response
                .into_inner()
                .counts
                .iter()
                .find(|count| count.event_id == event_id)
                .and_then(|count| count.draw_time.as_ref())
                .map(millis)),
            Ok(Err(status)) => Err(peer_error(PEER, status)),
            Err(elapsed) => Err(unavailable(elapsed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use kem_kit::status::error_info;
    use kem_proto::status::with_details;

    use super::*;

    fn precondition(reason: &str) -> tonic::Status {
        with_details(Code::FailedPrecondition, "no", vec![error_info("kem.participation", reason, &[])])
    }

    #[test]
    fn scheduled_draw_answers_are_read_by_reason() {
        assert_eq!(scheduled_draw(Ok(true)).ok(), Some(ScheduledDraw::Drawn { drawn_now: true }));
        assert_eq!(scheduled_draw(Ok(false)).ok(), Some(ScheduledDraw::Drawn { drawn_now: false }));
        assert_eq!(scheduled_draw(Err(precondition(NO_ENTRIES))).ok(), Some(ScheduledDraw::NoEntries));
        assert!(matches!(scheduled_draw(Err(precondition(EVENT_NOT_ENDED))), Err(PeerError::Unavailable { .. })));
        assert!(matches!(scheduled_draw(Err(precondition("OTHER"))), Err(PeerError::Refused { .. })));
        assert!(matches!(
            scheduled_draw(Err(tonic::Status::unavailable("down"))),
            Err(PeerError::Unavailable { peer: "participation", .. })
        ));
        assert!(matches!(scheduled_draw(Err(tonic::Status::not_found("x"))), Err(PeerError::Refused { .. })));
    }

    #[test]
    fn times_are_exact_to_the_millisecond() {
        assert_eq!(timestamp(1_234), prost_types::Timestamp { seconds: 1, nanos: 234_000_000 });
        assert_eq!(timestamp(-1), prost_types::Timestamp { seconds: -1, nanos: 999_000_000 });
        for ms in [0, 1_234, -1, 1_730_000_000_123] {
            assert_eq!(millis(&timestamp(ms)), ms);
        }
    }
}
