//! Service values ↔ contract messages.

use kem_proto::kem::participation::v1 as pb;

use crate::app::{EventCount, Winner};
use crate::domain::draw::DrawRecord;
use crate::domain::entry::{Consent, Entry};
use crate::domain::event::Millis;
use crate::domain::receipt::ReceiptCode;

/// A protobuf timestamp from epoch milliseconds.
pub fn timestamp(ms: Millis) -> prost_types::Timestamp {
    // 0..=999 ms in nanoseconds fits an i32.
    prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos: (ms.rem_euclid(1000) * 1_000_000) as i32 }
}

/// Epoch milliseconds of a protobuf timestamp (saturating).
pub fn millis(t: &prost_types::Timestamp) -> Millis {
    t.seconds.saturating_mul(1000).saturating_add(i64::from(t.nanos.clamp(0, 999_999_999)) / 1_000_000)
}

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
        withdrawn: false,
        blocked: false,
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
        claim_state: pb::ClaimState::Unspecified.into(),
        claim_deadline: None,
        claim_time: None,
        notifications: Vec::new(),
    }
}

/// A winner as the public sees it: rank and masked contact data only (no entry id).
pub fn public_winner(w: &Winner) -> pb::PublicWinner {
    pb::PublicWinner {
        rank: i32::try_from(w.rank).unwrap_or(i32::MAX),
        masked_name: w.entry.masked_name(),
        masked_phone: w.entry.masked_phone(),
        claim_state: pb::ClaimState::Unspecified.into(),
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
