//! The job-timeout sweeper: fails jobs nobody finished before their deadline, so an owner polling
//! GetJob always sees an end (a lost queue message or a crashed worker cannot leave a job PENDING
//! forever). Several replicas may sweep at once: the guarded UPDATE makes that harmless.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::runtime::periodic::Periodic;
use kem_mesh::Shutdown;

use crate::app::EventApp;

/// Runs until `shutdown`, sweeping every `every`.
pub async fn run(app: Arc<EventApp>, every: Duration, shutdown: Shutdown) {
    Periodic::new("job-timeout sweeper", every)
        .run(shutdown, || async {
            match app.fail_expired_jobs().await {
                Ok(0) => {}
                Ok(failed) => {
                    tracing::warn!(failed, "jobs failed with DEADLINE_EXCEEDED: no worker finished them in time")
                }
                Err(error) => tracing::warn!(%error, "job-timeout sweep failed; retrying at the next interval"),
            }
        })
        .await;
    tracing::debug!("job-timeout sweeper stopped");
}
