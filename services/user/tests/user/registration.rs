//! Register and VerifyBusinessNumber against the NTS contract server: checksum first, only
//! active businesses admitted, NTS outages never create anything, answers cached, the breaker
//! fails fast, emails unique under concurrency.

use std::time::Duration;

use kem_proto::kem::common::v1::ProviderKind;
use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_server::UserService;
use kem_user::UserConfig;
use tonic::{Code, Request};

use crate::nts::{Answer, NtsServer, Outage};
use crate::support::*;

async fn with_nts(tune: impl FnOnce(&mut kem_kit::external::ProviderConfig)) -> (Harness, NtsServer) {
    let nts = NtsServer::start().await;
    nts.answer(ACTIVE, Answer::Status("01")).answer(OTHER, Answer::Status("01"));
    let config = UserConfig { nts: nts.mode(tune), ..config() };
    (Harness::start(config).await, nts)
}

fn verify(number: &str) -> Request<pb::VerifyBusinessNumberRequest> {
    Request::new(pb::VerifyBusinessNumberRequest { business_number: number.to_owned() })
}

#[tokio::test]
async fn an_active_business_registers_with_normalized_fields_and_its_verification() {
    let (h, nts) = with_nts(|_| {}).await;
    let mut request = registration("  Kim.Owner@Example.COM ", ACTIVE);
    request.phone = "+82 10-9876-5432".to_owned();
    let owner = h.api.register(Request::new(request)).await.expect("registered").into_inner().owner.expect("owner");
    assert!(kem_user::app::ids::is_uuid(&owner.owner_id), "{}", owner.owner_id);
    assert_eq!(owner.email, "kim.owner@example.com");
    assert_eq!(owner.phone, "+821098765432");
    assert_eq!(owner.business_number, "1248100998");
    let v = owner.business_verification.expect("verification");
    assert_eq!(v.status(), pb::BusinessStatus::Active);
    assert_eq!((v.nts_status_code.as_str(), v.nts_status_text.as_str()), ("01", "계속사업자"));
    assert_eq!(v.tax_type_code, "02");
    let provider = v.provider.expect("provider");
    assert_eq!((provider.kind(), provider.name.as_str(), provider.cached), (ProviderKind::External, "nts", false));
    assert_eq!(nts.calls(), 1);
    assert_eq!(h.owner_rows().await, 1);
    h.cleanup().await;
}

#[tokio::test]
async fn a_bad_checksum_is_a_field_violation_and_never_reaches_nts() {
    let (h, nts) = with_nts(|_| {}).await;
    for number in ["124-81-00997", "12481009", "abcdefghij"] {
        let status = h.api.register(Request::new(registration("a@example.com", number))).await.expect_err(number);
        assert_eq!(status.code(), Code::InvalidArgument, "{number}");
        assert_eq!(violated_fields(&status), ["businessNumber"], "{number}");
        assert_eq!(reason(&status), "BUSINESS_NUMBER_CHECKSUM");
        let status = h.api.verify_business_number(verify(number)).await.expect_err(number);
        assert_eq!(violated_fields(&status), ["businessNumber"]);
    }
    assert_eq!(nts.calls(), 0, "validated locally first");
    assert_eq!(h.owner_rows().await, 0);
    h.cleanup().await;
}

#[tokio::test]
async fn every_invalid_field_is_named_in_camel_case() {
    let (h, nts) = with_nts(|_| {}).await;
    let request = pb::RegisterRequest {
        email: "not-an-email".into(),
        password: "short".into(),
        phone: "02-123-4567".into(),
        store_name: String::new(),
        business_category: 0,
        ..registration("x@example.com", ACTIVE)
    };
    let status = h.api.register(Request::new(request)).await.expect_err("invalid");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["email", "password", "phone", "storeName", "businessCategory"]);
    assert_eq!(reason(&status), "INVALID_FIELDS");
    assert_eq!(nts.calls(), 0);
    h.cleanup().await;
}

#[tokio::test]
async fn suspended_closed_and_unknown_businesses_are_refused_with_a_readable_reason() {
    let (h, nts) = with_nts(|_| {}).await;
    let suspended = valid_number("123450000");
    let closed = valid_number("123460000");
    let unknown = valid_number("123470000");
    nts.answer(&suspended, Answer::Status("02")).answer(&closed, Answer::Status("03"));
    for (number, expected, words) in [
        (&suspended, "BUSINESS_SUSPENDED", ["휴업", "suspended"]),
        (&closed, "BUSINESS_CLOSED", ["폐업", "closed"]),
        (&unknown, "BUSINESS_NOT_REGISTERED", ["등록되지 않은", "does not know"]),
    ] {
        let status = h.api.register(Request::new(registration("owner@example.com", number))).await.expect_err(number);
        assert_eq!(status.code(), Code::FailedPrecondition, "{number}");
        assert_eq!(reason(&status), expected);
        for word in words {
            assert!(status.message().contains(word), "{}", status.message());
        }
        assert_eq!(error_info(&status).metadata.get("business_number"), Some(number));
    }
    let closed_info = error_info(
        &h.api.register(Request::new(registration("owner@example.com", &closed))).await.expect_err("closed"),
    );
    assert_eq!(closed_info.metadata.get("closed_date").map(String::as_str), Some("2023-06-15"));
    assert_eq!(h.owner_rows().await, 0, "nothing is created");
    assert_eq!(nts.calls(), 3, "the retry of the closed number was answered from the cache");
    h.cleanup().await;
}

