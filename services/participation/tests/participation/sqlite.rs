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

#[tokio::test]
async fn receipts_consents_public_winners_and_scheduled_draws_run_on_sqlite() {
    use kem_participation::infra::repository::EntryAdmission;
    use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;

    use crate::receipts::{assert_receipt_shape, message, row};

    let h = Harness::sqlite().await;
    let id = h.add(event(EventStatus::Published));
    let request = entry(&id, "김민수", "010-1234-5678");
    let first = h.enter_response(Some("request-1"), request.clone()).await.expect("enter");
    assert_receipt_shape(&first.receipt_code);
    let privacy = first.entry.as_ref().and_then(|e| e.privacy_consent.clone()).expect("privacy consent");
    assert_eq!((privacy.consent_text_version.as_str(), privacy.terms_sha256.as_str()), (TERMS_VERSION, TERMS_SHA256));
    assert_eq!(h.enter_response(Some("request-1"), request).await.expect("replayed"), first);
    let under_14 = pb::EnterRequest { age_14_or_older: false, ..entry(&id, "이영희", "010-2222-3333") };
    assert_eq!(reason(&expect_code(h.enter(under_14).await, Code::InvalidArgument)), "AGE_CONFIRMATION_REQUIRED");
    let mut outdated = entry(&id, "이영희", "010-2222-3333");
    if let Some(consent) = outdated.privacy_consent.as_mut() {
        consent.consent_text_version = "terms-0000000000000000".into();
    }
    assert_eq!(reason(&expect_code(h.enter(outdated).await, Code::InvalidArgument)), "TERMS_OUTDATED");
    // The unique index keeps codes unique per event on SQLite too.
    let repo = h.api.core().repository();
    let taken = row(&id, 1, &first.receipt_code.replace('-', ""));
    let admission = repo.admit_entry(&taken, None, message(&id, &taken.id)).await.expect("admit");
    assert_eq!(admission, EntryAdmission::ReceiptTaken);
    h.enter_many(&id, 5).await;

    h.events.set_status(&id, EventStatus::Ended);
    assert_eq!(h.public_winners(&id).await.expect("before the draw"), pb::GetPublicWinnersResponse::default());
    let calls = (0..10).map(|_| h.draw_on_schedule(&id));
    let answers: Vec<_> = futures_util::future::join_all(calls).await.into_iter().map(|r| r.expect("drawn")).collect();
    assert_eq!(answers.iter().filter(|a| a.drawn_now).count(), 1, "exactly one draw");
    let audit = answers[0].audit.clone().expect("audit");
    assert!(answers.iter().all(|a| a.audit.as_ref() == Some(&audit)));
    let public = h.public_winners(&id).await.expect("public winners");
    assert_eq!(public.winners.len(), 3);
    assert!(public.winners.iter().all(|w| w.masked_phone.starts_with("010-****-")));
    assert_eq!(public.audit.map(|a| a.draw_id), Some(audit.draw_id.clone()));
    let counts = h
        .api
        .count_entries(tonic::Request::new(pb::CountEntriesRequest { event_ids: vec![id.clone()] }))
        .await
        .expect("count")
        .into_inner()
        .counts;
    assert_eq!((counts[0].total, counts[0].draw_time), (6, audit.draw_time));
    h.cleanup().await;
}
