//! The owner edits an event: CreateEvent (idempotent with a request id), UpdateEvent (a field
//! mask over the editable fields) and DeleteEvent.

use kem_kit::validate::Text;

use crate::domain::event::{Change, Event};
use crate::domain::lifecycle::Action;
use crate::domain::mask::{merge, parse_mask};
use crate::domain::message::Outgoing;
use crate::domain::validation::{EventInput, ValidationError, validate_event};

use super::error::AppError;
use super::ids::new_id;
use super::ports::{Inserted, Saved};
use super::{EventApp, MAX_ATTEMPTS, require_id};

/// How long a CreateEvent request id is remembered (the proto promises 24 hours).
const REQUEST_ID_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// Longest request id accepted.
const REQUEST_ID_MAX: usize = 128;

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

impl EventApp {
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
}
