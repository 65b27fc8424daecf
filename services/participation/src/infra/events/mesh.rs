//! The event facts over the mesh: `kem.event.v1.EventService/GetEventForParticipation`
//! behind a short cache-aside.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::cache::{Cache, CacheAside};
use kem_kit::runtime::Peers;
use kem_proto::kem::common::v1::ParticipationMethod;
use kem_proto::kem::event::v1::event_service_client::EventServiceClient;
use kem_proto::kem::event::v1::{
    EventStatus as ProtoStatus, GetEventForParticipationRequest, GetEventForParticipationResponse,
};
use tonic::Code;

use super::{LookupError, PeerFailure};
use crate::domain::event::{EntryRules, EventFacts, EventStatus, Method, Terms};

/// How long "no such event" is remembered (event ids are server-assigned UUIDs: an absent id
/// never appears later).
const NEGATIVE_TTL: Duration = Duration::from_secs(10);

/// The event service reached through the mesh, with its answers cached for `ttl`.
#[derive(Clone)]
pub struct MeshEvents {
    peers: Peers,
    cache: CacheAside,
    ttl: Duration,
}

impl std::fmt::Debug for MeshEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshEvents").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl MeshEvents {
    /// Over the service's mesh peers and cache (already prefixed for participation).
    pub fn new(peers: Peers, cache: Arc<dyn Cache>, ttl: Duration) -> MeshEvents {
        MeshEvents { peers, cache: CacheAside::new(cache), ttl }
    }

    /// Cache counters (tests, metrics).
    pub fn cache(&self) -> &CacheAside {
        &self.cache
    }

    fn key(event_id: &str) -> String {
        // The version changes whenever EventFacts does.
        format!("event-facts:v3:{event_id}")
    }

    /// The facts of `event_id` (possibly a few seconds old); `None` when there is no such event.
    pub async fn facts(&self, event_id: &str) -> Result<Option<EventFacts>, LookupError> {
        self.cache
            .get_or_load_optional(&Self::key(event_id), self.ttl, Some(NEGATIVE_TTL), || self.load(event_id))
            .await
    }

    /// The facts as the event service has them now (the cache is refreshed with them).
    pub async fn fresh_facts(&self, event_id: &str) -> Result<Option<EventFacts>, LookupError> {
        let loaded = self.load(event_id).await?;
        let key = Self::key(event_id);
        match &loaded {
            Some(facts) => self.cache.put(&key, facts, self.ttl).await,
            None => self.cache.invalidate(&key).await,
        }
        Ok(loaded)
    }

    async fn load(&self, event_id: &str) -> Result<Option<EventFacts>, LookupError> {
        // An address not known yet (a peer still starting under `kem up`) passes.
        let channel =
            self.peers.channel("event").map_err(|e| LookupError::Unavailable(PeerFailure::NoChannel(Arc::new(e))))?;
        let request = GetEventForParticipationRequest { event_id: event_id.to_owned() };
        match EventServiceClient::new(channel).get_event_for_participation(request).await {
            Ok(response) => Ok(Some(facts(response.into_inner()))),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(classify(status)),
        }
    }
}

/// What a failed GetEventForParticipation means for participation's caller. Only statuses that
/// say "not now" are unavailability; the event service's INTERNAL (e.g. an id its database
/// cannot even look up) is a failure, never a reason to report participation as unavailable.
fn classify(status: tonic::Status) -> LookupError {
    match status.code() {
        Code::InvalidArgument => LookupError::InvalidId(PeerFailure::Status(status)),
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted | Code::Cancelled => {
            LookupError::Unavailable(PeerFailure::Status(status))
        }
        _ => LookupError::Failed(PeerFailure::Status(status)),
    }
}

fn millis(timestamp: Option<&prost_types::Timestamp>) -> Option<i64> {
    timestamp.map(kem_kit::clock::ms_from_timestamp)
}

