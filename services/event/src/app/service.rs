//! The use cases: one method per RPC, orchestrating the domain and the ports.
//!
//! Every write follows the same shape: read the event from the primary, let the domain decide
//! (lifecycle, validation), then store the new version *guarded* by the status and version read
//! (`UPDATE … WHERE status = $s AND version = $v`) together with any new job and the outgoing
//! messages in one transaction. When a concurrent request won the race the guard finds nothing,
//! and the use case starts over from a fresh read (a bounded number of times), so two requests can
//! never both move an event, and a stale etag is reported as ABORTED.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::validate::Text;

use crate::domain::event::{Change, Event, Modified, PublishError};
use crate::domain::job::{INSTRUCTIONS_MAX, Job, JobChange, JobKind, JobRequest, Report, ReportError};
use crate::domain::lifecycle::{Action, EventStatus};
use crate::domain::mask::{merge, parse_mask};
use crate::domain::message::Outgoing;
use crate::domain::validation::{EnumInput, EventInput, ValidationError, validate_channels, validate_event};
use crate::domain::values::{Channel, ImageStyle, Millis};

use super::error::{AppError, Resource};
use super::ids::new_id;
use super::page::{self, Cursor};
use super::ports::{Clock, EntryGate, EventCache, EventRepository, Inserted, ListQuery, Saved, StoreDirectory};

/// How many times a write starts over after losing a race before answering ABORTED.
const MAX_ATTEMPTS: usize = 5;
/// How long a CreateEvent request id is remembered (the proto promises 24 hours).
const REQUEST_ID_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// Longest request id accepted.
const REQUEST_ID_MAX: usize = 128;
/// Most ids in one BatchGetEvents.
pub const BATCH_MAX: usize = 100;
/// Succeeded images jobs searched for a selected image id (newest first).
const IMAGE_JOBS_SEARCHED: usize = 50;

/// Tunables of the use cases.
#[derive(Debug, Clone)]
pub struct AppSettings {
    /// A job not finished this long after its creation is failed with DEADLINE_EXCEEDED.
    pub job_timeout: Duration,
    /// Suggested delay between GetJob polls of an unfinished job.
    pub job_poll_interval: Duration,
    /// ListEvents page size when none is asked for.
    pub default_page_size: usize,
    /// Largest ListEvents page; larger requests are coerced down.
    pub max_page_size: usize,
}

/// UpdateEvent's inputs.
#[derive(Debug, Clone, Default)]
pub struct UpdateCommand {
    /// The event (from the path).
    pub event_id: String,
    /// `event.event_id` of the body; must be empty or equal to `event_id`.
    pub body_event_id: String,
    /// New values for the masked fields.
    pub input: EventInput,
    /// Mask paths.
    pub mask: Vec<String>,
    /// `event.etag` of the body.
    pub etag: String,
}

/// One page of ListEvents.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events, newest first.
    pub events: Vec<Event>,
    /// Token of the next page; empty on the last page.
    pub next_page_token: String,
}

/// BatchGetEvents' answer.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Found events, in request order.
    pub events: Vec<Event>,
    /// Ids that do not exist.
    pub missing: Vec<String>,
}

/// The event service's use cases.
pub struct EventApp {
    repository: Arc<dyn EventRepository>,
    cache: Arc<dyn EventCache>,
    stores: Arc<dyn StoreDirectory>,
    entries: Arc<dyn EntryGate>,
    clock: Arc<dyn Clock>,
    settings: AppSettings,
}

