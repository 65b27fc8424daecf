//! Recording RecordChannelMetrics reports: idempotent by report id, latest observation wins.

use kem_kit::store::query;

use super::{Repository, Result, Touched};
use crate::domain::{MetricsReport, Recorded};

const REMEMBER_REPORT: &str = "\
INSERT INTO analytics_metric_reports (report_id, event_id, channel, observed_at, recorded_at)
VALUES ($1, $2, $3, $4, $5) ON CONFLICT (report_id) DO NOTHING";

/// Replaces the channel's snapshot unless a later observation is stored already (an equal
/// observation time replaces it: the later report of the same instant wins).
const STORE_SNAPSHOT: &str = "\
INSERT INTO analytics_channel_metrics
    (event_id, channel, views, reach, deliveries_published, deliveries_failed, source_kind, source_name,
     observed_at, report_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (event_id, channel) DO UPDATE SET
    views = excluded.views, reach = excluded.reach, deliveries_published = excluded.deliveries_published,
    deliveries_failed = excluded.deliveries_failed, source_kind = excluded.source_kind,
    source_name = excluded.source_name, observed_at = excluded.observed_at, report_id = excluded.report_id
WHERE analytics_channel_metrics.observed_at <= excluded.observed_at";

impl Repository {
    /// Records `report` in one transaction: its id (a repeated id changes nothing), the event's
    /// row (owner unknown until a fact names it), and the snapshot if it is the latest.
    pub async fn record_metrics(&self, report: &MetricsReport, now_ms: i64) -> Result<(Recorded, Option<Touched>)> {
        let mut tx = self.store.begin().await?;
        let first = query(REMEMBER_REPORT)
            .bind(report.report_id.as_str())
            .bind(report.event_id.as_str())
            .bind(report.channel)
            .bind(report.observed_ms)
            .bind(now_ms)
            .execute(&mut tx)
            .await?;
        if first == 0 {
            tx.rollback().await?;
            return Ok((Recorded { duplicate: true, stale: false }, None));
        }
        let Some(owner_id) = self.touch(&mut tx, &report.event_id, "", report.observed_ms, false, now_ms).await? else {
            // A deleted (draft) event: keep the report id so a retry is a duplicate, change nothing.
            tx.commit().await?;
            return Ok((Recorded { duplicate: false, stale: true }, Some(Touched::Deleted)));
        };
        let stored = query(STORE_SNAPSHOT)
            .bind(report.event_id.as_str())
            .bind(report.channel)
            .bind(report.views)
            .bind(report.reach)
            .bind(report.deliveries_published)
            .bind(report.deliveries_failed)
            .bind(report.source_kind)
            .bind(report.source_name.as_str())
            .bind(report.observed_ms)
            .bind(report.report_id.as_str())
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        let stale = stored == 0;
        Ok((Recorded { duplicate: false, stale }, (!stale).then_some(Touched::Changed { owner_id })))
    }
}
