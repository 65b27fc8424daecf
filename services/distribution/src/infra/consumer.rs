//! The `distribution-jobs` consumer (each message handed to
//! [`DistributionCore::accept_job`](crate::app::DistributionCore::accept_job), which dedupes it
//! through the inbox) and the hourly purge of old inbox records.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::outbox::{Consumer, ConsumerOptions, Inbox};
use kem_kit::queue::{ReceivedMessage, names};
use kem_kit::runtime::ServiceContext;

use crate::app::DistributionCore;

/// Consumes `distribution-jobs` with `concurrency` handlers until `ctx.shutdown`.
pub fn spawn(ctx: &ServiceContext, core: Arc<DistributionCore>, concurrency: usize) {
    let handler = move |message: ReceivedMessage| {
        let core = core.clone();
        async move { core.accept_job(&message).await.map(drop) }
    };
    let mut options = ConsumerOptions::new(names::DISTRIBUTION_JOBS);
    options.name = ctx.service.clone();
    options.concurrency = concurrency.max(1);
    ctx.shutdown.spawn(Consumer::run(ctx.queue.clone(), handler, options, ctx.shutdown.clone()));
}

/// How long processed job ids are remembered: far beyond any redelivery (Service Bus dedupe
/// window, outbox lease, consumer retries), short enough to keep the inbox small.
const INBOX_RETENTION: Duration = Duration::from_secs(7 * 24 * 3_600);

/// Forgets old inbox records once an hour, until `ctx.shutdown`.
pub fn spawn_inbox_purge(ctx: &ServiceContext) {
    let (store, shutdown) = (ctx.store.clone(), ctx.shutdown.clone());
    ctx.shutdown.spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3_600)) => {}
                _ = shutdown.wait() => return,
            }
            match Inbox::purge(&store, INBOX_RETENTION).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "old inbox records purged"),
                Err(error) => tracing::warn!(%error, "cannot purge old inbox records; trying again in an hour"),
            }
        }
    });
}
