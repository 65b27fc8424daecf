//! The event scheduler: every interval it runs one [`EventApp::run_schedule`] tick — ending the
//! events whose period is over and drawing the auto-draw events whose delay has passed. Several
//! replicas may run it on one database: the use case claims each event with a lease, so every
//! event is worked on by one replica at a time.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::runtime::periodic::Periodic;
use kem_mesh::Shutdown;

use crate::app::EventApp;
use crate::app::ids::new_id;

/// Runs until `shutdown`, one tick every `every`, as a scheduler replica with its own id. A tick
/// the shutdown interrupts leaves at most a lease behind, which expires.
pub async fn run(app: Arc<EventApp>, every: Duration, shutdown: Shutdown) {
    let worker = format!("scheduler-{}", new_id());
    Periodic::new("event scheduler", every)
        .run(shutdown, || async {
            match app.run_schedule(&worker).await {
                Ok(report) if report.retried > 0 => {
                    tracing::debug!(?report, %worker, "scheduler tick left work for the next one");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, %worker, "scheduler tick failed; retrying at the next interval"),
            }
        })
        .await;
    tracing::debug!(%worker, "event scheduler stopped");
}
