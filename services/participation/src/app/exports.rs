//! ExportParticipants and ListExports: CSV files of an event's participants or winners, and the
//! audit log that records every export.
//!
//! # Memory
//!
//! The contract returns the file in one message, so the file itself is held once (about 90 bytes
//! a participant: some 9 MB for 100,000 entries). Everything else is bounded: entries are read,
//! decrypted and written [`EXPORT_PAGE`] at a time in arrival order (keyset pages, the order of
//! ListParticipants), so at most one page of decrypted personal data is in memory besides the
//! file. Winners are the prize's winner count.

use std::net::IpAddr;

use kem_kit::channel::Channel;

use super::claims::WinnerNotice;
use super::entries::checked_page_size;
use super::{ParticipationCore, ParticipationError, Result};
use crate::domain::claim::ClaimState;
use crate::domain::entry::{Entry, RequestId};
use crate::domain::event::{EventFacts, Millis};
use crate::domain::export::{CONTENT_TYPE, CsvWriter, ExportKind, RevealRefusal, filename, kst_time, may_reveal};
use crate::domain::name::mask_name;
use crate::domain::phone::{MobileNumber, mask_e164};
use crate::infra::repository::{ArrivalCursor, ExportRow};

/// Entries read, decrypted and written per round trip.
pub const EXPORT_PAGE: u32 = 500;

/// Who asks for an export, as the audit log records it.
#[derive(Debug, Clone, Default)]
pub struct ExportCaller {
    /// The call's `x-request-id`: a retry of one export is recorded once.
    pub request_id: Option<RequestId>,
    /// The owner's address as the edge saw it.
    pub client_address: Option<IpAddr>,
}

/// An exported file.
#[derive(Debug, Clone)]
pub struct ExportFile {
    /// `text/csv; charset=utf-8`.
    pub content_type: &'static str,
    /// The CSV.
    pub data: Vec<u8>,
    /// Suggested file name.
    pub filename: String,
    /// The audit record's id.
    pub export_id: String,
}

/// A page of the audit log.
#[derive(Debug, Clone)]
pub struct ExportPage {
    /// Exports, newest first.
    pub exports: Vec<ExportRow>,
    /// Token of the next page; empty at the end.
    pub next_page_token: String,
}

/// The event scope export page tokens are signed for. ListParticipants signs its tokens for the
/// bare event id; an event id never contains NUL (ids are checked at the boundary) and a token
/// body starts with its version byte, never `e`, so neither listing's token opens in the other.
fn exports_scope(event_id: &str) -> String {
    format!("{event_id}\0exports")
}

/// The channel as owners know it.
fn channel_label(number: i32) -> &'static str {
    Channel::from_number(number).map(Channel::korean).unwrap_or("직접 Direct")
}

/// A claim state as owners read it.
fn claim_label(state: ClaimState) -> &'static str {
    match state {
        ClaimState::Unclaimed => "미수령 unclaimed",
        ClaimState::Claimed => "수령 claimed",
        ClaimState::Expired => "기한 만료 expired",
        ClaimState::Redrawn => "재추첨됨 redrawn",
    }
}

/// Where the winner's messages stand (`NotificationState` numbers), e.g. "SMS 전달 delivered".
fn notification_label(notices: &[WinnerNotice]) -> String {
    let label = |n: &WinnerNotice| {
        let state = match n.state {
            1 => "대기 pending",
            2 => "발송 sent",
            3 => "전달 delivered",
            4 => "실패 failed",
            _ => "-",
        };
        let channel = if n.channel == 2 { "알림톡" } else { "SMS" };
        format!("{channel} {state}")
    };
    notices.iter().map(label).collect::<Vec<_>>().join("; ")
}

/// Where an entry stands, for the status column.
fn standing(entry: &Entry) -> String {
    let mut states = Vec::new();
    if entry.withdrawn_at_ms.is_some() {
        states.push("철회 withdrawn");
    }
    if entry.blocked {
        states.push("차단 blocked");
    }
    if entry.anonymized_at_ms.is_some() {
        states.push("파기 anonymized");
    }
    if states.is_empty() { "응모 entered".to_owned() } else { states.join(", ") }
}

impl ParticipationCore {
    /// ExportParticipants: the CSV of the owner's event's participants (masked) or current winners
    /// (masked, or revealed inside the retention period), recorded in the audit log before it is
    /// returned — an export that cannot be recorded is not given out.
    pub async fn export(
        &self,
        owner: &str,
        event_id: &str,
        kind: Option<ExportKind>,
        reveal: bool,
        caller: ExportCaller,
    ) -> Result<ExportFile> {
        let kind = kind.ok_or_else(|| {
            ParticipationError::field("kind", "must be EXPORT_KIND_PARTICIPANTS or EXPORT_KIND_WINNERS")
        })?;
        let event = self.owned_event(owner, event_id, false).await?;
        if reveal && kind != ExportKind::Winners {
            return Err(ParticipationError::RevealNotAllowed(RevealRefusal::NotWinners));
        }
        if self.repo.erased_at(&event.id).await?.is_some() {
            return Err(ParticipationError::DataErased);
        }
        let now = self.clock.now_ms();
        let writer = match kind {
            ExportKind::Participants => self.participants_csv(&event).await?,
            ExportKind::Winners => self.winners_csv(&event, reveal, now).await?,
        };
        let row_count = i64::try_from(writer.rows()).unwrap_or(i64::MAX);
        let record = self
            .repo
            .record_export(&ExportRow {
                id: uuid::Uuid::new_v4().to_string(),
                event_id: event.id.clone(),
                request_id: caller.request_id.as_ref().map(|r| r.as_str().to_owned()),
                actor_id: owner.to_owned(),
                client_address: caller.client_address.map(|ip| ip.to_string()).unwrap_or_default(),
                kind: kind.number(),
                revealed: reveal,
                row_count,
                created_at_ms: now,
            })
            .await?;
        tracing::info!(
            event_id = %event.id, export_id = %record.id, kind = ?kind, revealed = reveal, rows = row_count,
            request_id = caller.request_id.as_ref().map(RequestId::as_str), "participants exported"
        );
        Ok(ExportFile {
            content_type: CONTENT_TYPE,
            data: writer.finish(),
            filename: filename(kind, &event.id, now),
            export_id: record.id,
        })
    }

