//! Access tokens at the edge: every forgery and every hostile time claim is a 401 that never
//! reaches a backend nor hurts the edge, and revoked tokens are refused although still cached.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use kem_gateway::auth::revocations::Revocation;
use kem_gateway::edge::EdgeConfig;
use kem_gateway::protect::EdgeLimits;
use kem_kit::jwt::{Issuer, SigningKey};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

use crate::support::{AUDIENCE, ISSUER, Setup, client, start};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `header.payload` signed with the edge's real key (ES256, its kid): a valid signature over
/// whatever payload text the test wants.
fn signed_by_the_real_key(setup: &Setup, payload: &str) -> String {
    let key = setup.issuer.current_key();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key.pkcs8_der(), &SystemRandom::new())
        .expect("the test issuer's key");
    let header = json!({ "alg": "ES256", "typ": "JWT", "kid": key.kid() });
    let input = format!("{}.{}", b64(header.to_string()), b64(payload));
    let signature = pair.sign(&SystemRandom::new(), input.as_bytes()).expect("sign");
    format!("{input}.{}", b64(signature.as_ref()))
}

fn claims(exp: &str, nbf: &str, iat: &str) -> String {
    format!(
        r#"{{"iss":"{ISSUER}","sub":"owner-1","aud":"{AUDIENCE}","jti":"j","sid":"s-1","exp":{exp},"nbf":{nbf},"iat":{iat}}}"#
    )
}

/// GET an owner route with `token`; the status.
async fn status_with(setup: &Setup, token: &str) -> u16 {
    let response = client().get(setup.url("/api/v1/events/ev-1")).bearer_auth(token).send().await.expect("response");
    let status = response.status().as_u16();
    if status == 401 {
        assert!(response.headers().contains_key("www-authenticate"));
    }
    status
}

#[tokio::test]
async fn forged_tokens_and_hostile_time_claims_are_401_and_never_reach_a_backend() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let jwk = setup.issuer.current_key().public_jwk();
    let kid = jwk.kid.clone();
    let now = now_s();
    let good_claims = claims(&(now + 900).to_string(), &now.to_string(), &now.to_string());

    let mut cases: Vec<(String, String)> = Vec::new();
    // alg none, with and without a signature part.
    for alg in ["none", "None", "NONE"] {
        let header = b64(json!({ "alg": alg, "typ": "JWT", "kid": kid }).to_string());
        cases.push((format!("alg {alg}"), format!("{header}.{}.", b64(&good_claims))));
    }
    // HS256 "signed" with the public key, in every form an HMAC-confused verifier might use.
    let point = {
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&jwk.x).expect("x");
        let y = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&jwk.y).expect("y");
        [vec![0x04], x, y].concat()
    };
    let jwk_json = serde_json::to_string(&jwk).expect("jwk json");
    let jwks_json = json!({ "keys": [serde_json::to_value(&jwk).expect("jwk")] }).to_string();
    for (form, secret) in [("point", point.as_slice()), ("JWK", jwk_json.as_bytes()), ("JWKS", jwks_json.as_bytes())] {
        let header = b64(json!({ "alg": "HS256", "typ": "JWT", "kid": kid }).to_string());
        let input = format!("{header}.{}", b64(&good_claims));
        let mac = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), input.as_bytes());
        cases.push((format!("HS256 with the public key as {form}"), format!("{input}.{}", b64(mac.as_ref()))));
    }
    // A foreign P-256 key presenting our real kid.
    let foreign = Issuer::new(SigningKey::generate().expect("key").with_kid(kid.clone()), ISSUER, AUDIENCE);
    cases.push(("foreign key, real kid".into(), foreign.issue("owner-1", Default::default()).expect("token").0));
    // Our key, wrong issuer / audience; expired.
    let same_key = || SigningKey::from_pkcs8_der(setup.issuer.current_key().pkcs8_der()).expect("key");
    let wrong_iss = Issuer::new(same_key(), "https://evil.example", AUDIENCE);
    cases.push(("wrong issuer".into(), wrong_iss.issue("owner-1", Default::default()).expect("t").0));
    let wrong_aud = Issuer::new(same_key(), ISSUER, "kem-admin");
    cases.push(("wrong audience".into(), wrong_aud.issue("owner-1", Default::default()).expect("t").0));
    let expired = setup
        .issuer
        .issue_at("owner-1", Default::default(), SystemTime::now() - Duration::from_secs(2 * 3600))
        .expect("old")
        .0;
    cases.push(("expired".into(), expired));
    // Correctly signed, hostile numbers: near 2^63 (the old panic), negative, float, huge.
    let in_15_min = (now + 900).to_string();
    let n = now.to_string();
    for (claim, value) in [
        ("exp", (1u64 << 63).to_string()),
        ("exp", "9223372036854775807".to_owned()),
        ("exp", u64::MAX.to_string()),
        ("exp", "18446744073709551616".to_owned()),
        ("exp", "-1".to_owned()),
        ("exp", "1.5e9".to_owned()),
        ("exp", "1e400".to_owned()),
        ("nbf", "-9223372036854775808".to_owned()),
        ("nbf", "0.5".to_owned()),
        ("iat", (1u64 << 63).to_string()),
        ("iat", (now + 3600).to_string()),
        ("iat", "-5".to_owned()),
    ] {
        let payload = match claim {
            "exp" => claims(&value, &n, &n),
            "nbf" => claims(&in_15_min, &value, &n),
            _ => claims(&in_15_min, &n, &value),
        };
        cases.push((format!("{claim} = {value}"), signed_by_the_real_key(&setup, &payload)));
    }

    let before = setup.backend.calls.load(Ordering::SeqCst);
    for (name, token) in &cases {
        assert_eq!(status_with(&setup, token).await, 401, "{name}");
        // Twice: a refused token is never remembered as a verified one.
        assert_eq!(status_with(&setup, token).await, 401, "{name} (again)");
    }
    assert_eq!(setup.backend.calls.load(Ordering::SeqCst), before, "no forged token reached the backend");

    // The edge is unharmed: a good token (also one signed by hand) still works, twice (cached).
    let good = setup.token("owner-1");
    let by_hand = signed_by_the_real_key(&setup, &good_claims);
    for token in [&good, &good, &by_hand, &by_hand] {
        assert_eq!(status_with(&setup, token).await, 200);
    }
    setup.shutdown.trigger();
}

