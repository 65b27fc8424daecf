//! Signing out through the real edge: "sign out everywhere" (and a password change) makes the old
//! access tokens 401 at the edge within a second (they are cached there and their signatures are
//! still valid), a sign-in right after works, a freshly started edge loads the revocations before
//! anything else, and failed sign-ins lock the client's address — as the edge forwards it — not
//! the account.

use std::time::Duration;

use base64::Engine as _;
use kem::platform::ServiceConfigs;
use kem::{Role, ServiceName};
use kem_gateway::auth::{RevocationList, UserServiceRevocations};
use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_client::UserServiceClient;
use kem_testkit::roles::TestPlatform;
use serde_json::{Value, json};

use crate::support::Rest;

const PASSWORD: &str = "Correct-Horse-9-Battery";

async fn platform() -> TestPlatform {
    // The edge's own per-route limits are out of the way: this journey signs in many times from
    // one address (those limits are tested in the gateway's tests).
    let mut limits = kem_gateway::protect::EdgeLimits::default();
    for limit in limits.routes.values_mut() {
        limit.limit = kem_gateway::protect::RateLimit::new(1000, Duration::from_secs(1), 1000).expect("valid limit");
    }
    let configs = ServiceConfigs {
        user: Some(kem_user::UserConfig::for_tests()),
        edge_limits: Some(limits),
        ..ServiceConfigs::default()
    };
    TestPlatform::start_backed_with(&Role::all(), configs).await
}

fn registration(email: &str) -> Value {
    json!({
        "email": email,
        "password": PASSWORD,
        "name": "김사장",
        "phone": "010-1234-5678",
        "storeName": "동네 카페",
        "businessCategory": "BUSINESS_CATEGORY_CAFE",
        "region": "서울 마포구",
        // Checksum-valid; the local NTS stand-in reports it active.
        "businessNumber": "1248100998",
    })
}

async fn sign_in(edge: &Rest, email: &str) -> (String, String) {
    let login = edge.post("/api/v1/auth:login", json!({"email": email, "password": PASSWORD})).await.expect(200);
    (login.str("/tokenPair/accessToken"), login.str("/tokenPair/refreshToken"))
}

/// The claims of a JWT, read without verifying (the edge did that).
fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Polls `GET /api/v1/users/me` with `token` until it is 401; how long that took (at most 3 s).
async fn refused_after(edge: &Rest, token: &str, since: tokio::time::Instant) -> Duration {
    let signed = &edge.signed_in(token);
    let within = Duration::from_secs(3).saturating_sub(since.elapsed());
    kem_testkit::eventually("the edge refuses the signed-out token", within, || async move {
        let reply = signed.get("/api/v1/users/me").await;
        if reply.status == 401 {
            return true;
        }
        assert_eq!(reply.status, 200, "{}", reply.body);
        false
    })
    .await;
    since.elapsed()
}

