//! The maintenance task: one round of [`AnalyticsCore::maintain`] every interval, until shutdown.

use std::sync::Arc;
use std::time::Duration;

use kem_mesh::Shutdown;

use crate::app::AnalyticsCore;

/// Runs maintenance every `interval` on `shutdown`'s task set, until `shutdown`.
pub fn spawn(core: Arc<AnalyticsCore>, interval: Duration, shutdown: Shutdown) {
    shutdown.clone().spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait() => return,
            }
            core.maintain().await;
        }
    });
}
