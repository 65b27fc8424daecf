//! The maintenance task: one round of [`AnalyticsCore::maintain`] every interval, until shutdown.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::runtime::periodic::Periodic;
use kem_mesh::Shutdown;

use crate::app::AnalyticsCore;

/// Runs maintenance on `shutdown`'s task set, `interval` after the start and after each round
/// ends, until `shutdown`; a round in progress finishes.
pub fn spawn(core: Arc<AnalyticsCore>, interval: Duration, shutdown: Shutdown) {
    Periodic::resting("analytics maintenance", interval).spawn(shutdown, move || {
        let core = core.clone();
        async move { core.maintain().await }
    });
}
