//! ListParticipants: masked personal data, oldest first, keyset pages with opaque tokens, owner
//! scoping.

use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use tonic::{Code, Request};

use crate::support::*;

#[tokio::test]
async fn owners_page_through_masked_entries_oldest_first() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let names = ["김민수", "이수", "남궁민수", "박", "John Smith", "최지우", "정하늘"];
    let mut entered = Vec::new();
    for (i, name) in names.iter().enumerate() {
        entered.push(h.enter(entry(&id, name, &phone(i))).await.expect("enter"));
    }

    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = h.list(OWNER, &id, 3, &token).await.expect("page");
        assert_eq!(page.total_size, if pages.is_empty() { 7 } else { 8 });
        pages.push(page.entries.len());
        for e in &page.entries {
            assert!(!e.masked_phone.is_empty());
        }
        let done = page.next_page_token.is_empty();
        token = page.next_page_token;
        // A new entry while paging does not shift the pages already issued.
        if pages.len() == 1 {
            h.enter(entry(&id, "새참가자", &phone(100))).await.expect("enter while paging");
        }
        if done {
            break;
        }
    }
    assert_eq!(pages, [3, 3, 2]);
    let all = h.all_entries(&id).await;
    assert_eq!(
        all.iter().map(|e| e.masked_name.as_str()).collect::<Vec<_>>(),
        ["김*수", "이*", "남**수", "*", "J********h", "최*우", "정*늘", "새**자"]
    );
    assert_eq!(all[0].masked_phone, "010-****-0000");
    assert_eq!(all[1].masked_phone, "010-****-0001");
    assert_eq!(&all[..7], &entered[..], "the listing matches what Enter returned, in order");

    let default = h.list(OWNER, &id, 0, "").await.expect("default size");
    assert_eq!((default.entries.len(), default.next_page_token.as_str()), (8, ""));
    h.cleanup().await;
}

#[tokio::test]
async fn tokens_sizes_and_owners_are_checked() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let other_event = h.add(event(EventStatus::Published));
    h.enter_many(&id, 3).await;
    let page = h.list(OWNER, &id, 1, "").await.expect("page");
    assert!(!page.next_page_token.is_empty());

    let foreign = expect_code(h.list(OWNER, &other_event, 1, &page.next_page_token).await, Code::InvalidArgument);
    assert_eq!(violations(&foreign), ["pageToken"]);
    let garbage = expect_code(h.list(OWNER, &id, 1, "not-a-token").await, Code::InvalidArgument);
    assert_eq!(violations(&garbage), ["pageToken"]);
    let negative = expect_code(h.list(OWNER, &id, -1, "").await, Code::InvalidArgument);
    assert_eq!(violations(&negative), ["pageSize"]);
    let big = h.list(OWNER, &id, 10_000, "").await.expect("coerced to 500");
    assert_eq!(big.entries.len(), 3);

    let hidden = expect_code(h.list(OTHER, &id, 10, "").await, Code::NotFound);
    assert_eq!(reason(&hidden), "EVENT_NOT_FOUND");
    let absent = expect_code(h.list(OWNER, &uuid::Uuid::new_v4().to_string(), 10, "").await, Code::NotFound);
    assert_eq!(reason(&absent), "EVENT_NOT_FOUND");
    let anonymous = h
        .api
        .list_participants(Request::new(pb::ListParticipantsRequest { event_id: id.clone(), ..Default::default() }))
        .await;
    expect_code(anonymous, Code::Unauthenticated);
    h.cleanup().await;
}

fn millis_of(e: &pb::Entry) -> i64 {
    e.create_time.as_ref().map(|t| t.seconds * 1000 + i64::from(t.nanos / 1_000_000)).unwrap_or_default()
}

#[tokio::test]
async fn listing_create_time_and_first_come_are_one_order() {
    use futures_util::StreamExt as _;
    use kem_proto::kem::common::v1 as common;

    let h = Harness::new().await;
    let other = h.replica(test_config()).await;
    let mut e = event(EventStatus::Published);
    e.participation_method = common::ParticipationMethod::FirstCome as i32;
    if let Some(prize) = e.prize.as_mut() {
        prize.winner_count = 1_000;
    }
    let id = h.add(e);
    // Concurrent entries on two replicas: receive times are taken before the database insert, so
    // insert order and receive order disagree here unless one order is used everywhere.
    let replicas = [h.api.clone(), other];
    let entered: Vec<pb::Entry> = futures_util::stream::iter(0..240usize)
        .map(|i| {
            let api = replicas[i % 2].clone();
            let id = id.clone();
            async move { enter_via(&api, entry(&id, &format!("참가자{i}"), &phone(i))).await.expect("enter") }
        })
        .buffer_unordered(48)
        .collect()
        .await;

    // The listing (paged small, so the cursor is exercised) is in create_time order, ties by id.
    let mut listed = Vec::new();
    let mut token = String::new();
    loop {
        let page = h.list(OWNER, &id, 7, &token).await.expect("page");
        listed.extend(page.entries);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(listed.len(), entered.len());
    let keys: Vec<(i64, &str)> = listed.iter().map(|e| (millis_of(e), e.entry_id.as_str())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "ListParticipants is ordered by (create_time, entry_id)");
    // Each entry is listed with the create_time Enter returned.
    for e in &entered {
        let shown = listed.iter().find(|l| l.entry_id == e.entry_id).expect("listed");
        assert_eq!(shown.create_time, e.create_time);
    }

    // First-come winners are the listing's first entries, in the same order.
    h.events.set_status(&id, EventStatus::Ended);
    let drawn = h.draw(OWNER, draw_request(&id, 100)).await.expect("draw");
    let winners: Vec<&str> = drawn.winners.iter().map(|w| w.entry_id.as_str()).collect();
    let earliest: Vec<&str> = listed.iter().take(100).map(|e| e.entry_id.as_str()).collect();
    assert_eq!(winners, earliest);
    h.cleanup().await;
}
