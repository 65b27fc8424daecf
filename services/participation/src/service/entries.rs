//! Enter, ListParticipants, CountEntries, AnonymizeEntries.

use std::collections::HashMap;

use super::{ParticipationCore, ParticipationError, Result, required_event_id};
use crate::messages;
use crate::model::entry::{Consent, Entry, EntryInput};
use crate::model::event::{EventFacts, EventStatus, Millis};
use crate::pii::PiiField;
use crate::repository::{EntryAdmission, NewEntryRow};

/// Entries per page when the caller gives no size.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page; bigger requests are coerced to it.
pub const MAX_PAGE_SIZE: u32 = 500;
/// Most events one CountEntries call may ask about.
pub const MAX_COUNT_EVENTS: usize = 100;

/// One page of an event's entries.
#[derive(Debug, Clone)]
pub struct ParticipantPage {
    /// Entries, oldest first.
    pub entries: Vec<Entry>,
    /// Token of the next page; empty at the end.
    pub next_page_token: String,
    /// Entries of the event in total.
    pub total_size: i64,
}

/// Entry counts of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCount {
    /// The event.
    pub event_id: String,
    /// All its entries.
    pub total: i64,
    /// Entries per source channel (channels without entries omitted), by channel number.
    pub by_channel: Vec<(i32, i64)>,
    /// The latest entry's receive time.
    pub last_entry_ms: Option<Millis>,
}

