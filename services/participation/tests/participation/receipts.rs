//! Receipt codes: ten characters of "23456789ABCDEFGHJKLMNPQRSTUVWXYZ" shown `XXXXX-XXXXX`,
//! unique per event (the store's unique index decides), the same on an idempotent replay, and
//! the participant's alone — never in what the owner sees.

use std::collections::{BTreeMap, HashSet};

use kem_kit::queue::OutgoingMessage;
use kem_participation::domain::event::{EventFacts, EventStatus as Status, Method};
use kem_participation::infra::messages;
use kem_participation::infra::repository::{EntryAdmission, NewEntryRow};
use kem_proto::kem::event::v1::EventStatus;
use prost::Message as _;

use crate::support::*;

const ALPHABET: &str = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const REQUEST: &str = "7d1e0c2b9a8f4e3d";

#[track_caller]
pub fn assert_receipt_shape(code: &str) {
    let (first, second) = code.split_once('-').unwrap_or_else(|| panic!("{code:?} has no separator"));
    for group in [first, second] {
        assert_eq!(group.len(), 5, "{code:?}");
        assert!(group.chars().all(|c| ALPHABET.contains(c)), "{code:?}");
    }
}

/// The stored receipt codes of `event_id`, by entry id.
async fn stored_codes(h: &Harness, event_id: &str) -> BTreeMap<String, Option<String>> {
    let rows = kem_kit::store::query("SELECT id, receipt_code FROM entries WHERE event_id = $1")
        .bind(event_id.to_owned())
        .fetch_all(h.store().primary())
        .await
        .expect("read the receipt codes");
    rows.iter().map(|row| (row.get("id").expect("id"), row.get("receipt_code").expect("receipt_code"))).collect()
}

#[tokio::test]
async fn every_entry_gets_a_receipt_code_of_the_documented_shape_unique_in_its_event() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let mut codes = HashSet::new();
    let mut by_entry = BTreeMap::new();
    for i in 0..200 {
        let response = h.enter_response(None, entry(&id, &format!("참가자{i}"), &phone(i))).await.expect("enter");
        assert_receipt_shape(&response.receipt_code);
        assert!(codes.insert(response.receipt_code.clone()), "a repeated code: {}", response.receipt_code);
        by_entry.insert(response.entry.expect("entry").entry_id, Some(response.receipt_code.replace('-', "")));
    }
    // Stored with the entry, without the separator.
    assert_eq!(stored_codes(&h, &id).await, by_entry);
    // Codes come from a CSPRNG: two hundred of them use (nearly) the whole alphabet, in every position.
    for position in [0, 4, 6, 10] {
        let seen: HashSet<char> = codes.iter().filter_map(|c| c.chars().nth(position)).collect();
        assert!(seen.len() >= 24, "position {position} saw only {} characters", seen.len());
    }
    h.cleanup().await;
}

/// The analytics fact Enter queues with an entry of `event_id`.
pub fn message(event_id: &str, entry_id: &str) -> OutgoingMessage {
    let facts = EventFacts {
        id: event_id.to_owned(),
        owner_id: OWNER.to_owned(),
        status: Status::Published,
        start_ms: None,
        end_ms: None,
        method: Method::Draw,
        winner_count: Some(3),
        prize_unit_value_krw: None,
        channels: Vec::new(),
        terms: None,
        entry_rules: Default::default(),
        claim_days: 0,
        retention_days: 0,
        store_name: String::new(),
        entry_url: String::new(),
        title: String::new(),
        prize_name: String::new(),
    };
    messages::entry_recorded(&facts, entry_id, 0, false, SystemClock.now_ms())
}

pub fn row(event_id: &str, n: usize, receipt_code: &str) -> NewEntryRow {
    NewEntryRow {
        id: uuid::Uuid::new_v4().to_string(),
        event_id: event_id.to_owned(),
        owner_id: OWNER.to_owned(),
        phone_hash: format!("test-phone-hash-{n}"),
        name_sealed: vec![1, 2, 3],
        phone_sealed: vec![4, 5, 6],
        privacy_consent_version: TERMS_VERSION.into(),
        terms_sha256: Some(TERMS_SHA256.into()),
        consented_at_ms: SystemClock.now_ms(),
        marketing_consent: None,
        source_channel: 0,
        created_at_ms: SystemClock.now_ms(),
        request_id: None,
        receipt_code: receipt_code.to_owned(),
        address_quota: None,
    }
}

