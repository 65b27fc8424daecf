//! Reads: the owner's ListEvents and GetEvent, and the mesh-internal reads of the other services
//! (GetEventForParticipation, GetEventForDistribution, BatchGetEvents), none owner-scoped.

use crate::domain::event::Event;
use crate::domain::lifecycle::EventStatus;
use crate::domain::validation::{EnumInput, ValidationError};

use super::error::{AppError, Resource};
use super::page::{self, Cursor};
use super::ports::ListQuery;
use super::{EventApp, require_id};

/// Most ids in one BatchGetEvents.
pub const BATCH_MAX: usize = 100;

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

impl EventApp {
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
        match self.cache.event(&self.repository, event_id).await? {
            Some(event) if event.owner_id == owner => Ok(event),
            _ => Err(AppError::not_found(Resource::Event, event_id)),
        }
    }

    /// GetEventForParticipation (not owner-scoped; cached).
    pub async fn event_for_participation(&self, event_id: &str) -> Result<Event, AppError> {
        require_id("eventId", event_id)?;
        self.cache
            .event(&self.repository, event_id)
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
}
