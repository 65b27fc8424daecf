//! What an owner is shown, assembled from the stored aggregates: one event's analytics and the
//! dashboard over all of an owner's published events.
//!
//! The views are plain data (cached as JSON, converted to the contract by the gRPC adapter). ROI is
//! not stored in them but derived from the integer figures on demand, so a cached answer and a
//! fresh one are bit-for-bit the same.
//!
//! # How a channel's figures are combined
//!
//! - participants: entries whose source is the channel (`analytics_hourly`);
//! - views and reach: the latest RecordChannelMetrics snapshot of the channel; without one, the
//!   latest views/reach a ChannelOutcome reported; else 0;
//! - deliveries published / failed: the larger of the outcomes counted from the queue and the
//!   cumulative count of the latest snapshot (two reports of the same deliveries, either may lag);
//! - metrics source: the snapshot's provider kind; without a snapshot, the provider kind the
//!   latest outcome named (UNSPECIFIED when none did).

use std::collections::{BTreeMap, BTreeSet};

use kem_proto::kem::common::v1::{Channel, ProviderKind};
use serde::{Deserialize, Serialize};

use super::figures::{self, Period, ValueTable};

/// An event as analytics knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// The event.
    pub event_id: String,
    /// Its owner ('' while unknown).
    pub owner_id: String,
    /// Latest lifecycle status (`kem.event.v1.EventStatus` number; 0 before any state fact).
    pub status: i32,
    /// Title.
    pub title: String,
    /// Budget in KRW.
    pub budget_krw: i64,
    /// Channels of the latest state fact.
    pub channels: Vec<i32>,
    /// Period, when known.
    pub period: Option<Period>,
    /// `kem.common.v1.BusinessCategory` number (0: unknown).
    pub business_category: i32,
    /// When it was first seen published; `None` for events never published.
    pub published_ms: Option<i64>,
    /// Time of the latest data included.
    pub data_ms: i64,
}

/// Entries of one event from one channel in one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourlyCount {
    /// Start of the hour.
    pub hour_start_ms: i64,
    /// Source channel (0: unknown or direct).
    pub channel: i32,
    /// Entries.
    pub participants: i64,
}

/// Entries of one event from one channel (all hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCount {
    /// The event.
    pub event_id: String,
    /// Source channel.
    pub channel: i32,
    /// Entries.
    pub participants: i64,
}

/// Delivery outcomes of one event and channel, counted from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeTotals {
    /// The event.
    pub event_id: String,
    /// The channel.
    pub channel: i32,
    /// Published deliveries.
    pub published: i64,
    /// Failed deliveries.
    pub failed: i64,
    /// Attempts over all deliveries.
    pub attempts: i64,
    /// Latest views an outcome reported.
    pub views: Option<i64>,
    /// Latest reach an outcome reported.
    pub reach: Option<i64>,
    /// `kem.common.v1.ProviderKind` number of the latest outcome that named its provider.
    pub source_kind: i32,
}

/// The latest RecordChannelMetrics snapshot of one event and channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// The event.
    pub event_id: String,
    /// The channel.
    pub channel: i32,
    /// Cumulative views.
    pub views: i64,
    /// Cumulative reach.
    pub reach: i64,
    /// Cumulative published deliveries.
    pub deliveries_published: i64,
    /// Cumulative failed deliveries.
    pub deliveries_failed: i64,
    /// `kem.common.v1.ProviderKind` number.
    pub source_kind: i32,
    /// When the values were observed at the provider (epoch milliseconds).
    pub observed_ms: i64,
}

/// Figures of one channel (of one event, or summed over an owner's events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelFigures {
    /// `kem.common.v1.Channel` number (0: entries without a known source).
    pub channel: i32,
    /// Entries attributed to the channel.
    pub participants: i64,
    /// Views.
    pub views: i64,
    /// Reach.
    pub reach: i64,
    /// Published deliveries.
    pub deliveries_published: i64,
    /// Failed deliveries.
    pub deliveries_failed: i64,
    /// `kem.common.v1.ProviderKind` number of views and reach.
    pub metrics_source: i32,
    /// When the latest RecordChannelMetrics report counted here was observed (epoch
    /// milliseconds); `None` when the channel never reported any — "not reported", which a
    /// reported 0 is not. (`serde(default)`: views cached before the field existed read as not
    /// reported until they expire.)
    #[serde(default)]
    pub metrics_observed_ms: Option<i64>,
}

