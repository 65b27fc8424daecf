//! The scripted scenario of issue 10: events created and published (their facts out of order),
//! entries across channels and hours, delivery outcomes, channel metrics reports, a redraw, an
//! unknown fact, and redeliveries of a share of all that; then every figure is checked exactly.
//! [`run`] is shared by the PostgreSQL test here and the SQLite one.

use kem_proto::kem::common::v1::ProviderKind;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::messaging::v1 as msg;
use prost::Message;
use tonic::Code;

use crate::support::*;

const EXTERNAL: i32 = ProviderKind::External as i32;
const LOCAL: i32 = ProviderKind::Local as i32;

#[tokio::test]
async fn the_scripted_scenario_adds_up_exactly_on_postgres() {
    let h = Harness::new().await;
    run(&h).await;
    h.cleanup().await;
}

/// Runs the scenario on `h` and checks every number.
pub async fn run(h: &Harness) {
    let now = SystemClock.now_ms();
    let h0 = hour(now) - 3 * HOUR_MS;
    let e1 = EventSpec::new("e1", OWNER, Some(1_000_000), &[INSTAGRAM, KAKAO, GENIE], now - DAY_MS, now + 6 * DAY_MS);
    let e2 = EventSpec::new("e2", OWNER, None, &[NAVER], now - 2 * DAY_MS, now + DAY_MS);
    let e3 = EventSpec::new("e3", OTHER, Some(300_000), &[INSTAGRAM], now - DAY_MS, now + DAY_MS);
    let draft = EventSpec::new("e-draft", OWNER, Some(50_000), &[], now, now + DAY_MS);
    // E1 was planned with another title and budget; the PUBLISHED fact carries the final ones and
    // arrives first: the most advanced status wins whatever the order.
    let planned = EventSpec { title: "초안".into(), budget_krw: Some(800_000), ..e1.clone() };
    let t = h0 - HOUR_MS;
    let mut facts = vec![
        e1.state(EventStatus::ContentReady, EventStatus::Published, t + 3),
        planned.state(EventStatus::Recommended, EventStatus::ContentReady, t + 2),
        planned.state(EventStatus::Unspecified, EventStatus::Draft, t),
        planned.state(EventStatus::Draft, EventStatus::Recommended, t + 1),
        draft.state(EventStatus::Unspecified, EventStatus::Draft, t),
    ];
    facts.extend(e2.lifecycle_to_published(t));
    facts.extend(e3.lifecycle_to_published(t));

    // 30 entries for E1 over three hours and four sources, 5 for E2, 3 for E3.
    let minute = 60_000;
    let mut entries = Vec::new();
    for i in 0..5 {
        entries.push(e1.entry(&format!("e1-ig-a{i}"), INSTAGRAM, h0 + i + 1));
    }
    for i in 0..7 {
        entries.push(e1.entry(&format!("e1-ig-b{i}"), INSTAGRAM, h0 + HOUR_MS + i * minute));
    }
    for i in 0..4 {
        entries.push(e1.entry(&format!("e1-kk-a{i}"), KAKAO, h0 + 30 * minute + i));
    }
    for i in 0..6 {
        entries.push(e1.entry(&format!("e1-kk-b{i}"), KAKAO, h0 + 2 * HOUR_MS + i));
    }
    for i in 0..8 {
        entries.push(e1.entry(&format!("e1-direct-{i}"), UNKNOWN, h0 + HOUR_MS + 59 * minute + i));
    }
    for i in 0..5 {
        entries.push(e2.entry(&format!("e2-nv-{i}"), NAVER, h0 + 2 * HOUR_MS + 5 * minute + i));
    }
    for i in 0..3 {
        entries.push(e3.entry(&format!("e3-ig-{i}"), INSTAGRAM, h0 + i));
    }
    facts.extend(entries.iter().cloned());

    // Deliveries: Kakao failed, then published on a retry; 지니TV reported views and reach with
    // its outcome (from the local provider); E2 was redrawn (the redraw arrives first).
    let genie = Outcome { views: Some(500), reach: Some(300), provider: ProviderKind::Local, ..Outcome::published(1) };
    let outcomes = [
        e1.outcome(INSTAGRAM, 1, Outcome::published(1), h0 - 30 * minute),
        e1.outcome(KAKAO, 1, Outcome::failed(3, "kakao dealer answered 503"), h0 - 29 * minute),
        e1.outcome(KAKAO, 2, Outcome::published(2), h0 - 20 * minute),
        e1.outcome(GENIE, 1, genie, h0 - 10 * minute),
        e2.outcome(NAVER, 1, Outcome::published(1), h0 - 10 * minute),
    ];
    facts.extend(outcomes.iter().cloned());
    facts.push(e2.draw("d-2", "d-1", 3, now - 500));
    facts.push(e2.draw("d-1", "", 3, now - 1_000));
    h.deliver(&facts).await;

    // A fact of a kind this build does not know (a newer producer) is acknowledged, no effect.
    let mut unknown =
        msg::AnalyticsEvent { event_id: e1.id.clone(), owner_id: OWNER.into(), occur_time: Some(ts(now)), fact: None }
            .encode_to_vec();
    unknown.extend_from_slice(&[0xfa, 0x06, 0x02, 0x08, 0x01]); // field 111: a message
    let mut message = envelope("future:1", &msg::AnalyticsEvent::default());
    message.body = unknown;
    kem_kit::queue::Queue::send(&h.queue, message).await.expect("send");
    h.settle().await;

    // Channel metrics: cumulative snapshots, the latest observation wins, a report id counts once.
    let ig = |id: &str, views, reach, at| e1.metrics(id, INSTAGRAM, views, reach, at);
    assert_eq!(h.record(ig("ig-1", 1_000, 800, now - 30 * minute)).await.expect("ig-1"), (false, false));
    let latest = kem_proto::kem::analytics::v1::RecordChannelMetricsRequest {
        deliveries_published: 1,
        ..ig("ig-2", 1_500, 1_100, now - 20 * minute)
    };
    assert_eq!(h.record(latest.clone()).await.expect("ig-2"), (false, false));
    assert_eq!(h.record(ig("ig-0", 900, 700, now - 40 * minute)).await.expect("older"), (false, true), "stale");
    assert_eq!(h.record(latest).await.expect("again"), (true, false), "duplicate report id");
    let mut kakao = e1.metrics("kk-1", KAKAO, 200, 150, now - 15 * minute);
    kakao.deliveries_published = 1;
    kakao.deliveries_failed = 2;
    kakao.provider = Some(kem_proto::kem::common::v1::ProviderInfo { kind: LOCAL, ..Default::default() });
    assert_eq!(h.record(kakao).await.expect("kk-1"), (false, false));

    // Redeliveries: entries, a state fact, outcomes and a draw arrive a second time.
    let mut again: Vec<_> = entries.iter().step_by(4).cloned().collect();
    again.extend(outcomes.iter().cloned());
    again.push(e1.state(EventStatus::ContentReady, EventStatus::Published, t + 3));
    again.push(e2.draw("d-1", "", 3, now - 1_000));
    h.deliver(&again).await;
    assert!(h.dead_letters().await.is_empty(), "nothing was dead-lettered");

    // E1, exactly.
    let a = h.analytics(OWNER, "e1").await.expect("e1");
    assert_eq!((a.event_id.as_str(), a.total_participants, a.total_views, a.total_reach), ("e1", 30, 2_200, 1_550));
    assert_eq!(
        stats(&a.channel_stats),
        vec![
            (UNKNOWN, 8, 0, 0, 0, 0, 0),
            (GENIE, 0, 500, 300, 1, 0, LOCAL),
            (INSTAGRAM, 12, 1_500, 1_100, 1, 0, EXTERNAL),
            (KAKAO, 10, 200, 150, 1, 2, LOCAL),
        ]
    );
    let hourly: Vec<(i64, i32, i64)> = a.hourly.iter().map(|b| (ms(&b.hour), b.channel, b.participants)).collect();
    assert_eq!(
        hourly,
        vec![
            (h0, INSTAGRAM, 5),
            (h0, KAKAO, 4),
            (h0 + HOUR_MS, UNKNOWN, 8),
            (h0 + HOUR_MS, INSTAGRAM, 7),
            (h0 + 2 * HOUR_MS, KAKAO, 6),
        ]
    );
    assert_eq!(krw(&a.budget), Some(1_000_000), "the PUBLISHED snapshot, not the earlier plan");
    assert_eq!(krw(&a.cost_per_entry), Some(33_333));
    assert_eq!((krw(&a.value_per_participant), krw(&a.estimated_value)), (Some(50_000), Some(1_500_000)));
    assert_eq!(a.roi, Some(0.5));
    assert_eq!(ms(&a.update_time), now - 15 * minute, "the latest data included: the Kakao report");
    let cache = a.cache.expect("cache info");
    assert_eq!(cache.max_age.map(|d| d.seconds), Some(300));

    // E2: no budget, so cost 0 per entry and no ROI.
    let b = h.analytics(OWNER, "e2").await.expect("e2");
    assert_eq!(stats(&b.channel_stats), vec![(NAVER, 5, 0, 0, 1, 0, EXTERNAL)]);
    assert_eq!((krw(&b.budget), krw(&b.cost_per_entry), b.roi), (Some(0), Some(0), None));
    assert_eq!(krw(&b.estimated_value), Some(250_000));
    assert_eq!(ms(&b.update_time), now - 500);

    // The draft: known, with no entries: no cost per entry, all of the budget lost.
    let d = h.analytics(OWNER, "e-draft").await.expect("draft");
    assert_eq!(
        (d.total_participants, krw(&d.budget), krw(&d.cost_per_entry), d.roi),
        (0, Some(50_000), None, Some(-1.0))
    );

    // Owner A's dashboard: E1 and E2 (the draft was never published), newest period first.
    let dash = h.dashboard(OWNER).await.expect("dashboard");
    assert_eq!((dash.owner_id.as_str(), dash.total_events, dash.active_events_count), (OWNER, 2, 2));
    assert_eq!((dash.total_participants, dash.total_views, dash.total_reach), (35, 2_200, 1_550));
    assert_eq!((krw(&dash.total_budget), krw(&dash.average_cost_per_entry)), (Some(1_000_000), Some(28_571)));
    assert_eq!(dash.roi, Some(0.75));
    assert_eq!(
        stats(&dash.channel_stats),
        vec![
            (UNKNOWN, 8, 0, 0, 0, 0, 0),
            (GENIE, 0, 500, 300, 1, 0, LOCAL),
            (INSTAGRAM, 12, 1_500, 1_100, 1, 0, EXTERNAL),
            (NAVER, 5, 0, 0, 1, 0, EXTERNAL),
            (KAKAO, 10, 200, 150, 1, 2, LOCAL),
        ]
    );
    let summaries: Vec<_> = dash
        .events
        .iter()
        .map(|e| {
            (e.event_id.as_str(), e.active, e.participants, e.reach, krw(&e.budget), krw(&e.cost_per_entry), e.roi)
        })
        .collect();
    assert_eq!(
        summaries,
        vec![
            ("e1", true, 30, 1_550, Some(1_000_000), Some(33_333), Some(0.5)),
            ("e2", true, 5, 0, Some(0), Some(0), None),
        ]
    );
    assert_eq!(dash.events[0].title, "e1 이벤트");
    assert_eq!(dash.events[0].period.as_ref().map(|p| ms(&p.start_time)), Some(now - DAY_MS));
    assert_eq!(ms(&dash.update_time), now - 500);

    // Owner B sees only E3, and nothing of owner A's.
    let other = h.dashboard(OTHER).await.expect("other dashboard");
    assert_eq!(
        (other.total_events, other.total_participants, krw(&other.average_cost_per_entry)),
        (1, 3, Some(100_000))
    );
    assert_eq!(other.roi, Some(-0.5));
    assert_eq!(stats(&other.channel_stats), vec![(INSTAGRAM, 3, 0, 0, 0, 0, 0)]);
    let hidden = expect_code(h.analytics(OTHER, "e1").await, Code::NotFound);
    assert_eq!(reason(&hidden), "EVENT_NOT_FOUND");
    expect_code(h.analytics(OWNER, "e3").await, Code::NotFound);
    expect_code(h.analytics(OWNER, "nope").await, Code::NotFound);

    // The redraw is the draw kept, whichever arrived first.
    let row =
        kem_kit::store::query("SELECT draw_id, winner_count, prize_cost_krw FROM analytics_draws WHERE event_id = $1")
            .bind("e2")
            .fetch_one(h.store())
            .await
            .expect("draw row");
    let kept: (String, i64, Option<i64>) = (
        row.get("draw_id").expect("draw_id"),
        row.get("winner_count").expect("winner_count"),
        row.get("prize_cost_krw").expect("prize_cost_krw"),
    );
    assert_eq!(kept, ("d-2".to_owned(), 3, Some(15_000)));
}
