//! Upkeep: forgetting what no redelivery or retry can need any more.

use std::time::SystemTime;

use kem_kit::outbox::Inbox;
use kem_kit::store::millis;

use super::AnalyticsCore;

impl AnalyticsCore {
    /// One round of upkeep: forget processed message ids, report ids and deletion tombstones older
    /// than the retention.
    pub async fn maintain(&self) {
        let now = self.clock.now();
        let cutoff = millis(now.checked_sub(self.config.dedupe_retention).unwrap_or(SystemTime::UNIX_EPOCH));
        match Inbox::purge_at(self.repo.store(), now, self.config.dedupe_retention).await {
            Ok(n) if n > 0 => tracing::debug!(purged = n, "old inbox records purged"),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot purge old inbox records; retrying next round"),
        }
        if let Err(error) = self.repo.purge_reports(cutoff).await {
            tracing::warn!(%error, "cannot purge old channel metrics report ids; retrying next round");
        }
        if let Err(error) = self.repo.purge_tombstones(cutoff).await {
            tracing::warn!(%error, "cannot purge deleted events' tombstones; retrying next round");
        }
    }
}
