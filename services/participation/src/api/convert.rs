//! Service values ↔ contract messages.

use kem_proto::kem::participation::v1 as pb;

use crate::app::{Block, EventCount, Winner, WinnerNotice};
use crate::domain::claim::ClaimState;
use crate::domain::draw::DrawRecord;
use crate::domain::entry::{Consent, Entry};
use crate::domain::receipt::ReceiptCode;
use crate::infra::repository::ExportRow;

/// Epoch milliseconds ↔ protobuf timestamps (saturating): the kit's one conversion.
pub use kem_kit::clock::{ms_from_timestamp as millis, timestamp_from_ms as timestamp};

fn consent(c: &Consent) -> pb::Consent {
    pb::Consent {
        granted: c.granted,
        consent_text_version: c.text_version.clone(),
        consent_time: Some(timestamp(c.recorded_at_ms)),
        terms_sha256: c.terms_sha256.clone().unwrap_or_default(),
    }
}

/// An entry as the owner sees it: personal data masked, and never its receipt code (the
/// participant's alone: only [`enter_response`] carries it).
pub fn entry(e: &Entry) -> pb::Entry {
    pb::Entry {
        entry_id: e.id.clone(),
        event_id: e.event_id.clone(),
        masked_name: e.masked_name(),
        masked_phone: e.masked_phone(),
        privacy_consent: Some(consent(&e.privacy)),
        marketing_consent: e.marketing.as_ref().map(consent),
        source_channel: e.source_channel,
        create_time: Some(timestamp(e.created_at_ms)),
        anonymized: e.anonymized_at_ms.is_some(),
        withdrawn: e.withdrawn_at_ms.is_some(),
        blocked: e.blocked,
    }
}

/// What Enter answers: the entry (masked) and the participant's receipt code as shown,
/// `XXXXX-XXXXX` (empty for an entry stored before receipts existed).
pub fn enter_response(e: &Entry) -> pb::EnterResponse {
    pb::EnterResponse {
        entry: Some(entry(e)),
        receipt_code: e.receipt_code.as_ref().map(ReceiptCode::display).unwrap_or_default(),
    }
}

/// A winner with the full contact data for prize delivery.
pub fn winner(w: &Winner) -> pb::Winner {
    pb::Winner {
        entry_id: w.entry.id.clone(),
        rank: i32::try_from(w.rank).unwrap_or(i32::MAX),
        masked_name: w.entry.masked_name(),
        masked_phone: w.entry.masked_phone(),
        name: w.entry.name.clone().unwrap_or_default(),
        phone: w.entry.phone_e164.clone().unwrap_or_default(),
        source_channel: w.entry.source_channel,
        draw_id: w.draw_id.clone(),
        claim_state: claim_state(w),
        claim_deadline: w.claim.as_ref().map(|c| timestamp(c.deadline_ms)),
        claim_time: w.claim.as_ref().and_then(|c| c.claimed_at_ms).map(timestamp),
        notifications: w.notices.iter().map(notification).collect(),
    }
}

/// The contract's `ClaimState` number.
pub fn state_number(state: ClaimState) -> i32 {
    match state {
        ClaimState::Unclaimed => pb::ClaimState::Unclaimed,
        ClaimState::Claimed => pb::ClaimState::Claimed,
        ClaimState::Expired => pb::ClaimState::Expired,
        ClaimState::Redrawn => pb::ClaimState::Redrawn,
    }
    .into()
}

fn claim_state(w: &Winner) -> i32 {
    w.claim.as_ref().map_or(pb::ClaimState::Unspecified.into(), |c| state_number(c.state))
}

/// A message telling a winner, as the owner sees it. The Kakao 알림톡 channel is not built (it
/// needs the owner's own connected channel), so every notification is SMS.
fn notification(n: &WinnerNotice) -> pb::WinnerNotification {
    pb::WinnerNotification {
        channel: n.channel,
        state: n.state,
        attempts: i32::try_from(n.attempts).unwrap_or(i32::MAX),
        last_error: n.last_error.clone(),
        update_time: Some(timestamp(n.updated_at_ms)),
        provider: Some(kem_proto::kem::common::v1::ProviderInfo {
            kind: n.provider.0,
            name: n.provider.1.clone(),
            ..Default::default()
        }),
    }
}

