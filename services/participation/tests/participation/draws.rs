//! DrawWinners and ListWinners: reproducible from the audit, no silent replacement, explicit
//! redraws, first-come selection, and entries closed by the draw.

use std::collections::HashSet;

use kem_participation::{record_from_audit, verify_draw};
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::messaging::v1 as msg;
use kem_proto::kem::participation::v1 as pb;
use tonic::Code;

use crate::support::*;

/// An event with `n` entries, then ended.
async fn ended_with_entries(h: &Harness, n: usize, method: common::ParticipationMethod) -> (String, Vec<pb::Entry>) {
    let mut e = event(EventStatus::Published);
    e.participation_method = method as i32;
    if let Some(prize) = e.prize.as_mut() {
        prize.winner_count = 10_000;
    }
    let id = h.add(e);
    let entries = h.enter_many(&id, n).await;
    h.events.set_status(&id, EventStatus::Ended);
    (id, entries)
}

fn ids(entries: &[pb::Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.entry_id.as_str()).collect()
}

#[tokio::test]
async fn a_draw_is_reproducible_from_its_audit_record() {
    let h = Harness::new().await;
    let (id, _) = ended_with_entries(&h, 25, common::ParticipationMethod::Draw).await;
    let drawn = h.draw(OWNER, draw_request(&id, 5)).await.expect("draw");
    let audit = drawn.audit.clone().expect("audit");
    assert_eq!((audit.algorithm.as_str(), audit.algorithm_version.as_str()), ("chacha20-fisher-yates", "1"));
    assert_eq!((audit.seed.len(), audit.seed_supplied), (32, false), "a CSPRNG seed is recorded");
    assert_eq!((audit.entry_count, audit.winner_count, audit.event_id.as_str()), (25, 5, id.as_str()));
    assert!(audit.redraw_of.is_empty() && audit.draw_time.is_some());
    let ranks: Vec<i32> = drawn.winners.iter().map(|w| w.rank).collect();
    assert_eq!(ranks, [1, 2, 3, 4, 5]);
    assert_eq!(drawn.winners.iter().map(|w| &w.entry_id).collect::<HashSet<_>>().len(), 5, "without replacement");
    for w in &drawn.winners {
        assert_eq!(w.draw_id, audit.draw_id);
        assert!(w.name.starts_with("참가자") && w.phone.starts_with("+8210"), "full contact data for the prize");
        assert_eq!(w.masked_phone.len(), "010-****-0000".len());
    }

    // Anyone with the audit and the entry ids re-runs it.
    let entries = h.all_entries(&id).await;
    let again = verify_draw(&record_from_audit(&audit), &ids(&entries)).expect("verifies");
    assert_eq!(again, drawn.winners.iter().map(|w| w.entry_id.clone()).collect::<Vec<_>>());
    // A different snapshot does not verify.
    assert!(verify_draw(&record_from_audit(&audit), &ids(&entries[1..])).is_err());

    let listed = h.winners(OWNER, &id).await.expect("list winners");
    assert_eq!((listed.winners, listed.audit), (drawn.winners.clone(), Some(audit.clone())));

    let facts = h.analytics(&id).await;
    let draws: Vec<_> = facts
        .iter()
        .filter_map(|(mid, body)| match &body.fact {
            Some(msg::analytics_event::Fact::DrawCompleted(d)) => Some((mid.clone(), d.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(draws.len(), 1);
    assert_eq!(draws[0].0, format!("draw:{}", audit.draw_id));
    assert_eq!((draws[0].1.winner_count, draws[0].1.entry_count), (5, 25));
    assert_eq!(draws[0].1.prize_cost, Some(common::Money { amount_krw: 5 * 4_500 }));
    h.cleanup().await;
}

#[tokio::test]
async fn a_supplied_seed_is_recorded_and_decides() {
    let h = Harness::new().await;
    let (id, entries) = ended_with_entries(&h, 12, common::ParticipationMethod::Draw).await;
    let seed = vec![42u8; 32];
    let request = pb::DrawWinnersRequest { seed: seed.clone(), ..draw_request(&id, 4) };
    let drawn = h.draw(OWNER, request).await.expect("draw");
    let audit = drawn.audit.expect("audit");
    assert_eq!((audit.seed.clone(), audit.seed_supplied), (seed.clone(), true));
    let mut expected_record = record_from_audit(&audit);
    expected_record.seed = seed;
    let expected = verify_draw(&expected_record, &ids(&entries)).expect("verifies");
    assert_eq!(expected, drawn.winners.iter().map(|w| w.entry_id.clone()).collect::<Vec<_>>());

    let bad = pb::DrawWinnersRequest { seed: vec![1; 16], redraw: true, ..draw_request(&id, 1) };
    let status = expect_code(h.draw(OWNER, bad).await, Code::InvalidArgument);
    assert_eq!(violations(&status), ["seed"]);
    h.cleanup().await;
}

#[tokio::test]
async fn counts_beyond_the_entries_are_invalid_and_the_default_count_is_capped() {
    let h = Harness::new().await;
    let (id, _) = ended_with_entries(&h, 4, common::ParticipationMethod::Draw).await;
    let status = expect_code(h.draw(OWNER, draw_request(&id, 5)).await, Code::InvalidArgument);
    assert_eq!(violations(&status), ["count"]);
    let status = expect_code(h.draw(OWNER, draw_request(&id, -1)).await, Code::InvalidArgument);
    assert_eq!(violations(&status), ["count"]);
    assert!(h.winners(OWNER, &id).await.expect("list").audit.is_none(), "nothing was drawn");
    // count 0: the prize's winner count (10,000 here); fewer entered, so everyone wins.
    let all = h.draw(OWNER, draw_request(&id, 0)).await.expect("draw everyone");
    assert_eq!(all.winners.len(), 4);
    h.cleanup().await;
}

#[tokio::test]
async fn drawing_twice_keeps_the_first_winners_unless_redraw_is_asked() {
    let h = Harness::new().await;
    let (id, entries) = ended_with_entries(&h, 20, common::ParticipationMethod::Draw).await;
    let first = h.draw(OWNER, draw_request(&id, 3)).await.expect("first draw");
    let first_audit = first.audit.clone().expect("audit");

    let again = expect_code(h.draw(OWNER, draw_request(&id, 3)).await, Code::AlreadyExists);
    assert_eq!((reason(&again), metadata(&again, "draw_id")), ("ALREADY_DRAWN".into(), first_audit.draw_id.clone()));
    let listed = h.winners(OWNER, &id).await.expect("list");
    assert_eq!(listed.winners, first.winners, "the first winners stay");

    // The owner cannot reach the first winner: redraw without them.
    let unreachable = first.winners[0].entry_id.clone();
    let redraw =
        pb::DrawWinnersRequest { redraw: true, exclude_entry_ids: vec![unreachable.clone()], ..draw_request(&id, 3) };
    let second = h.draw(OWNER, redraw).await.expect("redraw");
    let second_audit = second.audit.clone().expect("audit");
    assert_eq!(second_audit.redraw_of, first_audit.draw_id);
    assert_eq!((second_audit.entry_count, second_audit.excluded_entry_ids.clone()), (19, vec![unreachable.clone()]));
    assert!(second.winners.iter().all(|w| w.entry_id != unreachable));
    assert_eq!(verify_draw(&record_from_audit(&second_audit), &ids(&entries)).expect("verifies").len(), 3);
    let listed = h.winners(OWNER, &id).await.expect("list");
    assert_eq!(listed.audit, Some(second_audit));

    let unknown =
        pb::DrawWinnersRequest { redraw: true, exclude_entry_ids: vec!["nope".into()], ..draw_request(&id, 1) };
    let status = expect_code(h.draw(OWNER, unknown).await, Code::InvalidArgument);
    assert_eq!(violations(&status), ["excludeEntryIds[0]"]);
    h.cleanup().await;
}

#[tokio::test]
async fn concurrent_first_draws_leave_one_draw() {
    let h = Harness::new().await;
    let (id, _) = ended_with_entries(&h, 30, common::ParticipationMethod::Draw).await;
    let attempts = (0..6).map(|_| h.draw(OWNER, draw_request(&id, 2)));
    let results = futures_util::future::join_all(attempts).await;
    let ok: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok.len(), 1, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!((r.code(), reason(r)), (Code::AlreadyExists, "ALREADY_DRAWN".to_owned()));
    }
    assert_eq!(h.winners(OWNER, &id).await.expect("list").winners, ok[0].winners);
    h.cleanup().await;
}

#[tokio::test]
async fn first_come_takes_the_earliest_entries_without_a_seed() {
    let h = Harness::new().await;
    let mut e = event(EventStatus::Published);
    e.participation_method = common::ParticipationMethod::FirstCome as i32;
    if let Some(prize) = e.prize.as_mut() {
        prize.winner_count = 5;
    }
    let id = h.add(e);
    let entries = h.enter_many(&id, 5).await;
    h.events.set_status(&id, EventStatus::Ended);
    let request = pb::DrawWinnersRequest { seed: vec![7; 32], ..draw_request(&id, 3) };
    let drawn = h.draw(OWNER, request).await.expect("draw");
    let audit = drawn.audit.expect("audit");
    assert_eq!((audit.algorithm.as_str(), audit.seed.len(), audit.seed_supplied), ("first-come", 0, false));
    let winners: Vec<&str> = drawn.winners.iter().map(|w| w.entry_id.as_str()).collect();
    assert_eq!(winners, ids(&entries[..3]));
    assert_eq!(verify_draw(&record_from_audit(&audit), &ids(&entries)).expect("verifies"), winners);
    h.cleanup().await;
}

#[tokio::test]
async fn draws_need_an_ended_event_with_entries_of_the_owner() {
    let h = Harness::new().await;
    let published = h.add(event(EventStatus::Published));
    h.enter_many(&published, 2).await;
    let status = expect_code(h.draw(OWNER, draw_request(&published, 1)).await, Code::FailedPrecondition);
    assert_eq!(
        (reason(&status), metadata(&status, "status")),
        ("EVENT_NOT_ENDED".into(), "EVENT_STATUS_PUBLISHED".into())
    );
    let hidden = expect_code(h.draw(OTHER, draw_request(&published, 1)).await, Code::NotFound);
    assert_eq!(reason(&hidden), "EVENT_NOT_FOUND");

    let empty = h.add(event(EventStatus::Ended));
    let status = expect_code(h.draw(OWNER, draw_request(&empty, 1)).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "NO_ENTRIES");
    let none = h.winners(OWNER, &empty).await.expect("list");
    assert!(none.winners.is_empty() && none.audit.is_none());
    expect_code(h.winners(OTHER, &empty).await, Code::NotFound);
    h.cleanup().await;
}

#[tokio::test]
async fn the_draw_closes_entries_even_before_the_cache_sees_the_end() {
    let h = Harness::with_config(kem_participation::ParticipationConfig {
        event_cache_ttl: std::time::Duration::from_secs(30),
        ..test_config()
    })
    .await;
    let id = h.add(event(EventStatus::Published));
    h.enter_many(&id, 3).await;
    h.events.set_status(&id, EventStatus::Ended);
    // Within the cache TTL an entry still passes the status check …
    h.enter(entry(&id, "늦은이", &phone(50))).await.expect("cached as published");
    let drawn = h.draw(OWNER, draw_request(&id, 1)).await.expect("draw");
    assert_eq!(drawn.audit.as_ref().map(|a| a.entry_count), Some(4));
    // … but once winners are drawn the snapshot is final: the draw refreshed the cache, and the
    // entry gate is closed in the database either way.
    let refused = expect_code(h.enter(entry(&id, "더늦은이", &phone(51))).await, Code::FailedPrecondition);
    assert_eq!(reason(&refused), "EVENT_NOT_OPEN");
    let entries = h.all_entries(&id).await;
    assert_eq!(entries.len(), 4);
    let audit = drawn.audit.expect("audit");
    assert!(verify_draw(&record_from_audit(&audit), &ids(&entries)).is_ok());
    h.cleanup().await;
}

#[tokio::test]
async fn the_entry_gate_holds_even_for_a_replica_with_a_stale_status() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    h.enter_many(&id, 2).await;
    h.events.set_status(&id, EventStatus::Ended);
    h.draw(OWNER, draw_request(&id, 1)).await.expect("draw");
    // Pretend another replica still believes the event is published once its cache expires.
    h.events.set_status(&id, EventStatus::Published);
    // The real TTL of the 300 ms event cache entry (in Redis) must pass: nothing to await.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let refused = expect_code(h.enter(entry(&id, "늦은이", &phone(50))).await, Code::FailedPrecondition);
    assert_eq!((reason(&refused), metadata(&refused, "why")), ("EVENT_NOT_OPEN".into(), "drawn".into()));
    assert_eq!(h.all_entries(&id).await.len(), 2);
    assert_eq!(h.analytics(&id).await.iter().filter(|(mid, _)| mid.starts_with("entry:")).count(), 2);
    h.cleanup().await;
}
