//! Per-event block lists: a phone blocked by number or through an entry is refused by Enter
//! (BLOCKED), flagged in listings and left out of every later draw (recorded with the draw's
//! exclusions, so the audit still replays); blocking is idempotent, unblocking too; hostile input
//! names its field; another owner's event is NOT_FOUND for every owner RPC of this work; and
//! anonymization erases the blocks' phone data while they keep working.

use kem_participation::{record_from_audit, verify_draw};
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use tonic::{Code, Status};

use crate::exports::{export_as, list_exports};
use crate::support::*;

fn by_phone(event_id: &str, phone: &str, reason: &str) -> pb::BlockParticipantRequest {
    pb::BlockParticipantRequest {
        event_id: event_id.to_owned(),
        phone: phone.to_owned(),
        entry_id: String::new(),
        reason: reason.to_owned(),
    }
}

fn by_entry(event_id: &str, entry_id: &str) -> pb::BlockParticipantRequest {
    pb::BlockParticipantRequest {
        event_id: event_id.to_owned(),
        phone: String::new(),
        entry_id: entry_id.to_owned(),
        reason: "중복 계정".into(),
    }
}

async fn block(h: &Harness, owner: &str, request: pb::BlockParticipantRequest) -> Result<pb::Block, Status> {
    Ok(h.api.block_participant(as_owner(owner, request)).await?.into_inner().block.unwrap_or_default())
}

async fn blocks(h: &Harness, owner: &str, event_id: &str) -> Result<Vec<pb::Block>, Status> {
    let request = pb::ListBlocksRequest { event_id: event_id.to_owned() };
    Ok(h.api.list_blocks(as_owner(owner, request)).await?.into_inner().blocks)
}

async fn unblock(h: &Harness, owner: &str, event_id: &str, block_id: &str) -> Result<(), Status> {
    let request = pb::UnblockParticipantRequest { event_id: event_id.to_owned(), block_id: block_id.to_owned() };
    h.api.unblock_participant(as_owner(owner, request)).await.map(|_| ())
}

#[tokio::test]
async fn a_blocked_phone_is_refused_until_unblocked() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let first = block(&h, OWNER, by_phone(&id, "010 1234 5678", "경품 되팔이")).await.expect("block");
    assert_eq!(
        (first.masked_phone.as_str(), first.reason.as_str(), first.entry_id.as_str()),
        ("010-****-5678", "경품 되팔이", "")
    );
    assert_eq!(first.event_id, id);
    let again = block(&h, OWNER, by_phone(&id, "+821012345678", "다른 메모")).await.expect("block again");
    assert_eq!(again, first, "blocking a blocked phone answers with the existing block");

    let refused = expect_code(h.enter(entry(&id, "김민수", "01012345678")).await, Code::FailedPrecondition);
    assert_eq!(reason(&refused), "BLOCKED");
    assert!(!refused.message().contains("5678"));
    h.enter(entry(&id, "이영희", &phone(1))).await.expect("other phones still enter");
    assert_eq!(blocks(&h, OWNER, &id).await.expect("list"), std::slice::from_ref(&first));

    unblock(&h, OWNER, &id, &first.block_id).await.expect("unblock");
    unblock(&h, OWNER, &id, &first.block_id).await.expect("unblocking again is OK");
    assert!(blocks(&h, OWNER, &id).await.expect("list").is_empty());
    let entered = h.enter(entry(&id, "김민수", "010-1234-5678")).await.expect("unblocked: enters");
    assert!(!entered.blocked);
    // The removed block keeps no phone data.
    let rows = kem_kit::store::query("SELECT phone_hash, masked_phone, reason FROM blocks WHERE id = $1")
        .bind(first.block_id.clone())
        .fetch_one(h.store().primary())
        .await
        .expect("row");
    let (hash, masked, note): (String, String, String) =
        (rows.get("phone_hash").expect("h"), rows.get("masked_phone").expect("m"), rows.get("reason").expect("r"));
    assert_eq!((hash.starts_with("removed:"), masked.as_str(), note.as_str()), (true, "", ""));

    // Newest first.
    let a = block(&h, OWNER, by_phone(&id, &phone(7), "")).await.expect("a");
    let b = block(&h, OWNER, by_phone(&id, &phone(8), "")).await.expect("b");
    let listed: Vec<String> = blocks(&h, OWNER, &id).await.expect("list").into_iter().map(|b| b.block_id).collect();
    assert!(listed == [b.block_id.clone(), a.block_id.clone()] || a.create_time == b.create_time, "{listed:?}");
    h.cleanup().await;
}

