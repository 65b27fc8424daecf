//! The scheduler: a published event ends itself at the end of its period (through the EndEvent
//! use case: participation closes the entries first), and an auto-draw event is drawn once,
//! AUTO_DRAW_DELAY after it ended — once even with two scheduler replicas on one database, again
//! at a later tick while participation is unreachable. Time is a `ManualClock` the tests move.

use std::time::Duration;

use kem_kit::clock::ManualClock;
use kem_kit::store;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1 as proto;
use kem_testkit::eventually;
use tonic::Status;

use crate::support::*;

const AUTO_DRAW_DELAY: Duration = Duration::from_secs(600);

/// An event running from now for `length`.
fn short_event(clock: &ManualClock, title: &str, length: Duration, auto_draw: bool) -> proto::Event {
    let now = clock.now_ms();
    let end = now + i64::try_from(length.as_millis()).expect("short");
    proto::Event {
        period: Some(common::Period { start_time: Some(ts(now)), end_time: Some(ts(end)) }),
        auto_draw,
        ..sample_event(title)
    }
}

async fn published_short(h: &Harness, clock: &ManualClock, title: &str, auto_draw: bool) -> proto::Event {
    let ready = h.content_ready_from(OWNER, short_event(clock, title, Duration::from_secs(2), auto_draw)).await;
    h.publish(OWNER, &ready.event_id, &[common::Channel::Instagram]).await.expect("publish")
}

async fn wait_for_status(h: &Harness, event_id: &str, status: proto::EventStatus) -> proto::Event {
    eventually(&format!("event {event_id} is {status:?}"), Duration::from_secs(20), || async {
        h.get(OWNER, event_id).await.expect("get").status == status as i32
    })
    .await;
    h.get(OWNER, event_id).await.expect("get")
}

/// How the scheduler settled the event's auto draw (`None`: not yet).
async fn outcome(h: &Harness, event_id: &str) -> Option<String> {
    store::query("SELECT auto_draw_outcome FROM events WHERE id = $1")
        .bind(event_id)
        .fetch_one(h.store().primary())
        .await
        .expect("read the event row")
        .get::<Option<String>>("auto_draw_outcome")
        .expect("auto_draw_outcome")
}

async fn wait_for_outcome(h: &Harness, event_id: &str) -> String {
    eventually(&format!("the auto draw of {event_id} is settled"), Duration::from_secs(20), || async {
        outcome(h, event_id).await.is_some()
    })
    .await;
    outcome(h, event_id).await.unwrap_or_default()
}

/// Proving that something does *not* happen needs the schedulers to have had their chance: this
/// waits real time for several of their ticks (they tick on tokio's clock, which the test does not
/// control, every `SCHEDULER_INTERVAL`).
async fn several_ticks() {
    tokio::time::sleep(SCHEDULER_INTERVAL * 6).await;
}

fn draws_of(h: &Harness, event_id: &str) -> usize {
    h.participation.scheduled_draws().iter().filter(|id| *id == event_id).count()
}

#[tokio::test]
async fn an_event_with_a_two_second_period_ends_itself() {
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(test_config(), clock.clone()).await;
    let event = published_short(&h, &clock, "2초 이벤트", false).await;
    assert_eq!(event.status, proto::EventStatus::Published as i32);
    let id = event.event_id.as_str();

    // Just before the end nothing happens: a second event that ends earlier is ended by a tick
    // that saw the same time and left this one alone.
    let earlier = {
        let ready = h.content_ready_from(OWNER, short_event(&clock, "1초 이벤트", Duration::from_secs(1), false)).await;
        h.publish(OWNER, &ready.event_id, &[common::Channel::Instagram]).await.expect("publish")
    };
    clock.advance(Duration::from_millis(1_999));
    wait_for_status(&h, &earlier.event_id, proto::EventStatus::Ended).await;
    assert_eq!(h.get(OWNER, id).await.expect("get").status, proto::EventStatus::Published as i32);
    assert!(h.participation.closes().iter().all(|c| c.event_id != id), "entries still open");

    // At the end it ends itself, exactly like EndEvent: entries closed first, then ENDED.
    clock.advance(Duration::from_millis(1));
    let ended = wait_for_status(&h, id, proto::EventStatus::Ended).await;
    assert!(ts_ms(&ended.end_time) >= ts_ms(&event.period.as_ref().and_then(|p| p.end_time)));
    let closes: Vec<Close> = h.participation.closes().into_iter().filter(|c| c.event_id == id).collect();
    assert_eq!(closes.len(), 1, "{closes:?}");
    assert_eq!(closes[0].stored_status, "PUBLISHED", "entries close before ENDED is committed");
    assert_eq!(closes[0].close_time_ms, ts_ms(&ended.end_time));
    let facts: Vec<String> = h.analytics(id).await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(facts.last().map(String::as_str), Some(format!("evt:{id}:ended").as_str()), "{facts:?}");
    let public = h.public(id).await.expect("public");
    assert_eq!(public.state, proto::PublicEventState::Closed as i32);

    // Without auto_draw, nothing is drawn, however long after.
    clock.advance(AUTO_DRAW_DELAY * 2);
    several_ticks().await;
    assert!(h.participation.scheduled_draws().is_empty());
    assert_eq!(outcome(&h, id).await, None);
    h.cleanup().await;
}

