//! ListMarketingRecipients (distribution → participation, for Kakao 친구톡): one number per
//! person over all of an owner's events, the number's latest answer deciding; withdrawn,
//! anonymized and blocked entries and every other owner's participants left out; ordered by
//! number, paged by opaque tokens that refuse anything they did not issue. Each scenario runs on
//! PostgreSQL and on embedded SQLite; the mesh test checks that only distribution may call it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use kem_kit::clock::ManualClock;
use kem_proto::kem::event::v1::{EventStatus, GetEventForParticipationResponse};
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use tonic::{Code, Request, Status};

use crate::support::*;

async fn page(
    h: &Harness,
    owner: &str,
    page_size: i32,
    token: &str,
) -> Result<pb::ListMarketingRecipientsResponse, Status> {
    let request =
        pb::ListMarketingRecipientsRequest { owner_id: owner.to_owned(), page_size, page_token: token.to_owned() };
    Ok(h.api.list_marketing_recipients(Request::new(request)).await?.into_inner())
}

/// Every page of `owner`'s listing, each page's length checked against `page_size`.
async fn all(h: &Harness, owner: &str, page_size: i32) -> Vec<pb::MarketingRecipient> {
    let full = if page_size == 0 { 500 } else { page_size as usize };
    let mut recipients = Vec::new();
    let mut token = String::new();
    for _ in 0..10_000 {
        let p = page(h, owner, page_size, &token).await.expect("a page");
        if !p.next_page_token.is_empty() {
            assert_eq!(p.recipients.len(), full, "only the last page is short");
        }
        recipients.extend(p.recipients);
        if p.next_page_token.is_empty() {
            return recipients;
        }
        token = p.next_page_token;
    }
    panic!("the listing of {owner} never ends");
}

fn phones(recipients: &[pb::MarketingRecipient]) -> Vec<String> {
    recipients.iter().map(|r| r.phone.clone()).collect()
}

/// `phone(i)` as the listing writes it: national digits.
fn digits(i: usize) -> String {
    phone(i).replace('-', "")
}

fn millis(t: &prost_types::Timestamp) -> i64 {
    t.seconds * 1000 + i64::from(t.nanos / 1_000_000)
}

/// A published event of `owner`.
fn event_of(h: &Harness, owner: &str) -> String {
    let mut e: GetEventForParticipationResponse = event(EventStatus::Published);
    e.owner_id = owner.to_owned();
    h.add(e)
}

/// Participant `i` entering `event_id`, answering the marketing question with `granted` (not
/// asked when `None`).
fn answering(event_id: &str, i: usize, granted: Option<bool>) -> pb::EnterRequest {
    let mut request = entry(event_id, "참가자", &phone(i));
    request.marketing_consent = granted.map(|granted| pb::Consent { granted, ..marketing_consent() });
    request
}

/// Enters `i` into `event_id` and moves the clock on, so that every entry has its own receive
/// time and "latest" is what the test means.
async fn enter_at(h: &Harness, clock: &ManualClock, event_id: &str, i: usize, granted: Option<bool>) -> pb::Entry {
    clock.advance(Duration::from_millis(10));
    h.enter(answering(event_id, i, granted)).await.expect("enter")
}

