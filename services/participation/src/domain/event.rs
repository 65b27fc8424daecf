//! What participation knows about an event (from the event service's GetEventForParticipation)
//! and the rules that depend on it: when entries are open, who owns it, how winners are chosen.

use serde::{Deserialize, Serialize};

/// Epoch milliseconds.
pub type Millis = i64;

/// The event's lifecycle status (the event service's `EventStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventStatus {
    /// Created, editable.
    Draft,
    /// A recommendation was selected.
    Recommended,
    /// An image was selected.
    ContentReady,
    /// Published: entries are accepted inside the period.
    Published,
    /// Ended: winners can be drawn.
    Ended,
    /// A status this version does not know (or unset): treated as not open and not ended.
    Unknown,
}

impl EventStatus {
    /// Upper-case name as in the contract, e.g. `EVENT_STATUS_PUBLISHED` (ErrorInfo metadata).
    pub fn contract_name(self) -> &'static str {
        match self {
            EventStatus::Draft => "EVENT_STATUS_DRAFT",
            EventStatus::Recommended => "EVENT_STATUS_RECOMMENDED",
            EventStatus::ContentReady => "EVENT_STATUS_CONTENT_READY",
            EventStatus::Published => "EVENT_STATUS_PUBLISHED",
            EventStatus::Ended => "EVENT_STATUS_ENDED",
            EventStatus::Unknown => "EVENT_STATUS_UNSPECIFIED",
        }
    }

    /// Whether the event may still become PUBLISHED (so a cached "not open" may be stale).
    pub fn before_publication(self) -> bool {
        matches!(self, EventStatus::Draft | EventStatus::Recommended | EventStatus::ContentReady)
    }
}

/// How winners are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Method {
    /// Random draw after the event (also for an unset method).
    Draw,
    /// The first `winner_count` entries win; entries close when that many arrived.
    FirstCome,
}

/// The terms participants of an event consent to (the event service's `Terms`, fixed at
/// publication): what a privacy consent must name, and what is recorded with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// Version id (`terms-` + the first 16 hex digits of the hash).
    pub version: String,
    /// SHA-256 (lower-case hex) of the terms' text.
    pub sha256: String,
}

/// A privacy consent names other terms than the event's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermsOutdated;

/// The event facts participation works with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFacts {
    /// Event id.
    pub id: String,
    /// Its owner: owner-facing calls of anyone else are NOT_FOUND.
    pub owner_id: String,
    /// Lifecycle status.
    pub status: EventStatus,
    /// Inclusive start of the period, when set.
    pub start_ms: Option<Millis>,
    /// Exclusive end of the period, when set.
    pub end_ms: Option<Millis>,
    /// Winner selection.
    pub method: Method,
    /// The prize's winner count (the default number of winners; the cap of first-come events).
    pub winner_count: Option<u32>,
    /// Value of one prize in KRW, when known (for the analytics cost of a draw).
    pub prize_unit_value_krw: Option<i64>,
    /// Channels the event was published to (proto `kem.common.v1.Channel` numbers).
    pub channels: Vec<i32>,
    /// The terms entries consent to; `None` before publication and for events published before
    /// terms existed (their entries keep the free consent text version).
    pub terms: Option<Terms>,
    /// How entries are checked (phone verification, per-address limit).
    #[serde(default)]
    pub entry_rules: EntryRules,
    /// Days winners have to claim after the draw (0 when the event service did not say: the
    /// default applies, see [`EventFacts::claim_days`]).
    #[serde(default)]
    pub claim_days: u32,
    /// Days the personal data is kept after the draw (0 when not said).
    #[serde(default)]
    pub retention_days: u32,
    /// The store's name (the data controller), for messages to participants.
    #[serde(default)]
    pub store_name: String,
    /// Canonical absolute URL of the entry page (`<public base>/e/<id>`); empty when not said.
    #[serde(default)]
    pub entry_url: String,
    /// The event's title, for messages to participants (winner notices).
    #[serde(default)]
    pub title: String,
    /// The prize's name (ClaimPrize shows it to the winner).
    #[serde(default)]
    pub prize_name: String,
}

/// The event's entry rules (event `EntryRules`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EntryRules {
    /// Entries need a one-time code sent to the phone first.
    pub verify_phone: bool,
    /// Most entries per client address over the event; `None` for no limit.
    pub max_entries_per_address: Option<u32>,
}

/// Claim days when the event service does not say (events published before claims existed).
pub const DEFAULT_CLAIM_DAYS: u32 = 7;

/// Why an event does not accept an entry now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Not PUBLISHED (the status says which).
    NotPublished(EventStatus),
    /// Published, but the period has not started yet.
    NotStarted,
    /// Published, but the period is over.
    PeriodOver,
}

impl Closed {
    /// Short machine-readable form for ErrorInfo metadata (`why`).
    pub fn code(self) -> &'static str {
        match self {
            Closed::NotPublished(_) => "not_published",
            Closed::NotStarted => "not_started",
            Closed::PeriodOver => "ended",
        }
    }

    /// Whether the owner may still open the event (it is not published yet), so that a cached
    /// answer saying so may be stale. A published event's period cannot change.
    pub fn may_open_later(self) -> bool {
        match self {
            Closed::NotPublished(status) => status.before_publication(),
            Closed::NotStarted | Closed::PeriodOver => false,
        }
    }

    /// Whether the event was open before (ENDED, or its period is over), so that entries may
    /// exist: only then can a refused call be the retry of one that was accepted.
    pub fn after_opening(self) -> bool {
        matches!(self, Closed::NotPublished(EventStatus::Ended) | Closed::PeriodOver)
    }
}

