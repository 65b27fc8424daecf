//! The use cases, over the concrete adapters of [`crate::infra`]:
//!
//! - here, [`DistributionCore`]: accept a publication from `distribution-jobs` (exactly once,
//!   through the inbox), report an event's deliveries (asking the event service about a
//!   publication whose job has not arrived yet), and re-queue failed ones;
//! - [`delivery`]: one step of a held delivery — the channel client called under its deadline,
//!   the domain's rules applied, the next state and its analytics outcome recorded together;
//! - [`connections`]: owners' own accounts on the channels (connect, list, remove, check before
//!   a publication, the account of a step, the token refresh job);
//! - [`error`]: what the owner-facing use cases fail with.

pub mod connections;
pub mod delivery;
pub mod error;
pub mod insights;

use std::collections::BTreeMap;
use std::sync::Arc;

use kem_kit::clock::Clock;
use kem_kit::outbox::{HandlerError, Inbox, Processed};
use kem_kit::queue::ReceivedMessage;

pub use connections::Connections;
pub use delivery::DeliveryWorker;
pub use error::{DistributionError, FieldViolation};

use crate::domain::{Channel, Delivery, DeliveryState, OverallState, ProviderLabel, overall_state};
use crate::infra::dispatcher::Dispatcher;
use crate::infra::messages;
use crate::infra::publications::{MeshPublications, PublicationLookupError};
use crate::infra::repository::{EventRow, Repository};

/// An event's distribution as the owner sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDistribution {
    /// The event.
    pub event_id: String,
    /// Derived from the deliveries.
    pub state: OverallState,
    /// One per channel, in channel order.
    pub deliveries: Vec<Delivery>,
    /// Latest change (ms).
    pub update_time: i64,
}

/// The service's use cases.
#[derive(Debug)]
pub struct DistributionCore {
    repo: Repository,
    dispatcher: Dispatcher,
    publications: MeshPublications,
    providers: BTreeMap<Channel, ProviderLabel>,
    connections: Arc<Connections>,
    consumer: String,
    clock: Arc<dyn Clock>,
}

impl DistributionCore {
    /// The use cases over `repo`, waking `dispatcher` when work arrives and asking
    /// `publications` about publications whose job has not arrived yet; `consumer` names the
    /// inbox (the service name); `connections` holds the owners' accounts; "now" comes from
    /// `clock`.
    pub fn new(
        repo: Repository,
        dispatcher: Dispatcher,
        publications: MeshPublications,
        connections: Arc<Connections>,
        consumer: impl Into<String>,
        clock: Arc<dyn Clock>,
    ) -> DistributionCore {
        let providers = Channel::ALL
            .into_iter()
            .filter_map(|c| dispatcher.client(c).map(|client| (c, client.provider())))
            .collect();
        DistributionCore { repo, dispatcher, publications, providers, connections, consumer: consumer.into(), clock }
    }

    /// The channel connections.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// Where the use cases read "now" from.
    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// The scheduler.
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// Handles one `distribution-jobs` message: records the event and a PENDING delivery per
    /// channel, exactly once per message id (the inbox), and never resetting a delivery that
    /// exists already (so a re-sent job cannot publish twice). Malformed messages are rejected
    /// (dead-lettered); storage trouble asks for a redelivery.
    pub async fn accept_job(&self, message: &ReceivedMessage) -> Result<Processed<u64>, HandlerError> {
        if message.content_type != messages::CONTENT_TYPE {
            return Err(HandlerError::Reject(format!(
                "content type {:?} is not {}",
                message.content_type,
                messages::CONTENT_TYPE
            )));
        }
        match message.properties.get(messages::TYPE_PROPERTY) {
            Some(t) if t == messages::DISTRIBUTION_JOB => {}
            other => {
                return Err(HandlerError::Reject(format!(
                    "message type {other:?} is not {}",
                    messages::DISTRIBUTION_JOB
                )));
            }
        }
        let job = messages::decode_job(&message.body).map_err(|e| HandlerError::Reject(e.to_string()))?;
        let now = self.clock.now_ms();
        let event = EventRow {
            event_id: job.event_id.clone(),
            owner_id: job.owner_id.clone(),
            job: message.body.clone(),
            period_end_at: job.period_end_ms,
            received_at: now,
        };
        let deliveries: Vec<Delivery> = messages::channels(&job)
            .into_iter()
            .map(|c| {
                let provider = self.providers.get(&c).cloned().unwrap_or_default();
                Delivery::new(&job.event_id, c, &job.owner_id, provider, now)
            })
            .collect();
        let channels = deliveries.len();
        let processed = Inbox::process(self.repo.store(), &self.consumer, &message.id, move |tx| {
            Box::pin(async move { Repository::insert_job(tx, &event, &deliveries).await })
        })
        .await?;
        match &processed {
            Processed::Applied(created) => {
                tracing::info!(event_id = %job.event_id, channels, created, "publication accepted");
                self.dispatcher.wake();
            }
            Processed::Duplicate => {
                tracing::info!(event_id = %job.event_id, message_id = %message.id, "duplicate publication ignored")
            }
        }
        Ok(processed)
    }