#[tokio::test]
async fn blocked_entries_are_flagged_and_left_out_of_every_draw() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let entries = h.enter_many(&id, 5).await;
    let blocked = [&entries[0], &entries[3]];
    for e in blocked {
        let made = block(&h, OWNER, by_entry(&id, &e.entry_id)).await.expect("block by entry");
        assert_eq!(
            (made.entry_id.as_str(), made.masked_phone.as_str()),
            (e.entry_id.as_str(), e.masked_phone.as_str())
        );
    }
    let again = expect_code(h.enter(entry(&id, "참가자0", &phone(0))).await, Code::FailedPrecondition);
    assert_eq!(reason(&again), "BLOCKED", "the phone of a blocked entry is refused (not DUPLICATE_ENTRY)");
    let flags: Vec<bool> = h.all_entries(&id).await.iter().map(|e| e.blocked).collect();
    assert_eq!(flags, [true, false, false, true, false]);

    h.events.set_status(&id, EventStatus::Ended);
    // Three prizes, three eligible entries: exactly those win, whatever the seed.
    let drawn = h.draw(OWNER, draw_request(&id, 3)).await.expect("draw");
    let mut winners: Vec<String> = drawn.winners.iter().map(|w| w.entry_id.clone()).collect();
    winners.sort_unstable();
    let mut eligible = vec![entries[1].entry_id.clone(), entries[2].entry_id.clone(), entries[4].entry_id.clone()];
    eligible.sort_unstable();
    assert_eq!(winners, eligible);
    let audit = drawn.audit.clone().expect("audit");
    assert_eq!(audit.entry_count, 3);
    let mut excluded = vec![entries[0].entry_id.clone(), entries[3].entry_id.clone()];
    excluded.sort_unstable();
    assert_eq!(audit.excluded_entry_ids, excluded, "blocked entries are recorded with the exclusions");
    // The audit replays over all the event's entries, as anyone verifying it has them.
    let all: Vec<&str> = entries.iter().map(|e| e.entry_id.as_str()).collect();
    assert_eq!(verify_draw(&record_from_audit(&audit), &all).expect("verifies"), winners_in_order(&drawn));
    // A redraw asking for more than the eligible entries is refused: blocked ones never count.
    let mut redraw = draw_request(&id, 4);
    redraw.redraw = true;
    let too_many = expect_code(h.draw(OWNER, redraw).await, Code::InvalidArgument);
    assert_eq!(violations(&too_many), ["count"]);
    // Naming a blocked entry among the exclusions is fine (it is an entry of the event).
    let mut redraw = draw_request(&id, 1);
    redraw.redraw = true;
    redraw.exclude_entry_ids = vec![entries[0].entry_id.clone(), entries[1].entry_id.clone()];
    let second = h.draw(OWNER, redraw).await.expect("redraw");
    assert!(second.winners.iter().all(|w| w.entry_id != entries[0].entry_id && w.entry_id != entries[3].entry_id));
    h.cleanup().await;
}

/// An export request without reveal.
fn masked(event_id: &str, kind: pb::ExportKind) -> pb::ExportParticipantsRequest {
    pb::ExportParticipantsRequest { event_id: event_id.to_owned(), kind: kind as i32, reveal: false }
}

fn winners_in_order(drawn: &pb::DrawWinnersResponse) -> Vec<String> {
    drawn.winners.iter().map(|w| w.entry_id.clone()).collect()
}

