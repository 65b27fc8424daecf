//! Enter is idempotent per request: a call repeated with the same `x-request-id` (the edge's id
//! of the call, which the mesh re-sends when it retries) answers with the entry the first attempt
//! stored, and nothing else ever does — not another request id, not another phone or event, not
//! the same request id with other data.

use std::collections::HashSet;

use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::participation::v1 as pb;
use tonic::Code;

use crate::support::*;

const REQUEST: &str = "3f2a9c0d5e6b47a8b1c2d3e4f5a6b7c8";

#[tokio::test]
async fn a_repeated_request_gets_its_entry_back_and_stores_one_row() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let mut request = entry(&id, "김민수", "010-1234-5678");
    request.marketing_consent = Some(marketing_consent());

    let first = h.enter_as(REQUEST, request.clone()).await.expect("first attempt");
    let again = h.enter_as(REQUEST, request.clone()).await.expect("the same request again");
    assert_eq!(again, first, "the same response as the first time");
    // Another spelling of the same phone is the same submission once normalised.
    let respelled = pb::EnterRequest { phone: "+82 10-1234-5678".into(), ..request.clone() };
    assert_eq!(h.enter_as(REQUEST, respelled).await.expect("respelled"), first);
    assert_eq!(h.stored(&id).await, vec![(first.entry_id.clone(), Some(REQUEST.to_owned()))]);
    assert_eq!(h.all_entries(&id).await, vec![first.clone()], "the listing shows the one entry");
    assert_eq!(h.analytics(&id).await.len(), 1, "reported once");

    // Another request, or none, with the same phone is the duplicate it always was.
    let other = expect_code(h.enter_as("another-request", request.clone()).await, Code::AlreadyExists);
    assert_eq!(reason(&other), "DUPLICATE_ENTRY");
    let none = expect_code(h.enter(request.clone()).await, Code::AlreadyExists);
    assert_eq!(reason(&none), "DUPLICATE_ENTRY");
    assert_eq!(h.stored(&id).await.len(), 1);

    // An entry stored without a request id is never replayed (its column stays NULL).
    let plain = h.enter(entry(&id, "이영희", "010-2222-3333")).await.expect("no request id");
    let row = h.stored(&id).await.into_iter().find(|(entry_id, _)| *entry_id == plain.entry_id);
    assert_eq!(row.map(|(_, request_id)| request_id), Some(None));
    h.cleanup().await;
}

#[tokio::test]
async fn a_request_id_never_reaches_another_phone_event_or_submission() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let second_event = h.add(event(EventStatus::Published));
    let mine = entry(&id, "김민수", "010-1234-5678");
    let first = h.enter_as(REQUEST, mine.clone()).await.expect("enter");

    // The same request id with another phone is another submission: a new entry of its own.
    let theirs = entry(&id, "김민수", "010-9999-0000");
    let other_phone = h.enter_as(REQUEST, theirs.clone()).await.expect("another phone");
    assert_ne!(other_phone.entry_id, first.entry_id);
    assert_eq!(other_phone.masked_phone, "010-****-0000");
    // … and with another event too.
    let other_event = h.enter_as(REQUEST, entry(&second_event, "김민수", "010-1234-5678")).await.expect("other event");
    assert_ne!(other_event.entry_id, first.entry_id);
    assert_eq!(other_event.event_id, second_event);
    // Each (request id, event, phone) finds its own entry, never another's.
    assert_eq!(h.enter_as(REQUEST, mine.clone()).await.expect("mine"), first);
    assert_eq!(h.enter_as(REQUEST, theirs).await.expect("theirs"), other_phone);

    // A phone entered by someone else's request stays theirs: a forged request id that matches
    // nothing is an ordinary duplicate.
    h.enter_as("victim-request", entry(&id, "박지민", "010-7777-8888")).await.expect("victim");
    let forged = expect_code(h.enter_as(REQUEST, entry(&id, "박지민", "010-7777-8888")).await, Code::AlreadyExists);
    assert_eq!(reason(&forged), "DUPLICATE_ENTRY");

    // The right request id with other data is not the same request: the answer is exactly the
    // duplicate anyone gets, so it does not even tell that the id was right, and it never shows
    // the stored name (a replay only ever echoes what its caller sent).
    let changed = [
        pb::EnterRequest { name: "김민호".into(), ..mine.clone() },
        pb::EnterRequest { source_channel: common::Channel::KakaoChannel as i32, ..mine.clone() },
        pb::EnterRequest { marketing_consent: Some(marketing_consent()), ..mine.clone() },
    ];
    for request in changed {
        let status = expect_code(h.enter_as(REQUEST, request).await, Code::AlreadyExists);
        assert_eq!(reason(&status), "DUPLICATE_ENTRY");
        assert!(!status.message().contains(&first.entry_id) && !status.message().contains("김*수"));
    }
    // A consent to other terms is refused before anything is looked up.
    let mut privacy = mine.clone();
    if let Some(consent) = privacy.privacy_consent.as_mut() {
        consent.consent_text_version = "terms-0000000000000000".into();
    }
    let status = expect_code(h.enter_as(REQUEST, privacy).await, Code::InvalidArgument);
    assert_eq!(reason(&status), "TERMS_OUTDATED");
    assert!(!status.message().contains(&first.entry_id) && !status.message().contains("김*수"));
    assert_eq!(h.stored(&id).await.len(), 3, "mine, the other phone's and the victim's");
    assert_eq!(h.stored(&second_event).await.len(), 1);
    h.cleanup().await;
}

