//! The same service on embedded SQLite (`kem up`): same migrations, same SQL.

use kem_participation::{record_from_audit, verify_draw};
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::participation::v1 as pb;
use tonic::Code;

use crate::support::*;

#[tokio::test]
async fn the_whole_flow_runs_on_sqlite() {
    let h = Harness::sqlite().await;
    let mut first_come = event(EventStatus::Published);
    first_come.participation_method = common::ParticipationMethod::FirstCome as i32;
    let capped = h.add(first_come);
    let id = h.add(event(EventStatus::Published));

    let entries = h.enter_many(&id, 7).await;
    let dup = expect_code(h.enter(entry(&id, "중복", &phone(3).replace('-', ""))).await, Code::AlreadyExists);
    assert_eq!(reason(&dup), "DUPLICATE_ENTRY");
    h.enter_many(&capped, 3).await;
    let full = expect_code(h.enter(entry(&capped, "늦은이", &phone(9))).await, Code::FailedPrecondition);
    assert_eq!(reason(&full), "EVENT_FULL");

    let page = h.list(OWNER, &id, 5, "").await.expect("page");
    assert_eq!((page.entries.len(), page.total_size), (5, 7));
    let rest = h.list(OWNER, &id, 5, &page.next_page_token).await.expect("page 2");
    assert_eq!((rest.entries.len(), rest.next_page_token.as_str()), (2, ""));
    assert_eq!(page.entries[0].masked_name, "참**0");

    h.events.set_status(&id, EventStatus::Ended);
    let drawn = h.draw(OWNER, draw_request(&id, 3)).await.expect("draw");
    let audit = drawn.audit.clone().expect("audit");
    let ids: Vec<&str> = entries.iter().map(|e| e.entry_id.as_str()).collect();
    assert_eq!(
        verify_draw(&record_from_audit(&audit), &ids).expect("verifies"),
        drawn.winners.iter().map(|w| w.entry_id.clone()).collect::<Vec<_>>()
    );
    expect_code(h.draw(OWNER, draw_request(&id, 3)).await, Code::AlreadyExists);
    let redraw = pb::DrawWinnersRequest { redraw: true, ..draw_request(&id, 2) };
    let second = h.draw(OWNER, redraw).await.expect("redraw");
    assert_eq!(second.audit.map(|a| a.redraw_of), Some(audit.draw_id));
    expect_code(h.enter(entry(&id, "늦은이", &phone(20))).await, Code::FailedPrecondition);

    assert_eq!(h.anonymize(&id, None).await.expect("anonymize"), 7);
    assert!(h.all_entries(&id).await.iter().all(|e| e.anonymized && e.masked_phone.is_empty()));
    assert_eq!(h.analytics(&id).await.len(), 7 + 2, "seven entries and two draws reported");
    h.cleanup().await;
}

#[tokio::test]
async fn ending_closes_entries_at_once_on_sqlite() {
    let h = Harness::sqlite().await;
    let id = h.add(event(EventStatus::Published));
    let before = h.enter_many(&id, 3).await;
    let closed_at = h.close(&id).await.expect("close entries");
    let refused = expect_code(h.enter(entry(&id, "늦은이", &phone(20))).await, Code::FailedPrecondition);
    assert_eq!(
        (reason(&refused), metadata(&refused, "status")),
        ("EVENT_NOT_OPEN".into(), "EVENT_STATUS_ENDED".into())
    );
    assert_eq!(h.close(&id).await.expect("close again"), closed_at);
    // The gate's word is enough for the draw; its candidates are the three accepted entries.
    let drawn = h.draw(OWNER, draw_request(&id, 1)).await.expect("draw");
    let ids: Vec<&str> = before.iter().map(|e| e.entry_id.as_str()).collect();
    let audit = drawn.audit.expect("audit");
    assert_eq!(audit.entry_snapshot_sha256, kem_participation::domain::draw::snapshot_sha256(&ids));
    h.cleanup().await;
}