/// Consents, declines, the latest answer, withdrawals, anonymization, blocks and owners.
async fn the_latest_answer_of_each_number_decides(h: &Harness, clock: &ManualClock) {
    let a = event_of(h, OWNER);
    let b = event_of(h, OWNER);
    let c = event_of(h, OTHER);
    let d = event_of(h, OWNER);

    let p0 = enter_at(h, clock, &a, 0, Some(true)).await;
    enter_at(h, clock, &a, 1, Some(false)).await;
    // Granted, then declined later in another of the owner's events: removed.
    enter_at(h, clock, &a, 2, Some(true)).await;
    enter_at(h, clock, &b, 2, Some(false)).await;
    // Declined, then granted later: kept, with the later consent's time.
    enter_at(h, clock, &a, 3, Some(false)).await;
    let p3 = enter_at(h, clock, &b, 3, Some(true)).await;
    // Granted, then an event that did not ask: the consent stands.
    let p4 = enter_at(h, clock, &a, 4, Some(true)).await;
    enter_at(h, clock, &b, 4, None).await;
    // Granted here, declined later with another owner: each owner's answers are their own.
    let p5 = enter_at(h, clock, &a, 5, Some(true)).await;
    enter_at(h, clock, &c, 5, Some(false)).await;
    // Only another owner's participant.
    let p6 = enter_at(h, clock, &c, 6, Some(true)).await;
    // Granted, then withdrawn: the entry no longer holds the number.
    let p7 = enter_at(h, clock, &a, 7, Some(true)).await;
    // Declined, then granted and withdrawn: the withdrawal takes the consent along.
    enter_at(h, clock, &a, 8, Some(false)).await;
    let p8 = enter_at(h, clock, &b, 8, Some(true)).await;
    // Granted in one event, blocked by the owner in another: left out entirely.
    enter_at(h, clock, &a, 9, Some(true)).await;
    let p9 = enter_at(h, clock, &b, 9, None).await;
    // Granted in an event whose personal data was erased.
    enter_at(h, clock, &d, 10, Some(true)).await;
    // Granted in both of the owner's events: listed once, for the latest consent.
    enter_at(h, clock, &a, 11, Some(true)).await;
    let p11 = enter_at(h, clock, &b, 11, Some(true)).await;
    // The other owner shares numbers 0 and 11 with consents of their own.
    let c0 = enter_at(h, clock, &c, 0, Some(true)).await;
    let c11 = enter_at(h, clock, &c, 11, Some(true)).await;

    let repo = h.api.core().repository();
    for (event_id, e) in [(&a, &p7), (&b, &p8)] {
        repo.withdraw(event_id, &e.entry_id, clock.now_ms()).await.expect("withdraw");
    }
    let block = pb::BlockParticipantRequest {
        event_id: b.clone(),
        phone: String::new(),
        entry_id: p9.entry_id.clone(),
        reason: "경품 악용".into(),
    };
    h.api.block_participant(as_owner(OWNER, block)).await.expect("block");
    h.events.set_status(&d, EventStatus::Ended);
    assert_eq!(h.anonymize(&d, None).await.expect("anonymize"), 1);

    let mine = all(h, OWNER, 0).await;
    assert_eq!(phones(&mine), [digits(0), digits(3), digits(4), digits(5), digits(11)]);
    let consent_of = |e: &pb::Entry| e.create_time.as_ref().map(millis);
    let times: Vec<Option<i64>> = mine.iter().map(|r| r.consent_time.as_ref().map(millis)).collect();
    assert_eq!(times, [consent_of(&p0), consent_of(&p3), consent_of(&p4), consent_of(&p5), consent_of(&p11)]);

    let theirs = all(h, OTHER, 0).await;
    assert_eq!(phones(&theirs), [digits(0), digits(6), digits(11)], "number 5 declined with them");
    let times: Vec<Option<i64>> = theirs.iter().map(|r| r.consent_time.as_ref().map(millis)).collect();
    assert_eq!(times, [consent_of(&c0), consent_of(&p6), consent_of(&c11)]);

    assert!(all(h, "owner-without-events", 0).await.is_empty(), "an unknown owner has nobody");
}

#[tokio::test]
async fn the_latest_answer_of_each_number_decides_on_postgres() {
    let clock = ManualClock::starting_now();
    let h = Harness::with_clock(test_config(), Arc::new(clock.clone())).await;
    the_latest_answer_of_each_number_decides(&h, &clock).await;
    h.cleanup().await;
}

#[tokio::test]
async fn the_latest_answer_of_each_number_decides_on_sqlite() {
    let clock = ManualClock::starting_now();
    let h = Harness::sqlite_with_clock(Arc::new(clock.clone())).await;
    the_latest_answer_of_each_number_decides(&h, &clock).await;
    h.cleanup().await;
}

