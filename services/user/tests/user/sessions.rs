//! Login, lockout, refresh-token rotation and reuse detection, logout.

use std::time::Duration;

use kem_kit::clock::ManualClock;
use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_server::UserService;
use kem_user::{LoginThrottle, UserConfig};
use tonic::{Code, Request};

use crate::support::*;

async fn signed_up(config: UserConfig) -> (Harness, String) {
    signed_up_with(Harness::start(config).await).await
}

/// Registers the owner on a started harness.
async fn signed_up_with(h: Harness) -> (Harness, String) {
    let owner = register(&h.api, "owner@example.com", ACTIVE).await;
    (h, owner.owner_id)
}

#[tokio::test]
async fn login_returns_an_es256_access_token_the_published_keys_verify_and_a_refresh_token() {
    let (h, owner_id) = signed_up(config()).await;
    let pair = login(&h.api, " OWNER@example.com", PASSWORD).await.expect("signed in");
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in.as_ref().map(|d| d.seconds), Some(900));
    assert_eq!(pair.refresh_expires_in.as_ref().map(|d| d.seconds), Some(14 * 24 * 3600));
    assert_eq!(pair.refresh_token.len(), 43);
    let claims = verifier(&h.api).await.verify_now(&pair.access_token).expect("verifies against GetSigningKeys");
    assert_eq!(claims.sub, owner_id);
    assert_eq!((claims.iss.as_str(), claims.exp - claims.iat), ("kem-user", 900));
    assert!(claims.aud.contains("kem-api"));
    assert!(claims.sid().is_some_and(kem_user::app::ids::is_uuid), "the session id is a claim");
    assert_eq!(kid_of(&pair.access_token), h.api.core().keys().current_kid());
    h.cleanup().await;
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_are_the_same_unauthenticated() {
    let (h, _) = signed_up(config()).await;
    let wrong = login(&h.api, "owner@example.com", "wrong-horse-7").await.expect_err("wrong password");
    let unknown = login(&h.api, "nobody@example.com", PASSWORD).await.expect_err("unknown email");
    for status in [&wrong, &unknown] {
        assert_eq!((status.code(), reason(status).as_str()), (Code::Unauthenticated, "INVALID_CREDENTIALS"));
    }
    assert_eq!(wrong.message(), unknown.message());
    let huge = format!("{}@example.com", "a".repeat(10_000));
    assert_eq!(reason(&login(&h.api, &huge, PASSWORD).await.expect_err("no such account")), "INVALID_CREDENTIALS");
    assert_eq!(count(&h.svc.ctx.store, "SELECT COUNT(*) AS n FROM login_account_throttle").await, 2, "not recorded");
    let empty = login(&h.api, "", "").await.expect_err("empty");
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&empty), ["email", "password"]);
    h.cleanup().await;
}

#[tokio::test]
async fn repeated_failures_lock_sign_in_across_replicas_until_the_lockout_ends() {
    let throttle = LoginThrottle {
        address_max_failures: 3,
        address_window: Duration::from_secs(60),
        address_lockout: Duration::from_secs(2),
        account_free_failures: 1000,
        ..LoginThrottle::default()
    };
    let settings = UserConfig { login: throttle, ..config() };
    // Starts at the real time: the tokens it stamps still verify against the system clock.
    let clock = ManualClock::starting_now();
    let (h, _) = signed_up_with(Harness::with_clock(settings.clone(), clock.clone()).await).await;
    for _ in 0..3 {
        let status = login(&h.api, "owner@example.com", "wrong-horse-7").await.expect_err("wrong");
        assert_eq!(reason(&status), "INVALID_CREDENTIALS");
    }
    // Locked: even the right password is refused, with the wait in RetryInfo.
    let locked = login(&h.api, "owner@example.com", PASSWORD).await.expect_err("locked");
    assert_eq!((locked.code(), reason(&locked).as_str()), (Code::ResourceExhausted, "TOO_MANY_ATTEMPTS"));
    let wait = retry_delay(&locked).expect("retry advice");
    assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_secs(2), "{wait:?}");
    // The lock is in the database: another replica enforces it too.
    let replica = h.replica(settings).await;
    let locked = login(&replica, "OWNER@example.com", PASSWORD).await.expect_err("locked on the replica");
    assert_eq!(reason(&locked), "TOO_MANY_ATTEMPTS");
    // Unknown emails lock the same way (no account enumeration through the lockout).
    for _ in 0..3 {
        login(&h.api, "ghost@example.com", PASSWORD).await.expect_err("unknown");
    }
    assert_eq!(reason(&login(&h.api, "ghost@example.com", PASSWORD).await.expect_err("locked")), "TOO_MANY_ATTEMPTS");

    // Not a millisecond before the 2 s lock stored in PostgreSQL has passed on the service's clock...
    clock.advance(Duration::from_millis(1_999));
    assert_eq!(reason(&login(&h.api, "owner@example.com", PASSWORD).await.expect_err("locked")), "TOO_MANY_ATTEMPTS");
    // ...and then it has ended.
    clock.advance(Duration::from_millis(101));
    login(&h.api, "owner@example.com", PASSWORD).await.expect("the lock has ended");
    h.cleanup().await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_of_a_rotated_token_revokes_the_whole_family() {
    let (h, owner_id) = signed_up(config()).await;
    let first = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    let second = refresh(&h.api, &first.refresh_token).await.expect("rotated");
    assert_ne!(second.refresh_token, first.refresh_token);
    let claims = verifier(&h.api).await.verify_now(&second.access_token).expect("new access token verifies");
    assert_eq!(claims.sub, owner_id);
    let third = refresh(&h.api, &second.refresh_token).await.expect("rotated again");

    // The first token was already rotated: presenting it again is reuse.
    let reused = refresh(&h.api, &first.refresh_token).await.expect_err("reuse");
    assert_eq!((reused.code(), reason(&reused).as_str()), (Code::Unauthenticated, "REFRESH_TOKEN_REUSED"));
    // ...and the whole family is revoked, including the newest token.
    let revoked = refresh(&h.api, &third.refresh_token).await.expect_err("family revoked");
    assert_eq!((revoked.code(), reason(&revoked).as_str()), (Code::Unauthenticated, "INVALID_REFRESH_TOKEN"));

    // Another session of the same owner is untouched.
    let other = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    refresh(&h.api, &other.refresh_token).await.expect("other session still works");
    h.cleanup().await;
}