/// Entries in one hour from one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourlyFigure {
    /// Start of the hour, epoch milliseconds.
    pub hour_start_ms: i64,
    /// Source channel.
    pub channel: i32,
    /// Entries.
    pub participants: i64,
}

/// The analytics of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventAnalyticsView {
    /// The event.
    pub event_id: String,
    /// Its owner (checked against the caller before anything is shown).
    pub owner_id: String,
    /// Entries.
    pub total_participants: i64,
    /// Views over all channels.
    pub total_views: i64,
    /// Reach over all channels.
    pub total_reach: i64,
    /// Per channel, in Channel enum order.
    pub channels: Vec<ChannelFigures>,
    /// Entries per hour and channel, oldest first.
    pub hourly: Vec<HourlyFigure>,
    /// Budget in KRW.
    pub budget_krw: i64,
    /// Value of one entry in KRW.
    pub value_per_participant_krw: i64,
    /// When the latest data included happened.
    pub update_ms: i64,
    /// When this view was computed.
    pub compute_ms: i64,
}

impl EventAnalyticsView {
    /// Assembles the view of `event` from its aggregates.
    pub fn build(
        event: &EventRecord,
        hourly: &[HourlyCount],
        outcomes: &[OutcomeTotals],
        snapshots: &[MetricsSnapshot],
        values: &ValueTable,
        now_ms: i64,
    ) -> EventAnalyticsView {
        let mut participants: BTreeMap<i32, i64> = BTreeMap::new();
        let mut buckets: BTreeMap<(i64, i32), i64> = BTreeMap::new();
        for h in hourly.iter().filter(|h| h.participants > 0) {
            *participants.entry(h.channel).or_default() += h.participants;
            *buckets.entry((h.hour_start_ms, h.channel)).or_default() += h.participants;
        }
        let channels = channel_figures(&event.channels, &participants, outcomes.iter(), snapshots.iter());
        let totals = Totals::of(&channels);
        EventAnalyticsView {
            event_id: event.event_id.clone(),
            owner_id: event.owner_id.clone(),
            total_participants: totals.participants,
            total_views: totals.views,
            total_reach: totals.reach,
            channels,
            hourly: buckets
                .into_iter()
                .map(|((hour_start_ms, channel), participants)| HourlyFigure { hour_start_ms, channel, participants })
                .collect(),
            budget_krw: event.budget_krw,
            value_per_participant_krw: values.value_for(event.business_category),
            update_ms: event.data_ms,
            compute_ms: now_ms,
        }
    }

    /// Budget / entries, rounded down; `None` without entries.
    pub fn cost_per_entry_krw(&self) -> Option<i64> {
        figures::cost_per_entry(self.budget_krw, self.total_participants)
    }

    /// Entries x value of an entry.
    pub fn estimated_value_krw(&self) -> i64 {
        figures::estimated_value(self.total_participants, self.value_per_participant_krw)
    }

    /// `(estimated value - budget) / budget`; `None` when the budget is 0.
    pub fn roi(&self) -> Option<f64> {
        figures::roi(self.estimated_value_krw(), self.budget_krw)
    }
}

/// One event on the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSummaryView {
    /// The event.
    pub event_id: String,
    /// Title.
    pub title: String,
    /// Period, when known.
    pub period: Option<Period>,
    /// Published and inside its period when computed.
    pub active: bool,
    /// Entries.
    pub participants: i64,
    /// Reach over all channels.
    pub reach: i64,
    /// Budget in KRW.
    pub budget_krw: i64,
    /// Entries x value of an entry, in KRW.
    pub estimated_value_krw: i64,
}

impl EventSummaryView {
    /// Budget / entries, rounded down; `None` without entries.
    pub fn cost_per_entry_krw(&self) -> Option<i64> {
        figures::cost_per_entry(self.budget_krw, self.participants)
    }

