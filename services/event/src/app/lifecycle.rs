//! The owner moves an event along its lifecycle: SelectRecommendation, SelectImage, PublishEvent
//! (which fixes the terms, naming the store the user service knows) and EndEvent (which has the
//! participation service close the event's entries first; the scheduler ends events at the end of
//! their period through the same use case).

use crate::domain::event::{Change, Event, PublishError};
use crate::domain::job::{Job, JobKind};
use crate::domain::lifecycle::Action;
use crate::domain::message::Outgoing;
use crate::domain::validation::{EnumInput, ValidationError, validate_channels};
use crate::domain::values::{Channel, Millis};

use super::error::{AppError, Resource};
use super::{EventApp, MAX_ATTEMPTS, require_id};

/// Succeeded images jobs searched for a selected image id (newest first).
const IMAGE_JOBS_SEARCHED: usize = 50;

impl EventApp {
    /// SelectRecommendation.
    pub async fn select_recommendation(
        &self,
        owner: &str,
        event_id: &str,
        recommendation_id: &str,
        etag: &str,
    ) -> Result<Event, AppError> {
        require_id("eventId", event_id)?;
        require_id("recommendationId", recommendation_id)?;
        for _ in 0..MAX_ATTEMPTS {
            let event = self.load_owned(owner, event_id).await?;
            event.allows(Action::SelectRecommendation).map_err(|e| AppError::illegal(&event.id, e))?;
            let jobs = self.repository.succeeded_jobs(&event.id, JobKind::Recommendations, 1).await?;
            let Some(result) = jobs.first().and_then(Job::recommendations) else {
                return Err(AppError::RecommendationsNotReady { event_id: event.id.clone() });
            };
            let Some(recommendation) = result.recommendations.iter().find(|r| r.id == recommendation_id) else {
                return Err(AppError::not_found(Resource::Recommendation, recommendation_id));
            };
            let change = event
                .select_recommendation(recommendation, self.clock.now_ms())
                .map_err(|e| AppError::illegal(&event.id, e))?;
            let Change::Modified(modified) = change else { return Ok(event) };
            // A stale etag only matters when something would change: a retried no-op succeeds.
            Self::check_etag(&event, etag)?;
            if let Some(saved) = self.save(*modified, None, Vec::new()).await? {
                return Ok(saved);
            }
        }
        Err(AppError::Contended { event_id: event_id.to_owned() })
    }

    /// SelectImage: the image must come from one of the event's succeeded images jobs.
    pub async fn select_image(
        &self,
        owner: &str,
        event_id: &str,
        image_id: &str,
        etag: &str,
    ) -> Result<Event, AppError> {
        require_id("eventId", event_id)?;
        require_id("imageId", image_id)?;
        for _ in 0..MAX_ATTEMPTS {
            let event = self.load_owned(owner, event_id).await?;
            event.allows(Action::SelectImage).map_err(|e| AppError::illegal(&event.id, e))?;
            if event.selected_image_id.as_deref() != Some(image_id) {
                let jobs = self.repository.succeeded_jobs(&event.id, JobKind::Images, IMAGE_JOBS_SEARCHED).await?;
                if !jobs.iter().any(|j| j.image_ids().iter().any(|id| id == image_id)) {
                    return Err(AppError::not_found(Resource::Image, image_id));
                }
            }
            let change =
                event.select_image(image_id, self.clock.now_ms()).map_err(|e| AppError::illegal(&event.id, e))?;
            let Change::Modified(modified) = change else { return Ok(event) };
            // A stale etag only matters when something would change: a retried no-op succeeds.
            Self::check_etag(&event, etag)?;
            if let Some(saved) = self.save(*modified, None, Vec::new()).await? {
                return Ok(saved);
            }
        }
        Err(AppError::Contended { event_id: event_id.to_owned() })
    }