#[tokio::test]
async fn twenty_concurrent_copies_of_one_request_all_get_its_single_entry() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let request = entry(&id, "동시", "010-5555-0000");
    let copies = (0..20).map(|_| h.enter_as(REQUEST, request.clone()));
    let results = futures_util::future::join_all(copies).await;
    let answered: Vec<pb::Entry> = results.into_iter().map(|r| r.expect("every copy succeeds")).collect();
    let ids: HashSet<&str> = answered.iter().map(|e| e.entry_id.as_str()).collect();
    assert_eq!(ids.len(), 1, "one entry for all copies: {ids:?}");
    assert!(answered.iter().all(|e| *e == answered[0]), "the same response to every copy");
    assert_eq!(h.stored(&id).await.len(), 1);
    assert_eq!(h.analytics(&id).await.len(), 1);

    // Copies of another request with the same phone, at the same time: all duplicates.
    let other_ids: Vec<String> = (0..5).map(|i| format!("other-{i}")).collect();
    let others = other_ids.iter().map(|other| h.enter_as(other, request.clone()));
    for result in futures_util::future::join_all(others).await {
        assert_eq!(reason(&expect_code(result, Code::AlreadyExists)), "DUPLICATE_ENTRY");
    }
    h.cleanup().await;
}

#[tokio::test]
async fn a_retry_after_the_event_ended_still_gets_its_entry_and_nothing_more() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let request = entry(&id, "김민수", "010-1234-5678");
    let first = h.enter_as(REQUEST, request.clone()).await.expect("enter");

    // Ended through the gate (EndEvent's CloseEntries) while this replica still caches PUBLISHED.
    h.close(&id).await.expect("close entries");
    assert_eq!(h.enter_as(REQUEST, request.clone()).await.expect("retried after the close"), first);
    let late = expect_code(h.enter_as("late", entry(&id, "늦은이", "010-2222-3333")).await, Code::FailedPrecondition);
    assert_eq!(reason(&late), "EVENT_NOT_OPEN");
    let dup = expect_code(h.enter_as("late", request.clone()).await, Code::FailedPrecondition);
    assert_eq!(reason(&dup), "EVENT_NOT_OPEN", "an ended event answers as before for anyone else");

    // A replica that learns from the event service that the event is ENDED.
    h.events.set_status(&id, EventStatus::Ended);
    let fresh = h.replica(test_config()).await;
    assert_eq!(enter_as_via(&fresh, REQUEST, request.clone()).await.expect("retried on another replica"), first);
    let other = expect_code(enter_as_via(&fresh, "other", request.clone()).await, Code::FailedPrecondition);
    assert_eq!(metadata(&other, "status"), "EVENT_STATUS_ENDED");

    // Anonymized entries are gone for good: no replay, and the request id is erased with them.
    assert_eq!(h.anonymize(&id, None).await.expect("anonymize"), 1);
    assert_eq!(h.stored(&id).await, vec![(first.entry_id.clone(), None)]);
    expect_code(enter_as_via(&fresh, REQUEST, request).await, Code::FailedPrecondition);
    h.cleanup().await;
}

#[tokio::test]
async fn a_repeated_request_gets_its_entry_back_on_sqlite() {
    let h = Harness::sqlite().await;
    let id = h.add(event(EventStatus::Published));
    let request = entry(&id, "김민수", "010-1234-5678");
    let first = h.enter_as(REQUEST, request.clone()).await.expect("enter");
    assert_eq!(h.enter_as(REQUEST, request.clone()).await.expect("again"), first);
    let copies = futures_util::future::join_all((0..20).map(|_| h.enter_as(REQUEST, request.clone()))).await;
    assert!(copies.into_iter().all(|r| r.is_ok_and(|e| e == first)), "every concurrent copy gets the entry");
    assert_eq!(h.stored(&id).await, vec![(first.entry_id.clone(), Some(REQUEST.to_owned()))]);

    let other = expect_code(h.enter_as("another-request", request.clone()).await, Code::AlreadyExists);
    assert_eq!(reason(&other), "DUPLICATE_ENTRY");
    let renamed = pb::EnterRequest { name: "김민호".into(), ..request.clone() };
    expect_code(h.enter_as(REQUEST, renamed).await, Code::AlreadyExists);
    let other_phone = h.enter_as(REQUEST, entry(&id, "김민수", "010-9999-0000")).await.expect("another phone");
    assert_ne!(other_phone.entry_id, first.entry_id);

    h.close(&id).await.expect("close entries");
    assert_eq!(h.enter_as(REQUEST, request).await.expect("retried after the close"), first);
    assert_eq!(h.analytics(&id).await.len(), 2, "two entries reported, once each");
    h.cleanup().await;
}