    /// The deliveries of `owner_id`'s event: PENDING for every published channel from the
    /// moment PublishEvent answered, even before the job has arrived (the event service's record
    /// of the publication stands in for it until then).
    pub async fn status(&self, owner_id: &str, event_id: &str) -> Result<EventDistribution, DistributionError> {
        let event_id = required_event(event_id)?;
        let deliveries = self.deliveries(event_id, owner_id).await?;
        distribution(event_id, deliveries)
    }

    /// The stored deliveries of `owner_id`'s event or, when none are stored, the deliveries its
    /// publication will create: PENDING, never attempted, as of the publication. The event
    /// service commits PUBLISHED and the `distribution-jobs` message together and answers before
    /// the message is consumed here, so between the two only it knows; asking it (its primary,
    /// never a cache) keeps the answer right on every replica. Empty when the event was never
    /// published or is another owner's.
    async fn deliveries(&self, event_id: &str, owner_id: &str) -> Result<Vec<Delivery>, DistributionError> {
        let stored = self.repo.deliveries(event_id, owner_id).await?;
        if !stored.is_empty() {
            return Ok(stored);
        }
        self.announced(event_id, owner_id).await
    }

    /// The deliveries the recorded publication of `owner_id`'s event will create (PENDING), when
    /// the event service has it published and none is stored; empty otherwise.
    async fn announced(&self, event_id: &str, owner_id: &str) -> Result<Vec<Delivery>, DistributionError> {
        let publication = self.publications.publication(event_id).await.map_err(|error| match error {
            PublicationLookupError::InvalidId(_) => {
                DistributionError::InvalidArgument(vec![FieldViolation::new("eventId", "is not a valid event id")])
            }
            PublicationLookupError::NoChannel(_) | PublicationLookupError::Unavailable(_) => {
                DistributionError::EventServiceUnavailable(error)
            }
            PublicationLookupError::Failed(_) => DistributionError::EventLookupFailed(error),
        })?;
        let Some(publication) = publication.filter(|p| p.owner_id == owner_id) else { return Ok(Vec::new()) };
        // The job may have been taken while the event service answered: stored rows win.
        let stored = self.repo.deliveries(event_id, owner_id).await?;
        if !stored.is_empty() {
            return Ok(stored);
        }
        Ok(publication
            .channels
            .iter()
            .map(|c| {
                let provider = self.providers.get(c).cloned().unwrap_or_default();
                Delivery::new(event_id, *c, owner_id, provider, publication.published_at_ms)
            })
            .collect())
    }