/// The store is what keeps codes unique per event, whatever the random source does: a taken code
/// stores nothing and is told apart from a duplicate phone, so Enter draws another.
#[tokio::test]
async fn a_taken_receipt_code_stores_nothing_and_is_told_apart_from_a_duplicate() {
    let h = Harness::new().await;
    let (id, other) = (h.add(event(EventStatus::Published)), h.add(event(EventStatus::Published)));
    let repo = h.api.core().repository();
    let admit = |row: NewEntryRow| async move {
        repo.admit_entry(&row, None, message(&row.event_id, &row.id)).await.expect("admit")
    };

    assert_eq!(admit(row(&id, 1, "ABCDE23456")).await, EntryAdmission::Admitted);
    assert_eq!(admit(row(&id, 2, "ABCDE23456")).await, EntryAdmission::ReceiptTaken, "another phone, the same code");
    assert_eq!(admit(row(&id, 1, "ABCDE23456")).await, EntryAdmission::Duplicate, "the phone's entry wins");
    assert_eq!(admit(row(&id, 1, "ZZZZZ99999")).await, EntryAdmission::Duplicate);
    assert_eq!(admit(row(&other, 2, "ABCDE23456")).await, EntryAdmission::Admitted, "unique per event only");
    assert_eq!(admit(row(&id, 2, "ABCDE23457")).await, EntryAdmission::Admitted, "a new code goes in");
    assert_eq!(stored_codes(&h, &id).await.len(), 2);
    assert_eq!(h.analytics(&id).await.len(), 2, "nothing queued for the refused rows");
    h.cleanup().await;
}

#[tokio::test]
async fn a_replayed_request_gets_the_same_receipt_code() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let request = entry(&id, "김민수", "010-1234-5678");
    let first = h.enter_response(Some(REQUEST), request.clone()).await.expect("enter");
    assert_receipt_shape(&first.receipt_code);
    assert_eq!(h.enter_response(Some(REQUEST), request.clone()).await.expect("again"), first, "the same response");
    let copies = (0..10).map(|_| h.enter_response(Some(REQUEST), request.clone()));
    for copy in futures_util::future::join_all(copies).await {
        assert_eq!(copy.expect("a concurrent copy"), first);
    }
    // Even after the event ended.
    h.close(&id).await.expect("close entries");
    assert_eq!(h.enter_response(Some(REQUEST), request.clone()).await.expect("after the end"), first);
    // Another request with the phone learns nothing of the code.
    let refused = h.enter_response(Some("another"), request).await.expect_err("not a replay");
    assert!(!refused.message().contains(&first.receipt_code) && !refused.message().contains(&first.receipt_code[..5]));
    h.cleanup().await;
}

#[tokio::test]
async fn receipt_codes_never_appear_in_what_the_owner_sees() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let mut codes = Vec::new();
    for i in 0..5 {
        let response = h.enter_response(None, entry(&id, &format!("참가자{i}"), &phone(i))).await.expect("enter");
        codes.push(response.receipt_code);
    }
    h.events.set_status(&id, EventStatus::Ended);
    let drawn = h.draw(OWNER, draw_request(&id, 2)).await.expect("draw");
    let listed = h.list(OWNER, &id, 50, "").await.expect("list");
    let winners = h.winners(OWNER, &id).await.expect("winners");
    let public = h.public_winners(&id).await.expect("public winners");
    let seen = [
        format!("{listed:?}"),
        format!("{drawn:?}"),
        format!("{winners:?}"),
        format!("{public:?}"),
        String::from_utf8_lossy(&listed.encode_to_vec()).into_owned(),
        String::from_utf8_lossy(&winners.encode_to_vec()).into_owned(),
    ];
    for code in &codes {
        for (i, text) in seen.iter().enumerate() {
            assert!(!text.contains(code.as_str()) && !text.contains(&code.replace('-', "")), "{code} in answer {i}");
        }
    }
    h.cleanup().await;
}
