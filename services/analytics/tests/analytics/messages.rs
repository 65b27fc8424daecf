//! What the consumer does with each kind of message: broken ones are dead-lettered at once, a
//! redelivery racing the first delivery still counts once.

use std::time::{Duration, SystemTime};

use kem_kit::queue::{Queue, ReceivedMessage};

use crate::support::*;

#[tokio::test]
async fn broken_messages_are_dead_lettered_and_unknown_facts_acknowledged() {
    let h = Harness::new().await;
    let now = SystemClock.now_ms();
    let event = EventSpec::new("m", OWNER, None, &[INSTAGRAM], now - DAY_MS, now + DAY_MS);
    let (_, body) = event.entry("x", INSTAGRAM, now);

    let mut wrong_type = envelope("wrong-type", &body);
    wrong_type.properties.insert("type".into(), "kem.messaging.v1.DistributionJob".into());
    let mut garbage = envelope("garbage", &body);
    garbage.body = vec![0xff; 8];
    let mut nameless = body.clone();
    nameless.event_id = String::new();
    for message in [wrong_type, garbage, envelope("nameless", &nameless)] {
        h.queue.send(message).await.expect("send");
    }
    // A member of the oneof this build does not know: acknowledged, never dead-lettered.
    let mut unknown = envelope("unknown-fact", &kem_proto::kem::messaging::v1::AnalyticsEvent::default());
    unknown.body = {
        let mut bytes = prost::Message::encode_to_vec(&kem_proto::kem::messaging::v1::AnalyticsEvent {
            event_id: "m".into(),
            owner_id: OWNER.into(),
            occur_time: None,
            fact: None,
        });
        bytes.extend_from_slice(&[0xfa, 0x06, 0x00]); // field 111, an empty message
        bytes
    };
    h.queue.send(unknown).await.expect("send");
    h.settle().await;

    let mut dead = h.dead_letters().await;
    dead.sort();
    assert_eq!(dead, vec!["garbage", "nameless", "wrong-type"]);
    expect_code(h.analytics(OWNER, "m").await, tonic::Code::NotFound);
    h.cleanup().await;
}

#[tokio::test]
async fn concurrent_deliveries_of_one_message_count_once() {
    let h = Harness::new().await;
    let now = SystemClock.now_ms();
    let event = EventSpec::new("race", OWNER, Some(1_000), &[KAKAO], now - DAY_MS, now + DAY_MS);
    h.deliver(&event.lifecycle_to_published(now - 5_000)).await;

    // The same delivery handed to eight handlers at once (a lock lost mid-handling, a second
    // replica): the inbox lets exactly one apply it.
    let (id, body) = event.entry("once", KAKAO, now);
    let handler = h.api.aggregation_handler();
    let message = received(&id, &body);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (handler, message) = (handler.clone(), message.clone());
            tokio::spawn(async move { handler.process(message).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("no panic").expect("every delivery is acknowledged");
    }
    let a = h.analytics(OWNER, "race").await.expect("analytics");
    assert_eq!((a.total_participants, krw(&a.cost_per_entry)), (1, Some(1_000)));
    let inbox: i64 = kem_kit::store::query("SELECT COUNT(*) AS n FROM kem_inbox WHERE message_id = $1")
        .bind(id.as_str())
        .fetch_one(h.store())
        .await
        .expect("inbox")
        .get("n")
        .expect("n");
    assert_eq!(inbox, 1);
    h.cleanup().await;
}

#[tokio::test]
async fn many_entries_in_parallel_add_up() {
    let h = Harness::new().await;
    let now = SystemClock.now_ms();
    let event = EventSpec::new("busy", OWNER, Some(100_000), &[INSTAGRAM, KAKAO], now - DAY_MS, now + DAY_MS);
    let mut facts = event.lifecycle_to_published(now - 10_000);
    for i in 0..200 {
        let channel = if i % 4 == 0 { KAKAO } else { INSTAGRAM };
        facts.push(event.entry(&format!("b-{i}"), channel, now - 5_000 + i));
    }
    h.deliver(&facts).await;
    // Redeliver every other one through the real consumer.
    let again: Vec<_> = facts.iter().skip(4).step_by(2).cloned().collect();
    h.deliver(&again).await;
    let a = h.analytics(OWNER, "busy").await.expect("analytics");
    assert_eq!(a.total_participants, 200);
    let by_channel: Vec<(i32, i64)> = a.channel_stats.iter().map(|c| (c.channel, c.participants)).collect();
    assert_eq!(by_channel, vec![(INSTAGRAM, 150), (KAKAO, 50)]);
    assert_eq!(krw(&a.cost_per_entry), Some(500));
    h.cleanup().await;
}

fn received(id: &str, body: &kem_proto::kem::messaging::v1::AnalyticsEvent) -> ReceivedMessage {
    let out = envelope(id, body);
    ReceivedMessage {
        queue: out.queue,
        id: out.id,
        body: out.body,
        content_type: out.content_type,
        traceparent: None,
        properties: out.properties,
        delivery_count: 1,
        lock_token: "test".into(),
        locked_until: SystemTime::now() + Duration::from_secs(30),
        enqueued_at: SystemTime::now(),
    }
}

#[tokio::test]
async fn idempotency_records_are_forgotten_after_the_retention() {
    let h = Harness::new().await;
    let now = SystemClock.now_ms();
    let event = EventSpec::new("old", OWNER, None, &[KAKAO], now - DAY_MS, now + DAY_MS);
    h.deliver(&[event.entry("fresh", KAKAO, now)]).await;
    h.record(event.metrics("fresh-report", KAKAO, 1, 1, now)).await.expect("report");
    let long_ago = now - 30 * DAY_MS;
    for sql in [
        "INSERT INTO kem_inbox (consumer, message_id, processed_at) VALUES ('analytics', 'entry:ancient', $1)",
        "INSERT INTO analytics_metric_reports (report_id, event_id, channel, observed_at, recorded_at) \
         VALUES ('ancient-report', 'old', 6, $1, $1)",
        "INSERT INTO analytics_events (event_id, owner_id, deleted_at, data_at, created_at) \
         VALUES ('ancient-draft', 'o', $1, $1, $1)",
    ] {
        kem_kit::store::query(sql).bind(long_ago).execute(h.store()).await.expect("seed an old record");
    }
    h.api.core().maintain().await;
    let store = h.store();
    assert_eq!(count(store, "SELECT COUNT(*) AS n FROM kem_inbox WHERE message_id LIKE 'entry:%'").await, 1);
    assert_eq!(count(store, "SELECT COUNT(*) AS n FROM analytics_metric_reports").await, 1);
    assert_eq!(count(store, "SELECT COUNT(*) AS n FROM analytics_events WHERE deleted_at IS NOT NULL").await, 0);
    assert_eq!(count(store, "SELECT COUNT(*) AS n FROM analytics_events").await, 1, "live events stay");
    h.cleanup().await;
}