/// 1,200 recipients of one owner over two events (600 numbers in both), and another owner's 50
/// consenting numbers (30 of them shared): every page size pages each exactly once, in order.
async fn pages_cover_each_recipient_once_in_order(h: &Harness) {
    let a = event_of(h, OWNER);
    let b = event_of(h, OWNER);
    let c = event_of(h, OTHER);
    let requests = (0..1200)
        .map(|i| answering(&a, i, Some(true)))
        .chain((0..600).map(|i| answering(&b, i, Some(true))))
        .chain((1170..1220).map(|i| answering(&c, i, Some(true))));
    let entered: Vec<Result<pb::Entry, Status>> =
        stream::iter(requests).map(|request| h.enter(request)).buffer_unordered(8).collect().await;
    assert!(entered.iter().all(Result::is_ok), "every entry is accepted");

    let expected: Vec<String> = {
        let set: BTreeSet<String> = (0..1200).map(digits).collect();
        set.into_iter().collect()
    };
    for size in [0, 1000, 7] {
        let listed = phones(&all(h, OWNER, size).await);
        assert_eq!(listed.len(), 1200, "page size {size}");
        assert!(listed.windows(2).all(|w| w[0] < w[1]), "ascending, no repeats (page size {size})");
        assert_eq!(listed, expected, "page size {size}");
    }
    let first = page(h, OWNER, 0, "").await.expect("first page");
    assert_eq!(first.recipients.len(), 500, "0 means 500");
    let others: Vec<String> = (1170..1220).map(digits).collect();
    assert_eq!(phones(&all(h, OTHER, 1000).await), others);

    // A token is bound to its owner: the other owner's listing refuses it.
    let refused = expect_code(page(h, OTHER, 0, &first.next_page_token).await, Code::InvalidArgument);
    assert_eq!(violations(&refused), ["pageToken"]);
}

#[tokio::test]
async fn pages_cover_each_recipient_once_in_order_on_postgres() {
    let h = Harness::new().await;
    pages_cover_each_recipient_once_in_order(&h).await;
    h.cleanup().await;
}

#[tokio::test]
async fn pages_cover_each_recipient_once_in_order_on_sqlite() {
    let h = Harness::sqlite().await;
    pages_cover_each_recipient_once_in_order(&h).await;
    h.cleanup().await;
}

/// Entries stored before participation recorded owners (migration 0007) join the listing once the
/// owner opens their event again.
async fn events_learned_again_bring_their_older_entries(h: &Harness) {
    let id = event_of(h, OWNER);
    h.enter(answering(&id, 1, Some(true))).await.expect("enter");
    assert_eq!(phones(&all(h, OWNER, 0).await), [digits(1)], "recorded with the entry");
    // As before the migration: no owner recorded.
    kem_kit::store::query("DELETE FROM event_owners WHERE event_id = $1")
        .bind(id.clone())
        .execute(h.store())
        .await
        .expect("forget the owner");
    assert!(all(h, OWNER, 0).await.is_empty());
    h.list(OWNER, &id, 0, "").await.expect("the owner opens the event");
    assert_eq!(phones(&all(h, OWNER, 0).await), [digits(1)]);
    assert_eq!(h.api.core().repository().event_owner(&id).await.expect("owner"), Some(OWNER.to_owned()));
}

#[tokio::test]
async fn events_learned_again_bring_their_older_entries_on_postgres() {
    let h = Harness::new().await;
    events_learned_again_bring_their_older_entries(&h).await;
    h.cleanup().await;
}

#[tokio::test]
async fn events_learned_again_bring_their_older_entries_on_sqlite() {
    let h = Harness::sqlite().await;
    events_learned_again_bring_their_older_entries(&h).await;
    h.cleanup().await;
}

