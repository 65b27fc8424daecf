//! One-time codes through the SENS contract server (read from the recorded SMS), with a
//! `ManualClock`: spacing, daily count, attempts, expiry; phone verification on Enter; LookupEntry
//! by receipt and by code; WithdrawEntry before and after the draw.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::clock::ManualClock;
use kem_proto::kem::event::v1::{EntryRules, EventStatus};
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use kem_testkit::contracts::sens::{SensAccount, SensServer};
use tonic::{Code, Request, Status};

use crate::notifications::{national, sens_config};
use crate::support::*;

const ENTRY: i32 = pb::CodePurpose::Entry as i32;
const LOOKUP: i32 = pb::CodePurpose::Lookup as i32;

async fn send(
    h: &Harness,
    event_id: &str,
    phone: &str,
    purpose: i32,
) -> Result<pb::SendParticipantCodeResponse, Status> {
    let request = pb::SendParticipantCodeRequest { event_id: event_id.to_owned(), phone: phone.to_owned(), purpose };
    Ok(h.api.send_participant_code(Request::new(request)).await?.into_inner())
}

async fn lookup(
    h: &Harness,
    event_id: &str,
    receipt: &str,
    phone: &str,
    code: &str,
) -> Result<pb::LookupEntryResponse, Status> {
    let request = pb::LookupEntryRequest {
        event_id: event_id.to_owned(),
        receipt_code: receipt.to_owned(),
        phone: phone.to_owned(),
        code: code.to_owned(),
    };
    Ok(h.api.lookup_entry(Request::new(request)).await?.into_inner())
}

async fn withdraw(h: &Harness, event_id: &str, phone: &str, code: &str) -> Result<pb::WithdrawEntryResponse, Status> {
    let request =
        pb::WithdrawEntryRequest { event_id: event_id.to_owned(), phone: phone.to_owned(), code: code.to_owned() };
    Ok(h.api.withdraw_entry(Request::new(request)).await?.into_inner())
}

/// The last code sent to `phone` (national form).
fn last_code(server: &SensServer, phone: &str) -> String {
    let sent = server.sent_to(&phone.replace('-', ""));
    let text = &sent.last().expect("a code was sent").content;
    let at = text.find("인증번호 ").expect("a code message") + "인증번호 ".len();
    text[at..at + 6].to_owned()
}

fn verifying() -> kem_proto::kem::event::v1::GetEventForParticipationResponse {
    let mut e = event(EventStatus::Published);
    e.entry_rules = Some(EntryRules { verify_phone: true, ..Default::default() });
    e
}

#[tokio::test]
async fn codes_are_spaced_counted_and_limited_in_attempts() {
    let server = SensServer::start(SensAccount::default()).await;
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(sens_config(&server), Arc::new(clock.clone())).await;
    let event_id = h.add(verifying());
    let p = phone(1);
    send(&h, &event_id, &p, ENTRY).await.expect("first code");
    let soon = send(&h, &event_id, &p, ENTRY).await.expect_err("within a minute");
    assert_eq!(soon.code(), Code::ResourceExhausted);
    assert_eq!(reason(&soon), "CODE_RATE_LIMITED");
    assert!(kem_kit::status::retry_delay(&soon).is_some());
    for _ in 0..4 {
        clock.advance(Duration::from_secs(61));
        send(&h, &event_id, &p, ENTRY).await.expect("a minute later");
    }
    clock.advance(Duration::from_secs(61));
    let daily = send(&h, &event_id, &p, ENTRY).await.expect_err("five a day");
    assert_eq!(reason(&daily), "CODE_RATE_LIMITED");
    assert_eq!(server.sent_to(&p.replace('-', "")).len(), 5);

    // Five wrong codes use the code up: then even the right one fails.
    let code = last_code(&server, &p);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let mut request = entry(&event_id, "김민수", &p);
        request.verification_code = wrong.to_owned();
        let refused = h.enter(request).await.expect_err("wrong code");
        assert_eq!(reason(&refused), "VERIFICATION_FAILED");
        assert_eq!(violations(&refused), ["verificationCode"]);
    }
    let mut request = entry(&event_id, "김민수", &p);
    request.verification_code = code;
    assert_eq!(reason(&h.enter(request).await.expect_err("used up")), "VERIFICATION_FAILED");
    // Not for events that do not verify phones.
    let plain = h.add(event(EventStatus::Published));
    let refused = send(&h, &plain, &p, ENTRY).await.expect_err("not required");
    assert_eq!(reason(&refused), "VERIFICATION_NOT_REQUIRED");
    for (phone, purpose, field) in [("010\u{0}", ENTRY, "phone"), ("010-1234-5678", 0, "purpose")] {
        let bad = send(&h, &event_id, phone, purpose).await.expect_err("invalid");
        assert_eq!(violations(&bad), [field]);
    }
    h.cleanup().await;
}

#[tokio::test]
async fn enter_checks_and_consumes_the_phone_code() {
    let server = SensServer::start(SensAccount::default()).await;
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(sens_config(&server), Arc::new(clock.clone())).await;
    let event_id = h.add(verifying());
    let p = phone(2);
    let missing = h.enter(entry(&event_id, "김민수", &p)).await.expect_err("no code");
    assert_eq!(missing.code(), Code::InvalidArgument);
    assert_eq!(reason(&missing), "VERIFICATION_REQUIRED");
    send(&h, &event_id, &p, ENTRY).await.expect("code");
    let code = last_code(&server, &p);
    let mut request = entry(&event_id, "김민수", &p);
    request.verification_code = code.clone();
    h.enter_as("req-1", request.clone()).await.expect("verified entry");
    // A retry of that request is answered with the entry; the consumed code verifies nothing else.
    h.enter_as("req-1", request.clone()).await.expect("replayed");
    let other = h.enter(request).await.expect_err("the code was consumed");
    assert_eq!(reason(&other), "VERIFICATION_FAILED");
    // An expired code fails.
    let q = phone(3);
    send(&h, &event_id, &q, ENTRY).await.expect("code");
    clock.advance(Duration::from_secs(301));
    let mut late = entry(&event_id, "이영희", &q);
    late.verification_code = last_code(&server, &q);
    assert_eq!(reason(&h.enter(late).await.expect_err("expired")), "VERIFICATION_FAILED");
    h.cleanup().await;
}