#[tokio::test]
async fn two_concurrent_refreshes_of_one_token_rotate_once_and_revoke_the_family() {
    let (h, _) = signed_up(config()).await;
    let pair = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    let (a, b) = tokio::join!(refresh(&h.api, &pair.refresh_token), refresh(&h.api, &pair.refresh_token));
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("exactly one refresh must win: {other:?}"),
    };
    assert_eq!(reason(&lost), "REFRESH_TOKEN_REUSED");
    let status = refresh(&h.api, &won.refresh_token).await.expect_err("the family was revoked");
    assert_eq!(reason(&status), "INVALID_REFRESH_TOKEN");
    h.cleanup().await;
}

#[tokio::test]
async fn unknown_empty_and_oversized_refresh_tokens_are_refused() {
    let h = Harness::start(config()).await;
    let empty = refresh(&h.api, "  ").await.expect_err("empty");
    assert_eq!((empty.code(), violated_fields(&empty)), (Code::InvalidArgument, vec!["refreshToken".to_owned()]));
    for token in ["nonsense", &"x".repeat(10_000)] {
        let status = refresh(&h.api, token).await.expect_err("unknown");
        assert_eq!(reason(&status), "INVALID_REFRESH_TOKEN");
    }
    h.cleanup().await;
}

#[tokio::test]
async fn expired_refresh_tokens_are_refused() {
    let mut settings = config();
    settings.tokens.refresh_ttl = Duration::from_millis(300);
    let clock = ManualClock::starting_now();
    let (h, _) = signed_up_with(Harness::with_clock(settings, clock.clone()).await).await;
    let pair = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    // The 300 ms token TTL stored in PostgreSQL passes on the service's clock.
    clock.advance(Duration::from_millis(400));
    let status = refresh(&h.api, &pair.refresh_token).await.expect_err("expired");
    assert_eq!(reason(&status), "INVALID_REFRESH_TOKEN");
    h.cleanup().await;
}

#[tokio::test]
async fn logout_revokes_the_session_idempotently_and_only_the_callers() {
    let (h, owner_id) = signed_up(config()).await;
    let other = register(&h.api, "other@example.com", OTHER).await;
    let mine = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    let theirs = login(&h.api, "other@example.com", PASSWORD).await.expect("login");
    let logout = |token: &str, all: bool| pb::LogoutRequest { refresh_token: token.to_owned(), all_sessions: all };

    // Not signed in.
    let status = h.api.logout(Request::new(logout(&mine.refresh_token, false))).await.expect_err("anonymous");
    assert_eq!(status.code(), Code::Unauthenticated);
    // Neither a token nor all_sessions.
    let status = h.api.logout(as_owner(logout("", false), &owner_id)).await.expect_err("nothing to revoke");
    assert_eq!((status.code(), violated_fields(&status)), (Code::InvalidArgument, vec!["refreshToken".to_owned()]));
    // Someone else's token: a quiet success that revokes nothing.
    h.api.logout(as_owner(logout(&theirs.refresh_token, false), &owner_id)).await.expect("quiet");
    refresh(&h.api, &theirs.refresh_token).await.expect("their session is untouched");

    h.api.logout(as_owner(logout(&mine.refresh_token, false), &owner_id)).await.expect("logout");
    h.api.logout(as_owner(logout(&mine.refresh_token, false), &owner_id)).await.expect("idempotent");
    h.api.logout(as_owner(logout("never-issued", false), &owner_id)).await.expect("unknown token is fine");
    let status = refresh(&h.api, &mine.refresh_token).await.expect_err("revoked");
    assert_eq!(reason(&status), "INVALID_REFRESH_TOKEN");

    // Sign out everywhere.
    let a = login(&h.api, "other@example.com", PASSWORD).await.expect("login");
    let b = login(&h.api, "other@example.com", PASSWORD).await.expect("login");
    h.api.logout(as_owner(logout("", true), &other.owner_id)).await.expect("all sessions");
    for token in [&a.refresh_token, &b.refresh_token] {
        assert_eq!(reason(&refresh(&h.api, token).await.expect_err("revoked")), "INVALID_REFRESH_TOKEN");
    }
    h.cleanup().await;
}

#[tokio::test]
async fn a_password_hashed_with_old_parameters_is_upgraded_at_sign_in() {
    let (h, owner_id) = signed_up(config()).await;
    let stronger = UserConfig {
        password: kem_user::PasswordSettings { memory_kib: 512, ..kem_user::PasswordSettings::TESTING },
        ..config()
    };
    let replica = h.replica(stronger).await;
    login(&replica, "owner@example.com", PASSWORD).await.expect("old hash verifies");
    let row = kem_kit::store::query("SELECT password_hash FROM owners WHERE id = $1")
        .bind(owner_id.as_str())
        .fetch_one(&h.svc.ctx.store)
        .await
        .expect("row");
    let hash: String = row.get("password_hash").expect("hash");
    assert!(hash.contains("m=512,"), "{hash}");
    login(&h.api, "owner@example.com", PASSWORD).await.expect("still signs in");
    h.cleanup().await;
}
