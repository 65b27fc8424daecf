//! Views → contract messages, and protobuf times ↔ epoch milliseconds.

use std::time::Duration;

use kem_proto::kem::analytics::v1 as pb;
use kem_proto::kem::common::v1 as common;

use crate::app::Freshness;
use crate::domain::{ChannelFigures, DashboardView, EventAnalyticsView, EventSummaryView, HourlyFigure, Period};

/// Epoch milliseconds ↔ protobuf timestamps: the kit's one conversion.
pub use kem_kit::clock::{ms_from_timestamp as timestamp_ms, timestamp_from_ms as timestamp};

fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

fn money(amount_krw: i64) -> common::Money {
    common::Money { amount_krw }
}

fn period(p: Period) -> common::Period {
    common::Period { start_time: Some(timestamp(p.start_ms)), end_time: Some(timestamp(p.end_ms)) }
}

fn cache_info(compute_ms: i64, freshness: Freshness) -> pb::CacheInfo {
    pb::CacheInfo {
        cached: freshness.cached,
        compute_time: Some(timestamp(compute_ms)),
        max_age: Some(duration(freshness.max_age)),
    }
}

fn channel_stats(c: &ChannelFigures) -> pb::ChannelStats {
    pb::ChannelStats {
        channel: c.channel,
        participants: c.participants,
        views: c.views,
        reach: c.reach,
        deliveries_published: c.deliveries_published,
        deliveries_failed: c.deliveries_failed,
        metrics_source: c.metrics_source,
        metrics_reported: c.metrics_observed_ms.is_some(),
        metrics_observe_time: c.metrics_observed_ms.map(timestamp),
    }
}

fn hourly(h: &HourlyFigure) -> pb::HourlyBucket {
    pb::HourlyBucket { hour: Some(timestamp(h.hour_start_ms)), channel: h.channel, participants: h.participants }
}

fn summary(s: &EventSummaryView) -> pb::EventSummary {
    pb::EventSummary {
        event_id: s.event_id.clone(),
        title: s.title.clone(),
        period: s.period.map(period),
        active: s.active,
        participants: s.participants,
        reach: s.reach,
        budget: Some(money(s.budget_krw)),
        cost_per_entry: s.cost_per_entry_krw().map(money),
        roi: s.roi(),
    }
}

/// The contract's EventAnalytics.
pub fn event_analytics(view: &EventAnalyticsView, freshness: Freshness) -> pb::EventAnalytics {
    pb::EventAnalytics {
        event_id: view.event_id.clone(),
        total_participants: view.total_participants,
        total_views: view.total_views,
        total_reach: view.total_reach,
        channel_stats: view.channels.iter().map(channel_stats).collect(),
        hourly: view.hourly.iter().map(hourly).collect(),
        budget: Some(money(view.budget_krw)),
        cost_per_entry: view.cost_per_entry_krw().map(money),
        value_per_participant: Some(money(view.value_per_participant_krw)),
        estimated_value: Some(money(view.estimated_value_krw())),
        roi: view.roi(),
        update_time: Some(timestamp(view.update_ms)),
        cache: Some(cache_info(view.compute_ms, freshness)),
    }
}

/// The contract's Dashboard.
pub fn dashboard(view: &DashboardView, freshness: Freshness) -> pb::Dashboard {
    pb::Dashboard {
        owner_id: view.owner_id.clone(),
        total_events: i32::try_from(view.total_events).unwrap_or(i32::MAX),
        active_events_count: i32::try_from(view.active_events).unwrap_or(i32::MAX),
        total_participants: view.total_participants,
        total_views: view.total_views,
        total_reach: view.total_reach,
        total_budget: Some(money(view.total_budget_krw)),
        average_cost_per_entry: view.average_cost_per_entry_krw().map(money),
        roi: view.roi(),
        channel_stats: view.channels.iter().map(channel_stats).collect(),
        events: view.events.iter().map(summary).collect(),
        update_time: view.update_ms.map(timestamp),
        cache: Some(cache_info(view.compute_ms, freshness)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_including_before_the_epoch() {
        for ms in [0, 1, 999, 1_000, 1_700_000_000_123, -1, -1_001] {
            assert_eq!(timestamp_ms(&timestamp(ms)), ms, "{ms}");
        }
        assert_eq!(timestamp(-1), prost_types::Timestamp { seconds: -1, nanos: 999_000_000 });
    }
}
