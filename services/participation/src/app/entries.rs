//! Enter, CloseEntries, ListParticipants, CountEntries, AnonymizeEntries.

use std::collections::HashMap;
use std::net::IpAddr;

use kem_kit::queue::OutgoingMessage;

use super::{ParticipationCore, ParticipationError, Result, random_bytes, required_event_id};
use crate::domain::entry::{Consent, Entry, EntryInput, RequestId, ValidEntry};
use crate::domain::event::{Closed, EventFacts, EventStatus, Millis};
use crate::domain::receipt::ReceiptCode;
use crate::domain::violation::FieldViolation;
use crate::infra::messages;
use crate::infra::pii::PiiField;
use crate::infra::repository::{ArrivalCursor, EntryAdmission, NewEntryRow};

/// Entries per page when the caller gives no size.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page; bigger requests are coerced to it.
pub const MAX_PAGE_SIZE: u32 = 500;
/// The page size a listing asked for: the default for 0, at most [`MAX_PAGE_SIZE`];
/// INVALID_ARGUMENT (`pageSize`) when negative.
pub(super) fn checked_page_size(requested: i32) -> Result<u32> {
    match u32::try_from(requested) {
        Err(_) => Err(ParticipationError::field("pageSize", "must not be negative")),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

/// Most events one CountEntries call may ask about.
pub const MAX_COUNT_EVENTS: usize = 100;
/// Receipt codes drawn for one entry before giving up. With 2^50 codes, even an event with a
/// million entries makes a collision a one-in-a-billion event per draw: a second draw is already
/// rare, exhausting these means the random source is broken.
const RECEIPT_ATTEMPTS: usize = 5;

/// One page of an event's entries.
#[derive(Debug, Clone)]
pub struct ParticipantPage {
    /// Entries in arrival order (`created_at`, then id).
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
    /// When the current draw happened; `None` before any.
    pub drawn_at_ms: Option<Millis>,
}

impl ParticipationCore {
    /// Enter: validates the submission (age confirmed, privacy consent granted), checks that the
    /// event is open and that the consent names the event's terms, and stores the entry (personal
    /// data sealed) with its consent record (terms version and hash, consent time), a fresh
    /// receipt code and its analytics fact — once per phone and event.
    ///
    /// Idempotent per request: a submission refused because its phone already entered (or
    /// because the event closed since) answers with the stored entry instead when the same
    /// `request_id` stored it with exactly the same data — the mesh's retry of a call whose
    /// answer was lost with its connection. That check runs on the refusal paths only, so a new
    /// entry costs no extra round trip.
    ///
    /// `client` is the participant's address as the edge saw it: counted against the event's
    /// per-address limit when it has one (an entry without an address is not counted).
    pub async fn enter(
        &self,
        mut input: EntryInput,
        request_id: Option<RequestId>,
        client: Option<IpAddr>,
    ) -> Result<Entry> {
        let verification_code = std::mem::take(&mut input.verification_code);
        let valid = input.validate()?;
        let now = self.clock.now_ms();
        let event = match self.open_event(&valid.event_id, now).await {
            Ok(event) => event,
            // The retry of an entry accepted just before the event ended is still answered with
            // that entry; only an event that was open can have one.
            Err(ParticipationError::EventNotOpen(closed)) if closed.after_opening() => {
                let refusal = ParticipationError::EventNotOpen(closed);
                return self.replay(&valid, &valid.event_id, request_id.as_ref(), refusal).await;
            }
            Err(error) => return Err(error),
        };
        if !event.accepts_source(valid.source_channel) {
            return Err(ParticipationError::field("sourceChannel", "the event was not published to this channel"));
        }
        let terms_sha256 = event
            .consented_terms(&valid.privacy_version)
            .map_err(|_| {
                ParticipationError::InvalidArgument(
                    FieldViolation::terms_outdated(
                        "privacyConsent.consentTextVersion",
                        "is not the version of the event's terms: fetch the event again and show its current terms",
                    )
                    .into(),
                )
            })?
            .map(|terms| terms.sha256.clone());
        if event.entry_rules.verify_phone
            && let Err(refusal) = self.verify_entry_code(&event.id, &valid.phone.e164(), &verification_code).await
        {
            // The retry of an entry that was stored consumed its code: it is answered by the entry.
            return self.replay(&valid, &event.id, request_id.as_ref(), refusal).await;
        }
        let id = uuid::Uuid::new_v4().to_string();
        let phone = valid.phone.e164();
        let marketing = valid.marketing.as_ref().map(|c| (c.granted, c.text_version.clone()));
        let mut row = NewEntryRow {
            id: id.clone(),
            event_id: event.id.clone(),
            owner_id: event.owner_id.clone(),
            phone_hash: self.keys.phones.hash(&event.id, &phone),
            name_sealed: self.keys.cipher.seal(&id, PiiField::Name, &valid.name)?,
            phone_sealed: self.keys.cipher.seal(&id, PiiField::Phone, &phone)?,
            privacy_consent_version: valid.privacy_version.clone(),
            terms_sha256: terms_sha256.clone(),
            consented_at_ms: now,
            marketing_consent: marketing.clone(),
            source_channel: valid.source_channel,
            created_at_ms: now,
            request_id: request_id.as_ref().map(|r| r.as_str().to_owned()),
            receipt_code: String::new(),
            address_quota: self.address_quota(&event, client),
        };
        let granted = marketing.as_ref().is_some_and(|(granted, _)| *granted);
        let message = messages::entry_recorded(&event, &id, valid.source_channel, granted, now);
        let refusal = match self.admit(&mut row, event.capacity(), message).await? {
            (EntryAdmission::Admitted, receipt) => {
                if event.entry_rules.verify_phone
                    && let Err(error) = self.consume_entry_code(&event.id, &phone).await
                {
                    // The entry is stored; the code expires within minutes anyway.
                    tracing::warn!(event_id = %event.id, %error, "the entry's one-time code was not consumed");
                }
                tracing::info!(
                    event_id = %event.id, entry_id = %id, source_channel = valid.source_channel,
                    request_id = request_id.as_ref().map(RequestId::as_str), "entry recorded"
                );
                return Ok(Entry {
                    id,
                    event_id: event.id,
                    name: Some(valid.name),
                    phone_e164: Some(phone),
                    privacy: Consent {
                        granted: true,
                        text_version: valid.privacy_version,
                        recorded_at_ms: now,
                        terms_sha256,
                    },
                    marketing: marketing.map(|(granted, text_version)| Consent {
                        granted,
                        text_version,
                        recorded_at_ms: now,
                        terms_sha256: None,
                    }),
                    source_channel: valid.source_channel,
                    created_at_ms: now,
                    anonymized_at_ms: None,
                    receipt_code: Some(receipt),
                    // The insert checked the block list.
                    blocked: false,
                    withdrawn_at_ms: None,
                });
            }
            (EntryAdmission::Duplicate, _) => ParticipationError::DuplicateEntry,
            // Capacity is counted after the insert, so this submission's phone had no entry: there
            // is nothing to replay.
            (EntryAdmission::Full, _) => {
                return Err(ParticipationError::EventFull { capacity: event.capacity().unwrap_or_default() });
            }
            (EntryAdmission::Closed, _) => ParticipationError::EntriesClosed,
            (EntryAdmission::Blocked, _) => ParticipationError::PhoneBlocked,
            // Counted after the insert, so this submission's phone had no entry: nothing to replay.
            (EntryAdmission::AddressLimit, _) => {
                let max = event.entry_rules.max_entries_per_address.unwrap_or_default();
                return Err(ParticipationError::AddressLimit { max });
            }
            // The cached facts may still say PUBLISHED; the gate is what the event service closed
            // before EndEvent answered, so the participant hears what an ended event answers.
            (EntryAdmission::Ended, _) => ParticipationError::EventNotOpen(Closed::NotPublished(EventStatus::Ended)),
            (EntryAdmission::ReceiptTaken, _) => {
                return Err(ParticipationError::internal(format!(
                    "no free receipt code in event {} after {RECEIPT_ATTEMPTS} draws",
                    event.id
                )));
            }
        };
        self.replay(&valid, &event.id, request_id.as_ref(), refusal).await
    }

    /// Submits `row` with a fresh receipt code, drawing another while the event already has the
    /// one drawn (at most [`RECEIPT_ATTEMPTS`] codes). Returns the admission and the last code
    /// drawn (stored with the entry when admitted).
    async fn admit(
        &self,
        row: &mut NewEntryRow,
        capacity: Option<u32>,
        message: OutgoingMessage,
    ) -> Result<(EntryAdmission, ReceiptCode)> {
        let mut attempt = 1;
        loop {
            let receipt = ReceiptCode::from_random(random_bytes()?);
            row.receipt_code = receipt.as_str().to_owned();
            let admission = self.repo.admit_entry(row, capacity, message.clone()).await?;
            if admission != EntryAdmission::ReceiptTaken || attempt == RECEIPT_ATTEMPTS {
                return Ok((admission, receipt));
            }
            tracing::warn!(event_id = %row.event_id, attempt, "receipt code already taken in the event: drawing another");
            attempt += 1;
        }
    }

    /// The entry an earlier attempt of this request stored in `event_id` — same request id, event
    /// and phone, and exactly the same data ([`ValidEntry::is_stored_as`]) — or `refusal`.
    /// Anything short of all of that answers `refusal` itself, as for any other submission of the
    /// phone, so that a forged request id learns nothing (see [`RequestId`]).
    async fn replay(
        &self,
        valid: &ValidEntry,
        event_id: &str,
        request_id: Option<&RequestId>,
        refusal: ParticipationError,
    ) -> Result<Entry> {
        let Some(request_id) = request_id else { return Err(refusal) };
        let phone_hash = self.keys.phones.hash(event_id, &valid.phone.e164());
        let stored = self.repo.entry_of_request(event_id, &phone_hash, request_id.as_str()).await?;
        let Some(entry) = stored.map(|stored| self.decrypt(stored)).transpose()? else { return Err(refusal) };
        if !valid.is_stored_as(&entry) {
            tracing::info!(
                event_id,
                request_id = request_id.as_str(),
                "a repeated request id came with other data: answered as a duplicate"
            );
            return Err(refusal);
        }
        tracing::info!(
            event_id = %entry.event_id, entry_id = %entry.id, request_id = request_id.as_str(),
            "entry request repeated: answered with the entry it stored"
        );
        Ok(entry)
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

    /// CloseEntries: closes `event_id`'s entries for good because the event service is ending the
    /// event at `ended_at` (now when `None`). Once this returns, every entry of the event is
    /// committed (and in every draw) or will be refused, on every replica, whatever they cache.
    /// Returns the recorded close time (the first one).
    pub async fn close_entries(&self, event_id: &str, ended_at: Option<Millis>) -> Result<Millis> {
        let event_id = required_event_id(event_id)?;
        let requested = ended_at.unwrap_or_else(|| self.clock.now_ms());
        let recorded = self.repo.close_entries(event_id, requested).await?;
        tracing::info!(event_id, ended_at_ms = recorded, "entries closed: the event ended");
        Ok(recorded)
    }

    /// ListParticipants: a page of the owner's event's entries in arrival order (`created_at`,
    /// then id: the order of `create_time` and of first-come selection), PII masked by the caller
    /// of this method (the entries carry it decrypted).
    pub async fn list_participants(
        &self,
        owner: &str,
        event_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<ParticipantPage> {
        let size = checked_page_size(page_size)?;
        let event = self.owned_event(owner, event_id, false).await?;
        let after = match page_token.trim() {
            "" => None,
            token => Some(self.pages.open(&event.id, token).ok_or_else(|| {
                ParticipationError::field("pageToken", "is not a page token ListParticipants returned for this event")
            })?),
        };
        let mut rows = self.repo.entries_page(&event.id, after.as_ref(), size + 1).await?;
        let next_page_token = if rows.len() > size as usize {
            rows.truncate(size as usize);
            rows.last()
                .map(|last| {
                    let cursor = ArrivalCursor { created_at_ms: last.created_at_ms, id: last.id.clone() };
                    self.pages.issue(&event.id, &cursor)
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        let total_size = self.repo.count_entries(&event.id).await?;
        let entries = rows.into_iter().map(|row| self.decrypt(row)).collect::<Result<Vec<_>>>()?;
        Ok(ParticipantPage { entries, next_page_token, total_size })
    }

    /// CountEntries: per event (in request order), totals and per-channel counts, and when the
    /// current draw happened. Unknown events count as zero.
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
        let empty = |event_id: &str| EventCount {
            event_id: event_id.to_owned(),
            total: 0,
            by_channel: Vec::new(),
            last_entry_ms: None,
            drawn_at_ms: None,
        };
        let mut counts: HashMap<String, EventCount> = HashMap::new();
        for row in self.repo.count_by_channel(&distinct).await? {
            let count = counts.entry(row.event_id.clone()).or_insert_with(|| empty(&row.event_id));
            count.total += row.count;
            count.by_channel.push((row.channel, row.count));
            count.last_entry_ms = count.last_entry_ms.max(Some(row.last_entry_ms));
        }
        for (event_id, drawn_at_ms) in self.repo.current_draw_times(&distinct).await? {
            counts.entry(event_id.clone()).or_insert_with(|| empty(&event_id)).drawn_at_ms = Some(drawn_at_ms);
        }
        Ok(event_ids
            .iter()
            .map(|id| {
                counts.get(id.trim()).cloned().unwrap_or_else(|| EventCount { event_id: id.clone(), ..empty(id) })
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
        self.repo.erase_withdrawn_hashes(event_id, before_ms.unwrap_or(i64::MAX)).await?;
        tracing::info!(event_id, erased, "entries anonymized");
        Ok(erased)
    }
}