#[tokio::test]
async fn anonymization_erases_block_data_and_the_blocks_keep_working() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let entries = h.enter_many(&id, 4).await;
    block(&h, OWNER, by_entry(&id, &entries[1].entry_id)).await.expect("block an entry");
    block(&h, OWNER, by_phone(&id, "010-9999-8888", "김철수 — 지난 이벤트 부정 응모")).await.expect("block a number");
    h.events.set_status(&id, EventStatus::Ended);
    h.draw(OWNER, draw_request(&id, 1)).await.expect("draw");

    assert_eq!(h.anonymize(&id, None).await.expect("anonymize"), 4);
    let listed = blocks(&h, OWNER, &id).await.expect("blocks stay listed");
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|b| b.masked_phone.is_empty() && b.reason.is_empty()), "{listed:#?}");
    let rows = kem_kit::store::query("SELECT phone_hash FROM blocks WHERE event_id = $1")
        .bind(id.clone())
        .fetch_all(h.store().primary())
        .await
        .expect("rows");
    let hashes: Vec<String> = rows.iter().map(|r| r.get("phone_hash").expect("hash")).collect();
    assert!(hashes.iter().all(|h| h.starts_with("anonymized")), "no phone hash survives: {hashes:?}");
    // The blocked entry stays blocked (its block follows its anonymized hash) and out of draws.
    let flags: Vec<bool> = h.all_entries(&id).await.iter().map(|e| e.blocked).collect();
    assert_eq!(flags, [false, true, false, false]);
    let mut redraw = draw_request(&id, 3);
    redraw.redraw = true;
    let drawn = h.draw(OWNER, redraw).await.expect("redraw");
    assert!(drawn.winners.iter().all(|w| w.entry_id != entries[1].entry_id));
    // Nothing personal can be added back: blocking after the erasure is refused.
    let late = expect_code(block(&h, OWNER, by_phone(&id, &phone(1), "")).await, Code::FailedPrecondition);
    assert_eq!(reason(&late), "DATA_ERASED");
    let erased_entry =
        expect_code(block(&h, OWNER, by_entry(&id, &entries[2].entry_id)).await, Code::FailedPrecondition);
    assert_eq!(reason(&erased_entry), "DATA_ERASED");
    h.cleanup().await;
}

#[tokio::test]
async fn hostile_block_input_names_its_field() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let e = h.enter(entry(&id, "김민수", &phone(1))).await.expect("enter");
    let calls = h.events.calls();
    let long = "가".repeat(201);
    for (request, field) in [
        (by_phone(&id, &phone(2), &long), "reason"),
        (by_phone(&id, &phone(2), "메모\u{0}"), "reason"),
        (by_phone(&id, &phone(2), "줄\n바꿈"), "reason"),
        (by_phone(&id, &phone(2), "\u{202e}reversed"), "reason"),
        (by_phone(&id, &phone(2), "\u{1b}[31m"), "reason"),
        (by_phone(&id, "010-1234\u{0}-5678", ""), "phone"),
        (by_entry(&id, "not-a-uuid"), "entryId"),
        (by_entry(&id, &"x".repeat(16_000)), "entryId"),
        (by_entry(&id, "../../etc/passwd"), "entryId"),
        (by_phone("ev\u{0}il", &phone(2), ""), "eventId"),
    ] {
        let status = expect_code(block(&h, OWNER, request).await, Code::InvalidArgument);
        assert!(violations(&status).contains(&field.to_owned()), "{field}: {:?}", violations(&status));
        assert!(status.message().len() < 1_000, "no echo of the input");
    }
    assert_eq!(h.events.calls(), calls, "refused before the event service was asked");
    assert!(blocks(&h, OWNER, &id).await.expect("list").is_empty(), "nothing was stored");
    block(&h, OWNER, by_phone(&id, &phone(2), &"가".repeat(200))).await.expect("200 characters are fine");

    let neither = expect_code(block(&h, OWNER, by_phone(&id, "", "")).await, Code::InvalidArgument);
    assert_eq!(violations(&neither), ["phone", "entryId"]);
    let mut both = by_entry(&id, &e.entry_id);
    both.phone = phone(1);
    let both = expect_code(block(&h, OWNER, both).await, Code::InvalidArgument);
    assert_eq!(violations(&both), ["phone", "entryId"]);
    let landline = expect_code(block(&h, OWNER, by_phone(&id, "02-123-4567", "")).await, Code::InvalidArgument);
    assert_eq!(violations(&landline), ["phone"]);
    for bad in ["x", "\u{0}", &"1".repeat(5_000)] {
        let status = expect_code(unblock(&h, OWNER, &id, bad).await, Code::InvalidArgument);
        assert_eq!(violations(&status), ["blockId"]);
    }
    let unknown = expect_code(unblock(&h, OWNER, &id, &uuid::Uuid::new_v4().to_string()).await, Code::NotFound);
    assert_eq!(reason(&unknown), "BLOCK_NOT_FOUND");

    // An entry or a block of another event is NOT_FOUND.
    let other = h.add(event(EventStatus::Published));
    let elsewhere = h.enter(entry(&other, "박지성", &phone(3))).await.expect("enter elsewhere");
    let foreign_entry = expect_code(block(&h, OWNER, by_entry(&id, &elsewhere.entry_id)).await, Code::NotFound);
    assert_eq!(reason(&foreign_entry), "ENTRY_NOT_FOUND");
    let other_block = block(&h, OWNER, by_phone(&other, &phone(4), "")).await.expect("block elsewhere");
    expect_code(unblock(&h, OWNER, &id, &other_block.block_id).await, Code::NotFound);
    assert_eq!(blocks(&h, OWNER, &other).await.expect("still there").len(), 1);

    // A well-behaved owner is unharmed meanwhile.
    h.enter(entry(&id, "이영희", &phone(9))).await.expect("entries go on");
    h.cleanup().await;
}

