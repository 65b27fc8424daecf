//! Delivering: one step of a delivery a worker holds. It reads the publication, fetches the
//! owner's own account for channels published through one ([`Connections::for_step`]: a channel
//! that needs a connection the owner does not have fails at once, AUTH_REQUIRED or
//! NOT_CONFIGURED), asks the channel's client to advance the delivery under the channel's
//! deadline (a provider refusing the owner's token marks the connection NEEDS_RECONNECT), applies
//! the domain's
//! rules ([`apply`]) to what came of it, and records the next state together with the analytics
//! outcome it ends in. The scheduler that claims due deliveries and runs these steps is
//! [`crate::infra::dispatcher`].

use std::sync::Arc;
use std::time::Duration;

use kem_kit::clock::Clock;
use kem_kit::outbox::OutboxWaker;

use super::connections::{Connections, Renewal, StepAccess};
use crate::config::ChannelPolicy;
use crate::domain::step::event_ended;
use crate::domain::{Delivery, DeliveryState, ErrorReason, Failure, JobSpec, StepOutcome, apply};
use crate::infra::channels::{ChannelClient, Progress, Step, channel_name, entry_url, signed_image_url};
use crate::infra::connections::ConnectedAccount;
use crate::infra::messages;
use crate::infra::owners::MeshOwners;
use crate::infra::repository::{Claimed, Repository};
use kem_kit::media::MediaLinks;

/// Works the steps of held deliveries.
#[derive(Debug)]
pub struct DeliveryWorker {
    repo: Repository,
    owners: MeshOwners,
    connections: Arc<Connections>,
    public_base_url: String,
    media: MediaLinks,
    outbox: OutboxWaker,
    clock: Arc<dyn Clock>,
}

impl DeliveryWorker {
    /// A worker recording in `repo`, reading store profiles from `owners` and the owners'
    /// accounts from `connections`, signing the public image links platforms fetch with `media`,
    /// building the entry links a job lacks on `public_base_url`, waking the `outbox` relay when
    /// an outcome was written and reading "now" from `clock`.
    pub fn new(
        repo: Repository,
        owners: MeshOwners,
        connections: Arc<Connections>,
        outbox: OutboxWaker,
        public_base_url: String,
        media: MediaLinks,
        clock: Arc<dyn Clock>,
    ) -> DeliveryWorker {
        DeliveryWorker { repo, owners, connections, public_base_url, media, outbox, clock }
    }

    /// Runs one step of the delivery held under `token` with `client`, within `policy`, and
    /// records what came of it.
    pub async fn step(&self, client: &dyn ChannelClient, policy: &ChannelPolicy, work: Claimed, token: &str) {
        let Claimed { mut delivery, started } = work;
        delivery.provider = client.provider();
        let event = match self.repo.event_by_id(&delivery.event_id).await {
            Ok(Some(event)) => Some(event),
            Ok(None) => None,
            Err(error) => {
                // The hold expires and the step runs again.
                tracing::warn!(%error, "cannot read the event of a delivery");
                return;
            }
        };
        let outcome = match event.map(|e| messages::decode_job(&e.job)) {
            None => {
                StepOutcome::fail(Failure::new(ErrorReason::Internal, "the delivery's event record is missing", false))
            }
            Some(Err(error)) => StepOutcome::fail(Failure::new(ErrorReason::Internal, error.to_string(), false)),
            Some(Ok(job)) if job.ended(self.clock.now_ms()) => event_ended(),
            Some(Ok(job)) => match self.connections.for_step(&delivery.owner_id, delivery.channel).await {
                StepAccess::Refused(failure) => StepOutcome::fail(failure),
                StepAccess::Later(failure) => StepOutcome::retry(failure),
                StepAccess::Without => self.advance(client, policy, &mut delivery, &job, None, token).await,
                StepAccess::Account(account) => {
                    let mut account = account;
                    let mut outcome = self.advance(client, policy, &mut delivery, &job, Some(&account), token).await;
                    if refused(&outcome) {
                        match self.connections.renew_refused(&delivery.owner_id, &account).await {
                            Renewal::Fresh(fresh) => {
                                // Once: a token refused right after its refresh means the grant is gone.
                                account = fresh;
                                outcome =
                                    self.advance(client, policy, &mut delivery, &job, Some(&account), token).await;
                            }
                            Renewal::Later(failure) => outcome = StepOutcome::retry(failure),
                            Renewal::Refused => {}
                        }
                    }
                    self.token_refused(&delivery, &account, outcome).await
                }
            },
        };
        let now = self.clock.now_ms();
        let applied = apply(&delivery, started, outcome, &policy.retry, now, rand::random::<f64>());
        let message = applied.outcome.as_ref().map(|fact| messages::outcome_message(&applied.delivery, fact, now));
        let d = &applied.delivery;
        match self.repo.finish(d, token, message).await {
            Ok(true) => {
                if applied.outcome.is_some() {
                    self.outbox.wake();
                }
                log_result(d);
            }
            Ok(false) => {
                tracing::warn!("the delivery's hold expired before its step ended; the step's result is dropped")
            }
            Err(error) => {
                tracing::warn!(%error, "cannot record the step's result; the delivery is taken over when its hold expires")
            }
        }
    }