    /// PublishEvent: PUBLISHED, the terms fixed, plus one distribution message, atomically.
    ///
    /// The terms name the store as the data controller, so the user service must answer first:
    /// when it cannot, nothing is published and the owner retries. The name is asked once, after
    /// the event is known to be publishable, and fresh (a stale cached name must not become the
    /// controller of record).
    pub async fn publish_event(
        &self,
        owner: &str,
        event_id: &str,
        channels: &[EnumInput<Channel>],
        etag: &str,
    ) -> Result<Event, AppError> {
        require_id("eventId", event_id)?;
        let mut errors = ValidationError::default();
        let channels = validate_channels(channels, "channels", true, &mut errors);
        errors.into_result(())?;
        let mut store_name = None;
        let mut connections_checked = false;
        for _ in 0..MAX_ATTEMPTS {
            let event = self.load_owned(owner, event_id).await?;
            Self::check_etag(&event, etag)?;
            let refused = |e: PublishError| match e {
                PublishError::Illegal(source) => AppError::illegal(&event.id, source),
                PublishError::PeriodOver { end } => AppError::PeriodOver { event_id: event.id.clone(), end },
            };
            event.check_publish(self.clock.now_ms()).map_err(refused)?;
            if !connections_checked {
                self.check_connections(owner, &event.id, &channels).await?;
                connections_checked = true;
            }
            let name = match &store_name {
                Some(name) => name,
                None => store_name.insert(
                    self.stores
                        .store_name(owner)
                        .await
                        .map_err(|source| AppError::StoreUnknown { event_id: event.id.clone(), source })?,
                ),
            };
            let change = event.publish(channels.clone(), name, self.clock.now_ms()).map_err(refused)?;
            let Change::Modified(modified) = change else { return Ok(event) };
            let entry_links = self.channel_links(&modified.event);
            let distribute = Outgoing::Distribute { event: modified.event.clone(), entry_links };
            if let Some(saved) = self.save(*modified, None, vec![distribute]).await? {
                return Ok(saved);
            }
        }
        Err(AppError::Contended { event_id: event_id.to_owned() })
    }

    /// Refuses a publication to channels that need an account the owner has not connected (or
    /// must reconnect), naming every one of them. Asked once per publication, after the event is
    /// known to be the owner's and publishable, so nobody learns another owner's connections.
    /// When distribution cannot answer, the publication goes on: distribution fails such a
    /// channel's delivery with AUTH_REQUIRED itself (see [`MeshConnectionCheck`]).
    async fn check_connections(&self, owner: &str, event_id: &str, channels: &[Channel]) -> Result<(), AppError> {
        match self.connections.unusable(owner, channels).await {
            Ok(unusable) if unusable.is_empty() => Ok(()),
            Ok(unusable) => Err(AppError::ChannelsNotConnected { event_id: event_id.to_owned(), channels: unusable }),
            Err(error) => {
                tracing::warn!(%error, event_id, "cannot check the owner's channel connections; publishing without the check");
                Ok(())
            }
        }
    }

    /// EndEvent (ending an ended event returns it unchanged).
    ///
    /// The end is immediate: participation closes the event's entries (durably, for all its
    /// replicas) *before* ENDED is committed and answered. If participation cannot confirm, the
    /// event stays PUBLISHED and the owner is told to retry; entries may already be closed then,
    /// which errs on the side the owner asked for. An ENDED event is closed again too (a no-op
    /// for participation), so "ENDED" is never answered for entries still open, even for events
    /// ended before participation had a gate.
    pub async fn end_event(&self, owner: &str, event_id: &str, etag: &str) -> Result<Event, AppError> {
        self.end(Some(owner), event_id, etag).await
    }

    /// EndEvent on behalf of the system (the scheduler, at the end of the period): the same use
    /// case, for any owner's event and without an etag.
    pub async fn end_event_on_schedule(&self, event_id: &str) -> Result<Event, AppError> {
        self.end(None, event_id, "").await
    }

    async fn end(&self, owner: Option<&str>, event_id: &str, etag: &str) -> Result<Event, AppError> {
        for _ in 0..MAX_ATTEMPTS {
            let event = match owner {
                Some(owner) => self.load_owned(owner, event_id).await?,
                None => self.load(event_id).await?,
            };
            let now = self.clock.now_ms();
            let change = event.end(now).map_err(|e| AppError::illegal(&event.id, e))?;
            let Change::Modified(modified) = change else {
                self.close_entries(&event.id, event.ended_at.unwrap_or(now)).await?;
                return Ok(event);
            };
            // A stale etag only matters when something would change: a retried no-op succeeds.
            Self::check_etag(&event, etag)?;
            self.close_entries(&event.id, modified.event.ended_at.unwrap_or(now)).await?;
            if let Some(saved) = self.save(*modified, None, Vec::new()).await? {
                return Ok(saved);
            }
        }
        Err(AppError::Contended { event_id: event_id.to_owned() })
    }

    async fn close_entries(&self, event_id: &str, ended_at: Millis) -> Result<(), AppError> {
        self.entries
            .close_entries(event_id, ended_at)
            .await
            .map_err(|source| AppError::EntriesNotClosed { event_id: event_id.to_owned(), source })
    }
}