#[tokio::test]
async fn entries_are_looked_up_by_receipt_or_code_and_withdrawn_before_the_draw() {
    let server = SensServer::start(SensAccount::default()).await;
    let h = Harness::with_config(sens_config(&server)).await;
    let event_id = h.add(event(EventStatus::Published));
    let entered = h.enter_response(None, entry(&event_id, "김민수", &phone(10))).await.expect("enter");
    h.enter_many(&event_id, 3).await;

    let by_receipt = lookup(&h, &event_id, &entered.receipt_code.to_lowercase(), "", "").await.expect("receipt");
    assert_eq!(by_receipt.standing, pb::EntryStanding::Entered as i32);
    assert_eq!(by_receipt.entry.map(|e| e.masked_name), Some("김*수".to_owned()));
    let wrong = lookup(&h, &event_id, "22222-22222", "", "").await.expect_err("no such receipt");
    assert_eq!(reason(&wrong), "ENTRY_NOT_FOUND");
    let neither = lookup(&h, &event_id, "", "", "").await.expect_err("nothing given");
    assert_eq!(neither.code(), Code::InvalidArgument);

    // LOOKUP answers the same for a phone that never entered, and sends it nothing.
    let stranger = phone(99);
    let answer = send(&h, &event_id, &stranger, LOOKUP).await.expect("same answer");
    assert!(answer.expire_time.is_some() && answer.resend_time.is_some());
    assert!(server.sent_to(&stranger.replace('-', "")).is_empty());
    let unknown = lookup(&h, &event_id, "", &stranger, "123456").await.expect_err("never entered");
    assert_eq!(reason(&unknown), "ENTRY_NOT_FOUND");

    let p = phone(10);
    send(&h, &event_id, &p, LOOKUP).await.expect("lookup code");
    let code = last_code(&server, &p);
    let by_code = lookup(&h, &event_id, "", &p, &code).await.expect("by code");
    assert_eq!(by_code.standing, pb::EntryStanding::Entered as i32);
    let first = withdraw(&h, &event_id, &p, &code).await.expect("withdraw");
    let again = withdraw(&h, &event_id, &p, &code).await.expect("withdraw again");
    assert_eq!(first.withdraw_time, again.withdraw_time);
    let listed = h.all_entries(&event_id).await;
    let gone = listed.iter().find(|e| e.withdrawn).expect("listed as withdrawn");
    assert!(gone.masked_name.is_empty() && gone.masked_phone.is_empty() && gone.anonymized, "erased at once");
    let looked = lookup(&h, &event_id, &entered.receipt_code, "", "").await.expect("receipt");
    assert_eq!(looked.standing, pb::EntryStanding::Withdrawn as i32);

    // The draw leaves the withdrawn entry out; after it, withdrawing is refused.
    h.events.set_status(&event_id, EventStatus::Ended);
    h.close(&event_id).await.expect("close");
    let drawn = h.draw(OWNER, draw_request(&event_id, 0)).await.expect("draw");
    assert_eq!(drawn.audit.as_ref().map(|a| a.entry_count), Some(3));
    assert!(drawn.winners.iter().all(|w| Some(&w.entry_id) != entered.entry.as_ref().map(|e| &e.entry_id)));
    let winner_phone = &drawn.winners[0].phone;
    let q = format!("0{}", winner_phone.trim_start_matches("+82"));
    send(&h, &event_id, &q, LOOKUP).await.expect("code");
    let code = last_code(&server, &national(winner_phone));
    let won = lookup(&h, &event_id, "", &q, &code).await.expect("winner looks up");
    assert_eq!((won.standing, won.rank), (pb::EntryStanding::Won as i32, 1));
    assert_eq!(won.claim_state, pb::ClaimState::Unclaimed as i32);
    let late = withdraw(&h, &event_id, &q, &code).await.expect_err("after the draw");
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert_eq!(reason(&late), "ALREADY_DRAWN");
    h.cleanup().await;
}

#[tokio::test]
async fn a_code_allows_five_wrong_tries() {
    let server = SensServer::start(SensAccount::default()).await;
    let h = Harness::with_config(sens_config(&server)).await;
    let event_id = h.add(event(EventStatus::Published));
    let p = phone(20);
    h.enter(entry(&event_id, "김민수", &p)).await.expect("enter");
    send(&h, &event_id, &p, LOOKUP).await.expect("code");
    let code = last_code(&server, &p);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let refused = lookup(&h, &event_id, "", &p, wrong).await.expect_err("wrong");
        assert_eq!(reason(&refused), "ENTRY_NOT_FOUND");
    }
    let used_up = lookup(&h, &event_id, "", &p, &code).await.expect_err("used up");
    assert_eq!(used_up.code(), Code::ResourceExhausted);
    assert_eq!(reason(&used_up), "TOO_MANY_ATTEMPTS");
    h.cleanup().await;
}