#[tokio::test]
async fn another_owners_event_is_not_found_for_exports_and_blocks() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let e = h.enter(entry(&id, "김민수", &phone(1))).await.expect("enter");
    let made = block(&h, OWNER, by_phone(&id, &phone(2), "")).await.expect("block");
    export_as(&h.api, OWNER, None, masked(&id, pb::ExportKind::Participants)).await.expect("the owner exports");

    for (kind, reveal) in [(pb::ExportKind::Participants, false), (pb::ExportKind::Winners, true)] {
        let request = pb::ExportParticipantsRequest { event_id: id.clone(), kind: kind as i32, reveal };
        let status = expect_code(export_as(&h.api, OTHER, None, request).await, Code::NotFound);
        assert_eq!(reason(&status), "EVENT_NOT_FOUND");
    }
    expect_code(list_exports(&h.api, OTHER, &id, 10, "").await, Code::NotFound);
    expect_code(block(&h, OTHER, by_phone(&id, &phone(5), "")).await, Code::NotFound);
    expect_code(block(&h, OTHER, by_entry(&id, &e.entry_id)).await, Code::NotFound);
    expect_code(blocks(&h, OTHER, &id).await, Code::NotFound);
    expect_code(unblock(&h, OTHER, &id, &made.block_id).await, Code::NotFound);
    // Unknown events answer the same.
    let unknown = uuid::Uuid::new_v4().to_string();
    expect_code(blocks(&h, OWNER, &unknown).await, Code::NotFound);
    // Nothing changed for the owner, and the other owner's attempts left no audit record.
    assert_eq!(blocks(&h, OWNER, &id).await.expect("list"), [made]);
    assert_eq!(list_exports(&h.api, OWNER, &id, 10, "").await.expect("log").exports.len(), 1);
    // No owner at all: UNAUTHENTICATED.
    let anonymous = h.api.list_blocks(tonic::Request::new(pb::ListBlocksRequest { event_id: id.clone() })).await;
    expect_code(anonymous, Code::Unauthenticated);
    h.cleanup().await;
}

#[tokio::test]
async fn blocks_limits_and_exports_hold_on_sqlite() {
    let h = Harness::sqlite().await;
    let id = h.add(crate::address_limit::limited(1));
    let made = block(&h, OWNER, by_phone(&id, &phone(1), "메모")).await.expect("block");
    assert_eq!(block(&h, OWNER, by_phone(&id, &phone(1), "")).await.expect("again").block_id, made.block_id);
    let refused = expect_code(h.enter(entry(&id, "김민수", &phone(1))).await, Code::FailedPrecondition);
    assert_eq!(reason(&refused), "BLOCKED");
    let from = |i: usize| {
        kem_kit::runtime::with_client_ip(tonic::Request::new(entry(&id, "손님", &phone(i))), [198, 51, 100, 1].into())
    };
    h.api.enter(from(2)).await.expect("first from the address");
    let limited = expect_code(h.api.enter(from(3)).await, Code::ResourceExhausted);
    assert_eq!(reason(&limited), "ADDRESS_LIMIT");
    let file = export_as(&h.api, OWNER, Some("r1"), masked(&id, pb::ExportKind::Participants)).await.expect("export");
    assert!(String::from_utf8_lossy(&file.data).contains("010-****-0002"));
    let again = export_as(&h.api, OWNER, Some("r1"), masked(&id, pb::ExportKind::Participants)).await.expect("retry");
    assert_eq!(again.export_id, file.export_id);
    assert_eq!(list_exports(&h.api, OWNER, &id, 10, "").await.expect("log").exports.len(), 1);
    h.events.set_status(&id, EventStatus::Ended);
    h.draw(OWNER, draw_request(&id, 1)).await.expect("draw");
    h.anonymize(&id, None).await.expect("anonymize");
    assert!(blocks(&h, OWNER, &id).await.expect("list").iter().all(|b| b.masked_phone.is_empty()));
    let erased = expect_code(
        export_as(&h.api, OWNER, None, masked(&id, pb::ExportKind::Winners)).await,
        Code::FailedPrecondition,
    );
    assert_eq!(reason(&erased), "DATA_ERASED");
    h.cleanup().await;
}
