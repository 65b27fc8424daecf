//! The `analytics-aggregation` consumer: messages (`kem.messaging.v1.AnalyticsEvent`) in, facts
//! handed to the use cases, and a verdict for the consumer runner.
//!
//! | message | verdict |
//! |---|---|
//! | applied, or a redelivery the inbox recognises | completed |
//! | a fact this build does not know (a newer producer), or one it cannot attribute | completed and logged: never dead-lettered |
//! | another `type`, another content type, undecodable body, no `event_id`, a state change to UNSPECIFIED, an outcome for channel UNSPECIFIED, a draw without id | dead-lettered (a producer bug, kept for inspection) |
//! | the database failed | abandoned and retried with backoff |

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use kem_kit::clock::ms_from_timestamp;
use kem_kit::outbox::{Consumer, ConsumerOptions, Handler, HandlerError};
use kem_kit::queue::{ReceivedMessage, names};
use kem_kit::runtime::ServiceContext;
use kem_kit::store::millis;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::messaging::v1 as msg;
use kem_proto::kem::messaging::v1::analytics_event::Fact as Member;
use prost::Message;

use crate::app::AnalyticsCore;
use crate::domain::fact::{entry_channel, is_real_channel, provider_kind};
use crate::domain::{Delivery, Draw, Entry, EventFact, Fact, Outcome, Period, StateSnapshot};

/// The `type` application property of the queue's messages.
pub const MESSAGE_TYPE: &str = "kem.messaging.v1.AnalyticsEvent";
/// The content type of the queue's messages.
pub const CONTENT_TYPE: &str = "application/protobuf";
/// The application property naming the body's message type.
pub const TYPE_PROPERTY: &str = "type";

/// What a message turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A fact to aggregate.
    Fact(EventFact),
    /// A well-formed message analytics has nothing to do with (the reason is logged).
    Ignored(String),
}

/// Runs each `analytics-aggregation` message through the use cases.
#[derive(Debug, Clone)]
pub struct AggregationHandler {
    core: Arc<AnalyticsCore>,
}

impl AggregationHandler {
    /// Over `core`.
    pub fn new(core: Arc<AnalyticsCore>) -> AggregationHandler {
        AggregationHandler { core }
    }

    /// Handles one delivery; the result tells the runner to complete, dead-letter or retry it.
    pub async fn process(&self, message: ReceivedMessage) -> Result<(), HandlerError> {
        let fact = match decode(&message) {
            Ok(Decoded::Fact(fact)) => fact,
            Ok(Decoded::Ignored(reason)) => {
                tracing::info!(message_id = %message.id, %reason, "analytics message acknowledged without effect");
                return Ok(());
            }
            Err(reason) => return Err(HandlerError::Reject(reason)),
        };
        match self.core.ingest(fact).await {
            Ok(_) => Ok(()),
            Err(error) => Err(HandlerError::Retry(error.to_string())),
        }
    }
}

impl Handler for AggregationHandler {
    fn handle(&self, message: ReceivedMessage) -> Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send>> {
        let this = self.clone();
        Box::pin(async move { this.process(message).await })
    }
}

/// Consumes `analytics-aggregation` with `concurrency` handlers until `ctx.shutdown`.
pub fn spawn(ctx: &ServiceContext, core: Arc<AnalyticsCore>, concurrency: usize) {
    let mut options = ConsumerOptions::new(names::ANALYTICS_AGGREGATION);
    options.name = ctx.service.clone();
    options.concurrency = concurrency;
    let handler = AggregationHandler::new(core);
    ctx.shutdown.spawn(Consumer::run(ctx.queue.clone(), handler, options, ctx.shutdown.clone()));
}

/// Decodes a delivery into a fact; `Err` says why the message can never be processed.
pub fn decode(message: &ReceivedMessage) -> Result<Decoded, String> {
    if let Some(kind) = message.properties.get(TYPE_PROPERTY).filter(|k| k.as_str() != MESSAGE_TYPE) {
        return Err(format!(
            "message type {kind:?} does not belong on analytics-aggregation (expected {MESSAGE_TYPE})"
        ));
    }
    let media = message.content_type.split(';').next().unwrap_or("").trim();
    if !media.is_empty() && !media.eq_ignore_ascii_case(CONTENT_TYPE) {
        return Err(format!("content type {:?} is not {CONTENT_TYPE}", message.content_type));
    }
    let body = msg::AnalyticsEvent::decode(message.body.as_slice())
        .map_err(|e| format!("the body is not a {MESSAGE_TYPE}: {e}"))?;
    if body.event_id.trim().is_empty() {
        return Err("the fact names no event (event_id is empty)".to_owned());
    }
    let Some(member) = body.fact else {
        return Ok(Decoded::Ignored(
            "a fact this version of analytics does not know (none of the members it reads is set)".to_owned(),
        ));
    };
    let fact = match member {
        Member::StateChanged(change) => match state(change)? {
            Some(snapshot) => Fact::StateChanged(snapshot),
            None => return Ok(Decoded::Ignored("a state change to a status this version does not know".to_owned())),
        },
        Member::Deleted(_) => Fact::Deleted,
        Member::EntryRecorded(entry) => {
            Fact::EntryRecorded(Entry { entry_id: entry.entry_id, channel: entry_channel(entry.source_channel) })
        }
        Member::ChannelOutcome(outcome) => match channel_outcome(outcome)? {
            Some(outcome) => Fact::ChannelOutcome(outcome),
            None => {
                return Ok(Decoded::Ignored("a channel outcome for a channel this version does not know".to_owned()));
            }
        },
        Member::DrawCompleted(draw) => Fact::DrawCompleted(draw_completed(draw)?),
    };
    let occur_ms = body.occur_time.map_or_else(|| millis(message.enqueued_at), |t| ms_from_timestamp(&t));
    Ok(Decoded::Fact(EventFact {
        message_id: message.id.clone(),
        event_id: body.event_id,
        owner_id: body.owner_id.trim().to_owned(),
        occur_ms,
        fact,
    }))
}