/// Owner ids, page sizes and page tokens nobody issued.
async fn hostile_requests_are_invalid_arguments(h: &Harness) {
    let id = event_of(h, OWNER);
    for i in 0..3 {
        h.enter(answering(&id, i, Some(true))).await.expect("enter");
    }
    let first = page(h, OWNER, 2, "").await.expect("first page");
    assert_eq!(first.recipients.len(), 2);
    assert!(!first.next_page_token.is_empty());

    let long_owner = "o".repeat(65);
    for owner in ["", " ", "owner-1\0", "owner-1\n", "\u{7}owner", "../owner-1", "ówner", "owner 1", &long_owner] {
        let refused = expect_code(page(h, owner, 0, "").await, Code::InvalidArgument);
        assert_eq!(violations(&refused), ["ownerId"], "{owner:?}");
    }
    for size in [-1, 1001, i32::MIN, i32::MAX] {
        let refused = expect_code(page(h, OWNER, size, "").await, Code::InvalidArgument);
        assert_eq!(violations(&refused), ["pageSize"], "{size}");
    }
    assert!(page(h, OWNER, 1000, "").await.is_ok(), "1000 is allowed");

    let mut edited = first.next_page_token.clone().into_bytes();
    let middle = edited.len() / 2;
    edited[middle] = if edited[middle] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).expect("ASCII");
    let truncated = &first.next_page_token[..first.next_page_token.len() - 3];
    let garbage = "A".repeat(80);
    let too_long = "A".repeat(200);
    let far_too_long = "A".repeat(5000);
    for token in [
        "!!!",
        "AAAA",
        "\u{1}",
        "token\n",
        "tok\0en",
        "가나다",
        edited.as_str(),
        truncated,
        &garbage,
        &too_long,
        &far_too_long,
    ] {
        let refused = expect_code(page(h, OWNER, 0, token).await, Code::InvalidArgument);
        assert_eq!(violations(&refused), ["pageToken"], "{token:?}");
    }
    // Everything wrong at once is reported at once.
    let refused = expect_code(page(h, "", 0, "!!!").await, Code::InvalidArgument);
    assert_eq!(violations(&refused), ["ownerId", "pageToken"]);

    let rest = page(h, OWNER, 2, &first.next_page_token).await.expect("the issued token works");
    assert_eq!(phones(&rest.recipients), [digits(2)]);
    assert_eq!(rest.next_page_token, "");
}

#[tokio::test]
async fn hostile_requests_are_invalid_arguments_on_postgres() {
    let h = Harness::new().await;
    hostile_requests_are_invalid_arguments(&h).await;
    h.cleanup().await;
}

#[tokio::test]
async fn hostile_requests_are_invalid_arguments_on_sqlite() {
    let h = Harness::sqlite().await;
    hostile_requests_are_invalid_arguments(&h).await;
    h.cleanup().await;
}

/// Concurrent listings of one owner while entries arrive agree on what was committed before.
#[tokio::test]
async fn concurrent_listings_of_one_owner_agree() {
    let h = Harness::new().await;
    let id = event_of(&h, OWNER);
    for i in 0..20 {
        h.enter(answering(&id, i, Some(i % 2 == 0))).await.expect("enter");
    }
    let listings = futures_util::future::join_all((0..8).map(|_| all(&h, OWNER, 3))).await;
    let expected: Vec<String> = (0..20).filter(|i| i % 2 == 0).map(digits).collect();
    for listing in listings {
        assert_eq!(phones(&listing), expected);
    }
    h.cleanup().await;
}

/// Over the mesh with the contracts' policy: distribution may call it; the event service and the
/// gateway (even with an owner's metadata) may not.
#[tokio::test]
async fn only_distribution_may_list_marketing_recipients() {
    let mut h = Harness::new().await;
    h.serve().await;
    let id = event_of(&h, OWNER);
    h.enter(answering(&id, 1, Some(true))).await.expect("enter");
    let request = pb::ListMarketingRecipientsRequest { owner_id: OWNER.to_owned(), ..Default::default() };

    let mut distribution = h.client("distribution").await;
    let listed = distribution
        .list_marketing_recipients(Request::new(request.clone()))
        .await
        .expect("distribution may list")
        .into_inner();
    assert_eq!(phones(&listed.recipients), [digits(1)]);
    let bad = pb::ListMarketingRecipientsRequest { owner_id: String::new(), ..Default::default() };
    let refused = expect_code(distribution.list_marketing_recipients(Request::new(bad)).await, Code::InvalidArgument);
    assert_eq!(violations(&refused), ["ownerId"], "field violations cross the wire");

    for who in ["event", "analytics", "participation"] {
        let mut client = h.client(who).await;
        expect_code(client.list_marketing_recipients(Request::new(request.clone())).await, Code::PermissionDenied);
    }
    let mut gateway = h.client("gateway").await;
    expect_code(gateway.list_marketing_recipients(Request::new(request.clone())).await, Code::PermissionDenied);
    expect_code(gateway.list_marketing_recipients(as_owner(OWNER, request)).await, Code::PermissionDenied);
    h.cleanup().await;
}