    /// Re-queues FAILED deliveries (all of them, or the `channels` named) of `owner_id`'s event.
    pub async fn retry(
        &self,
        owner_id: &str,
        event_id: &str,
        channels: &[i32],
    ) -> Result<EventDistribution, DistributionError> {
        let event_id = required_event(event_id)?;
        let named = requested_channels(channels)?;
        let mut deliveries = self.repo.deliveries(event_id, owner_id).await?;
        let announced = deliveries.is_empty();
        if announced {
            deliveries = self.announced(event_id, owner_id).await?;
        }
        if deliveries.is_empty() {
            return Err(DistributionError::EventNotFound(event_id.to_owned()));
        }
        for channel in &named {
            if !deliveries.iter().any(|d| d.channel == *channel) {
                return Err(DistributionError::ChannelNotPublished {
                    event_id: event_id.to_owned(),
                    channel: *channel,
                });
            }
        }
        if announced {
            // The job is still on its way: nothing was attempted, so nothing failed.
            if let Some(channel) = named.first() {
                return Err(DistributionError::NotFailed { channel: *channel, state: DeliveryState::Pending });
            }
            return distribution(event_id, deliveries);
        }
        let now = self.clock.now_ms();
        let event = self.repo.event(event_id, owner_id).await?;
        if event.is_some_and(|e| e.period_end_at > 0 && now >= e.period_end_at) {
            return Err(DistributionError::EventEnded(event_id.to_owned()));
        }
        for channel in &named {
            if let Some(d) = deliveries.iter().find(|d| d.channel == *channel && d.state != DeliveryState::Failed) {
                return Err(DistributionError::NotFailed { channel: *channel, state: d.state });
            }
        }
        let not_failed = self.repo.requeue_failed(event_id, owner_id, &named, now).await?;
        if let Some(channel) = not_failed.first() {
            // Changed concurrently (e.g. another Retry re-queued it first).
            let state = self
                .repo
                .deliveries(event_id, owner_id)
                .await?
                .into_iter()
                .find(|d| d.channel == *channel)
                .map_or(DeliveryState::Pending, |d| d.state);
            return Err(DistributionError::NotFailed { channel: *channel, state });
        }
        tracing::info!(event_id, owner_id, channels = ?named, "failed deliveries re-queued");
        self.dispatcher.wake();
        let deliveries = self.repo.deliveries(event_id, owner_id).await?;
        distribution(event_id, deliveries)
    }
}

fn required_event(event_id: &str) -> Result<&str, DistributionError> {
    let event_id = event_id.trim();
    if event_id.is_empty() {
        return Err(DistributionError::InvalidArgument(vec![FieldViolation::new("eventId", "event_id is required")]));
    }
    Ok(event_id)
}

/// The channels named in a Retry: unique, none UNSPECIFIED or unknown.
fn requested_channels(numbers: &[i32]) -> Result<Vec<Channel>, DistributionError> {
    let mut violations = Vec::new();
    let mut channels = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        match Channel::from_number(*number) {
            None if *number == 0 => {
                violations.push(FieldViolation::new(format!("channels[{i}]"), "CHANNEL_UNSPECIFIED is not a channel"))
            }
            None => violations
                .push(FieldViolation::new(format!("channels[{i}]"), format!("{number} is not a known channel"))),
            Some(c) if channels.contains(&c) => violations.push(FieldViolation::new(
                format!("channels[{i}]"),
                format!("{} is listed twice", c.to_proto().as_str_name()),
            )),
            Some(c) => channels.push(c),
        }
    }
    if violations.is_empty() { Ok(channels) } else { Err(DistributionError::InvalidArgument(violations)) }
}

fn distribution(event_id: &str, deliveries: Vec<Delivery>) -> Result<EventDistribution, DistributionError> {
    let state = overall_state(deliveries.iter().map(|d| d.state))
        .ok_or_else(|| DistributionError::EventNotFound(event_id.to_owned()))?;
    let update_time = deliveries.iter().map(|d| d.updated_at).max().unwrap_or(0);
    Ok(EventDistribution { event_id: event_id.to_owned(), state, deliveries, update_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_channels_must_be_known_and_unique() {
        assert_eq!(requested_channels(&[4, 6]).ok(), Some(vec![Channel::Instagram, Channel::KakaoChannel]));
        assert!(requested_channels(&[]).is_ok_and(|c| c.is_empty()));
        let Err(DistributionError::InvalidArgument(v)) = requested_channels(&[4, 0, 4, 9]) else { panic!("invalid") };
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["channels[1]", "channels[2]", "channels[3]"]);
    }

    #[test]
    fn an_event_id_is_required() {
        assert!(matches!(required_event("  "), Err(DistributionError::InvalidArgument(v)) if v[0].field == "eventId"));
        assert_eq!(required_event(" e ").ok(), Some("e"));
    }
}