#[tokio::test]
async fn auto_draw_asks_participation_once_even_with_two_schedulers() {
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(test_config(), clock.clone()).await;
    // A second replica on the same database and clock: a second scheduler.
    let _replica = h.replica().await;
    let event = published_short(&h, &clock, "자동 추첨", true).await;
    let id = event.event_id.as_str();

    clock.advance(Duration::from_secs(2));
    wait_for_status(&h, id, proto::EventStatus::Ended).await;
    several_ticks().await;
    let closes = h.participation.closes().into_iter().filter(|c| c.event_id == id).count();
    assert_eq!(closes, 1, "one replica ended it");

    // Not before AUTO_DRAW_DELAY has passed since the end.
    clock.advance(AUTO_DRAW_DELAY - Duration::from_secs(1));
    several_ticks().await;
    assert_eq!(draws_of(&h, id), 0);

    clock.advance(Duration::from_secs(1));
    assert_eq!(wait_for_outcome(&h, id).await, "DRAWN");
    several_ticks().await;
    assert_eq!(draws_of(&h, id), 1, "DrawWinnersOnSchedule exactly once: {:?}", h.participation.scheduled_draws());
    assert!(h.participation.draw_time(id).is_some());
    eventually("the public view shows the draw", Duration::from_secs(15), || async {
        h.public(id).await.expect("public").state == proto::PublicEventState::Drawn as i32
    })
    .await;
    h.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_participation_is_retried_at_later_ticks() {
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(test_config(), clock.clone()).await;
    let event = published_short(&h, &clock, "재시도", true).await;
    let id = event.event_id.as_str();

    // Ending: CloseEntries fails for two ticks' worth of calls (the mesh tries each one three
    // times); the event stays PUBLISHED until a close is confirmed.
    h.participation.fail_with(vec![Status::unavailable("participation database down"); 6]);
    clock.advance(Duration::from_secs(2));
    let ended = wait_for_status(&h, id, proto::EventStatus::Ended).await;
    assert_eq!(h.participation.close_failures_left(), 0, "retried until it went through");
    let closes: Vec<Close> = h.participation.closes().into_iter().filter(|c| c.event_id == id).collect();
    assert_eq!(closes.len(), 1);
    assert_eq!((closes[0].stored_status.as_str(), closes[0].close_time_ms), ("PUBLISHED", ts_ms(&ended.end_time)));

    // Drawing: unavailable for two ticks' worth of calls, then drawn, and settled once.
    h.participation.fail_draws_with(vec![Status::unavailable("participation database down"); 6]);
    clock.advance(AUTO_DRAW_DELAY);
    assert_eq!(wait_for_outcome(&h, id).await, "DRAWN");
    assert_eq!(h.participation.draw_failures_left(), 0);
    several_ticks().await;
    assert_eq!(draws_of(&h, id), 7, "six unavailable answers, then the draw, then nothing");
    h.cleanup().await;
}

#[tokio::test]
async fn empty_and_refused_draws_are_settled_and_not_retried() {
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(test_config(), clock.clone()).await;

    // Nobody entered: settled as NO_ENTRIES after one call.
    let empty = published_short(&h, &clock, "응모 없음", true).await;
    h.participation.without_entries(&empty.event_id);
    clock.advance(Duration::from_secs(2));
    wait_for_status(&h, &empty.event_id, proto::EventStatus::Ended).await;
    clock.advance(AUTO_DRAW_DELAY);
    assert_eq!(wait_for_outcome(&h, &empty.event_id).await, "NO_ENTRIES");
    let public = h.public(&empty.event_id).await.expect("public");
    assert_eq!(public.state, proto::PublicEventState::Closed as i32, "nothing drawn");

    // participation refuses (a defect, not unavailability): settled as FAILED, not retried; the
    // owner can still draw by hand.
    let refused = published_short(&h, &clock, "거부", true).await;
    clock.advance(Duration::from_secs(2));
    wait_for_status(&h, &refused.event_id, proto::EventStatus::Ended).await;
    h.participation.fail_draws_with(vec![Status::permission_denied("not this workload")]);
    clock.advance(AUTO_DRAW_DELAY);
    assert_eq!(wait_for_outcome(&h, &refused.event_id).await, "FAILED");

    several_ticks().await;
    assert_eq!((draws_of(&h, &empty.event_id), draws_of(&h, &refused.event_id)), (1, 1), "each attempted once");
    h.cleanup().await;
}

#[tokio::test]
async fn the_scheduler_runs_on_embedded_sqlite_with_two_replicas() {
    let clock = ManualClock::starting_now();
    let h = Harness::sqlite_with_clock(test_config(), Some(clock.clone())).await;
    let _replica = h.replica().await;
    let event = published_short(&h, &clock, "SQLite 자동 추첨", true).await;
    let id = event.event_id.as_str();
    clock.advance(Duration::from_secs(2));
    wait_for_status(&h, id, proto::EventStatus::Ended).await;
    clock.advance(AUTO_DRAW_DELAY);
    assert_eq!(wait_for_outcome(&h, id).await, "DRAWN");
    several_ticks().await;
    assert_eq!(h.participation.closes().iter().filter(|c| c.event_id == id).count(), 1);
    assert_eq!(draws_of(&h, id), 1);
    assert_eq!(h.public(id).await.expect("public").state, proto::PublicEventState::Drawn as i32);
    h.cleanup().await;
}
