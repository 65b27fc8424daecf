//! Access-token revocations (ListRevocations): what logout, logout everywhere and refresh-token
//! reuse revoke, how the cursor pages, and that only the gateway may ask.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kem_kit::jwt::Claims;
use kem_mesh::authz::{Decision, Policy};
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_server::UserService;
use kem_user::UserApi;
use tonic::{Code, Request};

use crate::support::*;

async fn list(api: &UserApi, cursor: &str) -> pb::ListRevocationsResponse {
    api.list_revocations(Request::new(pb::ListRevocationsRequest { cursor: cursor.to_owned() }))
        .await
        .unwrap_or_else(|s| panic!("ListRevocations({cursor:?}): {s:?}"))
        .into_inner()
}

/// Every live revocation, following `more` (what an edge does at start).
async fn all(api: &UserApi) -> Vec<pb::AccessRevocation> {
    let mut cursor = String::new();
    let mut out = Vec::new();
    loop {
        let page = list(api, &cursor).await;
        out.extend(page.revocations);
        cursor = page.next_cursor;
        if !page.more {
            return out;
        }
    }
}

/// Whether `claims` are revoked by `revocations` — the rule the edge applies.
fn revoked(revocations: &[pb::AccessRevocation], claims: &Claims) -> bool {
    revocations.iter().any(|r| {
        r.owner_id == claims.sub
            && if r.session_id.is_empty() {
                r.issued_before.as_ref().is_some_and(|t| i64::try_from(claims.iat).is_ok_and(|iat| iat < t.seconds))
            } else {
                claims.sid() == Some(r.session_id.as_str())
            }
    })
}

fn logout(refresh_token: &str, all_sessions: bool) -> pb::LogoutRequest {
    pb::LogoutRequest { refresh_token: refresh_token.to_owned(), all_sessions }
}

fn unix(ts: &prost_types::Timestamp) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(ts.seconds).expect("after 1970"))
}

#[tokio::test]
async fn logout_everywhere_revokes_every_earlier_access_token_and_no_later_one() {
    let h = Harness::start(config()).await;
    let owner = register(&h.api, "owner@example.com", ACTIVE).await;
    register(&h.api, "other@example.com", OTHER).await;
    let verifier = verifier(&h.api).await;
    let a = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    let b = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    let b2 = refresh(&h.api, &b.refresh_token).await.expect("refresh");
    let theirs = login(&h.api, "other@example.com", PASSWORD).await.expect("login");
    assert!(all(&h.api).await.is_empty(), "nothing revoked yet");

    h.api.logout(as_owner(logout("", true), &owner.owner_id)).await.expect("logout everywhere");
    let revocations = all(&h.api).await;
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    let cutoff = &revocations[0];
    assert_eq!((cutoff.owner_id.as_str(), cutoff.session_id.as_str()), (owner.owner_id.as_str(), ""));
    for token in [&a.access_token, &b.access_token, &b2.access_token] {
        let claims = verifier.verify_now(token).expect("still a valid signature");
        assert!(revoked(&revocations, &claims), "an access token from before the logout is revoked");
    }
    let claims = verifier.verify_now(&theirs.access_token).expect("valid");
    assert!(!revoked(&revocations, &claims), "another owner's tokens are untouched");
    // Kept until every token it revokes has expired everywhere, and not much longer.
    let until = unix(cutoff.expire_time.as_ref().expect("expire_time"));
    let ttl = until.duration_since(SystemTime::now()).expect("in the future");
    assert!(ttl >= Duration::from_secs(900) && ttl <= Duration::from_secs(900 + 30 + 60 + 2), "{ttl:?}");

    // Signing in again right away (same second) gives a token the cut-off does not revoke.
    let fresh = login(&h.api, "owner@example.com", PASSWORD).await.expect("login after logout");
    let claims = verifier.verify_now(&fresh.access_token).expect("the edge accepts it (iat within the leeway)");
    assert!(!revoked(&all(&h.api).await, &claims), "a sign-in after the logout stays signed in");
    let renewed = refresh(&h.api, &fresh.refresh_token).await.expect("refresh");
    assert!(!revoked(&all(&h.api).await, &verifier.verify_now(&renewed.access_token).expect("valid")));
    // A second logout everywhere in the same second still revokes that newer sign-in.
    h.api.logout(as_owner(logout("", true), &owner.owner_id)).await.expect("logout everywhere again");
    assert!(revoked(&all(&h.api).await, &verifier.verify_now(&renewed.access_token).expect("valid")));
    h.cleanup().await;
}

