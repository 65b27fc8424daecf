//! DrawWinnersOnSchedule: the event scheduler's draw of an ENDED auto-draw event — the prize's
//! winner count and a server seed, on behalf of the owner — made exactly once however many calls
//! race (scheduler replicas, retries), and never over an existing draw.

use kem_participation::{record_from_audit, verify_draw};
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::messaging::v1 as msg;
use kem_proto::kem::participation::v1 as pb;
use tonic::Code;

use crate::support::*;

/// Draws of `event_id` recorded in the table (current or superseded).
async fn draws(h: &Harness, event_id: &str) -> i64 {
    kem_kit::store::query("SELECT COUNT(*) AS n FROM draws WHERE event_id = $1")
        .bind(event_id.to_owned())
        .fetch_one(h.store().primary())
        .await
        .expect("count draws")
        .get("n")
        .expect("n")
}

/// DrawCompleted facts queued for `event_id`.
async fn draw_facts(h: &Harness, event_id: &str) -> usize {
    let facts = h.analytics(event_id).await;
    facts.iter().filter(|(_, body)| matches!(body.fact, Some(msg::analytics_event::Fact::DrawCompleted(_)))).count()
}

#[tokio::test]
async fn ten_concurrent_scheduled_draws_make_exactly_one() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let entries = h.enter_many(&id, 20).await;
    h.events.set_status(&id, EventStatus::Ended);

    let calls = (0..10).map(|_| h.draw_on_schedule(&id));
    let answers: Vec<pb::DrawWinnersOnScheduleResponse> =
        futures_util::future::join_all(calls).await.into_iter().map(|r| r.expect("every call succeeds")).collect();
    assert_eq!(answers.iter().filter(|a| a.drawn_now).count(), 1, "exactly one call drew");
    let audit = answers.iter().find(|a| a.drawn_now).and_then(|a| a.audit.clone()).expect("the audit");
    assert!(answers.iter().all(|a| a.audit.as_ref() == Some(&audit)), "every call answers with that draw");
    assert_eq!(draws(&h, &id).await, 1);
    assert_eq!(draw_facts(&h, &id).await, 1, "one DrawCompleted");

    // Like DrawWinners with count 0 and no seed: the prize's winner count, a CSPRNG seed.
    assert_eq!((audit.winner_count, audit.entry_count), (3, 20));
    assert_eq!((audit.seed.len(), audit.seed_supplied, audit.algorithm.as_str()), (32, false, "chacha20-fisher-yates"));
    assert!(audit.redraw_of.is_empty() && audit.excluded_entry_ids.is_empty());
    // On behalf of the owner: the owner sees it as their draw, and it verifies.
    let listed = h.winners(OWNER, &id).await.expect("the owner's winners");
    assert_eq!(listed.audit.as_ref(), Some(&audit));
    let ids: Vec<&str> = entries.iter().map(|e| e.entry_id.as_str()).collect();
    let rerun = verify_draw(&record_from_audit(&audit), &ids).expect("verifies");
    assert_eq!(rerun, listed.winners.iter().map(|w| w.entry_id.clone()).collect::<Vec<_>>());

    // Later calls (a retry, another replica) change nothing.
    let again = h.draw_on_schedule(&id).await.expect("again");
    assert_eq!((again.drawn_now, again.audit), (false, Some(audit)));
    assert_eq!(draws(&h, &id).await, 1);
    h.cleanup().await;
}

#[tokio::test]
async fn a_scheduled_draw_keeps_the_owners_draw_and_the_owner_keeps_it() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    h.enter_many(&id, 8).await;
    h.events.set_status(&id, EventStatus::Ended);
    let owners = h.draw(OWNER, draw_request(&id, 2)).await.expect("the owner draws first").audit;
    let scheduled = h.draw_on_schedule(&id).await.expect("scheduled");
    assert_eq!((scheduled.drawn_now, scheduled.audit), (false, owners.clone()));

    // And the other way round: a scheduled draw is the draw; the owner needs redraw to replace it.
    let other = h.add(event(EventStatus::Published));
    h.enter_many(&other, 8).await;
    h.events.set_status(&other, EventStatus::Ended);
    let scheduled = h.draw_on_schedule(&other).await.expect("scheduled").audit.expect("audit");
    let again = expect_code(h.draw(OWNER, draw_request(&other, 2)).await, Code::AlreadyExists);
    assert_eq!((reason(&again), metadata(&again, "draw_id")), ("ALREADY_DRAWN".into(), scheduled.draw_id.clone()));
    let redraw = pb::DrawWinnersRequest { redraw: true, ..draw_request(&other, 2) };
    let replaced = h.draw(OWNER, redraw).await.expect("redraw").audit.expect("audit");
    assert_eq!(replaced.redraw_of, scheduled.draw_id);
    let after = h.draw_on_schedule(&other).await.expect("after the redraw");
    assert_eq!((after.drawn_now, after.audit), (false, Some(replaced)), "the current draw, untouched");
    h.cleanup().await;
}

#[tokio::test]
async fn a_scheduled_draw_is_refused_where_draw_winners_is() {
    let h = Harness::new().await;
    let published = h.add(event(EventStatus::Published));
    h.enter_many(&published, 2).await;
    let refused = expect_code(h.draw_on_schedule(&published).await, Code::FailedPrecondition);
    assert_eq!(
        (reason(&refused), metadata(&refused, "status")),
        ("EVENT_NOT_ENDED".into(), "EVENT_STATUS_PUBLISHED".into())
    );
    let empty = h.add(event(EventStatus::Ended));
    assert_eq!(reason(&expect_code(h.draw_on_schedule(&empty).await, Code::FailedPrecondition)), "NO_ENTRIES");
    let unknown = expect_code(h.draw_on_schedule(&uuid::Uuid::new_v4().to_string()).await, Code::NotFound);
    assert_eq!(reason(&unknown), "EVENT_NOT_FOUND");
    for bad in ["", "\u{0}", "../../etc"] {
        assert_eq!(violations(&expect_code(h.draw_on_schedule(bad).await, Code::InvalidArgument)), ["eventId"]);
    }
    assert_eq!(draws(&h, &published).await + draws(&h, &empty).await, 0, "nothing was drawn");

    // EndEvent's close is enough, as for DrawWinners; a first-come event takes its first entries.
    let mut first_come = event(EventStatus::Published);
    first_come.participation_method = common::ParticipationMethod::FirstCome as i32;
    let first_come = h.add(first_come);
    let entries = h.enter_many(&first_come, 3).await;
    h.close(&first_come).await.expect("close entries");
    let drawn = h.draw_on_schedule(&first_come).await.expect("closed by EndEvent");
    let audit = drawn.audit.expect("audit");
    assert_eq!((drawn.drawn_now, audit.algorithm.as_str(), audit.seed.len()), (true, "first-come", 0));
    let winners = h.winners(OWNER, &first_come).await.expect("winners").winners;
    assert_eq!(
        winners.iter().map(|w| w.entry_id.as_str()).collect::<Vec<_>>(),
        entries.iter().map(|e| e.entry_id.as_str()).collect::<Vec<_>>()
    );
    h.cleanup().await;
}
