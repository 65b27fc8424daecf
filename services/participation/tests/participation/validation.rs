//! Hostile text and ids at the boundary: NUL and other control or bidi characters in the public
//! Enter route, and malformed or huge ids in every id-taking RPC, are INVALID_ARGUMENT naming the
//! field — before the database or the event service is asked — and what the event service
//! refuses keeps its code here (INVALID_ARGUMENT, NOT_FOUND), never UNAVAILABLE. No status
//! quotes more than a short excerpt.

use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use tonic::{Code, Request, Status};

use kem_testkit::status::{MESSAGE_MAX, expect_invalid_field};

use crate::support::*;

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    expect_invalid_field(result, field);
}

fn garbage() -> [String; 5] {
    ["x".repeat(16_000), "\u{0}".into(), "%00".into(), "../../etc".into(), "이벤트".into()]
}

#[tokio::test]
async fn entries_refuse_control_characters_in_every_text_field() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    type Set = fn(&mut pb::EnterRequest, &str);
    let fields: [(&str, Set); 4] = [
        ("name", |r, bad| r.name = format!("김{bad}민수")),
        ("phone", |r, bad| r.phone = format!("010-1234{bad}-5678")),
        ("privacyConsent.consentTextVersion", |r, bad| {
            r.privacy_consent.get_or_insert_default().consent_text_version = format!("privacy{bad}-2025")
        }),
        ("marketingConsent.consentTextVersion", |r, bad| {
            r.marketing_consent = Some(pb::Consent {
                granted: true,
                consent_text_version: format!("mkt{bad}"),
                consent_time: None,
                terms_sha256: String::new(),
            })
        }),
    ];
    for (field, set) in fields {
        for bad in ["\u{0}", "\u{1b}", "\n", "\u{2028}", "\u{202e}"] {
            let mut request = entry(&id, "김민수", &phone(1));
            set(&mut request, bad);
            assert_invalid(h.enter(request).await, field);
        }
    }
    assert!(h.all_entries(&id).await.is_empty(), "nothing was stored");
    h.enter(entry(&id, "김민수", &phone(1))).await.expect("a valid entry still goes in");
    h.cleanup().await;
}

#[tokio::test]
async fn every_id_is_checked_by_shape_before_any_lookup() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Ended));
    let calls = h.events.calls();
    for bad in garbage() {
        assert_invalid(h.enter(entry(&bad, "김민수", &phone(1))).await, "eventId");
        assert_invalid(h.list(OWNER, &bad, 10, "").await, "eventId");
        assert_invalid(h.draw(OWNER, draw_request(&bad, 1)).await, "eventId");
        assert_invalid(h.winners(OWNER, &bad).await, "eventId");
        assert_invalid(h.anonymize(&bad, None).await, "eventId");
        assert_invalid(h.close(&bad).await, "eventId");
        let count = pb::CountEntriesRequest { event_ids: vec![id.clone(), bad.clone()] };
        assert_invalid(h.api.count_entries(Request::new(count)).await, "eventIds[1]");
        assert_invalid(h.list(OWNER, &id, 10, &bad).await, "pageToken");
        let exclude = pb::DrawWinnersRequest { exclude_entry_ids: vec![bad.clone()], ..draw_request(&id, 1) };
        assert_invalid(h.draw(OWNER, exclude).await, "excludeEntryIds[0]");
    }
    assert_eq!(h.events.calls(), calls, "the event service was never asked");
    h.cleanup().await;
}

#[tokio::test]
async fn what_the_event_service_refuses_keeps_its_code() {
    let h = Harness::new().await;
    let refused = uuid::Uuid::new_v4().to_string();
    h.events.refuse(&refused, Status::invalid_argument("event_id: must be a lower-case UUID"));
    assert_invalid(h.enter(entry(&refused, "김민수", &phone(1))).await, "eventId");
    let unknown = uuid::Uuid::new_v4().to_string();
    h.events.refuse(&unknown, Status::not_found("event not found"));
    let status = expect_code(h.enter(entry(&unknown, "김민수", &phone(1))).await, Code::NotFound);
    assert_eq!(reason(&status), "EVENT_NOT_FOUND");
    assert!(status.message().len() <= MESSAGE_MAX);
    h.cleanup().await;
}
