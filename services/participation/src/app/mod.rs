//! The participation use cases, one file per group — entries (Enter, CloseEntries,
//! ListParticipants, CountEntries, AnonymizeEntries) and draws (DrawWinners,
//! DrawWinnersOnSchedule, ListWinners, GetPublicWinners), exports (ExportParticipants,
//! ListExports: CSV files and their audit log), blocks (BlockParticipant, ListBlocks,
//! UnblockParticipant, and Enter's per-address quota) and marketing (ListMarketingRecipients) —
//! plus page tokens and the [`ParticipationError`] they fail with. They combine the rules
//! ([`domain`](crate::domain)) with the adapters of [`infra`](crate::infra): the event facts
//! ([`events`](crate::infra::events)), personal-data protection ([`pii`](crate::infra::pii)) and
//! the tables ([`repository`](crate::infra::repository)); they know nothing of gRPC.

mod blocks;
mod claims;
mod codes;
mod draws;
mod entries;
mod error;
mod exports;
mod marketing;
mod notify;
mod page;

use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};

pub use blocks::{Block, BlockRequest, MAX_REASON_CHARS};
pub use claims::{CHANNEL_SMS, ClaimedPrize, WinnerClaim, WinnerNotice};
pub use codes::{CodeSent, EntryStanding};
pub use draws::{DrawOutcome, DrawRequest, ScheduledDraw, Winner};
pub use entries::{EventCount, ParticipantPage};
pub use error::ParticipationError;
pub use exports::{ExportCaller, ExportFile, ExportPage};
pub use marketing::{DEFAULT_MARKETING_PAGE_SIZE, MAX_MARKETING_PAGE_SIZE, MarketingPage};
pub use notify::{NotifierSettings, NotifyReport};
pub use page::PageTokens;

use crate::domain::entry::{Consent, Entry};
use crate::domain::event::EventFacts;
use crate::domain::receipt::ReceiptCode;
use crate::infra::events::MeshEvents;
use crate::infra::pii::PiiField;
use crate::infra::pii::keys::PiiKeys;
use crate::infra::repository::{Repository, StoredEntry};
use crate::infra::sms::Sms;

/// Result of a use case.
pub type Result<T, E = ParticipationError> = std::result::Result<T, E>;

/// Where "now" comes from: the kit's injected clock (a `ManualClock` in tests about time).
pub use kem_kit::clock::Clock;

/// The use cases and what they run on. Shared by every request.
pub struct ParticipationCore {
    repo: Repository,
    events: MeshEvents,
    keys: Arc<PiiKeys>,
    pages: PageTokens,
    clock: Arc<dyn Clock>,
    sms: Sms,
    notifier: NotifierSettings,
}

impl std::fmt::Debug for ParticipationCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParticipationCore").field("repo", &self.repo).field("keys", &self.keys).finish_non_exhaustive()
    }
}

impl ParticipationCore {
    /// Over its repository, the event facts, the personal-data keys and a clock; SMS go through
    /// `sms`, winner notices as `notifier` says.
    pub fn new(
        repo: Repository,
        events: MeshEvents,
        keys: Arc<PiiKeys>,
        clock: Arc<dyn Clock>,
        sms: Sms,
        notifier: NotifierSettings,
    ) -> ParticipationCore {
        let pages = PageTokens::new(keys.page_tokens.clone());
        ParticipationCore { repo, events, keys, pages, clock, sms, notifier }
    }

    /// How the winner notifier runs.
    pub fn notifier_settings(&self) -> NotifierSettings {
        self.notifier
    }

    /// The repository (tests inspect the tables through it).
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// The facts of an event of `owner`: NOT_FOUND when absent or another owner's. Records the
    /// event's owner on the way (see [`marketing`]): events whose entries predate
    /// `event_owners` join ListMarketingRecipients once their owner opens them again.
    async fn owned_event(&self, owner: &str, event_id: &str, fresh: bool) -> Result<EventFacts> {
        let event_id = required_event_id(event_id)?;
        let facts = if fresh { self.events.fresh_facts(event_id).await? } else { self.events.facts(event_id).await? };
        if let Some(facts) = &facts
            && let Err(error) = self.repo.learn_owner(&facts.id, &facts.owner_id, self.clock.now_ms()).await
        {
            // The owner's call does not depend on it; the next one records it.
            tracing::warn!(event_id = %facts.id, %error, "the event's owner was not recorded");
        }
        facts.filter(|f| f.owner_id == owner).ok_or(ParticipationError::EventNotFound)
    }

    /// The facts of an event the public may see (published once: PUBLISHED or ENDED), NOT_FOUND
    /// for anything else. A cached "not published yet" is re-checked with the event service.
    async fn public_event(&self, event_id: &str) -> Result<EventFacts> {
        let event_id = required_event_id(event_id)?;
        let cached = self.events.facts(event_id).await?.ok_or(ParticipationError::EventNotFound)?;
        let facts = if cached.status.before_publication() {
            self.events.fresh_facts(event_id).await?.ok_or(ParticipationError::EventNotFound)?
        } else {
            cached
        };
        Some(facts).filter(EventFacts::is_public).ok_or(ParticipationError::EventNotFound)
    }

    /// A stored entry with its personal data decrypted.
    fn decrypt(&self, stored: StoredEntry) -> Result<Entry> {
        let cipher = &self.keys.cipher;
        let name = stored.name_sealed.as_deref().map(|b| cipher.open(&stored.id, PiiField::Name, b)).transpose()?;
        let phone = stored.phone_sealed.as_deref().map(|b| cipher.open(&stored.id, PiiField::Phone, b)).transpose()?;
        let recorded_at_ms = stored.consented_at_ms;
        let marketing = match (stored.marketing_consent_granted, stored.marketing_consent_version) {
            (Some(granted), Some(text_version)) => {
                Some(Consent { granted, text_version, recorded_at_ms, terms_sha256: None })
            }
            _ => None,
        };
        let receipt_code = match stored.receipt_code {
            Some(code) => Some(ReceiptCode::parse(&code).ok_or_else(|| {
                ParticipationError::internal(format!("entry {} has a malformed receipt code", stored.id))
            })?),
            None => None,
        };
        Ok(Entry {
            id: stored.id,
            event_id: stored.event_id,
            name,
            phone_e164: phone,
            privacy: Consent {
                granted: stored.privacy_consent_granted,
                text_version: stored.privacy_consent_version,
                recorded_at_ms,
                terms_sha256: stored.terms_sha256,
            },
            marketing,
            source_channel: stored.source_channel,
            created_at_ms: stored.created_at_ms,
            anonymized_at_ms: stored.anonymized_at_ms,
            receipt_code,
            blocked: stored.blocked,
            withdrawn_at_ms: stored.withdrawn_at_ms,
        })
    }
}

/// `N` bytes from the operating system's CSPRNG (draw seeds, receipt codes).
fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| ParticipationError::internal("the system random source failed"))?;
    Ok(bytes)
}

/// The trimmed event id, INVALID_ARGUMENT (`eventId`) when empty.
fn required_event_id(event_id: &str) -> Result<&str> {
    let id = event_id.trim();
    if id.is_empty() {
        return Err(ParticipationError::field("eventId", "the event id is required"));
    }
    Ok(id)
}
