//! GetMe, UpdateMe (FieldMask) and GetOwner, through the owner cache.

use kem_proto::kem::common::v1::BusinessCategory;
use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_server::UserService;
use prost_types::FieldMask;
use tonic::{Code, Request};

use crate::support::*;

fn update(owner: pb::Owner, paths: &[&str]) -> pb::UpdateMeRequest {
    pb::UpdateMeRequest {
        owner: Some(owner),
        update_mask: Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() }),
    }
}

async fn me(h: &Harness, owner_id: &str) -> pb::Owner {
    h.api.get_me(as_owner(pb::GetMeRequest {}, owner_id)).await.expect("get me").into_inner().owner.expect("owner")
}

#[tokio::test]
async fn get_me_returns_the_callers_profile_and_needs_a_caller() {
    let h = Harness::start(config()).await;
    let registered = register(&h.api, "me@example.com", ACTIVE).await;
    let owner = me(&h, &registered.owner_id).await;
    assert_eq!(owner, registered);
    assert!(owner.create_time.is_some() && owner.update_time.is_some());
    let status = h.api.get_me(Request::new(pb::GetMeRequest {})).await.expect_err("anonymous");
    assert_eq!(status.code(), Code::Unauthenticated);
    let status =
        h.api.get_me(as_owner(pb::GetMeRequest {}, &kem_user::app::ids::uuid_v4())).await.expect_err("deleted");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::NotFound, "OWNER_NOT_FOUND"));
    h.cleanup().await;
}

#[tokio::test]
async fn update_me_changes_only_the_masked_fields_and_the_cache_follows() {
    let h = Harness::start(config()).await;
    let registered = register(&h.api, "me@example.com", ACTIVE).await;
    let id = registered.owner_id.clone();
    me(&h, &id).await; // cached now
    assert!(h.svc.redis.keys().await.iter().any(|k| k.contains(&id)), "profile cached in Redis");

    let changes = pb::Owner {
        store_name: "행복카페 선릉점".into(),
        phone: "010 2222 3333".into(),
        name: "ignored: not in the mask".into(),
        business_category: BusinessCategory::Bakery as i32,
        ..Default::default()
    };
    let updated = h
        .api
        .update_me(as_owner(update(changes, &["store_name", "phone", "businessCategory"]), &id))
        .await
        .expect("updated")
        .into_inner()
        .owner
        .expect("owner");
    assert_eq!(updated.store_name, "행복카페 선릉점");
    assert_eq!(updated.phone, "+821022223333", "re-normalized");
    assert_eq!(updated.business_category, BusinessCategory::Bakery as i32);
    assert_eq!(updated.name, registered.name, "not in the mask: unchanged");
    assert_eq!(updated.email, registered.email);
    assert_eq!(updated.business_verification, registered.business_verification);
    let millis = |o: &pb::Owner| o.update_time.as_ref().map(|t| t.seconds * 1000 + i64::from(t.nanos / 1_000_000));
    assert!(millis(&updated) >= millis(&registered));

    assert_eq!(me(&h, &id).await, updated, "GetMe sees the change (cache invalidated)");
    let fetched = h.api.get_owner(Request::new(pb::GetOwnerRequest { owner_id: id.clone() })).await.expect("get owner");
    assert_eq!(fetched.into_inner().owner, Some(updated));

    // Clearing the optional region code.
    let cleared = h
        .api
        .update_me(as_owner(update(pb::Owner::default(), &["region_code"]), &id))
        .await
        .expect("cleared")
        .into_inner();
    assert_eq!(cleared.owner.expect("owner").region_code, "");
    h.cleanup().await;
}