    /// ROI ratio; `None` when the budget is 0.
    pub fn roi(&self) -> Option<f64> {
        figures::roi(self.estimated_value_krw, self.budget_krw)
    }
}

/// An owner's dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardView {
    /// The owner.
    pub owner_id: String,
    /// Events published at least once.
    pub total_events: i64,
    /// Events published and inside their period when computed.
    pub active_events: i64,
    /// Entries over all events.
    pub total_participants: i64,
    /// Views over all events and channels.
    pub total_views: i64,
    /// Reach over all events and channels.
    pub total_reach: i64,
    /// Sum of the budgets in KRW.
    pub total_budget_krw: i64,
    /// Sum of the estimated values in KRW.
    pub total_estimated_value_krw: i64,
    /// Per channel over all events, in Channel enum order.
    pub channels: Vec<ChannelFigures>,
    /// One summary per event: active first, then newest period first.
    pub events: Vec<EventSummaryView>,
    /// When the latest data included happened; `None` without events.
    pub update_ms: Option<i64>,
    /// When this view was computed.
    pub compute_ms: i64,
}

impl DashboardView {
    /// Assembles `owner`'s dashboard from the aggregates of `events` (their published events).
    pub fn build(
        owner_id: &str,
        events: &[EventRecord],
        counts: &[ChannelCount],
        outcomes: &[OutcomeTotals],
        snapshots: &[MetricsSnapshot],
        values: &ValueTable,
        now_ms: i64,
    ) -> DashboardView {
        let mut per_channel: BTreeMap<i32, ChannelFigures> = BTreeMap::new();
        let mut summaries = Vec::with_capacity(events.len());
        for event in events {
            let participants: BTreeMap<i32, i64> = counts
                .iter()
                .filter(|c| c.event_id == event.event_id && c.participants > 0)
                .fold(BTreeMap::new(), |mut map, c| {
                    *map.entry(c.channel).or_default() += c.participants;
                    map
                });
            let channels = channel_figures(
                &event.channels,
                &participants,
                outcomes.iter().filter(|o| o.event_id == event.event_id),
                snapshots.iter().filter(|s| s.event_id == event.event_id),
            );
            for figures in &channels {
                let total = per_channel.entry(figures.channel).or_insert(ChannelFigures {
                    channel: figures.channel,
                    metrics_source: ProviderKind::Unspecified as i32,
                    ..ChannelFigures::default()
                });
                total.participants += figures.participants;
                total.views += figures.views;
                total.reach += figures.reach;
                total.deliveries_published += figures.deliveries_published;
                total.deliveries_failed += figures.deliveries_failed;
                total.metrics_source = combined_source(total.metrics_source, figures.metrics_source);
                // Reported when any event counted here reported; the latest observation shows.
                total.metrics_observed_ms = total.metrics_observed_ms.max(figures.metrics_observed_ms);
            }
            let totals = Totals::of(&channels);
            summaries.push(EventSummaryView {
                event_id: event.event_id.clone(),
                title: event.title.clone(),
                period: event.period,
                active: figures::is_active(event.status, event.period, now_ms),
                participants: totals.participants,
                reach: totals.reach,
                budget_krw: event.budget_krw,
                estimated_value_krw: figures::estimated_value(
                    totals.participants,
                    values.value_for(event.business_category),
                ),
            });
        }
        summaries.sort_by(|a, b| {
            b.active
                .cmp(&a.active)
                .then_with(|| b.period.map(|p| (p.start_ms, p.end_ms)).cmp(&a.period.map(|p| (p.start_ms, p.end_ms))))
                .then_with(|| a.event_id.cmp(&b.event_id))
        });
        let channels: Vec<ChannelFigures> = per_channel.into_values().collect();
        let totals = Totals::of(&channels);
        DashboardView {
            owner_id: owner_id.to_owned(),
            total_events: i64::try_from(summaries.len()).unwrap_or(i64::MAX),
            active_events: i64::try_from(summaries.iter().filter(|s| s.active).count()).unwrap_or(i64::MAX),
            total_participants: totals.participants,
            total_views: totals.views,
            total_reach: totals.reach,
            total_budget_krw: summaries.iter().map(|s| s.budget_krw).fold(0, i64::saturating_add),
            total_estimated_value_krw: summaries.iter().map(|s| s.estimated_value_krw).fold(0, i64::saturating_add),
            channels,
            events: summaries,
            update_ms: events.iter().map(|e| e.data_ms).max(),
            compute_ms: now_ms,
        }
    }

