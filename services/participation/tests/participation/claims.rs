//! Prize claims and redraws of unclaimed prizes, with a `ManualClock` for the deadlines: the
//! wrong-code lockout, an expired claim, a redraw that is audited and notified, and hostile
//! input — garbage phones and codes, another owner's event, 20 concurrent claims of one code
//! while a participant enters unharmed.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::clock::ManualClock;
use kem_participation::verify_draw;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use kem_testkit::contracts::sens::{SensAccount, SensServer};
use tonic::Code;

use crate::notifications::{claim, claim_code, drawn_event, national, sens_config, tick};
use crate::support::*;

const DAY: Duration = Duration::from_secs(86_400);

async fn redraw(h: &Harness, owner: &str, event_id: &str) -> Result<pb::RedrawUnclaimedResponse, tonic::Status> {
    let request = pb::RedrawUnclaimedRequest { event_id: event_id.to_owned(), seed: vec![7; 32] };
    Ok(h.api.redraw_unclaimed(as_owner(owner, request)).await?.into_inner())
}

#[tokio::test]
async fn five_wrong_codes_lock_the_phone_out_for_an_hour() {
    let server = SensServer::start(SensAccount::default()).await;
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(sens_config(&server), Arc::new(clock.clone())).await;
    let (event_id, drawn) = drawn_event(&h, 3).await;
    tick(&h.api, "w").await;
    let winner = &drawn.winners[0];
    let code = claim_code(&server.sent_to(&national(&winner.phone))[0]);
    for _ in 0..5 {
        let wrong = claim(&h.api, &event_id, &winner.phone, "2222-2222").await.expect_err("wrong code");
        assert_eq!(reason(&wrong), "CLAIM_NOT_FOUND");
    }
    let locked = claim(&h.api, &event_id, &winner.phone, &code).await.expect_err("locked out");
    assert_eq!(locked.code(), Code::ResourceExhausted);
    assert_eq!(reason(&locked), "TOO_MANY_ATTEMPTS");
    assert!(kem_kit::status::retry_delay(&locked).is_some(), "RetryInfo says when");
    // Another winner's phone is not locked.
    let other = &drawn.winners[1];
    let other_code = claim_code(&server.sent_to(&national(&other.phone))[0]);
    claim(&h.api, &event_id, &other.phone, &other_code).await.expect("another phone claims");
    clock.advance(Duration::from_secs(3_601));
    claim(&h.api, &event_id, &winner.phone, &code).await.expect("an hour later");
    h.cleanup().await;
}