#[tokio::test]
async fn update_me_rejects_bad_masks_immutable_fields_and_invalid_values() {
    let h = Harness::start(config()).await;
    let registered = register(&h.api, "me@example.com", ACTIVE).await;
    let id = registered.owner_id.clone();
    let cases: [(pb::UpdateMeRequest, Vec<&str>); 7] = [
        (update(pb::Owner::default(), &[]), vec!["updateMask"]),
        (pb::UpdateMeRequest { owner: Some(pb::Owner::default()), update_mask: None }, vec!["updateMask"]),
        (update(pb::Owner { email: "not-an-email".into(), ..Default::default() }, &["email"]), vec!["owner.email"]),
        (update(pb::Owner::default(), &["business_number"]), vec!["updateMask"]),
        (update(pb::Owner::default(), &["favourite_colour", "create_time"]), vec!["updateMask", "updateMask"]),
        (
            update(
                pb::Owner { phone: "02-555-1234".into(), store_name: String::new(), ..Default::default() },
                &["phone", "store_name"],
            ),
            vec!["owner.phone", "owner.storeName"],
        ),
        (
            update(
                pb::Owner { owner_id: kem_user::app::ids::uuid_v4(), name: "x".into(), ..Default::default() },
                &["name"],
            ),
            vec!["owner.ownerId"],
        ),
    ];
    for (request, fields) in cases {
        let status = h.api.update_me(as_owner(request.clone(), &id)).await.expect_err("invalid");
        assert_eq!(status.code(), Code::InvalidArgument, "{request:?}");
        assert_eq!(violated_fields(&status), fields, "{request:?}");
    }
    let status = h.api.update_me(Request::new(update(pb::Owner::default(), &["name"]))).await.expect_err("anonymous");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(me(&h, &id).await, registered, "nothing changed");
    h.cleanup().await;
}

#[tokio::test]
async fn an_email_change_is_normalized_and_rechecks_uniqueness() {
    let h = Harness::start(config()).await;
    let first = register(&h.api, "first@example.com", ACTIVE).await;
    let second = register(&h.api, "second@example.com", ACTIVE).await;
    let change = |email: &str| update(pb::Owner { email: email.into(), ..Default::default() }, &["email"]);

    // Taken by another account (in any spelling): 409-style ALREADY_EXISTS, nothing changes.
    let status = h.api.update_me(as_owner(change(" Second@Example.com "), &first.owner_id)).await.expect_err("taken");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::AlreadyExists, "EMAIL_TAKEN"));
    assert_eq!(me(&h, &first.owner_id).await.email, "first@example.com");

    // A free address: normalized, visible at once (the cache follows), and the new login.
    let updated = h.api.update_me(as_owner(change("New.Owner@Example.com"), &first.owner_id)).await.expect("changed");
    assert_eq!(updated.into_inner().owner.map(|o| o.email).as_deref(), Some("new.owner@example.com"));
    assert_eq!(me(&h, &first.owner_id).await.email, "new.owner@example.com");
    assert!(login(&h.api, "new.owner@example.com", PASSWORD).await.is_ok(), "the new address signs in");
    assert!(login(&h.api, "first@example.com", PASSWORD).await.is_err(), "the old one no longer does");
    // Its own address again is not "taken".
    h.api.update_me(as_owner(change("new.owner@example.com"), &first.owner_id)).await.expect("unchanged email");
    assert_eq!(me(&h, &second.owner_id).await.email, "second@example.com");
    h.cleanup().await;
}

#[tokio::test]
async fn get_owner_needs_an_id_and_reports_unknown_ones_as_not_found() {
    let h = Harness::start(config()).await;
    let status = h.api.get_owner(Request::new(pb::GetOwnerRequest { owner_id: " ".into() })).await.expect_err("empty");
    assert_eq!((status.code(), violated_fields(&status)), (Code::InvalidArgument, vec!["ownerId".to_owned()]));
    let unknown = kem_user::app::ids::uuid_v4();
    let status = h.api.get_owner(Request::new(pb::GetOwnerRequest { owner_id: unknown.clone() })).await;
    assert_eq!(status.expect_err("unknown").code(), Code::NotFound, "{unknown}");
    // Anything that is not an owner id's shape is refused before the cache or the database.
    for id in ["not-a-uuid", "../../etc"] {
        let status = h.api.get_owner(Request::new(pb::GetOwnerRequest { owner_id: id.to_owned() })).await;
        let status = status.expect_err(id);
        assert_eq!((status.code(), violated_fields(&status)), (Code::InvalidArgument, vec!["ownerId".to_owned()]));
    }
    h.cleanup().await;
}