impl std::fmt::Debug for EventApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventApp").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn require_id(field: &str, id: &str) -> Result<(), AppError> {
    if id.trim().is_empty() { Err(ValidationError::one(field, "is required").into()) } else { Ok(()) }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl EventApp {
    /// Use cases over the given ports.
    pub fn new(
        repository: Arc<dyn EventRepository>,
        cache: Arc<dyn EventCache>,
        stores: Arc<dyn StoreDirectory>,
        entries: Arc<dyn EntryGate>,
        clock: Arc<dyn Clock>,
        settings: AppSettings,
    ) -> EventApp {
        EventApp { repository, cache, stores, entries, clock, settings }
    }

    /// The settings in force.
    pub fn settings(&self) -> &AppSettings {
        &self.settings
    }

    /// The owner's event, read fresh from the primary (for writes).
    async fn load_owned(&self, owner: &str, event_id: &str) -> Result<Event, AppError> {
        require_id("eventId", event_id)?;
        match self.repository.find_event(event_id).await? {
            Some(event) if event.owner_id == owner => Ok(event),
            _ => Err(AppError::not_found(Resource::Event, event_id)),
        }
    }

    fn check_etag(event: &Event, etag: &str) -> Result<(), AppError> {
        event.check_etag(etag).map_err(|source| AppError::Etag { event_id: event.id.clone(), source })
    }

    /// Stores a modification with its analytics fact (when the status changed) and `extra`
    /// messages; `Ok(None)` when a concurrent change won (start over).
    async fn save(
        &self,
        modified: Modified,
        new_job: Option<&Job>,
        mut outgoing: Vec<Outgoing>,
    ) -> Result<Option<Event>, AppError> {
        if let Some((from, _)) = modified.status_change() {
            outgoing.push(Outgoing::StateChanged { from: Some(from), event: modified.event.clone() });
        }
        match self.repository.save_event(&modified, new_job, &outgoing).await? {
            Saved::Done => {
                self.cache.invalidate(&modified.event.id).await;
                Ok(Some(modified.event))
            }
            Saved::Conflict => Ok(None),
        }
    }

    // ---- owner-facing -------------------------------------------------------------------------

    /// CreateEvent.
    pub async fn create_event(&self, owner: &str, input: &EventInput, request_id: &str) -> Result<Event, AppError> {
        let mut errors = ValidationError::default();
        let request_id = request_id.trim();
        errors.text("requestId", request_id, Text::line(REQUEST_ID_MAX));
        let spec = match validate_event(input, "event") {
            Ok(spec) if errors.is_empty() => spec,
            Ok(_) => return Err(errors.into()),
            Err(mut invalid) => {
                invalid.violations.extend(errors.violations);
                return Err(invalid.into());
            }
        };
        let now = self.clock.now_ms();
        let event = Event::create(new_id(), owner.to_owned(), spec, now);
        let outgoing = [Outgoing::StateChanged { from: None, event: event.clone() }];
        let key = (!request_id.is_empty()).then_some(request_id);
        match self.repository.insert_event(&event, key, now - REQUEST_ID_WINDOW_MS, &outgoing).await? {
            Inserted::Created => Ok(event),
            Inserted::Existing(first) => Ok(*first),
        }
    }

    /// ListEvents.
    pub async fn list_events(
        &self,
        owner: &str,
        status: EnumInput<EventStatus>,
        page_size: i32,
        page_token: &str,
    ) -> Result<EventPage, AppError> {
        let mut errors = ValidationError::default();
        let status = match status {
            EnumInput::Unset => None,
            EnumInput::Known(s) => Some(s),
            EnumInput::Unknown(n) => {
                errors.push("status", format!("{n} is not a known event status"));
                None
            }
        };
        let limit = match usize::try_from(page_size) {
            Err(_) => {
                errors.push("pageSize", "must not be negative");
                0
            }
            Ok(0) => self.settings.default_page_size,
            Ok(n) => n.min(self.settings.max_page_size),
        };
        let after = if page_token.trim().is_empty() {
            None
        } else {
            match page::decode(owner, status, page_token) {
                Ok(cursor) => Some(cursor),
                Err(e) => {
                    errors.push("pageToken", e.to_string());
                    None
                }
            }
        };
        errors.into_result(())?;
        let query = ListQuery { owner_id: owner.to_owned(), status, after, limit: limit + 1 };
        let mut events = self.repository.list_events(&query).await?;
        let next_page_token = if events.len() > limit {
            events.truncate(limit);
            match events.last() {
                Some(last) => page::encode(owner, status, &Cursor { created_at: last.created_at, id: last.id.clone() }),
                None => String::new(),
            }
        } else {
            String::new()
        };
        Ok(EventPage { events, next_page_token })
    }

    /// GetEvent (cached).
    pub async fn get_event(&self, owner: &str, event_id: &str) -> Result<Event, AppError> {
        require_id("eventId", event_id)?;
        match self.cache.event(self.repository.as_ref(), event_id).await? {
            Some(event) if event.owner_id == owner => Ok(event),
            _ => Err(AppError::not_found(Resource::Event, event_id)),
        }
    }

    /// UpdateEvent.
    pub async fn update_event(&self, owner: &str, command: &UpdateCommand) -> Result<Event, AppError> {
        require_id("eventId", &command.event_id)?;
        let mut errors = ValidationError::default();
        if !command.body_event_id.is_empty() && command.body_event_id != command.event_id {
            errors.push("event.eventId", "must be empty or equal to the event id of the path");
        }
        let paths = match parse_mask(&command.mask) {
            Ok(paths) => Some(paths),
            Err(invalid) => {
                errors.violations.extend(invalid.violations);
                None
            }
        };
        let paths = errors.into_result(paths)?.unwrap_or_default();
        for _ in 0..MAX_ATTEMPTS {
            let event = self.load_owned(owner, &command.event_id).await?;
            event.allows(Action::Update).map_err(|e| AppError::illegal(&event.id, e))?;
            let merged = merge(&event.spec.to_input(), &command.input, &paths);
            let spec = validate_event(&merged, "event")?;
            let change = event.update(spec, self.clock.now_ms()).map_err(|e| AppError::illegal(&event.id, e))?;
            let Change::Modified(modified) = change else { return Ok(event) };
            // A stale etag only matters when something would change: a retried no-op succeeds.
            Self::check_etag(&event, &command.etag)?;
            if let Some(saved) = self.save(*modified, None, Vec::new()).await? {
                return Ok(saved);
            }
        }
        Err(AppError::Contended { event_id: command.event_id.clone() })
    }

    /// DeleteEvent.
    pub async fn delete_event(
        &self,
        owner: &str,
        event_id: &str,
        etag: &str,
        allow_missing: bool,
    ) -> Result<(), AppError> {
        for _ in 0..MAX_ATTEMPTS {
            let event = match self.load_owned(owner, event_id).await {
                Err(AppError::NotFound { .. }) if allow_missing => return Ok(()),
                other => other?,
            };
            Self::check_etag(&event, etag)?;
            event.delete().map_err(|e| AppError::illegal(&event.id, e))?;
            let outgoing = [Outgoing::Deleted { event: event.clone(), at: self.clock.now_ms() }];
            match self.repository.delete_event(&event, &outgoing).await? {
                Saved::Done => {
                    self.cache.invalidate(&event.id).await;
                    return Ok(());
                }
                Saved::Conflict => continue,
            }
        }
        Err(AppError::Contended { event_id: event_id.to_owned() })
    }

    /// RequestRecommendations.
    pub async fn request_recommendations(
        &self,
        owner: &str,
        event_id: &str,
        instructions: &str,
    ) -> Result<Job, AppError> {
        let mut errors = ValidationError::default();
        errors.text("additionalInstructions", instructions, Text::prose(INSTRUCTIONS_MAX));
        errors.into_result(())?;
        let request = JobRequest::Recommendations { additional_instructions: instructions.trim().to_owned() };
        self.start_job(owner, event_id, Action::RequestRecommendations, request).await
    }

    /// RequestImages.
    pub async fn request_images(
        &self,
        owner: &str,
        event_id: &str,
        channels: &[EnumInput<Channel>],
        styles: &[EnumInput<ImageStyle>],
    ) -> Result<Job, AppError> {
        require_id("eventId", event_id)?;
        let mut errors = ValidationError::default();
        let channels = validate_channels(channels, "channels", false, &mut errors);
        let mut chosen_styles = Vec::new();
        for (i, style) in styles.iter().enumerate() {
            match style {
                EnumInput::Known(s) if !chosen_styles.contains(s) => chosen_styles.push(*s),
                EnumInput::Known(_) => {}
                EnumInput::Unset => errors.push(format!("styles[{i}]"), "IMAGE_STYLE_UNSPECIFIED is not a style"),
                EnumInput::Unknown(n) => errors.push(format!("styles[{i}]"), format!("{n} is not a known style")),
            }
        }
        errors.into_result(())?;
        if chosen_styles.is_empty() {
            chosen_styles = ImageStyle::ALL.to_vec();
        }
        let request = JobRequest::Images { channels, styles: chosen_styles };
        self.start_job(owner, event_id, Action::RequestImages, request).await
    }

    /// Creates a job (or returns the active one of its kind) with its queue message.
    async fn start_job(
        &self,
        owner: &str,
        event_id: &str,
        action: Action,
        request: JobRequest,
    ) -> Result<Job, AppError> {
        let kind = request.kind();
        // Looked up once, outside any transaction; absent when the user service cannot tell.
        let mut store = None;
        let mut looked_up = false;
        for _ in 0..MAX_ATTEMPTS {
            let event = self.load_owned(owner, event_id).await?;
            event.allows(action).map_err(|e| AppError::illegal(&event.id, e))?;
            if let Some(active) = self.repository.active_job(&event.id, kind).await? {
                return Ok(active);
            }
            let request = match (&request, kind) {
                (JobRequest::Images { channels, styles }, JobKind::Images) => {
                    let Some(recommendation) = &event.selected_recommendation else {
                        return Err(AppError::NoRecommendationSelected { event_id: event.id.clone() });
                    };
                    // Empty: the event's channels, else the recommendation's.
                    let channels = [channels, &event.spec.channels, &recommendation.recommended_channels]
                        .into_iter()
                        .find(|c| !c.is_empty())
                        .cloned()
                        .unwrap_or_default();
                    if channels.is_empty() {
                        return Err(ValidationError::one(
                            "channels",
                            "the event has no channels: name the channels to generate images for",
                        )
                        .into());
                    }
                    JobRequest::Images { channels, styles: styles.clone() }
                }
                (JobRequest::Recommendations { .. }, _) => {
                    let missing = event.missing_for_recommendations();
                    if !missing.is_empty() {
                        return Err(AppError::EventIncomplete { event_id: event.id.clone(), missing });
                    }
                    request.clone()
                }
                _ => request.clone(),
            };
            if !looked_up {
                store = self.stores.store_profile(owner).await;
                looked_up = true;
            }
            let now = self.clock.now_ms();
            let job = Job::new(
                new_id(),
                event.id.clone(),
                event.owner_id.clone(),
                request,
                now,
                millis(self.settings.job_timeout),
            );
            let Change::Modified(modified) = event.attach_job(&job, now) else { continue };
            let message = match kind {
                JobKind::Recommendations => {
                    Outgoing::GenerateRecommendations { job: job.clone(), event: event.clone(), store: store.clone() }
                }
                JobKind::Images => {
                    Outgoing::GenerateImages { job: job.clone(), event: event.clone(), store: store.clone() }
                }
            };
            if self.save(*modified, Some(&job), vec![message]).await?.is_some() {
                return Ok(job);
            }
        }
        Err(AppError::Contended { event_id: event_id.to_owned() })
    }

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

    /// PublishEvent: PUBLISHED plus one distribution message, atomically.
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
        for _ in 0..MAX_ATTEMPTS {
            let event = self.load_owned(owner, event_id).await?;
            Self::check_etag(&event, etag)?;
            let change = event.publish(channels.clone(), self.clock.now_ms()).map_err(|e| match e {
                PublishError::Illegal(source) => AppError::illegal(&event.id, source),
                PublishError::PeriodOver { end } => AppError::PeriodOver { event_id: event.id.clone(), end },
            })?;
            let Change::Modified(modified) = change else { return Ok(event) };
            let distribute = Outgoing::Distribute { event: modified.event.clone() };
            if let Some(saved) = self.save(*modified, None, vec![distribute]).await? {
                return Ok(saved);
            }
        }
        Err(AppError::Contended { event_id: event_id.to_owned() })
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
        for _ in 0..MAX_ATTEMPTS {
            let event = self.load_owned(owner, event_id).await?;
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

    /// GetJob (owner-scoped).
    pub async fn get_job(&self, owner: &str, job_id: &str) -> Result<Job, AppError> {
        require_id("jobId", job_id)?;
        match self.repository.find_job(job_id).await? {
            Some(job) if job.owner_id == owner => Ok(job),
            _ => Err(AppError::not_found(Resource::Job, job_id)),
        }
    }

    // ---- mesh-internal ------------------------------------------------------------------------

    /// GetEventForParticipation (not owner-scoped; cached).
    pub async fn event_for_participation(&self, event_id: &str) -> Result<Event, AppError> {
        require_id("eventId", event_id)?;
        self.cache
            .event(self.repository.as_ref(), event_id)
            .await?
            .ok_or_else(|| AppError::not_found(Resource::Event, event_id))
    }

    /// GetEventForDistribution (not owner-scoped): read from the primary, never the cache, because
    /// the answer must be current on every replica the moment PublishEvent has answered (the
    /// cache is per process under `kem up --processes`).
    pub async fn event_for_distribution(&self, event_id: &str) -> Result<Event, AppError> {
        require_id("eventId", event_id)?;
        self.repository.find_event(event_id).await?.ok_or_else(|| AppError::not_found(Resource::Event, event_id))
    }

    /// ReportJobResult: idempotent; the first terminal report wins.
    pub async fn report_job_result(&self, job_id: &str, report: Report) -> Result<Job, AppError> {
        require_id("jobId", job_id)?;
        for _ in 0..MAX_ATTEMPTS {
            let Some(job) = self.repository.find_job(job_id).await? else {
                return Err(AppError::not_found(Resource::Job, job_id));
            };
            let change = job.apply(report.clone(), self.clock.now_ms()).map_err(|e| match e {
                ReportError::WrongKind { job_id, kind, reported } => AppError::WrongJobKind { job_id, kind, reported },
                ReportError::Invalid(invalid) => AppError::Invalid(invalid),
            })?;
            match change {
                JobChange::Unchanged => return Ok(job),
                JobChange::Updated { from, job } => match self.repository.save_job(from, &job).await? {
                    Saved::Done => {
                        tracing::info!(job_id = %job.id, event_id = %job.event_id, kind = %job.kind(), from = %from, to = %job.state, "job reported");
                        return Ok(*job);
                    }
                    Saved::Conflict => continue,
                },
            }
        }
        Err(AppError::Contended { event_id: job_id.to_owned() })
    }

    /// BatchGetEvents (not owner-scoped).
    pub async fn batch_get_events(&self, ids: &[String]) -> Result<Batch, AppError> {
        let mut unique: Vec<String> = Vec::with_capacity(ids.len());
        for id in ids {
            if !unique.contains(id) {
                unique.push(id.clone());
            }
        }
        if unique.len() > BATCH_MAX {
            return Err(ValidationError::one("eventIds", format!("at most {BATCH_MAX} ids per call")).into());
        }
        let lookup: Vec<String> = unique.iter().filter(|id| !id.trim().is_empty()).cloned().collect();
        let found = if lookup.is_empty() { Vec::new() } else { self.repository.find_events(&lookup).await? };
        let mut events = Vec::with_capacity(found.len());
        let mut missing = Vec::new();
        for id in unique {
            match found.iter().find(|e| e.id == id) {
                Some(event) => events.push(event.clone()),
                None => missing.push(id),
            }
        }
        Ok(Batch { events, missing })
    }

    // ---- background ---------------------------------------------------------------------------

    /// Fails jobs past their deadline; returns how many.
    pub async fn fail_expired_jobs(&self) -> Result<u64, AppError> {
        Ok(self.repository.fail_expired_jobs(self.clock.now_ms()).await?)
    }
}
