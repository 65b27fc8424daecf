//! Hostile text and ids at the boundary: NUL and other control or bidi characters in any string
//! field, and malformed or huge ids, are INVALID_ARGUMENT naming the field — never a database
//! error — and no status quotes more than a short excerpt of what was sent.

use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_server::UserService;
use prost_types::FieldMask;
use tonic::Request;

use kem_testkit::status::expect_invalid_field;

use crate::support::*;

/// Control, separator and bidi characters every single-line field refuses.
const HOSTILE: [&str; 5] = ["\u{0}", "\u{1b}", "\n", "\u{2028}", "\u{202e}"];

fn assert_invalid(status: &tonic::Status, field: &str) {
    expect_invalid_field(Err::<(), _>(status.clone()), field);
}

#[tokio::test]
async fn registration_refuses_hostile_characters_in_every_field() {
    let h = Harness::start(config()).await;
    type Set = fn(&mut pb::RegisterRequest, String);
    let fields: [(&str, Set); 8] = [
        ("email", |r, bad| r.email = format!("own{bad}er@example.com")),
        ("password", |r, bad| r.password = format!("{PASSWORD}{bad}x")),
        ("name", |r, bad| r.name = format!("김{bad}사장")),
        ("phone", |r, bad| r.phone = format!("010-1234{bad}-5678")),
        ("storeName", |r, bad| r.store_name = format!("행복{bad}카페")),
        ("region", |r, bad| r.region = format!("서울특별시{bad} 강남구")),
        ("regionCode", |r, bad| r.region_code = format!("11680{bad}10100")),
        ("businessNumber", |r, bad| r.business_number = format!("124-81{bad}-00998")),
    ];
    for (field, set) in fields {
        for bad in HOSTILE {
            let mut request = registration("owner@example.com", ACTIVE);
            set(&mut request, bad.to_owned());
            let status = h.api.register(Request::new(request)).await.expect_err(field);
            assert_invalid(&status, field);
        }
    }
    assert_eq!(h.owner_rows().await, 0, "nothing was stored");
    h.cleanup().await;
}

#[tokio::test]
async fn sign_in_and_tokens_refuse_control_characters_before_the_database() {
    let h = Harness::start(config()).await;
    for bad in HOSTILE {
        let status = login(&h.api, &format!("owner{bad}@example.com"), PASSWORD).await.expect_err("email");
        assert_invalid(&status, "email");
        let status = login(&h.api, "owner@example.com", &format!("pass{bad}word-7")).await.expect_err("password");
        assert_invalid(&status, "password");
        let status = refresh(&h.api, &format!("token{bad}")).await.expect_err("refresh token");
        assert_invalid(&status, "refreshToken");
    }
    let owner = kem_user::app::ids::uuid_v4();
    let logout = pb::LogoutRequest { refresh_token: "a\u{0}b".into(), all_sessions: false };
    let status = h.api.logout(as_owner(logout, &owner)).await.expect_err("logout");
    assert_invalid(&status, "refreshToken");
    assert_eq!(count(&h.svc.ctx.store, "SELECT COUNT(*) AS n FROM login_account_throttle").await, 0, "not counted");
    h.cleanup().await;
}

#[tokio::test]
async fn profile_updates_refuse_hostile_characters_and_foreign_owner_ids() {
    let h = Harness::start(config()).await;
    let registered = register(&h.api, "me@example.com", ACTIVE).await;
    type Set = fn(&mut pb::Owner, String);
    let fields: [(&str, &str, Set); 6] = [
        ("email", "owner.email", |o, bad| o.email = format!("me{bad}@example.com")),
        ("name", "owner.name", |o, bad| o.name = format!("김{bad}철수")),
        ("phone", "owner.phone", |o, bad| o.phone = format!("010{bad}12345678")),
        ("store_name", "owner.storeName", |o, bad| o.store_name = format!("카{bad}페")),
        ("region", "owner.region", |o, bad| o.region = format!("역삼{bad}동")),
        ("region_code", "owner.regionCode", |o, bad| o.region_code = format!("11680{bad}10100")),
    ];
    for (path, field, set) in fields {
        for bad in HOSTILE {
            let mut owner = registered.clone();
            set(&mut owner, bad.to_owned());
            let request = pb::UpdateMeRequest {
                owner: Some(owner),
                update_mask: Some(FieldMask { paths: vec![path.to_owned()] }),
            };
            let status = h.api.update_me(as_owner(request, &registered.owner_id)).await.expect_err(field);
            assert_invalid(&status, field);
        }
    }
    for owner_id in ["x".repeat(16_000), "not-an-id\u{0}".to_owned()] {
        let owner = pb::Owner { owner_id, name: "김사장".into(), ..Default::default() };
        let request =
            pb::UpdateMeRequest { owner: Some(owner), update_mask: Some(FieldMask { paths: vec!["name".into()] }) };
        let status = h.api.update_me(as_owner(request, &registered.owner_id)).await.expect_err("owner id");
        assert_invalid(&status, "owner.ownerId");
    }
    let huge_path = format!("{}\u{0}", "p".repeat(16_000));
    let request = pb::UpdateMeRequest {
        owner: Some(registered.clone()),
        update_mask: Some(FieldMask { paths: vec![huge_path] }),
    };
    let status = h.api.update_me(as_owner(request, &registered.owner_id)).await.expect_err("mask");
    assert_invalid(&status, "updateMask");
    assert_eq!(me_name(&h, &registered.owner_id).await, registered.name, "nothing changed");
    h.cleanup().await;
}

async fn me_name(h: &Harness, owner_id: &str) -> String {
    let owner = h.api.get_me(as_owner(pb::GetMeRequest {}, owner_id)).await.expect("get me").into_inner().owner;
    owner.expect("owner").name
}

#[tokio::test]
async fn owner_ids_and_business_numbers_are_checked_by_shape_without_echoing_them() {
    let h = Harness::start(config()).await;
    for owner_id in
        ["x".repeat(16_000), "%00".to_owned(), "\u{0}".to_owned(), "3F2B8C1E-9D4A-4E7B-A1C2-5D6E7F8A9B0C".into()]
    {
        let status = h.api.get_owner(Request::new(pb::GetOwnerRequest { owner_id })).await.expect_err("garbage id");
        assert_invalid(&status, "ownerId");
    }
    for number in ["1".repeat(16_000), "124-81-0099\u{0}8".to_owned()] {
        let request = pb::VerifyBusinessNumberRequest { business_number: number };
        let status = h.api.verify_business_number(Request::new(request)).await.expect_err("number");
        assert_invalid(&status, "businessNumber");
    }
    let mut huge = registration("owner@example.com", ACTIVE);
    huge.name = "가".repeat(16_000);
    huge.store_name = format!("{}\u{0}", "나".repeat(16_000));
    let status = h.api.register(Request::new(huge)).await.expect_err("huge");
    assert_invalid(&status, "name");
    assert_invalid(&status, "storeName");
    h.cleanup().await;
}
