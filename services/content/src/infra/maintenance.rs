//! Periodic housekeeping: forget renders older than their lifetime (their bytes stay: images may
//! share them) and inbox records older than any redelivery.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::outbox::Inbox;
use kem_kit::runtime::periodic::{InFlight, Periodic};
use kem_kit::store::Store;
use kem_mesh::Shutdown;

use crate::app::ports::Clock;

use super::repository::SqlImageRepository;

/// How long finished-message records are kept (far beyond the queue's redelivery window).
pub const INBOX_RETENTION: Duration = Duration::from_secs(14 * 24 * 3_600);

/// Runs every `interval` (the first at once) until `shutdown`; a round in progress finishes.
pub async fn run(
    repository: Arc<SqlImageRepository>,
    store: Store,
    clock: Arc<dyn Clock>,
    render_ttl: Duration,
    interval: Duration,
    shutdown: Shutdown,
) {
    let task = Periodic::new("content maintenance", interval).in_flight(InFlight::Finish);
    task.run(shutdown, || async {
        let ttl_ms = i64::try_from(render_ttl.as_millis()).unwrap_or(i64::MAX);
        match repository.purge_renders(clock.now_ms().saturating_sub(ttl_ms)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(renders = n, "expired renders forgotten"),
            Err(error) => tracing::warn!(%error, "render purge failed; retrying next round"),
        }
        match Inbox::purge_at(&store, clock.now(), INBOX_RETENTION).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(records = n, "old inbox records purged"),
            Err(error) => tracing::warn!(%error, "inbox purge failed; retrying next round"),
        }
    })
    .await;
}
