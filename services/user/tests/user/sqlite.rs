//! `kem up`'s embedded mode: the whole service on SQLite (the same migrations' SQLite set and the
//! same queries) with the in-process cache.

use kem_kit::runtime::Peers;
use kem_kit::store::Backend;
use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_server::UserService;
use prost_types::FieldMask;
use tonic::{Code, Request};

use crate::support::*;

#[tokio::test]
async fn the_service_runs_on_embedded_sqlite() {
    let dir = kem_testkit::TempDir::new("user-sqlite");
    let ctx = kem_testkit::service::embedded_context("user", Peers::none(), &dir.0).await;
    let store = ctx.store.clone();
    assert_eq!(store.backend(), Backend::Sqlite);
    let api = kem_user::start_api(ctx.clone(), config()).await.expect("starts on SQLite");

    // Register (local NTS stand-in), with the closed-business rule and a duplicate.
    let owner = register(&api, "lite@example.com", "124-81-00998").await;
    let status = api.register(Request::new(registration("LITE@example.com", "220-81-62517"))).await.expect_err("dup");
    assert_eq!(reason(&status), "EMAIL_TAKEN");
    let status =
        api.register(Request::new(registration("closed@example.com", "000-03-00001"))).await.expect_err("closed");
    assert_eq!((status.code(), reason(&status).as_str()), (Code::FailedPrecondition, "BUSINESS_CLOSED"));

    // Sessions: login, rotation, reuse revokes the family.
    let first = login(&api, "lite@example.com", PASSWORD).await.expect("login");
    let claims = verifier(&api).await.verify_now(&first.access_token).expect("verifies");
    assert_eq!(claims.sub, owner.owner_id);
    let second = refresh(&api, &first.refresh_token).await.expect("rotated");
    assert_eq!(reason(&refresh(&api, &first.refresh_token).await.expect_err("reuse")), "REFRESH_TOKEN_REUSED");
    assert_eq!(reason(&refresh(&api, &second.refresh_token).await.expect_err("revoked")), "INVALID_REFRESH_TOKEN");

    // Lockout counters (upsert with RETURNING) work on SQLite.
    for _ in 0..5 {
        login(&api, "lite@example.com", "wrong-horse-7").await.expect_err("wrong");
    }
    assert_eq!(reason(&login(&api, "lite@example.com", PASSWORD).await.expect_err("locked")), "TOO_MANY_ATTEMPTS");

    // Revocations (upserts keeping the larger cut-off, MAX over the session tokens) work on SQLite:
    // the reused family above and now every session of the owner.
    let everywhere = pb::LogoutRequest { refresh_token: String::new(), all_sessions: true };
    api.logout(as_owner(everywhere, &owner.owner_id)).await.expect("logout everywhere");
    let listed = api
        .list_revocations(Request::new(pb::ListRevocationsRequest { cursor: String::new() }))
        .await
        .expect("list")
        .into_inner();
    let kinds: Vec<bool> = listed.revocations.iter().map(|r| r.session_id.is_empty()).collect();
    assert_eq!(kinds.iter().filter(|owner_wide| **owner_wide).count(), 1, "{listed:?}");
    assert_eq!(kinds.len(), 2, "{listed:?}");

    // Profile update (COALESCE update) and the verification cache table.
    let request = pb::UpdateMeRequest {
        owner: Some(pb::Owner { store_name: "작은빵집".into(), ..Default::default() }),
        update_mask: Some(FieldMask { paths: vec!["store_name".into()] }),
    };
    let updated = api.update_me(as_owner(request, &owner.owner_id)).await.expect("updated").into_inner();
    assert_eq!(updated.owner.expect("owner").store_name, "작은빵집");
    let verification = api
        .verify_business_number(Request::new(pb::VerifyBusinessNumberRequest {
            business_number: "124-81-00998".into(),
        }))
        .await
        .expect("lookup")
        .into_inner()
        .business_verification
        .expect("verification");
    assert!(verification.provider.expect("provider").cached);

    // Key rotation, and a restart keeps the keys (they are in the file database).
    let old = api.core().keys().current_kid();
    api.rotate_signing_key().await.expect("rotate");
    api.core().maintain().await;
    let restarted = kem_user::start_api(ctx.clone(), config()).await.expect("restart");
    assert_ne!(restarted.core().keys().current_kid(), old);
    verifier(&restarted).await.verify_now(&first.access_token).expect("old token still verifies after restart");
    assert_eq!(count(&store, "SELECT COUNT(*) AS n FROM owners").await, 1);

    ctx.shutdown.trigger();
    store.close().await;
}
