//! The facts participation reports on `analytics-aggregation`, as `kem.messaging.v1.AnalyticsEvent`
//! queue messages (protobuf binary, `type` and `event_id` application properties).
//!
//! Message ids are deterministic — `entry:<entry_id>` and `draw:<draw_id>` — so the analytics
//! inbox counts each fact exactly once however often it is delivered. Bodies never carry personal
//! data.

use std::collections::BTreeMap;

use kem_kit::queue::OutgoingMessage;
use kem_kit::queue::names::ANALYTICS_AGGREGATION;
use kem_proto::kem::common::v1::Money;
use kem_proto::kem::messaging::v1 as msg;
use prost::Message as _;

use crate::domain::draw::DrawRecord;
use crate::domain::event::{EventFacts, Millis};

/// Content type of every body.
pub const CONTENT_TYPE: &str = "application/protobuf";
/// Full name of the body message (the `type` property).
pub const ANALYTICS_EVENT_TYPE: &str = "kem.messaging.v1.AnalyticsEvent";

use kem_kit::clock::timestamp_from_ms as timestamp;

fn analytics(id: String, event: &EventFacts, at: Millis, fact: msg::analytics_event::Fact) -> OutgoingMessage {
    let body = msg::AnalyticsEvent {
        event_id: event.id.clone(),
        owner_id: event.owner_id.clone(),
        occur_time: Some(timestamp(at)),
        fact: Some(fact),
    };
    let properties = BTreeMap::from([
        ("type".to_owned(), ANALYTICS_EVENT_TYPE.to_owned()),
        ("event_id".to_owned(), event.id.clone()),
    ]);
    OutgoingMessage {
        queue: ANALYTICS_AGGREGATION.to_owned(),
        id,
        body: body.encode_to_vec(),
        content_type: CONTENT_TYPE.to_owned(),
        // The outbox stamps the current trace context.
        traceparent: None,
        delay: None,
        properties,
    }
}

/// `EntryRecorded` for a new entry.
pub fn entry_recorded(
    event: &EventFacts,
    entry_id: &str,
    source_channel: i32,
    marketing_consent: bool,
    at: Millis,
) -> OutgoingMessage {
    let fact = msg::analytics_event::Fact::EntryRecorded(msg::EntryRecorded {
        entry_id: entry_id.to_owned(),
        source_channel,
        marketing_consent,
    });
    analytics(format!("entry:{entry_id}"), event, at, fact)
}

/// `DrawCompleted` for a recorded draw.
pub fn draw_completed(event: &EventFacts, record: &DrawRecord) -> OutgoingMessage {
    let winners = i64::from(record.winner_count);
    let fact = msg::analytics_event::Fact::DrawCompleted(msg::DrawCompleted {
        draw_id: record.draw_id.clone(),
        redraw_of: record.redraw_of.clone().unwrap_or_default(),
        algorithm: record.algorithm.clone(),
        entry_count: record.entry_count,
        winner_count: i32::try_from(record.winner_count).unwrap_or(i32::MAX),
        prize_cost: event.prize_unit_value_krw.map(|unit| Money { amount_krw: unit.saturating_mul(winners) }),
    });
    analytics(format!("draw:{}", record.draw_id), event, record.drawn_at_ms, fact)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::{EventStatus, Method};

    fn event() -> EventFacts {
        EventFacts {
            id: "e-1".into(),
            owner_id: "o-1".into(),
            status: EventStatus::Published,
            start_ms: None,
            end_ms: None,
            method: Method::Draw,
            winner_count: Some(2),
            prize_unit_value_krw: Some(4_500),
            channels: vec![],
            terms: None,
            entry_rules: Default::default(),
            claim_days: 0,
            retention_days: 0,
            store_name: String::new(),
            entry_url: String::new(),
            title: String::new(),
            prize_name: String::new(),
        }
    }

    #[test]
    fn facts_are_typed_addressed_and_deterministic() {
        let m = entry_recorded(&event(), "x-1", 4, true, 1_500);
        assert_eq!(
            (m.queue.as_str(), m.id.as_str(), m.content_type.as_str()),
            ("analytics-aggregation", "entry:x-1", CONTENT_TYPE)
        );
        assert_eq!(m.properties.get("type").map(String::as_str), Some(ANALYTICS_EVENT_TYPE));
        assert_eq!(m.properties.get("event_id").map(String::as_str), Some("e-1"));
        let body = msg::AnalyticsEvent::decode(m.body.as_slice()).expect("decodes");
        assert_eq!(
            (body.owner_id.as_str(), body.occur_time.map(|t| (t.seconds, t.nanos))),
            ("o-1", Some((1, 500_000_000)))
        );
        let Some(msg::analytics_event::Fact::EntryRecorded(fact)) = body.fact else { panic!("entry fact") };
        assert_eq!((fact.entry_id.as_str(), fact.source_channel, fact.marketing_consent), ("x-1", 4, true));
        assert!(kem_proto::descriptor_pool().get_message_by_name(ANALYTICS_EVENT_TYPE).is_some());
    }

    #[test]
    fn draws_report_their_prize_cost() {
        let record = DrawRecord {
            draw_id: "d-2".into(),
            event_id: "e-1".into(),
            seed: vec![0; 32],
            seed_supplied: false,
            algorithm: "chacha20-fisher-yates".into(),
            algorithm_version: "1".into(),
            entry_snapshot_sha256: String::new(),
            entry_count: 10,
            winner_count: 2,
            excluded_entry_ids: vec![],
            drawn_at_ms: 9,
            redraw_of: Some("d-1".into()),
        };
        let m = draw_completed(&event(), &record);
        assert_eq!(m.id, "draw:d-2");
        let body = msg::AnalyticsEvent::decode(m.body.as_slice()).expect("decodes");
        let Some(msg::analytics_event::Fact::DrawCompleted(fact)) = body.fact else { panic!("draw fact") };
        assert_eq!((fact.redraw_of.as_str(), fact.winner_count, fact.entry_count), ("d-1", 2, 10));
        assert_eq!(fact.prize_cost, Some(Money { amount_krw: 9_000 }));
    }
}