impl ParticipationCore {
    /// Enter: validates the submission, checks that the event is open, and stores the entry
    /// (personal data sealed) with its analytics fact — once per phone and event.
    pub async fn enter(&self, input: EntryInput) -> Result<Entry> {
        let valid = input.validate()?;
        let now = self.clock.now_ms();
        let event = self.open_event(&valid.event_id, now).await?;
        if !event.accepts_source(valid.source_channel) {
            return Err(ParticipationError::field("sourceChannel", "the event was not published to this channel"));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let phone = valid.phone.e164();
        let marketing = valid.marketing.as_ref().map(|c| (c.granted, c.text_version.clone()));
        let row = NewEntryRow {
            id: id.clone(),
            event_id: event.id.clone(),
            phone_hash: self.keys.phones.hash(&event.id, &phone),
            name_sealed: self.keys.cipher.seal(&id, PiiField::Name, &valid.name)?,
            phone_sealed: self.keys.cipher.seal(&id, PiiField::Phone, &phone)?,
            privacy_consent_version: valid.privacy_version.clone(),
            marketing_consent: marketing.clone(),
            source_channel: valid.source_channel,
            created_at_ms: now,
        };
        let granted = marketing.as_ref().is_some_and(|(granted, _)| *granted);
        let message = messages::entry_recorded(&event, &id, valid.source_channel, granted, now);
        match self.repo.admit_entry(&row, event.capacity(), message).await? {
            EntryAdmission::Admitted => {}
            EntryAdmission::Duplicate => return Err(ParticipationError::DuplicateEntry),
            EntryAdmission::Full => {
                return Err(ParticipationError::EventFull { capacity: event.capacity().unwrap_or_default() });
            }
            EntryAdmission::Closed => return Err(ParticipationError::EntriesClosed),
        }
        tracing::info!(event_id = %event.id, entry_id = %id, source_channel = valid.source_channel, "entry recorded");
        Ok(Entry {
            id,
            event_id: event.id,
            seq: 0,
            name: Some(valid.name),
            phone_e164: Some(phone),
            privacy: Consent { granted: true, text_version: valid.privacy_version, recorded_at_ms: now },
            marketing: marketing.map(|(granted, text_version)| Consent { granted, text_version, recorded_at_ms: now }),
            source_channel: valid.source_channel,
            created_at_ms: now,
            anonymized_at_ms: None,
        })
    }

    /// The event if it accepts entries at `now`. A cached "not published yet" is re-checked with
    /// the event service (the owner may have just published); anything else cached is trusted.
    async fn open_event(&self, event_id: &str, now: Millis) -> Result<EventFacts> {
        let cached = self.events.facts(event_id).await?.ok_or(ParticipationError::EventNotFound)?;
        match cached.open_at(now) {
            Ok(()) => Ok(cached),
            Err(closed) if closed.may_open_later() => {
                let fresh = self.events.fresh_facts(event_id).await?.ok_or(ParticipationError::EventNotFound)?;
                fresh.open_at(now).map_err(ParticipationError::EventNotOpen)?;
                Ok(fresh)
            }
            Err(closed) => Err(ParticipationError::EventNotOpen(closed)),
        }
    }

    /// ListParticipants: a page of the owner's event's entries, oldest first, PII masked by the
    /// caller of this method (the entries carry it decrypted).
    pub async fn list_participants(
        &self,
        owner: &str,
        event_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<ParticipantPage> {
        let size = match u32::try_from(page_size) {
            Err(_) => return Err(ParticipationError::field("pageSize", "must not be negative")),
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(n) => n.min(MAX_PAGE_SIZE),
        };
        let event = self.owned_event(owner, event_id, false).await?;
        let after = match page_token.trim() {
            "" => 0,
            token => self.pages.open(&event.id, token).ok_or_else(|| {
                ParticipationError::field("pageToken", "is not a page token ListParticipants returned for this event")
            })?,
        };
        let mut rows = self.repo.entries_page(&event.id, after, size + 1).await?;
        let next_page_token = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last().map(|last| self.pages.issue(&event.id, last.seq)).unwrap_or_default()
        } else {
            String::new()
        };
        let total_size = self.repo.count_entries(&event.id).await?;
        let entries = rows.into_iter().map(|row| self.decrypt(row)).collect::<Result<Vec<_>>>()?;
        Ok(ParticipantPage { entries, next_page_token, total_size })
    }

    /// CountEntries: per event (in request order), totals and per-channel counts. Unknown events
    /// count as zero.
    pub async fn count_entries(&self, event_ids: &[String]) -> Result<Vec<EventCount>> {
        if event_ids.len() > MAX_COUNT_EVENTS {
            return Err(ParticipationError::field("eventIds", "at most 100 events per call"));
        }
        let mut distinct: Vec<String> = Vec::with_capacity(event_ids.len());
        for id in event_ids.iter().map(|id| id.trim()).filter(|id| !id.is_empty()) {
            if !distinct.iter().any(|d| d == id) {
                distinct.push(id.to_owned());
            }
        }
        let mut counts: HashMap<String, EventCount> = HashMap::new();
        for row in self.repo.count_by_channel(&distinct).await? {
            let count = counts.entry(row.event_id.clone()).or_insert_with(|| EventCount {
                event_id: row.event_id.clone(),
                total: 0,
                by_channel: Vec::new(),
                last_entry_ms: None,
            });
            count.total += row.count;
            count.by_channel.push((row.channel, row.count));
            count.last_entry_ms = count.last_entry_ms.max(Some(row.last_entry_ms));
        }
        Ok(event_ids
            .iter()
            .map(|id| {
                counts.get(id.trim()).cloned().unwrap_or_else(|| EventCount {
                    event_id: id.clone(),
                    total: 0,
                    by_channel: Vec::new(),
                    last_entry_ms: None,
                })
            })
            .collect())
    }

    /// AnonymizeEntries: erases the names and phones of the event's entries received before
    /// `before_ms` (all when `None`). Refused while the event is PUBLISHED; an event the event
    /// service no longer knows is not active, so its entries are erased.
    pub async fn anonymize(&self, event_id: &str, before_ms: Option<Millis>) -> Result<u64> {
        let event_id = required_event_id(event_id)?;
        if let Some(event) = self.events.fresh_facts(event_id).await?
            && event.status == EventStatus::Published
        {
            return Err(ParticipationError::EventActive);
        }
        let erased = self.repo.anonymize(event_id, before_ms.unwrap_or(i64::MAX), self.clock.now_ms()).await?;
        tracing::info!(event_id, erased, "entries anonymized");
        Ok(erased)
    }
}
