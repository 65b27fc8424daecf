//! GetPublicWinners: the current winners of a published event for everyone — ranks and masked
//! names and phones, the draw's audit without any entry id — NOT_FOUND for an event that was never
//! published, INVALID_ARGUMENT for what is not an id, empty before a draw.

use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::participation::v1 as pb;
use prost::Message as _;
use tonic::{Code, Request};

use crate::support::*;

#[tokio::test]
async fn public_winners_are_masked_with_the_audit_and_no_entry_ids() {
    let h = Harness::new().await;
    let id = h.add(event(EventStatus::Published));
    let entries = h.enter_many(&id, 12).await;
    h.events.set_status(&id, EventStatus::Ended);
    let excluded = entries[4].entry_id.clone();
    let request = pb::DrawWinnersRequest { exclude_entry_ids: vec![excluded.clone()], ..draw_request(&id, 3) };
    let drawn = h.draw(OWNER, request).await.expect("draw");
    let owner_audit = drawn.audit.clone().expect("audit");
    assert_eq!(owner_audit.excluded_entry_ids, std::slice::from_ref(&excluded), "the owner sees the exclusions");

    let public = h.public_winners(&id).await.expect("public winners");
    let expected: Vec<pb::PublicWinner> = drawn
        .winners
        .iter()
        .map(|w| pb::PublicWinner {
            rank: w.rank,
            masked_name: w.masked_name.clone(),
            masked_phone: w.masked_phone.clone(),
            claim_state: w.claim_state,
        })
        .collect();
    assert_eq!(public.winners, expected, "the owner's winners, in draw order, masked");
    assert_eq!(public.winners.iter().map(|w| w.rank).collect::<Vec<_>>(), [1, 2, 3]);
    for w in &public.winners {
        assert!(w.masked_name.starts_with('참') && w.masked_name.contains('*'), "{}", w.masked_name);
        assert!(w.masked_phone.starts_with("010-****-"), "{}", w.masked_phone);
    }
    let audit = public.audit.clone().expect("the audit is public");
    assert_eq!(audit, pb::DrawAudit { excluded_entry_ids: Vec::new(), ..owner_audit.clone() });
    assert_eq!((audit.seed.len(), audit.entry_count, audit.winner_count), (32, 11, 3));

    // No entry id, no full name or phone, anywhere in the answer.
    let answer = [format!("{public:?}"), String::from_utf8_lossy(&public.encode_to_vec()).into_owned()];
    for text in &answer {
        for e in &entries {
            assert!(!text.contains(&e.entry_id), "entry id {} is public", e.entry_id);
        }
        for w in &drawn.winners {
            assert!(!text.contains(&w.name) && !text.contains(&w.phone), "contact data is public");
        }
    }
    // A redraw replaces what the public sees.
    let redraw = pb::DrawWinnersRequest { redraw: true, ..draw_request(&id, 1) };
    let second = h.draw(OWNER, redraw).await.expect("redraw");
    let public = h.public_winners(&id).await.expect("public winners after the redraw");
    assert_eq!(public.winners.len(), 1);
    assert_eq!(public.audit.map(|a| (a.draw_id, a.redraw_of)), second.audit.map(|a| (a.draw_id, owner_audit.draw_id)));
    h.cleanup().await;
}

#[tokio::test]
async fn public_winners_are_empty_before_a_draw() {
    let h = Harness::new().await;
    let published = h.add(event(EventStatus::Published));
    h.enter_many(&published, 3).await;
    let ended = h.add(event(EventStatus::Ended));
    for id in [&published, &ended] {
        let public = h.public_winners(id).await.expect("no draw yet");
        assert_eq!(public, pb::GetPublicWinnersResponse::default(), "no winners, no audit");
    }
    h.cleanup().await;
}

#[tokio::test]
async fn only_published_events_have_public_winners() {
    let h = Harness::new().await;
    for status in [EventStatus::Draft, EventStatus::Recommended, EventStatus::ContentReady, EventStatus::Unspecified] {
        let id = h.add(event(status));
        let hidden = expect_code(h.public_winners(&id).await, Code::NotFound);
        assert_eq!(reason(&hidden), "EVENT_NOT_FOUND", "{status:?}");
    }
    let unknown = expect_code(h.public_winners(&uuid::Uuid::new_v4().to_string()).await, Code::NotFound);
    assert_eq!(reason(&unknown), "EVENT_NOT_FOUND");
    let calls = h.events.calls();
    for garbage in ["", "\u{0}", "%00", "../../etc", "이벤트", &"x".repeat(16_000)] {
        let refused = expect_code(h.public_winners(garbage).await, Code::InvalidArgument);
        assert_eq!(violations(&refused), ["eventId"], "{garbage:?}");
    }
    assert_eq!(h.events.calls(), calls, "garbage never reaches the event service");

    // Publishing shows the (empty) winners at once, whatever was cached.
    let draft = h.add(event(EventStatus::ContentReady));
    expect_code(h.public_winners(&draft).await, Code::NotFound);
    h.events.set_status(&draft, EventStatus::Published);
    assert_eq!(h.public_winners(&draft).await.expect("published"), pb::GetPublicWinnersResponse::default());
    h.cleanup().await;
}

#[tokio::test]
async fn the_mesh_serves_public_winners_to_the_gateway_and_scheduled_draws_to_the_event_service() {
    let mut h = Harness::new().await;
    h.serve().await;
    let id = h.add(event(EventStatus::Published));
    h.enter_many(&id, 2).await;
    h.events.set_status(&id, EventStatus::Ended);
    let mut gateway = h.client("gateway").await;
    let mut analytics = h.client("analytics").await;
    let mut event_service = h.client("event").await;

    let public = || Request::new(pb::GetPublicWinnersRequest { event_id: id.clone() });
    let before = gateway.get_public_winners(public()).await.expect("the gateway serves the public").into_inner();
    assert!(before.winners.is_empty() && before.audit.is_none());
    expect_code(analytics.get_public_winners(public()).await, Code::PermissionDenied);

    let schedule = || Request::new(pb::DrawWinnersOnScheduleRequest { event_id: id.clone() });
    expect_code(gateway.draw_winners_on_schedule(schedule()).await, Code::PermissionDenied);
    expect_code(analytics.draw_winners_on_schedule(schedule()).await, Code::PermissionDenied);
    let drawn = event_service.draw_winners_on_schedule(schedule()).await.expect("the scheduler draws").into_inner();
    assert!(drawn.drawn_now);
    let after = gateway.get_public_winners(public()).await.expect("public winners").into_inner();
    assert_eq!(after.winners.len(), 2, "the prize has 3 winners; both entries win");
    assert_eq!(after.audit.map(|a| a.draw_id), drawn.audit.map(|a| a.draw_id));
    let unknown = pb::GetPublicWinnersRequest { event_id: uuid::Uuid::new_v4().to_string() };
    let missing = expect_code(gateway.get_public_winners(Request::new(unknown)).await, Code::NotFound);
    assert_eq!(reason(&missing), "EVENT_NOT_FOUND", "ErrorInfo crosses the wire");
    h.cleanup().await;
}