fn state(change: msg::EventStateChanged) -> Result<Option<StateSnapshot>, String> {
    match EventStatus::try_from(change.to_status) {
        Ok(EventStatus::Unspecified) => return Err("a state change to EVENT_STATUS_UNSPECIFIED".to_owned()),
        Ok(_) => {}
        Err(_) => return Ok(None),
    }
    let mut channels: Vec<i32> = change.channels.into_iter().filter(|c| is_real_channel(*c)).collect();
    channels.sort_unstable();
    channels.dedup();
    let period = change.period.and_then(|p| {
        let (start, end) = (p.start_time?, p.end_time?);
        Some(Period { start_ms: ms_from_timestamp(&start), end_ms: ms_from_timestamp(&end) })
    });
    Ok(Some(StateSnapshot {
        status: change.to_status,
        title: change.title,
        budget_krw: change.budget.map_or(0, |m| m.amount_krw.max(0)),
        channels,
        period,
        objective: change.objective,
    }))
}

fn channel_outcome(outcome: msg::ChannelOutcome) -> Result<Option<Outcome>, String> {
    if outcome.channel == 0 {
        return Err("a channel outcome for CHANNEL_UNSPECIFIED".to_owned());
    }
    if !is_real_channel(outcome.channel) {
        return Ok(None);
    }
    let delivery = match msg::DeliveryResult::try_from(outcome.result) {
        Ok(msg::DeliveryResult::Published) => Delivery::Published,
        Ok(msg::DeliveryResult::Failed) => Delivery::Failed,
        _ => Delivery::ReportOnly,
    };
    Ok(Some(Outcome {
        channel: outcome.channel,
        delivery,
        attempts: i64::from(outcome.attempts.max(0)),
        failure_reason: outcome.failure_reason,
        failure_code: outcome.failure_code,
        source_kind: outcome.provider.map_or(0, |p| provider_kind(p.kind)),
        views: outcome.views.filter(|v| *v >= 0),
        reach: outcome.reach.filter(|r| *r >= 0),
    }))
}