#[tokio::test]
async fn concurrent_wrong_codes_get_exactly_five_comparisons() {
    let server = SensServer::start(SensAccount::default()).await;
    let h = Harness::with_config(sens_config(&server)).await;
    let (event_id, drawn) = drawn_event(&h, 2).await;
    tick(&h.api, "w").await;
    let winner = drawn.winners[0].phone.clone();
    let guesses = (0..20).map(|i| {
        let (api, event_id, winner) = (h.api.clone(), event_id.clone(), winner.clone());
        // Wrong codes in the claim alphabet (no 0, 1, I or O), so each one is compared.
        let wrong = format!("2222-22A{}", char::from(b'A' + (i % 8) as u8));
        async move { claim(&api, &event_id, &winner, &wrong).await }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let reasons: Vec<String> = answers.iter().map(|a| a.as_ref().map_or_else(reason, |_| "OK".to_owned())).collect();
    let compared = reasons.iter().filter(|r| *r == "CLAIM_NOT_FOUND").count();
    let locked = reasons.iter().filter(|r| *r == "TOO_MANY_ATTEMPTS").count();
    assert_eq!((compared, locked), (5, 15), "20 simultaneous guesses: {reasons:?}");
    // The right code is locked out too, for the hour.
    let code = claim_code(&server.sent_to(&national(&winner))[0]);
    let refused = claim(&h.api, &event_id, &winner, &code).await.expect_err("locked out");
    assert_eq!(reason(&refused), "TOO_MANY_ATTEMPTS");
    h.cleanup().await;
}

#[tokio::test]
async fn claims_end_at_the_deadline_and_unclaimed_prizes_are_redrawn_audited_and_notified() {
    let server = SensServer::start(SensAccount::default()).await;
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(sens_config(&server), Arc::new(clock.clone())).await;
    let (event_id, drawn) = drawn_event(&h, 8).await;
    tick(&h.api, "w").await;
    let claimed = &drawn.winners[0];
    let code = claim_code(&server.sent_to(&national(&claimed.phone))[0]);
    claim(&h.api, &event_id, &claimed.phone, &code).await.expect("claimed in time");

    let early = redraw(&h, OWNER, &event_id).await.expect_err("deadlines open");
    assert_eq!(reason(&early), "CLAIM_PERIOD_OPEN");
    assert!(!metadata(&early, "deadline").is_empty());
    let foreign = redraw(&h, OTHER, &event_id).await.expect_err("another owner's event");
    assert_eq!(foreign.code(), Code::NotFound);

    clock.advance(7 * DAY + Duration::from_secs(1));
    let late = &drawn.winners[1];
    let late_code = claim_code(&server.sent_to(&national(&late.phone))[0]);
    let expired = claim(&h.api, &event_id, &late.phone, &late_code).await.expect_err("expired");
    assert_eq!(reason(&expired), "CLAIM_EXPIRED");
    let listed = h.winners(OWNER, &event_id).await.expect("winners");
    let states: Vec<i32> = listed.winners.iter().map(|w| w.claim_state).collect();
    let (c, e) = (pb::ClaimState::Claimed as i32, pb::ClaimState::Expired as i32);
    assert_eq!(states, [c, e, e]);

    let redrawn = redraw(&h, OWNER, &event_id).await.expect("redraw");
    let audit = redrawn.audit.clone().expect("audit");
    assert_eq!(audit.redraw_of, drawn.audit.as_ref().map(|a| a.draw_id.clone()).unwrap_or_default());
    assert_eq!(audit.winner_count, 2);
    let earlier: Vec<String> = drawn.winners.iter().map(|w| w.entry_id.clone()).collect();
    let mut excluded = audit.excluded_entry_ids.clone();
    excluded.sort();
    let mut expected = earlier.clone();
    expected.sort();
    assert_eq!(excluded, expected, "every earlier winner is excluded");
    assert_eq!(redrawn.winners.len(), 3, "the claimed winner kept, then two new ones");
    assert_eq!(redrawn.winners[0].entry_id, claimed.entry_id);
    assert!(redrawn.winners[1..].iter().all(|w| !earlier.contains(&w.entry_id)));
    // The redraw replays from its audit over the event's entries.
    let entries: Vec<String> = h.all_entries(&event_id).await.into_iter().map(|e| e.entry_id).collect();
    let refs: Vec<&str> = entries.iter().map(String::as_str).collect();
    let replayed = verify_draw(&kem_participation::record_from_audit(&audit), &refs).expect("verifiable");
    let new: Vec<String> = redrawn.winners[1..].iter().map(|w| w.entry_id.clone()).collect();
    assert_eq!(replayed, new);

    let gone = claim(&h.api, &event_id, &late.phone, &late_code).await.expect_err("redrawn");
    assert_eq!(reason(&gone), "PRIZE_REDRAWN");
    // The new winners are told, with a new deadline.
    assert_eq!(tick(&h.api, "w").await.sent, 2);
    for w in &redrawn.winners[1..] {
        let sms = server.sent_to(&national(&w.phone));
        assert_eq!(sms.len(), 1);
        claim(&h.api, &event_id, &w.phone, &claim_code(&sms[0])).await.expect("new winner claims");
    }
    let listed = h.winners(OWNER, &event_id).await.expect("winners");
    assert_eq!(listed.draws.len(), 2, "both draws listed, oldest first");
    assert_eq!(listed.draws[1].redraw_of, listed.draws[0].draw_id);
    let nothing = redraw(&h, OWNER, &event_id).await.expect_err("all claimed");
    assert_eq!(reason(&nothing), "NOTHING_TO_REDRAW");
    h.cleanup().await;
}

#[tokio::test]
async fn redraw_refusals_follow_the_contract() {
    let h = Harness::new().await;
    let event_id = h.add(event(EventStatus::Published));
    h.enter_many(&event_id, 2).await;
    h.events.set_status(&event_id, EventStatus::Ended);
    let not_drawn = redraw(&h, OWNER, &event_id).await.expect_err("nothing drawn");
    assert_eq!(reason(&not_drawn), "NOT_DRAWN");
    let request = pb::RedrawUnclaimedRequest { event_id: event_id.clone(), seed: vec![1; 5] };
    let bad_seed = h.api.redraw_unclaimed(as_owner(OWNER, request)).await.expect_err("short seed");
    assert_eq!(violations(&bad_seed), ["seed"]);
    h.cleanup().await;
}

#[tokio::test]
async fn hostile_claims_are_refused_naming_the_field_and_concurrent_claims_record_one_time() {
    let server = SensServer::start(SensAccount::default()).await;
    let h = Harness::with_config(sens_config(&server)).await;
    let (event_id, drawn) = drawn_event(&h, 3).await;
    tick(&h.api, "w").await;
    for (phone, code, field) in [
        ("010-1234-5678\u{0}", "ABCD-2345", "phone"),
        (&*"0".repeat(10_000), "ABCD-2345", "phone"),
        ("not a phone", "ABCD-2345", "phone"),
        ("010-1234-5678", "ABCD\u{0}2345", "claimCode"),
        ("010-1234-5678", &*"A".repeat(5_000), "claimCode"),
        ("010-1234-5678", "0OIL-1111", "claimCode"),
    ] {
        let refused = claim(&h.api, &event_id, phone, code).await.expect_err("hostile");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(violations(&refused), [field], "{phone:?} {code:?}");
    }
    let unknown = claim(&h.api, "no-such-event", &drawn.winners[0].phone, "ABCD-2345").await.expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);

    // 20 concurrent claims of one code, while a participant enters another event.
    let winner = drawn.winners[0].clone();
    let code = claim_code(&server.sent_to(&national(&winner.phone))[0]);
    let open = h.add(event(EventStatus::Published));
    let api = h.api.clone();
    let participant = tokio::spawn(async move {
        for i in 0..5 {
            enter_via(&api, entry(&open, "참가자", &phone(100 + i))).await.expect("a participant enters unharmed");
        }
    });
    let claims = (0..20).map(|_| {
        let (api, event_id, phone, code) = (h.api.clone(), event_id.clone(), winner.phone.clone(), code.clone());
        tokio::spawn(async move { claim(&api, &event_id, &phone, &code).await })
    });
    let mut times = Vec::new();
    for handle in claims {
        times.push(handle.await.expect("join").expect("claim").claim_time);
    }
    times.dedup();
    assert_eq!(times.len(), 1, "one claim time: {times:?}");
    participant.await.expect("participant");
    h.cleanup().await;
}