#[tokio::test]
async fn logout_of_one_session_and_refresh_token_reuse_revoke_that_session() {
    let h = Harness::start(config()).await;
    let owner = register(&h.api, "owner@example.com", ACTIVE).await;
    let verifier = verifier(&h.api).await;
    let kept = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    let ended = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    h.api.logout(as_owner(logout(&ended.refresh_token, false), &owner.owner_id)).await.expect("logout");
    let revocations = all(&h.api).await;
    let ended_claims = verifier.verify_now(&ended.access_token).expect("valid");
    assert_eq!(revocations.len(), 1);
    assert_eq!(Some(revocations[0].session_id.as_str()), ended_claims.sid());
    assert!(revocations[0].issued_before.is_none());
    assert!(revoked(&revocations, &ended_claims));
    assert!(!revoked(&revocations, &verifier.verify_now(&kept.access_token).expect("valid")));

    // A stolen refresh token used after its owner rotated it: the whole session, access tokens
    // included, is revoked.
    let stolen = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    let rotated = refresh(&h.api, &stolen.refresh_token).await.expect("the owner refreshes");
    refresh(&h.api, &stolen.refresh_token).await.expect_err("the thief replays the old one");
    let revocations = all(&h.api).await;
    assert!(revoked(&revocations, &verifier.verify_now(&rotated.access_token).expect("valid")));
    assert!(!revoked(&revocations, &verifier.verify_now(&kept.access_token).expect("valid")));
    h.cleanup().await;
}

#[tokio::test]
async fn polling_with_the_cursor_sees_new_revocations_and_pages_a_flood() {
    let h = Harness::start(config()).await;
    let owner = register(&h.api, "owner@example.com", ACTIVE).await;
    let first = list(&h.api, "").await;
    assert!(first.revocations.is_empty() && !first.more);
    h.api.logout(as_owner(logout("", true), &owner.owner_id)).await.expect("logout everywhere");
    let next = list(&h.api, &first.next_cursor).await;
    assert_eq!(next.revocations.len(), 1, "the poll after a revocation carries it");

    // A flood: more rows than one answer holds. Following `more` reads each exactly once.
    let rows = 2 * 2000 + 17;
    kem_kit::store::query(
        "INSERT INTO access_revocations (owner_id, session_id, issued_before, recorded_at, expires_at) \
         SELECT 'flood', 's-' || n, 0, 1000 + (n % 7), 9000000000000 FROM generate_series(1, $1) AS n",
    )
    .bind(i32::try_from(rows).expect("fits"))
    .execute(&h.svc.ctx.store)
    .await
    .expect("flood");
    let mut cursor = String::new();
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0;
    loop {
        let page = list(&h.api, &cursor).await;
        pages += 1;
        for r in page.revocations {
            assert!(seen.insert((r.owner_id, r.session_id)), "no row twice within one read");
        }
        cursor = page.next_cursor;
        if !page.more {
            break;
        }
    }
    assert_eq!((seen.len(), pages), (rows + 1, 3));

    let bad = h
        .api
        .list_revocations(Request::new(pb::ListRevocationsRequest { cursor: "garbage".into() }))
        .await
        .expect_err("not our cursor");
    assert_eq!((bad.code(), violated_fields(&bad)), (Code::InvalidArgument, vec!["cursor".to_owned()]));
    h.cleanup().await;
}

#[test]
fn only_the_gateway_may_list_revocations() {
    let policy = Policy::from_contracts(
        kem_proto::descriptor_pool(),
        &["kem.user.v1.UserService"],
        TRUST_DOMAIN,
        NAMESPACE,
        "gateway",
    );
    let path = "/kem.user.v1.UserService/ListRevocations";
    assert_eq!(policy.decide(path, Some(&TestCa::id("gateway"))), Decision::Allow);
    for peer in ["event", "participation", "user", "analytics"] {
        assert_eq!(policy.decide(path, Some(&TestCa::id(peer))), Decision::Deny, "{peer}");
    }
    assert_eq!(policy.decide(path, None), Decision::Deny);
}
