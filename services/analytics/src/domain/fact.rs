//! The facts analytics aggregates, as the queue adapter decodes them from
//! `kem.messaging.v1.AnalyticsEvent`, and the channel metrics reports of RecordChannelMetrics.

use kem_proto::kem::common::v1::{Channel, ProviderKind};

use super::figures::{Period, is_published_status};

/// One fact about one event, with what every fact carries.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFact {
    /// The queue message id: the inbox key that makes the fact count once.
    pub message_id: String,
    /// The event the fact is about (never empty).
    pub event_id: String,
    /// The event's owner as the producer knows it ('' when it did not say).
    pub owner_id: String,
    /// When the fact happened (the message's enqueue time when the producer left it unset).
    pub occur_ms: i64,
    /// What happened.
    pub fact: Fact,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// The event changed lifecycle status (creation included).
    StateChanged(StateSnapshot),
    /// A draft was deleted: its aggregates go, later facts about it are ignored.
    Deleted,
    /// A participant entered.
    EntryRecorded(Entry),
    /// A channel delivery ended, or a channel reported views or reach.
    ChannelOutcome(Outcome),
    /// Winners were drawn (a redraw replaces the previous draw).
    DrawCompleted(Draw),
}

impl Fact {
    /// A short name for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Fact::StateChanged(_) => "state_changed",
            Fact::Deleted => "deleted",
            Fact::EntryRecorded(_) => "entry_recorded",
            Fact::ChannelOutcome(_) => "channel_outcome",
            Fact::DrawCompleted(_) => "draw_completed",
        }
    }

    /// Whether the producer is the event service, whose owner id is authoritative.
    pub fn from_event_service(&self) -> bool {
        matches!(self, Fact::StateChanged(_) | Fact::Deleted)
    }
}

/// The event as it was when it entered `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StateSnapshot {
    /// The new status (`kem.event.v1.EventStatus` number).
    pub status: i32,
    /// Title at the time.
    pub title: String,
    /// Budget in KRW (0: none).
    pub budget_krw: i64,
    /// Channels (`kem.common.v1.Channel` numbers, unique, sorted, never UNSPECIFIED).
    pub channels: Vec<i32>,
    /// The event's period, when the producer sent a complete one.
    pub period: Option<Period>,
    /// `kem.common.v1.EventObjective` number.
    pub objective: i32,
}

impl StateSnapshot {
    /// Whether this status puts the event on its owner's dashboard.
    pub fn published(&self) -> bool {
        is_published_status(self.status)
    }
}

/// A participant's entry: only the aggregation inputs, never personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Participation's entry id (for logs).
    pub entry_id: String,
    /// The source channel; 0 (UNSPECIFIED) for direct or unknown.
    pub channel: i32,
}

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The channel published the event.
    Published,
    /// The channel failed for good.
    Failed,
    /// No delivery ended: the fact only reports views or reach.
    ReportOnly,
}

/// A channel delivery outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The channel (never UNSPECIFIED).
    pub channel: i32,
    /// How the delivery ended.
    pub delivery: Delivery,
    /// Attempts made, including the last one.
    pub attempts: i64,
    /// Why it failed (FAILED only), for people.
    pub failure_reason: String,
    /// Why it failed (FAILED only), for machines (e.g. `PROVIDER_UNAVAILABLE`).
    pub failure_code: String,
    /// `kem.common.v1.ProviderKind` number of the provider that handled the delivery (0: not
    /// said).
    pub source_kind: i32,
    /// Views reported with the outcome.
    pub views: Option<i64>,
    /// Reach reported with the outcome.
    pub reach: Option<i64>,
}

/// A draw of an event's winners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draw {
    /// Participation's draw id (never empty).
    pub draw_id: String,
    /// The draw this one replaced ('' for the first).
    pub redraw_of: String,
    /// The selection procedure.
    pub algorithm: String,
    /// Eligible entries.
    pub entry_count: i64,
    /// Winners selected.
    pub winner_count: i64,
    /// Winners x the prize's unit value, when the prize has one.
    pub prize_cost_krw: Option<i64>,
}

/// A RecordChannelMetrics report: cumulative values of one channel of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsReport {
    /// The idempotency key.
    pub report_id: String,
    /// The event.
    pub event_id: String,
    /// The channel (never UNSPECIFIED).
    pub channel: i32,
    /// Cumulative views.
    pub views: i64,
    /// Cumulative reach.
    pub reach: i64,
    /// Cumulative published deliveries.
    pub deliveries_published: i64,
    /// Cumulative failed deliveries.
    pub deliveries_failed: i64,
    /// When the values were observed.
    pub observed_ms: i64,
    /// `kem.common.v1.ProviderKind` number of the source.
    pub source_kind: i32,
    /// Provider name (may be empty).
    pub source_name: String,
}

/// What recording a [`MetricsReport`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recorded {
    /// The report id had been recorded before: nothing changed.
    pub duplicate: bool,
    /// A newer snapshot is stored already: the aggregates did not change.
    pub stale: bool,
}

/// Whether `channel` is one of the six real channels (not UNSPECIFIED, not a number this build
/// does not know).
pub fn is_real_channel(channel: i32) -> bool {
    matches!(Channel::try_from(channel), Ok(c) if c != Channel::Unspecified)
}

/// `channel` as an entry source: a number this build does not know counts as "unknown" (0).
pub fn entry_channel(channel: i32) -> i32 {
    if is_real_channel(channel) { channel } else { Channel::Unspecified as i32 }
}

/// A provider kind number this build knows, else UNSPECIFIED.
pub fn provider_kind(kind: i32) -> i32 {
    ProviderKind::try_from(kind).map_or(ProviderKind::Unspecified as i32, |k| k as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_checked_against_the_contract() {
        assert!(is_real_channel(Channel::Instagram as i32));
        assert!(!is_real_channel(0));
        assert!(!is_real_channel(99));
        assert_eq!(entry_channel(99), 0);
        assert_eq!(entry_channel(Channel::KakaoChannel as i32), Channel::KakaoChannel as i32);
        assert_eq!(provider_kind(7), 0);
        assert_eq!(provider_kind(ProviderKind::Local as i32), ProviderKind::Local as i32);
    }
}