/// A winner as the public sees it: rank and masked contact data only (no entry id).
pub fn public_winner(w: &Winner) -> pb::PublicWinner {
    pb::PublicWinner {
        rank: i32::try_from(w.rank).unwrap_or(i32::MAX),
        masked_name: w.entry.masked_name(),
        masked_phone: w.entry.masked_phone(),
        claim_state: claim_state(w),
    }
}

/// The audit record as published.
pub fn audit(r: &DrawRecord) -> pb::DrawAudit {
    pb::DrawAudit {
        draw_id: r.draw_id.clone(),
        event_id: r.event_id.clone(),
        seed: r.seed.clone(),
        seed_supplied: r.seed_supplied,
        algorithm: r.algorithm.clone(),
        algorithm_version: r.algorithm_version.clone(),
        entry_snapshot_sha256: r.entry_snapshot_sha256.clone(),
        entry_count: r.entry_count,
        winner_count: i32::try_from(r.winner_count).unwrap_or(i32::MAX),
        excluded_entry_ids: r.excluded_entry_ids.clone(),
        draw_time: Some(timestamp(r.drawn_at_ms)),
        redraw_of: r.redraw_of.clone().unwrap_or_default(),
    }
}

/// The record a published audit describes, for [`verify_draw`](crate::verify_draw): anyone with
/// a DrawWinners/ListWinners response and the event's entry ids can re-run the draw.
pub fn record_from_audit(a: &pb::DrawAudit) -> DrawRecord {
    DrawRecord {
        draw_id: a.draw_id.clone(),
        event_id: a.event_id.clone(),
        seed: a.seed.clone(),
        seed_supplied: a.seed_supplied,
        algorithm: a.algorithm.clone(),
        algorithm_version: a.algorithm_version.clone(),
        entry_snapshot_sha256: a.entry_snapshot_sha256.clone(),
        entry_count: a.entry_count,
        winner_count: u32::try_from(a.winner_count).unwrap_or_default(),
        excluded_entry_ids: a.excluded_entry_ids.clone(),
        drawn_at_ms: a.draw_time.as_ref().map(millis).unwrap_or_default(),
        redraw_of: Some(a.redraw_of.clone()).filter(|r| !r.is_empty()),
    }
}

/// Entry counts as published.
pub fn event_count(c: &EventCount) -> pb::EventEntryCount {
    pb::EventEntryCount {
        event_id: c.event_id.clone(),
        total: c.total,
        by_channel: c
            .by_channel
            .iter()
            .map(|(channel, count)| pb::ChannelEntryCount { channel: *channel, count: *count })
            .collect(),
        last_entry_time: c.last_entry_ms.map(timestamp),
        draw_time: c.drawn_at_ms.map(timestamp),
    }
}

/// A block as the owner sees it (masked phone; empty once anonymized).
pub fn block(b: &Block) -> pb::Block {
    pb::Block {
        block_id: b.id.clone(),
        event_id: b.event_id.clone(),
        masked_phone: b.masked_phone.clone(),
        reason: b.reason.clone(),
        entry_id: b.entry_id.clone().unwrap_or_default(),
        create_time: Some(timestamp(b.created_at_ms)),
    }
}

/// An export audit record as published.
pub fn export_record(r: &ExportRow) -> pb::ExportRecord {
    pb::ExportRecord {
        export_id: r.id.clone(),
        event_id: r.event_id.clone(),
        actor_id: r.actor_id.clone(),
        client_address: r.client_address.clone(),
        kind: r.kind,
        revealed: r.revealed,
        row_count: r.row_count,
        create_time: Some(timestamp(r.created_at_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audits_round_trip() {
        let record = DrawRecord {
            draw_id: "d".into(),
            event_id: "e".into(),
            seed: vec![1; 32],
            seed_supplied: true,
            algorithm: "chacha20-fisher-yates".into(),
            algorithm_version: "1".into(),
            entry_snapshot_sha256: "ab".into(),
            entry_count: 5,
            winner_count: 2,
            excluded_entry_ids: vec!["x".into()],
            drawn_at_ms: 1_700_000_000_123,
            redraw_of: None,
        };
        assert_eq!(record_from_audit(&audit(&record)), record);
        let redraw = DrawRecord { redraw_of: Some("d0".into()), ..record };
        assert_eq!(record_from_audit(&audit(&redraw)), redraw);
        assert_eq!(millis(&timestamp(-1)), -1);
    }
}
