//! The service `start` returns, served over mTLS by a role server with the contracts' policy:
//! Enter through the gateway, owner methods with the gateway's owner metadata, CountEntries for
//! analytics and AnonymizeEntries for event only; rich error details cross the wire.

use kem_proto::kem::event::v1::EventStatus;
use kem_proto::kem::participation::v1 as pb;
use tonic::{Code, Request};

use crate::support::*;

#[tokio::test]
async fn the_mesh_serves_each_method_to_its_callers_only() {
    let mut h = Harness::new().await;
    h.serve().await;
    let id = h.add(event(EventStatus::Published));
    let mut gateway = h.client("gateway").await;
    let mut analytics = h.client("analytics").await;
    let mut event_service = h.client("event").await;

    let e = gateway.enter(Request::new(entry(&id, "김민수", "010-1234-5678"))).await.expect("enter").into_inner();
    assert_eq!(e.entry.map(|e| e.masked_phone).as_deref(), Some("010-****-5678"));
    let dup = expect_code(gateway.enter(Request::new(entry(&id, "김민수", "01012345678"))).await, Code::AlreadyExists);
    assert_eq!(reason(&dup), "DUPLICATE_ENTRY", "ErrorInfo crosses the wire");
    let bad = expect_code(gateway.enter(Request::new(entry(&id, "", "010-1234-5678"))).await, Code::InvalidArgument);
    assert_eq!(violations(&bad), ["name"]);

    let list = pb::ListParticipantsRequest { event_id: id.clone(), ..Default::default() };
    let page = gateway.list_participants(as_owner(OWNER, list.clone())).await.expect("list").into_inner();
    assert_eq!(page.total_size, 1);
    expect_code(gateway.list_participants(as_owner(OTHER, list.clone())).await, Code::NotFound);

    let counts = analytics
        .count_entries(Request::new(pb::CountEntriesRequest { event_ids: vec![id.clone()] }))
        .await
        .expect("analytics may count")
        .into_inner();
    assert_eq!(counts.counts[0].total, 1);
    expect_code(
        gateway.count_entries(Request::new(pb::CountEntriesRequest { event_ids: vec![id.clone()] })).await,
        Code::PermissionDenied,
    );
    expect_code(analytics.enter(Request::new(entry(&id, "김민수", "010-1111-2222"))).await, Code::PermissionDenied);

    let anonymize = pb::AnonymizeEntriesRequest { event_id: id.clone(), create_before: None };
    let active =
        expect_code(event_service.anonymize_entries(Request::new(anonymize.clone())).await, Code::FailedPrecondition);
    assert_eq!(reason(&active), "EVENT_ACTIVE");
    expect_code(gateway.anonymize_entries(Request::new(anonymize)).await, Code::PermissionDenied);
    h.cleanup().await;
}