impl EventFacts {
    /// Whether an entry received at `now` is accepted: PUBLISHED and `start <= now < end`
    /// (an unset bound does not limit).
    pub fn open_at(&self, now: Millis) -> Result<(), Closed> {
        if self.status != EventStatus::Published {
            return Err(Closed::NotPublished(self.status));
        }
        if self.start_ms.is_some_and(|start| now < start) {
            return Err(Closed::NotStarted);
        }
        if self.end_ms.is_some_and(|end| now >= end) {
            return Err(Closed::PeriodOver);
        }
        Ok(())
    }

    /// The most entries the event takes: the winner count of a first-come event, no limit
    /// otherwise.
    pub fn capacity(&self) -> Option<u32> {
        match self.method {
            Method::FirstCome => self.winner_count,
            Method::Draw => None,
        }
    }

    /// Whether `channel` is a valid source for an entry: unspecified (direct), or a channel the
    /// event was published to.
    pub fn accepts_source(&self, channel: i32) -> bool {
        channel == 0 || self.channels.contains(&channel)
    }

    /// Whether a privacy consent to the consent text `version` is a consent to this event's terms:
    /// the terms' version exactly, when the event has terms (else the participant was shown other,
    /// outdated terms); any version for an event published before terms existed. `Ok` carries
    /// the terms consented to, if any, whose hash is recorded with the consent.
    pub fn consented_terms(&self, version: &str) -> Result<Option<&Terms>, TermsOutdated> {
        match &self.terms {
            Some(terms) if terms.version != version => Err(TermsOutdated),
            terms => Ok(terms.as_ref()),
        }
    }

    /// Days winners have to claim their prize after the draw.
    pub fn claim_days(&self) -> u32 {
        if self.claim_days == 0 { DEFAULT_CLAIM_DAYS } else { self.claim_days }
    }

    /// Whether the public may see the event (and its winners): published once, PUBLISHED or
    /// ENDED. Anything else does not exist for the public.
    pub fn is_public(&self) -> bool {
        matches!(self.status, EventStatus::Published | EventStatus::Ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: EventStatus) -> EventFacts {
        EventFacts {
            id: "e".into(),
            owner_id: "o".into(),
            status,
            start_ms: Some(1_000),
            end_ms: Some(2_000),
            method: Method::Draw,
            winner_count: Some(3),
            prize_unit_value_krw: None,
            channels: vec![4, 6],
            terms: None,
            entry_rules: EntryRules::default(),
            claim_days: 0,
            retention_days: 0,
            store_name: String::new(),
            entry_url: String::new(),
            title: String::new(),
            prize_name: String::new(),
        }
    }

    #[test]
    fn entries_are_open_only_while_published_and_inside_the_period() {
        let published = facts(EventStatus::Published);
        assert_eq!(published.open_at(999), Err(Closed::NotStarted));
        assert_eq!(published.open_at(1_000), Ok(()));
        assert_eq!(published.open_at(1_999), Ok(()));
        assert_eq!(published.open_at(2_000), Err(Closed::PeriodOver), "the end is exclusive");
        assert_eq!(facts(EventStatus::Ended).open_at(1_500), Err(Closed::NotPublished(EventStatus::Ended)));
        assert_eq!(facts(EventStatus::Draft).open_at(1_500), Err(Closed::NotPublished(EventStatus::Draft)));
        assert!(Closed::NotPublished(EventStatus::ContentReady).may_open_later());
        assert!(!Closed::NotPublished(EventStatus::Ended).may_open_later());
        assert!(!Closed::PeriodOver.may_open_later());
        assert!(Closed::PeriodOver.after_opening() && Closed::NotPublished(EventStatus::Ended).after_opening());
        assert!(!Closed::NotStarted.after_opening() && !Closed::NotPublished(EventStatus::Draft).after_opening());
    }

    #[test]
    fn only_first_come_events_have_a_capacity() {
        let mut e = facts(EventStatus::Published);
        assert_eq!(e.capacity(), None);
        e.method = Method::FirstCome;
        assert_eq!(e.capacity(), Some(3));
    }

    #[test]
    fn a_consent_must_name_the_terms_of_an_event_that_has_them() {
        let before_terms = facts(EventStatus::Published);
        assert_eq!(before_terms.consented_terms("privacy-2025-01"), Ok(None), "any version before terms existed");
        let terms = Terms { version: "terms-0123456789abcdef".into(), sha256: "ab".repeat(32) };
        let with_terms = EventFacts { terms: Some(terms.clone()), ..before_terms };
        assert_eq!(with_terms.consented_terms("terms-0123456789abcdef"), Ok(Some(&terms)));
        assert_eq!(with_terms.consented_terms("terms-fedcba9876543210"), Err(TermsOutdated));
        assert_eq!(with_terms.consented_terms("privacy-2025-01"), Err(TermsOutdated));
    }

    #[test]
    fn only_published_and_ended_events_are_public() {
        for status in [EventStatus::Published, EventStatus::Ended] {
            assert!(facts(status).is_public(), "{status:?}");
        }
        for status in [EventStatus::Draft, EventStatus::Recommended, EventStatus::ContentReady, EventStatus::Unknown] {
            assert!(!facts(status).is_public(), "{status:?}");
        }
    }

    #[test]
    fn sources_are_direct_or_a_published_channel() {
        let e = facts(EventStatus::Published);
        assert!(e.accepts_source(0));
        assert!(e.accepts_source(4));
        assert!(!e.accepts_source(1));
    }
}