    /// Total budget / total entries, rounded down; `None` without entries.
    pub fn average_cost_per_entry_krw(&self) -> Option<i64> {
        figures::cost_per_entry(self.total_budget_krw, self.total_participants)
    }

    /// ROI over all events; `None` when the total budget is 0.
    pub fn roi(&self) -> Option<f64> {
        figures::roi(self.total_estimated_value_krw, self.total_budget_krw)
    }
}

impl Default for ChannelFigures {
    fn default() -> Self {
        ChannelFigures {
            channel: Channel::Unspecified as i32,
            participants: 0,
            views: 0,
            reach: 0,
            deliveries_published: 0,
            deliveries_failed: 0,
            metrics_source: ProviderKind::Unspecified as i32,
            metrics_observed_ms: None,
        }
    }
}

/// Sums over channels.
struct Totals {
    participants: i64,
    views: i64,
    reach: i64,
}

impl Totals {
    fn of(channels: &[ChannelFigures]) -> Totals {
        channels.iter().fold(Totals { participants: 0, views: 0, reach: 0 }, |t, c| Totals {
            participants: t.participants.saturating_add(c.participants),
            views: t.views.saturating_add(c.views),
            reach: t.reach.saturating_add(c.reach),
        })
    }
}

/// The figures of every channel that is planned for the event or has data, in enum order. The
/// "unknown" channel 0 appears only when entries came without a known source.
fn channel_figures<'a>(
    planned: &[i32],
    participants: &BTreeMap<i32, i64>,
    outcomes: impl Iterator<Item = &'a OutcomeTotals>,
    snapshots: impl Iterator<Item = &'a MetricsSnapshot>,
) -> Vec<ChannelFigures> {
    let outcomes: BTreeMap<i32, &OutcomeTotals> = outcomes.map(|o| (o.channel, o)).collect();
    let snapshots: BTreeMap<i32, &MetricsSnapshot> = snapshots.map(|s| (s.channel, s)).collect();
    let unknown = Channel::Unspecified as i32;
    let channels: BTreeSet<i32> = planned
        .iter()
        .copied()
        .filter(|c| *c != unknown)
        .chain(participants.keys().copied())
        .chain(outcomes.keys().copied())
        .chain(snapshots.keys().copied())
        .collect();
    channels
        .into_iter()
        .map(|channel| {
            let outcome = outcomes.get(&channel);
            let snapshot = snapshots.get(&channel);
            let (views, reach, metrics_source) = match snapshot {
                Some(s) => (s.views, s.reach, s.source_kind),
                None => (
                    outcome.and_then(|o| o.views).unwrap_or(0),
                    outcome.and_then(|o| o.reach).unwrap_or(0),
                    outcome.map_or(ProviderKind::Unspecified as i32, |o| o.source_kind),
                ),
            };
            ChannelFigures {
                channel,
                participants: participants.get(&channel).copied().unwrap_or(0),
                views,
                reach,
                deliveries_published: outcome
                    .map_or(0, |o| o.published)
                    .max(snapshot.map_or(0, |s| s.deliveries_published)),
                deliveries_failed: outcome.map_or(0, |o| o.failed).max(snapshot.map_or(0, |s| s.deliveries_failed)),
                metrics_source,
                metrics_observed_ms: snapshot.map(|s| s.observed_ms),
            }
        })
        .collect()
}

