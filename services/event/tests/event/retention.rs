//! The retention job of the scheduler: an ENDED event's participants' data is anonymized through
//! participation's AnonymizeEntries once `retention_days` have passed since its draw (or its end
//! when nothing was drawn), then `anonymize_time` is recorded so it is done once — once even with
//! two scheduler replicas, again at later ticks while participation is unreachable. Time is a
//! `ManualClock` the tests move.

use std::time::Duration;

use kem_kit::clock::ManualClock;
use kem_proto::kem::event::v1 as proto;
use kem_testkit::eventually;
use tonic::Status;

use crate::support::*;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A published event with `retention_days`, ended by its owner now.
async fn ended(h: &Harness, title: &str, retention_days: i32) -> proto::Event {
    let event = proto::Event { retention_days, claim_days: 1, ..sample_event(title) };
    let ready = h.content_ready_from(OWNER, event).await;
    h.publish(OWNER, &ready.event_id, &[kem_proto::kem::common::v1::Channel::Instagram]).await.expect("publish");
    let ended = h.end(OWNER, &ready.event_id).await.expect("end");
    assert_eq!(ended.status, proto::EventStatus::Ended as i32);
    ended
}

fn anonymizations_of(h: &Harness, event_id: &str) -> usize {
    h.participation.anonymizations().iter().filter(|id| *id == event_id).count()
}

/// Waits until GetEvent shows the event anonymized, and returns when.
async fn wait_for_anonymized(h: &Harness, event_id: &str) -> i64 {
    eventually(&format!("event {event_id} is anonymized"), Duration::from_secs(20), || async {
        h.get(OWNER, event_id).await.expect("get").anonymize_time.is_some()
    })
    .await;
    ts_ms(&h.get(OWNER, event_id).await.expect("get").anonymize_time)
}

/// Proving that something does *not* happen needs the schedulers to have had their chance: this
/// waits real time for several of their ticks (they tick on tokio's clock, which the test does not
/// control, every `SCHEDULER_INTERVAL`).
async fn several_ticks() {
    tokio::time::sleep(SCHEDULER_INTERVAL * 6).await;
}

#[tokio::test]
async fn entries_are_anonymized_once_the_retention_after_the_end_has_passed_and_not_before() {
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(test_config(), clock.clone()).await;
    let event = ended(&h, "보관 1일", 1).await;
    let id = event.event_id.as_str();

    // A millisecond short of a day after the end: nothing is erased.
    clock.advance(DAY - Duration::from_millis(1));
    several_ticks().await;
    assert_eq!(anonymizations_of(&h, id), 0);
    assert_eq!(h.get(OWNER, id).await.expect("get").anonymize_time, None);

    // At the day: AnonymizeEntries once, and the time recorded on the event.
    clock.advance(Duration::from_millis(1));
    let at = wait_for_anonymized(&h, id).await;
    assert_eq!(at, clock.now_ms(), "recorded at the scheduler's time");
    assert_eq!(at, ts_ms(&event.end_time) + DAY_MS);
    several_ticks().await;
    clock.advance(DAY * 30);
    several_ticks().await;
    assert_eq!(anonymizations_of(&h, id), 1, "done once: {:?}", h.participation.anonymizations());
    let public = h.public(id).await.expect("public view still answers");
    assert_eq!(public.event_id, id);
    h.cleanup().await;
}

#[tokio::test]
async fn the_retention_runs_from_the_draw_when_there_was_one() {
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(test_config(), clock.clone()).await;
    let event = ended(&h, "추첨 후 보관", 2).await;
    let id = event.event_id.as_str();
    let end = ts_ms(&event.end_time);
    // The owner drew three days after the end.
    h.participation.record_draw_at(id, end + 3 * DAY_MS);

    // Two days after the end the retention from the end is over, but the draw's is not.
    clock.advance(DAY * 2);
    several_ticks().await;
    assert_eq!(anonymizations_of(&h, id), 0, "the draw time wins over the end time");
    clock.advance(DAY * 3 - Duration::from_millis(1));
    several_ticks().await;
    assert_eq!(anonymizations_of(&h, id), 0, "a millisecond before draw + 2 days");
    assert!(h.participation.count_calls() >= 1, "the draw time was asked for");

    clock.advance(Duration::from_millis(1));
    let at = wait_for_anonymized(&h, id).await;
    assert_eq!(at, end + 3 * DAY_MS + 2 * DAY_MS);
    assert_eq!(anonymizations_of(&h, id), 1);
    h.cleanup().await;
}

#[tokio::test]
async fn two_schedulers_anonymize_once() {
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(test_config(), clock.clone()).await;
    // A second replica on the same database and clock: a second scheduler.
    let _replica = h.replica().await;
    let events = [ended(&h, "복제 1", 1).await, ended(&h, "복제 2", 1).await, ended(&h, "복제 3", 1).await];

    clock.advance(DAY);
    for event in &events {
        wait_for_anonymized(&h, &event.event_id).await;
    }
    several_ticks().await;
    for event in &events {
        assert_eq!(
            anonymizations_of(&h, &event.event_id),
            1,
            "AnonymizeEntries exactly once: {:?}",
            h.participation.anonymizations()
        );
    }
    h.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_participation_is_retried_until_the_data_is_gone() {
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(test_config(), clock.clone()).await;
    let event = ended(&h, "재시도 익명화", 1).await;
    let id = event.event_id.as_str();

    // Unavailable for two ticks' worth of calls (the mesh tries each call three times), then a
    // refusal (a deployment problem is retried too: the data must go), then it works.
    let mut failures = vec![Status::unavailable("participation database down"); 6];
    failures.push(Status::permission_denied("not yet allowed"));
    h.participation.fail_anonymize_with(failures);
    clock.advance(DAY);
    wait_for_anonymized(&h, id).await;
    assert_eq!(h.participation.anonymize_failures_left(), 0, "retried until it went through");
    several_ticks().await;
    assert_eq!(anonymizations_of(&h, id), 8, "six unavailable answers, one refusal, then once");

    // CountEntries unreachable: nothing is decided without the draw time.
    let other = ended(&h, "추첨 시간 모름", 1).await;
    h.participation.counts_unavailable(true);
    clock.advance(DAY);
    several_ticks().await;
    assert_eq!(anonymizations_of(&h, &other.event_id), 0, "the draw may have moved the retention");
    h.participation.counts_unavailable(false);
    wait_for_anonymized(&h, &other.event_id).await;
    assert_eq!(anonymizations_of(&h, &other.event_id), 1);
    h.cleanup().await;
}

#[tokio::test]
async fn the_retention_job_runs_on_embedded_sqlite_with_two_replicas() {
    let clock = ManualClock::starting_now();
    let h = Harness::sqlite_with_clock(test_config(), Some(clock.clone())).await;
    let _replica = h.replica().await;
    let event = ended(&h, "SQLite 보관", 365).await;
    let id = event.event_id.as_str();
    // 365 days in milliseconds overflow a 32-bit integer: the due query widens before it
    // multiplies.
    clock.advance(DAY * 365 - Duration::from_millis(1));
    several_ticks().await;
    assert_eq!(anonymizations_of(&h, id), 0);
    clock.advance(Duration::from_millis(1));
    assert_eq!(wait_for_anonymized(&h, id).await, ts_ms(&event.end_time) + 365 * DAY_MS);
    several_ticks().await;
    assert_eq!(anonymizations_of(&h, id), 1);
    h.cleanup().await;
}