    /// Asks `client` to advance `delivery` (with the owner's `account`, if the channel uses
    /// one) under the channel's deadline; keeps the provider-side handle the step saved.
    async fn advance(
        &self,
        client: &dyn ChannelClient,
        policy: &ChannelPolicy,
        delivery: &mut Delivery,
        job: &JobSpec,
        account: Option<&ConnectedAccount>,
        token: &str,
    ) -> StepOutcome {
        delivery.provider = client.provider_for(account);
        let mut copy = job.copy_for(delivery.channel).cloned().unwrap_or_default();
        if copy.entry_url.is_empty() {
            // A job from a publisher older than ChannelDelivery.entry_url.
            copy.entry_url = entry_url(&self.public_base_url, &job.event_id, delivery.channel).unwrap_or_default();
        }
        let image = signed_image_url(
            &self.media,
            &job.image_id,
            delivery.channel,
            &copy.entry_url,
            job.period_end_ms,
            self.clock.now(),
        );
        let progress = Progress::new(&self.repo, &delivery.event_id, delivery.channel, token);
        let outcome = {
            let step = Step {
                delivery,
                job,
                copy: &copy,
                image_url: image.as_deref(),
                owners: &self.owners,
                account,
                progress: &progress,
            };
            let deadline = policy.deadline;
            match tokio::time::timeout(deadline, client.advance(&step)).await {
                Ok(outcome) => outcome,
                Err(_) => timed_out(client, deadline),
            }
        };
        if let Some((work_ref, external_id)) = progress.take_saved() {
            delivery.work_ref = (!work_ref.is_empty()).then_some(work_ref);
            if !external_id.is_empty() {
                delivery.external_id = external_id;
            }
        }
        outcome
    }

    /// A provider that refused the owner's token (AUTH_REQUIRED) means the connection must be
    /// renewed: it is marked NEEDS_RECONNECT, and the failure tells the owner so.
    async fn token_refused(
        &self,
        delivery: &Delivery,
        account: &ConnectedAccount,
        outcome: StepOutcome,
    ) -> StepOutcome {
        match outcome {
            StepOutcome::Failed { mut failure, auto_retry } if failure.reason == ErrorReason::AuthRequired => {
                let detail = if failure.provider_code.is_empty() {
                    failure.message.clone()
                } else {
                    format!("code {}", failure.provider_code)
                };
                self.connections.token_refused(&delivery.owner_id, account, &detail).await;
                let name = channel_name(delivery.channel);
                let code = if failure.provider_code.is_empty() {
                    String::new()
                } else {
                    format!(" (code {})", failure.provider_code)
                };
                failure.message = format!(
                    "{name} refused the connected account's token{code}: it expired or access was removed; reconnect \
                     your {name} account (Channels) and retry this delivery"
                );
                failure.retryable = false;
                StepOutcome::Failed { failure, auto_retry }
            }
            other => other,
        }
    }
}

/// Whether the provider refused the owner's token.
fn refused(outcome: &StepOutcome) -> bool {
    matches!(outcome, StepOutcome::Failed { failure, .. } if failure.reason == ErrorReason::AuthRequired)
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

fn log_result(d: &Delivery) {
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