fn draw_completed(draw: msg::DrawCompleted) -> Result<Draw, String> {
    if draw.draw_id.trim().is_empty() {
        return Err("a draw without a draw_id".to_owned());
    }
    Ok(Draw {
        draw_id: draw.draw_id,
        redraw_of: draw.redraw_of,
        algorithm: draw.algorithm,
        entry_count: draw.entry_count.max(0),
        winner_count: i64::from(draw.winner_count.max(0)),
        prize_cost_krw: draw.prize_cost.map(|m| m.amount_krw.max(0)),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, UNIX_EPOCH};

    use kem_proto::kem::common::v1 as common;

    use super::*;

    fn message(body: &msg::AnalyticsEvent) -> ReceivedMessage {
        ReceivedMessage {
            queue: "analytics-aggregation".into(),
            id: "m-1".into(),
            body: body.encode_to_vec(),
            content_type: CONTENT_TYPE.into(),
            traceparent: None,
            properties: BTreeMap::from([(TYPE_PROPERTY.to_owned(), MESSAGE_TYPE.to_owned())]),
            delivery_count: 1,
            lock_token: "t".into(),
            locked_until: UNIX_EPOCH,
            enqueued_at: UNIX_EPOCH + Duration::from_millis(7_000),
        }
    }

    fn event(fact: Option<Member>) -> msg::AnalyticsEvent {
        msg::AnalyticsEvent {
            event_id: "e-1".into(),
            owner_id: " o-1 ".into(),
            occur_time: Some(prost_types::Timestamp { seconds: 5, nanos: 250_000_000 }),
            fact,
        }
    }

    fn decoded(body: &msg::AnalyticsEvent) -> EventFact {
        match decode(&message(body)) {
            Ok(Decoded::Fact(fact)) => fact,
            other => panic!("expected a fact, got {other:?}"),
        }
    }

    #[test]
    fn a_state_change_keeps_what_the_dashboard_needs() {
        let change = msg::EventStateChanged {
            from_status: EventStatus::ContentReady as i32,
            to_status: EventStatus::Published as i32,
            budget: Some(common::Money { amount_krw: 500_000 }),
            channels: vec![6, 4, 4, 0, 99],
            period: Some(common::Period {
                start_time: Some(prost_types::Timestamp { seconds: 10, nanos: 0 }),
                end_time: Some(prost_types::Timestamp { seconds: 20, nanos: 0 }),
            }),
            objective: common::EventObjective::Sales as i32,
            title: "가을 이벤트".into(),
        };
        let fact = decoded(&event(Some(Member::StateChanged(change))));
        assert_eq!((fact.event_id.as_str(), fact.owner_id.as_str(), fact.occur_ms), ("e-1", "o-1", 5_250));
        let Fact::StateChanged(s) = fact.fact else { panic!("a state change") };
        assert_eq!(s.channels, vec![4, 6], "unique, sorted, only real channels");
        assert_eq!((s.budget_krw, s.period), (500_000, Some(Period { start_ms: 10_000, end_ms: 20_000 })));
        assert!(s.published());
    }

    #[test]
    fn entries_and_outcomes_are_normalised() {
        let entry = msg::EntryRecorded { entry_id: "x".into(), source_channel: 42, marketing_consent: true };
        let mut body = event(Some(Member::EntryRecorded(entry)));
        body.occur_time = None;
        let fact = decoded(&body);
        assert_eq!(fact.occur_ms, 7_000, "the enqueue time stands in for a missing occur time");
        assert_eq!(fact.fact, Fact::EntryRecorded(Entry { entry_id: "x".into(), channel: 0 }));

        let outcome = msg::ChannelOutcome {
            channel: common::Channel::Instagram as i32,
            result: msg::DeliveryResult::Failed as i32,
            attempts: 3,
            failure_reason: "token expired".into(),
            reach: Some(-5),
            views: Some(10),
            cost: None,
            provider: Some(common::ProviderInfo {
                kind: common::ProviderKind::Local as i32,
                name: "local".into(),
                ..Default::default()
            }),
            failure_code: "PROVIDER_UNAVAILABLE".into(),
        };
        let Fact::ChannelOutcome(o) = decoded(&event(Some(Member::ChannelOutcome(outcome)))).fact else {
            panic!("an outcome")
        };
        assert_eq!((o.delivery, o.attempts, o.views, o.reach), (Delivery::Failed, 3, Some(10), None));
        assert_eq!(
            (o.source_kind, o.failure_code.as_str()),
            (common::ProviderKind::Local as i32, "PROVIDER_UNAVAILABLE")
        );

        let draw = msg::DrawCompleted {
            draw_id: "d-2".into(),
            redraw_of: "d-1".into(),
            algorithm: "chacha20-fisher-yates".into(),
            entry_count: 30,
            winner_count: 3,
            prize_cost: Some(common::Money { amount_krw: 15_000 }),
        };
        let Fact::DrawCompleted(d) = decoded(&event(Some(Member::DrawCompleted(draw)))).fact else { panic!("a draw") };
        assert_eq!((d.winner_count, d.prize_cost_krw, d.redraw_of.as_str()), (3, Some(15_000), "d-1"));
    }

    #[test]
    fn unknown_facts_are_ignored_and_broken_messages_rejected() {
        // A member added by a newer producer decodes as "no member this build knows".
        let mut bytes = event(None).encode_to_vec();
        bytes.extend_from_slice(&[0xa2, 0x06, 0x02, 0x08, 0x01]); // field 100, a nested message
        let mut unknown = message(&event(None));
        unknown.body = bytes;
        assert!(matches!(decode(&unknown), Ok(Decoded::Ignored(_))));
        let future_status = msg::EventStateChanged { to_status: 9, ..Default::default() };
        assert!(matches!(decode(&message(&event(Some(Member::StateChanged(future_status))))), Ok(Decoded::Ignored(_))));

        let mut wrong_type = message(&event(Some(Member::Deleted(msg::EventDeleted {}))));
        wrong_type.properties.insert(TYPE_PROPERTY.into(), "kem.messaging.v1.DistributionJob".into());
        assert!(decode(&wrong_type).is_err());
        let mut json = message(&event(Some(Member::Deleted(msg::EventDeleted {}))));
        json.content_type = "application/json".into();
        assert!(decode(&json).is_err());
        let mut garbage = message(&event(None));
        garbage.body = vec![0xff, 0xff, 0xff];
        assert!(decode(&garbage).is_err());
        let mut anonymous = event(Some(Member::Deleted(msg::EventDeleted {})));
        anonymous.event_id = String::new();
        assert!(decode(&message(&anonymous)).is_err());
        let unspecified = msg::ChannelOutcome { channel: 0, ..Default::default() };
        assert!(decode(&message(&event(Some(Member::ChannelOutcome(unspecified))))).is_err());
        let nameless_draw = msg::DrawCompleted::default();
        assert!(decode(&message(&event(Some(Member::DrawCompleted(nameless_draw))))).is_err());
        let draft_to_nothing = msg::EventStateChanged::default();
        assert!(decode(&message(&event(Some(Member::StateChanged(draft_to_nothing))))).is_err());
    }
}
