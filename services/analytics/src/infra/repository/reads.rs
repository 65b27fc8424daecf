//! What the views are built from. Reads go to the primary: an answer is cached right after it is
//! computed, and a replica lagging behind the invalidating write would get stale figures cached
//! for the whole TTL.

use kem_kit::store::{Row, query};

use super::{Repository, Result, col, decode_channels};
use crate::domain::{ChannelCount, EventRecord, HourlyCount, MetricsSnapshot, OutcomeTotals, Period};

const EVENT_COLUMNS: &str = "e.event_id, e.owner_id, e.status, e.title, e.budget_krw, e.channels, e.period_start, \
                             e.period_end, e.business_category, e.published_at, e.data_at";

/// An owner's dashboard events: known to analytics, published at least once, not deleted.
const OWNED: &str = "e.owner_id = $1 AND e.deleted_at IS NULL AND e.published_at IS NOT NULL";

impl Repository {
    /// The event, unless unknown or deleted.
    pub async fn event(&self, event_id: &str) -> Result<Option<EventRecord>> {
        let sql = kem_kit::store::AssertSqlSafe(format!(
            "SELECT {EVENT_COLUMNS} FROM analytics_events e WHERE e.event_id = $1 AND e.deleted_at IS NULL"
        ));
        query(sql).bind(event_id).fetch_optional(self.store.primary()).await?.map(|row| event(&row)).transpose()
    }

    /// The event's entries per hour and channel.
    pub async fn hourly(&self, event_id: &str) -> Result<Vec<HourlyCount>> {
        let rows = query(
            "SELECT hour_start, channel, participants FROM analytics_hourly WHERE event_id = $1 \
             ORDER BY hour_start, channel",
        )
        .bind(event_id)
        .fetch_all(self.store.primary())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(HourlyCount {
                    hour_start_ms: col(row, "hour_start")?,
                    channel: col(row, "channel")?,
                    participants: col(row, "participants")?,
                })
            })
            .collect()
    }

    /// The event's delivery outcomes per channel.
    pub async fn outcomes(&self, event_id: &str) -> Result<Vec<OutcomeTotals>> {
        let rows = query(
            "SELECT o.event_id, o.channel, o.published, o.failed, o.attempts, o.reported_views, o.reported_reach, o.source_kind \
             FROM analytics_channel_outcomes o WHERE o.event_id = $1",
        )
        .bind(event_id)
        .fetch_all(self.store.primary())
        .await?;
        rows.iter().map(outcome).collect()
    }

    /// The event's latest metrics snapshots per channel.
    pub async fn snapshots(&self, event_id: &str) -> Result<Vec<MetricsSnapshot>> {
        let rows = query(
            "SELECT m.event_id, m.channel, m.views, m.reach, m.deliveries_published, m.deliveries_failed, \
             m.source_kind, m.observed_at FROM analytics_channel_metrics m WHERE m.event_id = $1",
        )
        .bind(event_id)
        .fetch_all(self.store.primary())
        .await?;
        rows.iter().map(snapshot).collect()
    }

    /// `owner_id`'s dashboard events.
    pub async fn owner_events(&self, owner_id: &str) -> Result<Vec<EventRecord>> {
        let sql =
            kem_kit::store::AssertSqlSafe(format!("SELECT {EVENT_COLUMNS} FROM analytics_events e WHERE {OWNED}"));
        let rows = query(sql).bind(owner_id).fetch_all(self.store.primary()).await?;
        rows.iter().map(event).collect()
    }

    /// Entries per event and channel over `owner_id`'s dashboard events.
    pub async fn owner_channel_counts(&self, owner_id: &str) -> Result<Vec<ChannelCount>> {
        let sql = kem_kit::store::AssertSqlSafe(format!(
            "SELECT h.event_id, h.channel, CAST(SUM(h.participants) AS BIGINT) AS participants \
             FROM analytics_hourly h JOIN analytics_events e ON e.event_id = h.event_id \
             WHERE {OWNED} GROUP BY h.event_id, h.channel"
        ));
        let rows = query(sql).bind(owner_id).fetch_all(self.store.primary()).await?;
        rows.iter()
            .map(|row| {
                Ok(ChannelCount {
                    event_id: col(row, "event_id")?,
                    channel: col(row, "channel")?,
                    participants: col(row, "participants")?,
                })
            })
            .collect()
    }

    /// Delivery outcomes over `owner_id`'s dashboard events.
    pub async fn owner_outcomes(&self, owner_id: &str) -> Result<Vec<OutcomeTotals>> {
        let sql = kem_kit::store::AssertSqlSafe(format!(
            "SELECT o.event_id, o.channel, o.published, o.failed, o.attempts, o.reported_views, o.reported_reach, o.source_kind \
             FROM analytics_channel_outcomes o JOIN analytics_events e ON e.event_id = o.event_id WHERE {OWNED}"
        ));
        let rows = query(sql).bind(owner_id).fetch_all(self.store.primary()).await?;
        rows.iter().map(outcome).collect()
    }

    /// Metrics snapshots over `owner_id`'s dashboard events.
    pub async fn owner_snapshots(&self, owner_id: &str) -> Result<Vec<MetricsSnapshot>> {
        let sql = kem_kit::store::AssertSqlSafe(format!(
            "SELECT m.event_id, m.channel, m.views, m.reach, m.deliveries_published, m.deliveries_failed, \
             m.source_kind, m.observed_at FROM analytics_channel_metrics m JOIN analytics_events e ON e.event_id = m.event_id \
             WHERE {OWNED}"
        ));
        let rows = query(sql).bind(owner_id).fetch_all(self.store.primary()).await?;
        rows.iter().map(snapshot).collect()
    }
}

fn event(row: &Row) -> Result<EventRecord> {
    let start: Option<i64> = col(row, "period_start")?;
    let end: Option<i64> = col(row, "period_end")?;
    Ok(EventRecord {
        event_id: col(row, "event_id")?,
        owner_id: col(row, "owner_id")?,
        status: col(row, "status")?,
        title: col(row, "title")?,
        budget_krw: col(row, "budget_krw")?,
        channels: decode_channels(&col::<String>(row, "channels")?)?,
        period: start.zip(end).map(|(start_ms, end_ms)| Period { start_ms, end_ms }),
        business_category: col(row, "business_category")?,
        published_ms: col(row, "published_at")?,
        data_ms: col(row, "data_at")?,
    })
}

fn outcome(row: &Row) -> Result<OutcomeTotals> {
    Ok(OutcomeTotals {
        event_id: col(row, "event_id")?,
        channel: col(row, "channel")?,
        published: col(row, "published")?,
        failed: col(row, "failed")?,
        attempts: col(row, "attempts")?,
        views: col(row, "reported_views")?,
        reach: col(row, "reported_reach")?,
        source_kind: col(row, "source_kind")?,
    })
}

fn snapshot(row: &Row) -> Result<MetricsSnapshot> {
    Ok(MetricsSnapshot {
        event_id: col(row, "event_id")?,
        channel: col(row, "channel")?,
        views: col(row, "views")?,
        reach: col(row, "reach")?,
        deliveries_published: col(row, "deliveries_published")?,
        deliveries_failed: col(row, "deliveries_failed")?,
        source_kind: col(row, "source_kind")?,
        observed_ms: col(row, "observed_at")?,
    })
}