#[tokio::test]
async fn revoked_tokens_are_401_even_when_the_edge_has_them_cached() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let session = |sid: &str| {
        let mut extra = serde_json::Map::new();
        extra.insert("sid".to_owned(), Value::String(sid.to_owned()));
        setup.issuer.issue("owner-1", extra).expect("token")
    };
    let (signed_out, _) = session("s-out");
    let (other_session, claims) = session("s-kept");
    for token in [&signed_out, &other_session] {
        assert_eq!(status_with(&setup, token).await, 200, "valid, and now cached");
    }

    let keep = SystemTime::now() + Duration::from_secs(900);
    setup.revocations.apply(vec![Revocation::Session { session_id: "s-out".into(), expires: keep }]);
    assert_eq!(status_with(&setup, &signed_out).await, 401, "logout of that session");
    assert_eq!(status_with(&setup, &other_session).await, 200, "the other session stays");

    setup.revocations.apply(vec![Revocation::Owner {
        owner_id: "owner-1".into(),
        issued_before: claims.iat + 1,
        expires: keep,
    }]);
    assert_eq!(status_with(&setup, &other_session).await, 401, "logout everywhere");
    let later = setup
        .issuer
        .issue_at("owner-1", Default::default(), UNIX_EPOCH + Duration::from_secs(claims.iat + 1))
        .expect("token")
        .0;
    assert_eq!(status_with(&setup, &later).await, 200, "a sign-in after the logout");
    setup.shutdown.trigger();
}

#[tokio::test]
async fn the_edge_forwards_the_client_address_and_ignores_a_spoofed_one() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let body: Value = client()
        .get(setup.url("/api/v1/events/ev-1"))
        .bearer_auth(setup.token("owner-1"))
        .header(kem_kit::runtime::CLIENT_IP_METADATA, "6.6.6.6")
        .send()
        .await
        .expect("response")
        .json()
        .await
        .expect("json");
    assert_eq!(body["event"]["description"], "127.0.0.1", "{body}");
    setup.shutdown.trigger();
}
