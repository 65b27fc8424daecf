//! Forgetting idempotency records and tombstones once no redelivery can need them.

use kem_kit::store::query;

use super::{Repository, Result};

impl Repository {
    /// Removes RecordChannelMetrics report ids recorded before `cutoff_ms` (a replay after that is
    /// harmless anyway: an old snapshot is stale, the latest one rewrites the same values).
    pub async fn purge_reports(&self, cutoff_ms: i64) -> Result<u64> {
        Ok(query("DELETE FROM analytics_metric_reports WHERE recorded_at < $1")
            .bind(cutoff_ms)
            .execute(self.store.primary())
            .await?)
    }

    /// Removes deleted events' tombstones older than `cutoff_ms`.
    pub async fn purge_tombstones(&self, cutoff_ms: i64) -> Result<u64> {
        Ok(query("DELETE FROM analytics_events WHERE deleted_at IS NOT NULL AND deleted_at < $1")
            .bind(cutoff_ms)
            .execute(self.store.primary())
            .await?)
    }
}
