//! ChangePassword: the current password is checked (and throttled), every session ends with its
//! access tokens, and the caller continues in a new session.

use std::time::Duration;

use kem_kit::runtime::with_client_ip;
use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_server::UserService;
use kem_user::{LoginThrottle, UserApi, UserConfig};
use tonic::{Code, Request};

use crate::support::*;

const NEW_PASSWORD: &str = "battery-staple-42";

async fn change(
    api: &UserApi,
    owner_id: &str,
    current: &str,
    new: &str,
    client: &str,
) -> Result<pb::TokenPair, tonic::Status> {
    let request = pb::ChangePasswordRequest { current_password: current.to_owned(), new_password: new.to_owned() };
    let request = with_client_ip(as_owner(request, owner_id), client.parse().expect("ip"));
    api.change_password(request).await.map(|r| r.into_inner().token_pair.expect("token pair"))
}

async fn listed_revocations(api: &UserApi) -> Vec<pb::AccessRevocation> {
    let request = Request::new(pb::ListRevocationsRequest { cursor: String::new() });
    api.list_revocations(request).await.expect("list").into_inner().revocations
}

#[tokio::test]
async fn a_password_change_ends_every_session_and_revokes_their_access_tokens() {
    let h = Harness::start(config()).await;
    let owner = register(&h.api, "owner@example.com", ACTIVE).await;
    let verifier = verifier(&h.api).await;
    let phone = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    let laptop = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");

    let fresh = change(&h.api, &owner.owner_id, PASSWORD, NEW_PASSWORD, "198.51.100.20").await.expect("changed");

    let revocations = listed_revocations(&h.api).await;
    assert_eq!(revocations.len(), 1, "{revocations:?}");
    let cutoff = revocations[0].issued_before.as_ref().expect("an owner-wide cut-off").seconds;
    for pair in [&phone, &laptop] {
        let claims = verifier.verify_now(&pair.access_token).expect("signature still valid");
        assert!(i64::try_from(claims.iat).expect("iat") < cutoff, "old access tokens are revoked");
        let status = refresh(&h.api, &pair.refresh_token).await.expect_err("old sessions ended");
        assert_eq!(reason(&status), "INVALID_REFRESH_TOKEN");
    }
    let claims = verifier.verify_now(&fresh.access_token).expect("the new token verifies");
    assert!(i64::try_from(claims.iat).expect("iat") >= cutoff, "the caller's new session is not revoked");
    refresh(&h.api, &fresh.refresh_token).await.expect("the new session refreshes");

    let old = login(&h.api, "owner@example.com", PASSWORD).await.expect_err("the old password is gone");
    assert_eq!(reason(&old), "INVALID_CREDENTIALS");
    login(&h.api, "owner@example.com", NEW_PASSWORD).await.expect("the new password signs in");
    h.cleanup().await;
}

#[tokio::test]
async fn a_wrong_current_password_is_refused_and_throttled_and_bad_new_ones_are_named() {
    let login_throttle = LoginThrottle {
        address_max_failures: 3,
        address_lockout: Duration::from_secs(600),
        account_free_failures: 1000,
        ..LoginThrottle::default()
    };
    let h = Harness::start(UserConfig { login: login_throttle, ..config() }).await;
    let owner = register(&h.api, "owner@example.com", ACTIVE).await;
    let id = owner.owner_id.as_str();

    for (new, why) in [("short", "too short"), (PASSWORD, "the same password"), ("", "empty")] {
        let status = change(&h.api, id, PASSWORD, new, "203.0.113.9").await.expect_err(why);
        assert_eq!((status.code(), violated_fields(&status)), (Code::InvalidArgument, vec!["newPassword".to_owned()]));
    }
    for _ in 0..3 {
        let status = change(&h.api, id, "not-my-password-1", NEW_PASSWORD, "203.0.113.9").await.expect_err("wrong");
        assert_eq!((status.code(), reason(&status).as_str()), (Code::InvalidArgument, "CURRENT_PASSWORD_INCORRECT"));
        assert_eq!(violated_fields(&status), ["currentPassword"]);
    }
    // A stolen access token does not give unlimited guesses at the password.
    let locked = change(&h.api, id, PASSWORD, NEW_PASSWORD, "203.0.113.9").await.expect_err("locked");
    assert_eq!((locked.code(), reason(&locked).as_str()), (Code::ResourceExhausted, "TOO_MANY_ATTEMPTS"));
    assert!(retry_delay(&locked).is_some_and(|wait| wait > Duration::from_secs(500)));
    // The owner elsewhere is not locked out.
    change(&h.api, id, PASSWORD, NEW_PASSWORD, "198.51.100.20").await.expect("the owner changes it");

    let anonymous = h
        .api
        .change_password(Request::new(pb::ChangePasswordRequest {
            current_password: NEW_PASSWORD.into(),
            new_password: "another-pass-99".into(),
        }))
        .await
        .expect_err("not signed in");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    h.cleanup().await;
}