#[tokio::test]
async fn sign_out_everywhere_revokes_old_access_tokens_at_the_edge_within_a_second() {
    let platform = platform().await;
    let edge = Rest::new(platform.http_addr());
    edge.post("/api/v1/users:register", registration("kim@example.com")).await.expect(200);
    let (phone, _) = sign_in(&edge, "kim@example.com").await;
    let (laptop, laptop_refresh) = sign_in(&edge, "kim@example.com").await;
    for token in [&phone, &laptop] {
        // Verified once, then served from the edge's verified-token cache.
        edge.signed_in(token).get("/api/v1/users/me").await.expect(200);
        edge.signed_in(token).get("/api/v1/users/me").await.expect(200);
    }

    // One session signs out: its access token goes, the other session's stays.
    let started = tokio::time::Instant::now();
    edge.signed_in(&laptop).post("/api/v1/auth:logout", json!({"refreshToken": laptop_refresh})).await.expect(200);
    let took = refused_after(&edge, &laptop, started).await;
    assert!(took < Duration::from_secs(1), "the signed-out session's token was accepted for {took:?}");
    edge.signed_in(&phone).get("/api/v1/users/me").await.expect(200);

    // Sign out everywhere.
    let started = tokio::time::Instant::now();
    edge.signed_in(&phone).post("/api/v1/auth:logout", json!({"allSessions": true})).await.expect(200);
    let took = refused_after(&edge, &phone, started).await;
    assert!(took < Duration::from_secs(1), "an old access token was accepted for {took:?} after sign-out");
    let refused = edge.signed_in(&phone).get("/api/v1/users/me").await.expect(401);
    assert!(refused.body.to_string().contains("revoked"), "{}", refused.body);

    // Signing in again right away works, and keeps working.
    let (fresh, _) = sign_in(&edge, "kim@example.com").await;
    for _ in 0..3 {
        edge.signed_in(&fresh).get("/api/v1/users/me").await.expect(200);
    }

    // A freshly started edge (a restart, another replica) loads every live revocation first:
    // here one built like the gateway role's, calling the user service as the gateway.
    let gateway = platform.workload_identity("gateway").await;
    let user = platform.channel(&gateway, Role::Service(ServiceName::User));
    let list =
        RevocationList::new(std::sync::Arc::new(UserServiceRevocations(kem_gateway::upstream::upstream(user.clone()))));
    assert!(!list.is_ready(), "nothing is accepted before the list is loaded");
    list.sync().await.expect("the user service lists revocations for the gateway");
    assert!(list.is_ready());
    for token in [&phone, &laptop] {
        let c = claims(token);
        let (sub, sid, iat) = (c["sub"].as_str().expect("sub"), c["sid"].as_str(), c["iat"].as_u64().expect("iat"));
        assert!(list.is_revoked(sub, sid, iat), "a restarted edge still refuses {c}");
    }
    let c = claims(&fresh);
    assert!(!list.is_revoked(c["sub"].as_str().expect("sub"), c["sid"].as_str(), c["iat"].as_u64().expect("iat")));

    // Only the gateway may list revocations.
    let event = platform.workload_identity("event").await;
    let mut as_event = UserServiceClient::new(platform.channel(&event, Role::Service(ServiceName::User)));
    let denied = as_event.list_revocations(pb::ListRevocationsRequest::default()).await.expect_err("denied");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    // A password change ends every session the same way; the caller continues in a new one.
    let started = tokio::time::Instant::now();
    let changed = edge
        .signed_in(&fresh)
        .post(
            "/api/v1/users/me:changePassword",
            json!({"currentPassword": PASSWORD, "newPassword": "Another-Horse-7-Battery"}),
        )
        .await
        .expect(200);
    let took = refused_after(&edge, &fresh, started).await;
    assert!(took < Duration::from_secs(1), "an access token was accepted for {took:?} after a password change");
    edge.signed_in(&changed.str("/tokenPair/accessToken")).get("/api/v1/users/me").await.expect(200);
    platform.stop().await;
}

#[tokio::test]
async fn failed_sign_ins_lock_the_clients_address_not_the_account() {
    let platform = platform().await;
    let edge = Rest::new(platform.http_addr());
    edge.post("/api/v1/users:register", registration("park@example.com")).await.expect(200);
    for _ in 0..5 {
        edge.post("/api/v1/auth:login", json!({"email": "park@example.com", "password": "wrong-horse-7"}))
            .await
            .expect(401);
    }
    // This address (the test's loopback, as the edge saw it) is locked for the account...
    let locked = edge.post("/api/v1/auth:login", json!({"email": "park@example.com", "password": PASSWORD})).await;
    let locked = locked.expect(429);
    assert!(locked.body.to_string().contains("TOO_MANY_ATTEMPTS"), "{}", locked.body);
    let retry = locked.body["details"]
        .as_array()
        .and_then(|details| {
            details.iter().find(|d| d["@type"].as_str().is_some_and(|t| t.ends_with("/google.rpc.RetryInfo")))
        })
        .unwrap_or_else(|| panic!("a 429 carries RetryInfo: {}", locked.body));
    assert!(!retry["retryDelay"].as_str().unwrap_or_default().is_empty(), "{retry}");

    // ...while the owner, at another address, signs in (the edge forwards the address it saw; a
    // call as the gateway with another address stands in for a second client).
    let gateway = platform.workload_identity("gateway").await;
    let mut user = UserServiceClient::new(platform.channel(&gateway, Role::Service(ServiceName::User)));
    let request = pb::LoginRequest { email: "park@example.com".into(), password: PASSWORD.into() };
    let request = kem_kit::runtime::with_client_ip(tonic::Request::new(request), "198.51.100.20".parse().expect("ip"));
    user.login(request).await.expect("another address is not locked out");
    platform.stop().await;
}
