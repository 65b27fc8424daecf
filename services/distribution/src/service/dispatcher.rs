//! The scheduler: finds deliveries whose attempt or poll is due, and runs each as its own task
//! under its channel's deadline.
//!
//! Channels are independent lanes: each has its own client (its own timeouts, retries and
//! circuit breaker), its own concurrency limit and its own step deadline, and a lane only claims
//! as much work as it has free slots. A channel that hangs therefore fills only its own slots and
//! delays nobody else. Work is claimed with a lease in the database, so several replicas share the
//! load, and a step whose worker died is taken over once its lease expires (the next attempt
//! continues from the saved provider-side handle).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use kem_kit::outbox::OutboxWaker;
use kem_kit::store::millis;
use kem_mesh::Shutdown;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::messages;
use crate::channels::{ChannelClient, OwnerSource, Progress, Step, image_url};
use crate::config::ChannelPolicy;
use crate::model::step::event_ended;
use crate::model::{Channel, DeliveryState, ErrorReason, Failure, StepOutcome, apply};
use crate::repository::{Claimed, Repository};

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
    owners: Arc<dyn OwnerSource>,
    public_base_url: String,
    outbox: OutboxWaker,
    wake: Notify,
    scan_interval: Duration,
    lease_margin: Duration,
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
    /// Base of public image URLs.
    pub public_base_url: String,
    /// How often to look for due work when nothing woke the loop.
    pub scan_interval: Duration,
    /// How long a hold outlives its step's deadline.
    pub lease_margin: Duration,
}

fn now_ms() -> i64 {
    millis(SystemTime::now())
}

impl Dispatcher {
    /// A scheduler over `lanes`.
    pub fn new(
        repo: Repository,
        lanes: Vec<Lane>,
        owners: Arc<dyn OwnerSource>,
        outbox: OutboxWaker,
        settings: DispatchSettings,
    ) -> Dispatcher {
        Dispatcher {
            inner: Arc::new(Inner {
                repo,
                lanes: lanes.into_iter().map(Arc::new).collect(),
                owners,
                public_base_url: settings.public_base_url,
                outbox,
                wake: Notify::new(),
                scan_interval: settings.scan_interval,
                lease_margin: settings.lease_margin,
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
    let now = now_ms();
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
                step(&inner, &lane, work, &token).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// Saves progress of one held delivery.
struct HeldProgress<'a> {
    repo: &'a Repository,
    event_id: &'a str,
    channel: Channel,
    token: &'a str,
    saved: Mutex<Option<(String, String)>>,
}

#[async_trait::async_trait]
impl Progress for HeldProgress<'_> {
    async fn save_work_ref(&self, work_ref: &str, external_id: &str) {
        if let Ok(mut saved) = self.saved.lock() {
            *saved = Some((work_ref.to_owned(), external_id.to_owned()));
        }
        let stored =
            self.repo.save_work_ref(self.event_id, self.channel, self.token, work_ref, external_id, now_ms()).await;
        match stored {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the delivery's hold was lost while saving progress"),
            Err(error) => {
                tracing::warn!(%error, "cannot save the delivery's progress; it is kept for the end of the step")
            }
        }
    }
}

/// Runs one step of a held delivery and records what came of it.
async fn step(inner: &Inner, lane: &Lane, work: Claimed, token: &str) {
    let Claimed { mut delivery, started } = work;
    delivery.provider = lane.client.provider();
    let event = match inner.repo.event_by_id(&delivery.event_id).await {
        Ok(Some(event)) => Some(event),
        Ok(None) => None,
        Err(error) => {
            // The hold expires and the step runs again.
            tracing::warn!(%error, "cannot read the event of a delivery");
            return;
        }
    };
    let outcome = match event.map(|e| messages::decode_job(&e.job)) {
        None => StepOutcome::fail(Failure::new(ErrorReason::Internal, "the delivery's event record is missing", false)),
        Some(Err(error)) => StepOutcome::fail(Failure::new(ErrorReason::Internal, error.to_string(), false)),
        Some(Ok(job)) if job.ended(now_ms()) => event_ended(),
        Some(Ok(job)) => {
            let copy = job.copy_for(delivery.channel).cloned().unwrap_or_default();
            let image = image_url(&inner.public_base_url, &job.image_id);
            let progress = HeldProgress {
                repo: &inner.repo,
                event_id: &delivery.event_id,
                channel: delivery.channel,
                token,
                saved: Mutex::new(None),
            };
            let step = Step {
                delivery: &delivery,
                job: &job,
                copy: &copy,
                image_url: image.as_deref(),
                owners: inner.owners.as_ref(),
                progress: &progress,
            };
            let deadline = lane.policy.deadline;
            let outcome = match tokio::time::timeout(deadline, lane.client.advance(&step)).await {
                Ok(outcome) => outcome,
                Err(_) => timed_out(lane.client.as_ref(), deadline),
            };
            let saved = progress.saved.lock().ok().and_then(|mut s| s.take());
            if let Some((work_ref, external_id)) = saved {
                delivery.work_ref = (!work_ref.is_empty()).then_some(work_ref);
                if !external_id.is_empty() {
                    delivery.external_id = external_id;
                }
            }
            outcome
        }
    };
    let now = now_ms();
    let applied = apply(&delivery, started, outcome, &lane.policy.retry, now, rand::random::<f64>());
    let message = applied.outcome.as_ref().map(|fact| messages::outcome_message(&applied.delivery, fact, now));
    let d = &applied.delivery;
    match inner.repo.finish(d, token, message).await {
        Ok(true) => {
            if applied.outcome.is_some() {
                inner.outbox.wake();
            }
            log_result(d);
        }
        Ok(false) => tracing::warn!("the delivery's hold expired before its step ended; the step's result is dropped"),
        Err(error) => {
            tracing::warn!(%error, "cannot record the step's result; the delivery is taken over when its hold expires")
        }
    }
}

/// The outcome of a step cut short by its deadline.
fn timed_out(client: &dyn ChannelClient, deadline: Duration) -> StepOutcome {
    let failure = Failure::new(
        ErrorReason::ProviderUnavailable,
        format!("{} did not complete the step within {deadline:?}", client.provider().name),
        true,
    )
    .with_code("TIMEOUT");
    if client.retry_after_timeout_is_safe() {
        StepOutcome::retry(failure)
    } else {
        let mut failure = failure;
        failure.message.push_str(
            "; the provider may have acted on it, so it is not repeated automatically — check before retrying",
        );
        StepOutcome::fail(failure)
    }
}

fn log_result(d: &crate::model::Delivery) {
    let error = d.last_error.as_ref().map(|e| format!("{}: {}", e.failure.reason.as_str(), e.failure.message));
    match d.state {
        DeliveryState::Published => {
            tracing::info!(external_id = %d.external_id, provider = %d.provider.name, attempts = d.attempts, "delivery published")
        }
        DeliveryState::Failed => {
            tracing::warn!(provider = %d.provider.name, attempts = d.attempts, error = ?error, "delivery failed")
        }
        DeliveryState::AwaitingOwner => tracing::info!("delivery prepared for owner-assisted publishing"),
        state => {
            tracing::debug!(state = state.as_str(), next_attempt_at = ?d.next_attempt_at, error = ?error, "delivery step done")
        }
    }
}
