//! The scheduler: finds deliveries whose attempt or poll is due, and runs each as its own task
//! under its channel's deadline. What one step does is the use case
//! [`DeliveryWorker::step`](crate::app::delivery::DeliveryWorker::step); this is the loop around it.
//!
//! Channels are independent lanes: each has its own client (its own timeouts, retries and
//! circuit breaker), its own concurrency limit and its own step deadline, and a lane only claims
//! as much work as it has free slots. A channel that hangs therefore fills only its own slots and
//! delays nobody else. Work is claimed with a lease in the database, so several replicas share the
//! load, and a step whose worker died is taken over once its lease expires (the next attempt
//! continues from the saved provider-side handle).

use std::sync::Arc;
use std::time::Duration;

use kem_kit::clock::Clock;
use kem_mesh::Shutdown;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::app::delivery::DeliveryWorker;
use crate::config::ChannelPolicy;
use crate::domain::Channel;
use crate::infra::channels::ChannelClient;
use crate::infra::repository::Repository;

/// One channel's lane.
pub struct Lane {
    /// The channel's client.
    pub client: Arc<dyn ChannelClient>,
    /// Its limits.
    pub policy: ChannelPolicy,
    permits: Arc<Semaphore>,
}

impl Lane {
    /// A lane for `client` under `policy`.
    pub fn new(client: Arc<dyn ChannelClient>, policy: ChannelPolicy) -> Lane {
        let permits = Arc::new(Semaphore::new(policy.concurrency.max(1)));
        Lane { client, policy, permits }
    }

    fn channel(&self) -> Channel {
        self.client.channel()
    }
}

struct Inner {
    repo: Repository,
    lanes: Vec<Arc<Lane>>,
    worker: DeliveryWorker,
    wake: Notify,
    scan_interval: Duration,
    lease_margin: Duration,
    clock: Arc<dyn Clock>,
}

/// The scheduler (cheap to clone; clones share it).
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let channels: Vec<Channel> = self.inner.lanes.iter().map(|l| l.channel()).collect();
        f.debug_struct("Dispatcher").field("channels", &channels).finish_non_exhaustive()
    }
}

/// Settings of the scheduler loop.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// How often to look for due work when nothing woke the loop.
    pub scan_interval: Duration,
    /// How long a hold outlives its step's deadline.
    pub lease_margin: Duration,
}

impl Dispatcher {
    /// A scheduler over `lanes`, claiming deliveries in `repo` that are due by `clock` and running
    /// each step with `worker`.
    pub fn new(
        repo: Repository,
        lanes: Vec<Lane>,
        worker: DeliveryWorker,
        settings: DispatchSettings,
        clock: Arc<dyn Clock>,
    ) -> Dispatcher {
        Dispatcher {
            inner: Arc::new(Inner {
                repo,
                lanes: lanes.into_iter().map(Arc::new).collect(),
                worker,
                wake: Notify::new(),
                scan_interval: settings.scan_interval,
                lease_margin: settings.lease_margin,
                clock,
            }),
        }
    }

    /// Looks for due work now (after new deliveries or a retry were committed).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// The client of `channel`.
    pub fn client(&self, channel: Channel) -> Option<&Arc<dyn ChannelClient>> {
        self.inner.lanes.iter().find(|l| l.channel() == channel).map(|l| &l.client)
    }

    /// Runs the loop until `shutdown`; running steps then get `drain` to finish (the others are
    /// taken over later through their leases).
    pub fn spawn(&self, shutdown: Shutdown, drain: Duration) -> tokio::task::JoinHandle<()> {
        let inner = self.inner.clone();
        shutdown.clone().spawn(async move { run(inner, shutdown, drain).await })
    }
}

async fn run(inner: Arc<Inner>, shutdown: Shutdown, drain: Duration) {
    let mut tasks = JoinSet::new();
    tracing::info!(channels = inner.lanes.len(), "distribution scheduler started");
    loop {
        while tasks.try_join_next().is_some() {}
        for lane in &inner.lanes {
            claim(&inner, lane, &mut tasks).await;
        }
        tokio::select! {
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(inner.scan_interval) => {}
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            _ = shutdown.wait() => break,
        }
    }
    if !tasks.is_empty() {
        tracing::info!(running = tasks.len(), "distribution scheduler draining");
        if tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} }).await.is_err() {
            tracing::warn!(
                cancelled = tasks.len(),
                "drain timeout: cancelling steps; their leases expire and they are taken over"
            );
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
    }
    tracing::info!("distribution scheduler stopped");
}

/// Claims what `lane` has room for and starts a task per delivery.
async fn claim(inner: &Arc<Inner>, lane: &Arc<Lane>, tasks: &mut JoinSet<()>) {
    let free = lane.permits.available_permits();
    if free == 0 {
        return;
    }
    let now = inner.clock.now_ms();
    let hold = lane.policy.deadline + inner.lease_margin;
    let lease_until = now.saturating_add(i64::try_from(hold.as_millis()).unwrap_or(i64::MAX / 2));
    let token = format!("{:032x}", rand::random::<u128>());
    let claimed = match inner.repo.claim_due(lane.channel(), free, now, lease_until, &token).await {
        Ok(claimed) => claimed,
        Err(error) => {
            tracing::warn!(channel = %lane.channel(), %error, "cannot look for due deliveries; trying again shortly");
            return;
        }
    };
    for work in claimed {
        let Ok(permit) = lane.permits.clone().try_acquire_owned() else {
            // Cannot happen (only this loop takes permits); the lease expires and it is retried.
            tracing::warn!(channel = %lane.channel(), "no free slot for a claimed delivery");
            continue;
        };
        let span = tracing::info_span!(
            "distribution.step",
            event_id = %work.delivery.event_id,
            channel = %work.delivery.channel,
            attempt = work.delivery.attempts,
            started = work.started,
        );
        let (inner, lane, token) = (inner.clone(), lane.clone(), token.clone());
        tasks.spawn(
            async move {
                inner.worker.step(lane.client.as_ref(), &lane.policy, work, &token).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
}