#[tokio::test]
async fn inactive_businesses_are_results_of_a_lookup_not_errors() {
    let (h, nts) = with_nts(|_| {}).await;
    let closed = valid_number("987650000");
    nts.answer(&closed, Answer::Status("03"));
    let v = h.api.verify_business_number(verify(&closed)).await.expect("lookup").into_inner().business_verification;
    let v = v.expect("verification");
    assert_eq!((v.status(), v.closed_date.as_str()), (pb::BusinessStatus::Closed, "2023-06-15"));
    let unknown = valid_number("987660000");
    let v = h.api.verify_business_number(verify(&unknown)).await.expect("lookup").into_inner();
    let v = v.business_verification.expect("verification");
    assert_eq!(
        (v.status(), v.nts_status_code.as_str(), v.tax_type_code.as_str()),
        (pb::BusinessStatus::Unregistered, "", "")
    );
    assert_eq!(nts.calls(), 2);
    h.cleanup().await;
}

#[tokio::test]
async fn a_second_lookup_of_a_number_is_answered_from_the_cache() {
    let (h, nts) = with_nts(|_| {}).await;
    let first = h.api.verify_business_number(verify(ACTIVE)).await.expect("first").into_inner();
    let first = first.business_verification.expect("verification");
    assert!(!first.provider.as_ref().expect("provider").cached);
    // Same number with and without hyphens, then registration with it: no further NTS call.
    let second = h.api.verify_business_number(verify("1248100998")).await.expect("second").into_inner();
    let second = second.business_verification.expect("verification");
    assert!(second.provider.as_ref().expect("provider").cached);
    assert_eq!(second.verified_at, first.verified_at, "verified_at is when NTS was asked");
    register(&h.api, "cached@example.com", ACTIVE).await;
    assert_eq!(nts.calls(), 1);
    assert!(!h.svc.redis.keys().await.is_empty(), "the answer is in Redis");

    // A replica whose Redis tier is empty (flushed) still does not call NTS: the database tier answers.
    let mut ctx = h.svc.ctx.clone();
    ctx.cache = std::sync::Arc::new(kem_kit::cache::MemoryCache::new(100));
    let cold = kem_user::start_api(ctx, UserConfig { nts: nts.mode(|_| {}), ..config() }).await.expect("replica");
    let third = cold.verify_business_number(verify(ACTIVE)).await.expect("third").into_inner();
    assert!(third.business_verification.and_then(|v| v.provider).expect("provider").cached);
    assert_eq!(nts.calls(), 1);
    h.cleanup().await;
}

#[tokio::test]
async fn concurrent_lookups_of_one_number_share_one_nts_call() {
    let (h, nts) = with_nts(|_| {}).await;
    let lookups = (0..8).map(|_| h.api.verify_business_number(verify(OTHER)));
    for result in futures_util::future::join_all(lookups).await {
        result.expect("lookup");
    }
    assert_eq!(nts.calls(), 1);
    h.cleanup().await;
}

#[tokio::test]
async fn nts_failures_are_unavailable_with_retry_advice_create_nothing_and_are_not_cached() {
    for outage in [Outage::InternalError, Outage::BadGateway, Outage::GatewayAuth, Outage::Hang] {
        let (h, nts) = with_nts(|c| {
            c.timeout = Duration::from_millis(300);
            c.deadline = Duration::from_secs(1);
        })
        .await;
        nts.outage(outage);
        let status = h.api.register(Request::new(registration("down@example.com", ACTIVE))).await.expect_err("down");
        assert_eq!(status.code(), Code::Unavailable, "{outage:?}: {status:?}");
        assert_eq!(reason(&status), "NTS_UNAVAILABLE", "{outage:?}");
        assert!(retry_delay(&status).is_some(), "{outage:?}: retry advice");
        assert!(status.message().contains("nothing was created"), "{}", status.message());
        assert_eq!(h.owner_rows().await, 0, "{outage:?}: no owner row");
        let calls = nts.calls();
        assert!(calls >= 1, "{outage:?}");

        // NTS is back: the failure was not cached, the retry registers.
        nts.outage(Outage::None);
        register(&h.api, "down@example.com", ACTIVE).await;
        assert_eq!(nts.calls(), calls + 1, "{outage:?}");
        h.cleanup().await;
    }
}

