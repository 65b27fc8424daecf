//! The per-address entry limit (`entry_rules.max_entries_per_address`): exact under concurrency
//! and across replicas, refused with RESOURCE_EXHAUSTED ADDRESS_LIMIT and no RetryInfo, other
//! addresses and address-less calls unaffected, no limit when the rule is unset, and only a keyed
//! hash of the address stored.

use std::net::IpAddr;

use kem_kit::runtime::with_client_ip;
use kem_participation::ParticipationApi;
use kem_proto::kem::event::v1::{EntryRules, EventStatus, GetEventForParticipationResponse};
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::ParticipationService;
use kem_testkit::status::detail;
use tonic::{Code, Request, Status};

use crate::support::*;

/// A published event whose entry rules allow `max` entries per address (0: no limit).
pub fn limited(max: i32) -> GetEventForParticipationResponse {
    GetEventForParticipationResponse {
        entry_rules: Some(EntryRules { verify_phone: false, max_entries_per_address: max }),
        ..event(EventStatus::Published)
    }
}

async fn enter_from(api: &ParticipationApi, ip: &str, request: pb::EnterRequest) -> Result<pb::Entry, Status> {
    let request = with_client_ip(Request::new(request), ip.parse::<IpAddr>().expect("ip"));
    Ok(api.enter(request).await?.into_inner().entry.unwrap_or_default())
}

#[tokio::test]
async fn one_address_gets_exactly_its_limit_under_concurrency() {
    let h = Harness::new().await;
    let id = h.add(limited(10));
    // A second replica on the same database: the count is the database's, not a process's.
    let replica = h.replica(test_config()).await;
    let crowd = (0..50).map(|i| {
        let api = if i % 2 == 0 { &h.api } else { &replica };
        enter_from(api, "198.51.100.23", entry(&id, "동네주민", &phone(i)))
    });
    let neighbours = (0..5).map(|i| enter_from(&h.api, "203.0.113.77", entry(&id, "이웃", &phone(1_000 + i))));
    let (crowd, neighbours) =
        tokio::join!(futures_util::future::join_all(crowd), futures_util::future::join_all(neighbours));

    let accepted = crowd.iter().filter(|r| r.is_ok()).count();
    assert_eq!(accepted, 10, "exactly the limit from one address");
    for refused in crowd.into_iter().filter_map(Result::err) {
        assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
        assert_eq!(reason(&refused), "ADDRESS_LIMIT");
        assert_eq!(metadata(&refused, "max_entries_per_address"), "10");
        let retry: Option<kem_proto::google::rpc::RetryInfo> = detail(&refused, "google.rpc.RetryInfo");
        assert!(retry.is_none(), "no RetryInfo: waiting never makes it pass");
    }
    assert!(neighbours.iter().all(Result::is_ok), "another address is unaffected: {neighbours:?}");
    assert_eq!(h.all_entries(&id).await.len(), 15);

    // Still refused later; a call without an address is not counted; an IPv4-mapped form is the
    // same address.
    let later = expect_code(
        enter_from(&h.api, "198.51.100.23", entry(&id, "재시도", &phone(60))).await,
        Code::ResourceExhausted,
    );
    assert_eq!(reason(&later), "ADDRESS_LIMIT");
    let mapped = expect_code(
        enter_from(&h.api, "::ffff:198.51.100.23", entry(&id, "재시도", &phone(61))).await,
        Code::ResourceExhausted,
    );
    assert_eq!(reason(&mapped), "ADDRESS_LIMIT");
    h.enter(entry(&id, "주소 없음", &phone(62))).await.expect("no address: not counted");

    // Only keyed hashes are stored, one count per address.
    let rows =
        kem_kit::store::query("SELECT address_hash, entries FROM address_entries WHERE event_id = $1 ORDER BY entries")
            .bind(id.clone())
            .fetch_all(h.store().primary())
            .await
            .expect("counts");
    let counts: Vec<(String, i64)> =
        rows.iter().map(|r| (r.get("address_hash").expect("hash"), r.get("entries").expect("n"))).collect();
    assert_eq!(counts.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [5, 10]);
    assert!(counts.iter().all(|(hash, _)| hash.len() == 64 && !hash.contains("198.51") && !hash.contains("203.0")));
    h.cleanup().await;
}

#[tokio::test]
async fn ipv6_counts_by_subscriber_prefix_and_refusals_do_not_count() {
    let h = Harness::new().await;
    let id = h.add(limited(2));
    enter_from(&h.api, "2001:db8:7:1::a", entry(&id, "가", &phone(1))).await.expect("first");
    // A duplicate is refused before it is counted.
    let dup =
        expect_code(enter_from(&h.api, "2001:db8:7:1::a", entry(&id, "가", &phone(1))).await, Code::AlreadyExists);
    assert_eq!(reason(&dup), "DUPLICATE_ENTRY");
    enter_from(&h.api, "2001:db8:7:1:ffff::9", entry(&id, "나", &phone(2))).await.expect("second, same /64");
    let third =
        expect_code(enter_from(&h.api, "2001:db8:7:1::b", entry(&id, "다", &phone(3))).await, Code::ResourceExhausted);
    assert_eq!(reason(&third), "ADDRESS_LIMIT");
    enter_from(&h.api, "2001:db8:7:2::a", entry(&id, "다", &phone(3))).await.expect("another /64");
    h.cleanup().await;
}

#[tokio::test]
async fn without_a_limit_nothing_is_counted() {
    let h = Harness::new().await;
    let id = h.add(limited(0));
    for i in 0..15 {
        enter_from(&h.api, "198.51.100.23", entry(&id, "카페 손님", &phone(i))).await.expect("shop Wi-Fi");
    }
    let counted = kem_kit::store::query("SELECT COUNT(*) AS n FROM address_entries WHERE event_id = $1")
        .bind(id.clone())
        .fetch_one(h.store().primary())
        .await
        .expect("count")
        .get::<i64>("n")
        .expect("n");
    assert_eq!(counted, 0, "no address data kept without a limit");
    h.cleanup().await;
}
