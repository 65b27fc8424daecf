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
