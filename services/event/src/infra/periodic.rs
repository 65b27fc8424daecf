//! The loop of the service's background tasks (the job-timeout sweeper, the scheduler): one tick
//! every interval until shutdown, a late tick delayed rather than bunched up, and a tick in
//! progress dropped when the service stops (each tick's work is safe to interrupt: a transaction
//! rolls back, a scheduler lease expires).

use std::future::Future;
use std::time::Duration;

use kem_mesh::Shutdown;

/// Runs `tick` every `every` (the first at once) until `shutdown`.
pub async fn every<F, Fut>(every: Duration, shutdown: Shutdown, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.wait() => break,
        }
        tokio::select! {
            () = tick() => {}
            _ = shutdown.wait() => break,
        }
    }
}