#[tokio::test]
async fn transient_failures_are_retried_but_credentials_errors_are_not() {
    let (h, nts) = with_nts(|c| c.max_attempts = 3).await;
    nts.outage(Outage::InternalError);
    h.api.verify_business_number(verify(ACTIVE)).await.expect_err("down");
    assert_eq!(nts.calls(), 3, "a read-only lookup is retried on 500");
    nts.outage(Outage::GatewayAuth);
    h.api.verify_business_number(verify(ACTIVE)).await.expect_err("bad key");
    assert_eq!(nts.calls(), 4, "a refused key is not retried");
    h.cleanup().await;
}

#[tokio::test]
async fn an_exhausted_quota_is_resource_exhausted_for_lookups_and_unavailable_for_registration() {
    let (h, nts) = with_nts(|c| c.max_attempts = 1).await;
    nts.outage(Outage::Quota);
    let status = h.api.verify_business_number(verify(ACTIVE)).await.expect_err("quota");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::ResourceExhausted, "NTS_QUOTA_EXCEEDED"));
    let status = h.api.register(Request::new(registration("q@example.com", ACTIVE))).await.expect_err("quota");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unavailable, "NTS_UNAVAILABLE"));
    h.cleanup().await;
}

#[tokio::test]
async fn the_breaker_opens_after_repeated_failures_and_then_fails_fast() {
    let (h, nts) = with_nts(|c| {
        c.max_attempts = 1;
        c.breaker.minimum_calls = 4;
        c.breaker.open_duration = Duration::from_secs(30);
    })
    .await;
    nts.outage(Outage::InternalError);
    // Distinct numbers, so no cache is involved.
    for i in 0..4 {
        let number = valid_number(&format!("11111000{i}"));
        let status = h.api.verify_business_number(verify(&number)).await.expect_err("failing");
        assert_eq!(status.code(), Code::Unavailable);
    }
    assert_eq!(nts.calls(), 4);
    let breaker = h.api.core().verifier().provider().client().expect("real client").breaker().state();
    assert_eq!(breaker, kem_mesh::breaker::BreakerState::Open);

    // NTS recovers, but the open breaker keeps every call away for its open period.
    nts.outage(Outage::None);
    let status = h.api.register(Request::new(registration("fast@example.com", ACTIVE))).await.expect_err("open");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::Unavailable, "NTS_UNAVAILABLE"));
    let delay = retry_delay(&status).expect("retry advice from the breaker");
    assert!(delay > Duration::from_secs(20) && delay <= Duration::from_secs(30), "{delay:?}");
    assert_eq!(nts.calls(), 4, "no call reached NTS");
    assert_eq!(h.owner_rows().await, 0);
    h.cleanup().await;
}

#[tokio::test]
async fn a_registered_email_is_already_exists_whatever_its_case() {
    let (h, _nts) = with_nts(|_| {}).await;
    register(&h.api, "dup@example.com", ACTIVE).await;
    let status = h.api.register(Request::new(registration(" DUP@Example.com", OTHER))).await.expect_err("taken");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::AlreadyExists, "EMAIL_TAKEN"));
    assert_eq!(h.owner_rows().await, 1);
    h.cleanup().await;
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_create_exactly_one_owner() {
    let (h, _nts) = with_nts(|_| {}).await;
    let attempts = (0..6).map(|i| {
        let email = if i % 2 == 0 { "race@example.com" } else { "RACE@example.com" };
        h.api.register(Request::new(registration(email, ACTIVE)))
    });
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 1, "{results:?}");
    for status in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!((status.code(), reason(status).as_str()), (Code::AlreadyExists, "EMAIL_TAKEN"));
    }
    assert_eq!(h.owner_rows().await, 1);
    h.cleanup().await;
}

#[tokio::test]
async fn the_local_stand_in_is_labelled_and_follows_its_documented_rules() {
    let h = Harness::start(config()).await;
    for (number, code) in kem_user::infra::nts::EXAMPLES {
        let v = h.api.verify_business_number(verify(number)).await.expect("lookup").into_inner();
        let v = v.business_verification.expect("verification");
        assert_eq!(v.nts_status_code, code, "{number}");
        let provider = v.provider.expect("provider");
        assert_eq!((provider.kind(), provider.name.as_str()), (ProviderKind::Local, "local:nts"));
    }
    let status =
        h.api.register(Request::new(registration("demo@example.com", "000-03-00001"))).await.expect_err("closed");
    assert_eq!(reason(&status), "BUSINESS_CLOSED");
    register(&h.api, "demo@example.com", "124-81-00998").await;
    h.cleanup().await;
}
