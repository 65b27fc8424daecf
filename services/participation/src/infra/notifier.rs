//! The winner notifier's loop: one [`ParticipationCore::run_notifications`] tick every interval
//! until shutdown, as a replica with its own id. A tick the shutdown interrupts leaves at most a
//! lease behind, which expires; a send interrupted between its recorded attempt and its answer
//! is searched for at the provider before any resend.

use std::sync::Arc;
use std::time::Duration;

use kem_mesh::Shutdown;

use crate::app::ParticipationCore;

/// Runs until `shutdown`, one tick every `every` (the first at once); a late tick is delayed,
/// not bunched up.
pub async fn run(core: Arc<ParticipationCore>, every: Duration, shutdown: Shutdown) {
    let worker = format!("notifier-{}", uuid::Uuid::new_v4());
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.wait() => break,
        }
        tokio::select! {
            report = core.run_notifications(&worker) => match report {
                Ok(report) if report != Default::default() => tracing::debug!(?report, %worker, "notifier tick"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, %worker, "notifier tick failed; retrying at the next interval"),
            },
            _ = shutdown.wait() => break,
        }
    }
    tracing::debug!(%worker, "winner notifier stopped");
}
