//! BlockParticipant, ListBlocks, UnblockParticipant, and the per-address quota Enter counts
//! against.
//!
//! A block holds the phone's keyed hash (the one entries store, so it matches the phone's entry
//! and refuses its next ones) and the masked phone for the owner's list — never the number.
//! Enter checks the list inside its insert; draws leave blocked entries out (and record them with
//! their exclusions). Removing a block erases its hash, masked phone and reason at once;
//! AnonymizeEntries erases them from active blocks too (see the repository).

use std::net::IpAddr;

use super::{ParticipationCore, ParticipationError, Result};
use crate::domain::address::AddressKey;
use crate::domain::event::EventFacts;
use crate::domain::phone::{MobileNumber, mask_e164};
use crate::domain::violation::{FieldViolation, Violations};
use crate::infra::pii::PiiField;
use crate::infra::repository::{AddressQuota, NewBlock, StoredBlock, Unblocked};

/// A block as the owner sees it.
pub type Block = StoredBlock;

/// A BlockParticipant request: exactly one of `phone` and `entry_id`.
#[derive(Clone, Default)]
pub struct BlockRequest {
    /// The event.
    pub event_id: String,
    /// The phone to block, in any form Enter accepts; empty when blocking by entry.
    pub phone: String,
    /// The entry whose phone to block; empty when blocking by phone.
    pub entry_id: String,
    /// The owner's note (characters and length checked at the boundary).
    pub reason: String,
}

impl std::fmt::Debug for BlockRequest {
    /// The phone stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockRequest")
            .field("event_id", &self.event_id)
            .field("entry_id", &self.entry_id)
            .finish_non_exhaustive()
    }
}

/// Longest block reason, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// What a block is made from.
enum Target {
    Phone(MobileNumber),
    Entry(String),
}

fn target(request: &BlockRequest) -> Result<Target> {
    let (phone, entry_id) = (request.phone.trim(), request.entry_id.trim());
    match (phone.is_empty(), entry_id.is_empty()) {
        (false, true) => {
            MobileNumber::parse(phone).map(Target::Phone).map_err(|e| ParticipationError::field("phone", e.to_string()))
        }
        (true, false) => Ok(Target::Entry(entry_id.to_owned())),
        (empty, _) => {
            let description = if empty { "give a phone or an entryId" } else { "give a phone or an entryId, not both" };
            let mut violations = Violations::default();
            violations.push(FieldViolation::new("phone", description));
            violations.push(FieldViolation::new("entryId", description));
            Err(violations.into())
        }
    }
}

impl ParticipationCore {
    /// BlockParticipant: blocks a phone (given, or an entry's) in the owner's event; blocking a
    /// blocked phone answers with its existing block.
    pub async fn block(&self, owner: &str, request: BlockRequest) -> Result<Block> {
        let target = target(&request)?;
        let reason = request.reason.trim();
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(ParticipationError::field("reason", "must be at most 200 characters"));
        }
        let event = self.owned_event(owner, &request.event_id, false).await?;
        // After the retention erasure nothing personal may be added back, and nothing could be
        // refused any more (the event is no longer open).
        if self.repo.erased_at(&event.id).await?.is_some() {
            return Err(ParticipationError::DataErased);
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (phone_hash, masked_phone, entry_id) = match target {
            Target::Phone(number) => (self.keys.phones.hash(&event.id, &number.e164()), number.masked(), None),
            Target::Entry(entry_id) => {
                let phone = self.repo.entry_phone(&event.id, &entry_id).await?;
                let phone = phone.ok_or(ParticipationError::BlockEntryNotFound)?;
                let sealed = phone.phone_sealed.ok_or(ParticipationError::DataErased)?;
                let e164 = self.keys.cipher.open(&entry_id, PiiField::Phone, &sealed)?;
                (phone.phone_hash, mask_e164(&e164), Some(entry_id))
            }
        };
        let new = NewBlock {
            id,
            event_id: event.id.clone(),
            phone_hash,
            masked_phone,
            reason: reason.to_owned(),
            entry_id,
            created_at_ms: self.clock.now_ms(),
        };
        let block = self.repo.block(&new).await?;
        tracing::info!(
            event_id = %event.id, block_id = %block.id, existing = block.id != new.id,
            by_entry = new.entry_id.is_some(), "phone blocked"
        );
        Ok(block)
    }

    /// ListBlocks: the active blocks of the owner's event, newest first.
    pub async fn list_blocks(&self, owner: &str, event_id: &str) -> Result<Vec<Block>> {
        let event = self.owned_event(owner, event_id, false).await?;
        Ok(self.repo.blocks(&event.id).await?)
    }

    /// UnblockParticipant: removes a block of the owner's event (again: OK).
    pub async fn unblock(&self, owner: &str, event_id: &str, block_id: &str) -> Result<()> {
        let event = self.owned_event(owner, event_id, false).await?;
        match self.repo.unblock(&event.id, block_id.trim(), self.clock.now_ms()).await? {
            Unblocked::Removed => {
                tracing::info!(event_id = %event.id, block_id, "block removed");
                Ok(())
            }
            Unblocked::AlreadyRemoved => Ok(()),
            Unblocked::NotFound => Err(ParticipationError::BlockNotFound),
        }
    }

    /// The quota Enter counts `client` against: the event's per-address limit, when it has one
    /// and the call carried an address (shops' Wi-Fi and carrier NAT put many customers behind
    /// one, so without a limit nothing is counted — nor stored).
    pub(super) fn address_quota(&self, event: &EventFacts, client: Option<IpAddr>) -> Option<AddressQuota> {
        let max = event.entry_rules.max_entries_per_address?;
        let key = AddressKey::of(client?);
        Some(AddressQuota { address_hash: self.keys.phones.hash_address(&event.id, key.as_str()), max })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(result: Result<Target>) -> Vec<String> {
        match result {
            Err(ParticipationError::InvalidArgument(v)) => v.iter().map(|v| v.field.clone()).collect(),
            Err(other) => vec![other.to_string()],
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn a_block_names_exactly_one_phone_or_entry() {
        let request = |phone: &str, entry_id: &str| BlockRequest {
            event_id: "e".into(),
            phone: phone.into(),
            entry_id: entry_id.into(),
            reason: String::new(),
        };
        assert_eq!(fields(target(&request("", ""))), ["phone", "entryId"]);
        assert_eq!(fields(target(&request("010-1234-5678", "x"))), ["phone", "entryId"]);
        assert_eq!(fields(target(&request("02-123-4567", ""))), ["phone"]);
        assert!(matches!(target(&request(" 01012345678 ", "")), Ok(Target::Phone(_))));
        assert!(matches!(target(&request("", "x")), Ok(Target::Entry(id)) if id == "x"));
    }
}