/// The source label of figures summed from two sources: demo numbers taint the sum (LOCAL wins),
/// then real ones (EXTERNAL), else none.
fn combined_source(a: i32, b: i32) -> i32 {
    let local = ProviderKind::Local as i32;
    let external = ProviderKind::External as i32;
    if a == local || b == local {
        local
    } else if a == external || b == external {
        external
    } else {
        ProviderKind::Unspecified as i32
    }
}

#[cfg(test)]
mod tests {
    use kem_proto::kem::event::v1::EventStatus;

    use super::*;

    const INSTAGRAM: i32 = Channel::Instagram as i32;
    const KAKAO: i32 = Channel::KakaoChannel as i32;
    const GENIE: i32 = Channel::GenieTv as i32;

    fn event(id: &str, budget: i64, channels: &[i32], period: Period) -> EventRecord {
        EventRecord {
            event_id: id.into(),
            owner_id: "o".into(),
            status: EventStatus::Published as i32,
            title: id.into(),
            budget_krw: budget,
            channels: channels.to_vec(),
            period: Some(period),
            business_category: 0,
            published_ms: Some(1),
            data_ms: 10,
        }
    }

    fn outcome(event: &str, channel: i32, published: i64, failed: i64, views: Option<i64>) -> OutcomeTotals {
        OutcomeTotals {
            event_id: event.into(),
            channel,
            published,
            failed,
            attempts: published + failed,
            views,
            reach: views.map(|v| v / 2),
            source_kind: ProviderKind::Local as i32,
        }
    }

    fn snapshot(event: &str, channel: i32, views: i64, published: i64, kind: ProviderKind) -> MetricsSnapshot {
        MetricsSnapshot {
            event_id: event.into(),
            channel,
            views,
            reach: views / 2,
            deliveries_published: published,
            deliveries_failed: 0,
            source_kind: kind as i32,
            observed_ms: 1_000 + views,
        }
    }

    #[test]
    fn one_event_combines_entries_outcomes_and_snapshots() {
        let e = event("e", 1_000_000, &[INSTAGRAM, KAKAO, GENIE], Period { start_ms: 0, end_ms: 100 });
        let hourly = [
            HourlyCount { hour_start_ms: 3_600_000, channel: INSTAGRAM, participants: 7 },
            HourlyCount { hour_start_ms: 0, channel: INSTAGRAM, participants: 5 },
            HourlyCount { hour_start_ms: 0, channel: 0, participants: 8 },
            HourlyCount { hour_start_ms: 0, channel: KAKAO, participants: 10 },
        ];
        let outcomes = [
            outcome("e", INSTAGRAM, 1, 0, None),
            outcome("e", KAKAO, 1, 1, None),
            outcome("e", GENIE, 1, 0, Some(500)),
        ];
        let snapshots = [
            snapshot("e", INSTAGRAM, 1500, 0, ProviderKind::External),
            snapshot("e", KAKAO, 200, 3, ProviderKind::Local),
        ];
        let values = ValueTable { default_krw: 50_000, ..ValueTable::default() };
        let view = EventAnalyticsView::build(&e, &hourly, &outcomes, &snapshots, &values, 50);

        assert_eq!(view.channels.iter().map(|c| c.channel).collect::<Vec<_>>(), vec![0, GENIE, INSTAGRAM, KAKAO]);
        let by = |ch: i32| view.channels.iter().find(|c| c.channel == ch).copied().unwrap_or_default();
        assert_eq!((by(0).participants, by(0).views), (8, 0));
        assert_eq!(
            (by(GENIE).views, by(GENIE).reach, by(GENIE).deliveries_published, by(GENIE).metrics_source),
            (500, 250, 1, ProviderKind::Local as i32),
            "without a snapshot the outcome's report counts, labelled with the outcome's provider"
        );
        assert_eq!(
            (by(INSTAGRAM).participants, by(INSTAGRAM).views, by(INSTAGRAM).deliveries_published),
            (12, 1500, 1),
            "the snapshot wins for views; the larger delivery count wins"
        );
        assert_eq!((by(KAKAO).deliveries_published, by(KAKAO).deliveries_failed), (3, 1));
        assert_eq!(by(INSTAGRAM).metrics_observed_ms, Some(2_500), "reported: when it was observed");
        assert_eq!(by(GENIE).metrics_observed_ms, None, "an outcome's reach is no RecordChannelMetrics report");
        assert_eq!(by(0).metrics_observed_ms, None);
        assert_eq!((view.total_participants, view.total_views, view.total_reach), (30, 2200, 1100));
        assert_eq!(view.hourly.first(), Some(&HourlyFigure { hour_start_ms: 0, channel: 0, participants: 8 }));
        assert_eq!(view.hourly.len(), 4);
        assert_eq!(view.cost_per_entry_krw(), Some(33_333));
        assert_eq!(view.estimated_value_krw(), 1_500_000);
        assert_eq!(view.roi(), Some(0.5));
    }

