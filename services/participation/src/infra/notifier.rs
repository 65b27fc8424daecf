//! The winner notifier's loop: one [`ParticipationCore::run_notifications`] tick every interval
//! until shutdown, as a replica with its own id. A tick the shutdown interrupts leaves at most a
//! lease behind, which expires; a send interrupted between its recorded attempt and its answer
//! is searched for at the provider before any resend.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::runtime::periodic::Periodic;
use kem_mesh::Shutdown;

use crate::app::ParticipationCore;

/// Runs until `shutdown`, one tick every `every` (the first at once); a late tick is delayed,
/// not bunched up.
pub async fn run(core: Arc<ParticipationCore>, every: Duration, shutdown: Shutdown) {
    let worker = format!("notifier-{}", uuid::Uuid::new_v4());
    Periodic::new("winner notifier", every)
        .run(shutdown, || async {
            match core.run_notifications(&worker).await {
                Ok(report) if report != Default::default() => tracing::debug!(?report, %worker, "notifier tick"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, %worker, "notifier tick failed; retrying at the next interval"),
            }
        })
        .await;
    tracing::debug!(%worker, "winner notifier stopped");
}