/// The contract message as participation's facts.
pub fn facts(r: GetEventForParticipationResponse) -> EventFacts {
    let status = match ProtoStatus::try_from(r.status) {
        Ok(ProtoStatus::Draft) => EventStatus::Draft,
        Ok(ProtoStatus::Recommended) => EventStatus::Recommended,
        Ok(ProtoStatus::ContentReady) => EventStatus::ContentReady,
        Ok(ProtoStatus::Published) => EventStatus::Published,
        Ok(ProtoStatus::Ended) => EventStatus::Ended,
        Ok(ProtoStatus::Unspecified) | Err(_) => EventStatus::Unknown,
    };
    let method = match ParticipationMethod::try_from(r.participation_method) {
        Ok(ParticipationMethod::FirstCome) => Method::FirstCome,
        _ => Method::Draw,
    };
    let period = r.period.as_ref();
    EventFacts {
        id: r.event_id,
        owner_id: r.owner_id,
        status,
        start_ms: millis(period.and_then(|p| p.start_time.as_ref())),
        end_ms: millis(period.and_then(|p| p.end_time.as_ref())),
        method,
        winner_count: r.prize.as_ref().and_then(|p| u32::try_from(p.winner_count).ok()).filter(|n| *n > 0),
        prize_unit_value_krw: r.prize.as_ref().and_then(|p| p.unit_value.as_ref()).map(|m| m.amount_krw),
        channels: r.channels,
        // Terms without a version are no terms a consent could name (not published yet).
        terms: r.terms.filter(|t| !t.version.is_empty()).map(|t| Terms { version: t.version, sha256: t.sha256 }),
        entry_rules: r
            .entry_rules
            .map(|rules| EntryRules {
                verify_phone: rules.verify_phone,
                max_entries_per_address: u32::try_from(rules.max_entries_per_address).ok().filter(|n| *n > 0),
            })
            .unwrap_or_default(),
        claim_days: u32::try_from(r.claim_days).unwrap_or(0),
        retention_days: u32::try_from(r.retention_days).unwrap_or(0),
        store_name: r.store_name,
        entry_url: r.entry_url,
        title: r.title,
        prize_name: r.prize.as_ref().map(|p| p.name.clone()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use kem_proto::kem::common::v1::{Money, Period, Prize};

    use super::*;

    #[test]
    fn contract_answers_become_facts() {
        let response = GetEventForParticipationResponse {
            event_id: "e".into(),
            owner_id: "o".into(),
            status: ProtoStatus::Published as i32,
            period: Some(Period {
                start_time: Some(prost_types::Timestamp { seconds: 10, nanos: 5_000_000 }),
                end_time: Some(prost_types::Timestamp { seconds: 20, nanos: 0 }),
            }),
            participation_method: ParticipationMethod::FirstCome as i32,
            prize: Some(Prize {
                name: "커피".into(),
                description: String::new(),
                winner_count: 3,
                unit_value: Some(Money { amount_krw: 4_500 }),
            }),
            title: "t".into(),
            channels: vec![4],
            terms: Some(kem_proto::kem::event::v1::Terms {
                version: "terms-0123456789abcdef".into(),
                sha256: "0123456789abcdef".repeat(4),
                text: "개인정보 수집·이용 동의".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let f = facts(response);
        assert_eq!((f.status, f.method, f.winner_count), (EventStatus::Published, Method::FirstCome, Some(3)));
        assert_eq!((f.start_ms, f.end_ms, f.prize_unit_value_krw), (Some(10_005), Some(20_000), Some(4_500)));
        assert_eq!(
            f.terms,
            Some(Terms { version: "terms-0123456789abcdef".into(), sha256: "0123456789abcdef".repeat(4) })
        );
        let unset =
            facts(GetEventForParticipationResponse { status: 99, ..GetEventForParticipationResponse::default() });
        assert_eq!((unset.status, unset.method, unset.winner_count), (EventStatus::Unknown, Method::Draw, None));
        assert_eq!(unset.terms, None);
    }

    #[test]
    fn peer_statuses_keep_their_meaning() {
        for transient in [tonic::Status::unavailable("x"), tonic::Status::deadline_exceeded("x")] {
            assert!(matches!(classify(transient), LookupError::Unavailable(_)));
        }
        assert!(matches!(classify(tonic::Status::invalid_argument("bad id")), LookupError::InvalidId(_)));
        for failure in [
            tonic::Status::internal("invalid byte sequence for encoding \"UTF8\": 0x00"),
            tonic::Status::unknown("x"),
            tonic::Status::permission_denied("x"),
        ] {
            assert!(matches!(classify(failure), LookupError::Failed(_)), "never UNAVAILABLE");
        }
    }
}