    #[test]
    fn dashboard_sums_events_and_orders_active_first() {
        let running = Period { start_ms: 0, end_ms: 1_000 };
        let newer_but_over = Period { start_ms: 200, end_ms: 300 };
        let mut ended = event("b-ended", 0, &[KAKAO], newer_but_over);
        ended.status = EventStatus::Ended as i32;
        let events = [event("a-running", 1_000_000, &[INSTAGRAM], running), ended];
        let counts = [
            ChannelCount { event_id: "a-running".into(), channel: INSTAGRAM, participants: 30 },
            ChannelCount { event_id: "b-ended".into(), channel: KAKAO, participants: 5 },
        ];
        let snapshots = [
            snapshot("a-running", INSTAGRAM, 100, 1, ProviderKind::External),
            snapshot("b-ended", KAKAO, 40, 1, ProviderKind::Local),
        ];
        let values = ValueTable { default_krw: 50_000, ..ValueTable::default() };
        let d = DashboardView::build("o", &events, &counts, &[], &snapshots, &values, 500);
        assert_eq!(d.events.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), vec!["a-running", "b-ended"]);
        assert_eq!((d.total_events, d.active_events, d.total_participants), (2, 1, 35));
        assert_eq!((d.total_views, d.total_reach, d.total_budget_krw), (140, 70, 1_000_000));
        assert_eq!(d.average_cost_per_entry_krw(), Some(28_571));
        assert_eq!(d.roi(), Some(0.75));
        assert_eq!(d.events[1].roi(), None, "no budget, no ROI");
        assert_eq!(d.events[1].cost_per_entry_krw(), Some(0));
        assert_eq!(d.update_ms, Some(10));
        let by = |ch: i32| d.channels.iter().find(|c| c.channel == ch).copied().unwrap_or_default();
        assert_eq!((by(INSTAGRAM).metrics_observed_ms, by(KAKAO).metrics_observed_ms), (Some(1_100), Some(1_040)));

        // Reported by one event only: the channel's total is reported, at that observation; a
        // reported 0 is reported.
        let both = [event("c", 0, &[INSTAGRAM], running), event("d", 0, &[INSTAGRAM, KAKAO], running)];
        let zero = [snapshot("d", INSTAGRAM, 0, 0, ProviderKind::External)];
        let d = DashboardView::build("o", &both, &[], &[], &zero, &values, 500);
        let by = |ch: i32| d.channels.iter().find(|c| c.channel == ch).copied().unwrap_or_default();
        assert_eq!((by(INSTAGRAM).views, by(INSTAGRAM).metrics_observed_ms), (0, Some(1_000)));
        assert_eq!((by(KAKAO).views, by(KAKAO).metrics_observed_ms), (0, None), "never reported");

        let empty = DashboardView::build("o", &[], &[], &[], &[], &values, 500);
        assert_eq!((empty.total_events, empty.total_participants, empty.update_ms), (0, 0, None));
        assert_eq!((empty.average_cost_per_entry_krw(), empty.roi()), (None, None));
    }

    #[test]
    fn summed_sources_flag_demo_numbers() {
        let (local, external, none) =
            (ProviderKind::Local as i32, ProviderKind::External as i32, ProviderKind::Unspecified as i32);
        assert_eq!(combined_source(external, local), local);
        assert_eq!(combined_source(none, external), external);
        assert_eq!(combined_source(none, none), none);
    }
}