    /// Every entry of `event` in arrival order, masked, [`EXPORT_PAGE`] at a time.
    async fn participants_csv(&self, event: &EventFacts) -> Result<CsvWriter> {
        let mut csv = CsvWriter::new(ExportKind::Participants.header());
        let mut after: Option<ArrivalCursor> = None;
        let mut number = 0u64;
        loop {
            let page = self.repo.entries_page(&event.id, after.as_ref(), EXPORT_PAGE).await?;
            let full = page.len() == EXPORT_PAGE as usize;
            after = page.last().map(|last| ArrivalCursor { created_at_ms: last.created_at_ms, id: last.id.clone() });
            for stored in page {
                let entry = self.decrypt(stored)?;
                number += 1;
                let marketing = match &entry.marketing {
                    Some(consent) if consent.granted => "Y",
                    Some(_) => "N",
                    None => "",
                };
                csv.row([
                    number.to_string().as_str(),
                    entry.masked_name().as_str(),
                    entry.masked_phone().as_str(),
                    channel_label(entry.source_channel),
                    kst_time(entry.created_at_ms).as_str(),
                    marketing,
                    standing(&entry).as_str(),
                ]);
            }
            if !full {
                return Ok(csv);
            }
        }
    }

    /// The current winners of `event` (claimed winners of earlier draws, then the latest draw's,
    /// as ListWinners lists them) with their claims and notifications; full names and national
    /// phone numbers when `reveal` is allowed at `now` (refused otherwise).
    async fn winners_csv(&self, event: &EventFacts, reveal: bool, now: Millis) -> Result<CsvWriter> {
        if reveal {
            let drawn_at = self.repo.current_draw(&event.id).await?.map(|d| d.drawn_at_ms);
            may_reveal(ExportKind::Winners, drawn_at, event.retention_days, now)
                .map_err(ParticipationError::RevealNotAllowed)?;
        }
        let mut csv = CsvWriter::new(ExportKind::Winners.header());
        for winner in self.current_winners(&event.id).await? {
            let entry = &winner.entry;
            let (name, phone) = match (&entry.name, &entry.phone_e164) {
                (Some(name), Some(e164)) if reveal => (
                    name.clone(),
                    // A stored number this version cannot parse is shown as stored, not hidden:
                    // the owner needs it to deliver the prize.
                    MobileNumber::parse(e164).map(|n| n.national()).unwrap_or_else(|_| e164.clone()),
                ),
                (name, e164) => (
                    name.as_deref().map(mask_name).unwrap_or_default(),
                    e164.as_deref().map(mask_e164).unwrap_or_default(),
                ),
            };
            let claim = winner.claim.as_ref();
            csv.row([
                winner.rank.to_string().as_str(),
                name.as_str(),
                phone.as_str(),
                channel_label(entry.source_channel),
                kst_time(entry.created_at_ms).as_str(),
                claim.map(|c| claim_label(c.state)).unwrap_or_default(),
                claim.map(|c| kst_time(c.deadline_ms)).unwrap_or_default().as_str(),
                claim.and_then(|c| c.claimed_at_ms).map(kst_time).unwrap_or_default().as_str(),
                notification_label(&winner.notices).as_str(),
            ]);
        }
        Ok(csv)
    }

    /// ListExports: a page of the owner's event's export records, newest first.
    pub async fn list_exports(
        &self,
        owner: &str,
        event_id: &str,
        page_size: i32,
        page_token: &str,
    ) -> Result<ExportPage> {
        let size = checked_page_size(page_size)?;
        let event = self.owned_event(owner, event_id, false).await?;
        let scope = exports_scope(&event.id);
        let after = match page_token.trim() {
            "" => None,
            token => Some(self.pages.open(&scope, token).ok_or_else(|| {
                ParticipationError::field("pageToken", "is not a page token ListExports returned for this event")
            })?),
        };
        let mut exports = self.repo.exports_page(&event.id, after.as_ref(), size + 1).await?;
        let next_page_token = if exports.len() > size as usize {
            exports.truncate(size as usize);
            exports
                .last()
                .map(|last| {
                    self.pages.issue(&scope, &ArrivalCursor { created_at_ms: last.created_at_ms, id: last.id.clone() })
                })
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ExportPage { exports, next_page_token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_read_as_owners_know_them() {
        assert_eq!(channel_label(0), "직접 Direct");
        assert_eq!(channel_label(Channel::Instagram.number()), "인스타그램");
        assert_eq!(channel_label(99), "직접 Direct");
    }
}
