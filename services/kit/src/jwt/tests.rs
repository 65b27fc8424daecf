//! Token round trips and every way a token must be refused, including the algorithm-confusion attacks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use super::*;

const ISS: &str = "https://user.kem.internal";
const AUD: &str = "kem-edge";

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

fn issuer() -> Issuer {
    Issuer::new(SigningKey::generate().expect("generate key"), ISS, AUD)
}

fn verifier_for(issuer: &Issuer, now: SystemTime) -> Verifier {
    Verifier::new(&issuer.jwks(now), ISS, AUD).expect("verifier")
}

fn sid(family: &str) -> Map<String, Value> {
    let mut extra = Map::new();
    extra.insert("sid".to_owned(), json!(family));
    extra
}

/// Builds `header.payload.signature` with a signature computed by `sign` over the signing input.
fn forge(header: Value, claims: Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64::encode(header.to_string()), b64::encode(claims.to_string()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64::encode(signature))
}

fn valid_claims(now: SystemTime) -> Value {
    let now = unix_seconds(now);
    json!({ "iss": ISS, "sub": "owner-1", "aud": AUD, "exp": now + 900, "nbf": now, "iat": now, "jti": "j1" })
}

fn es256(key: &SigningKey) -> impl FnOnce(&[u8]) -> Vec<u8> + '_ {
    |input| key.sign(input).expect("sign")
}

#[test]
fn round_trip_returns_the_issued_claims() {
    let issuer = issuer();
    let (token, claims) = issuer.issue_at("owner-1", sid("fam-1"), t0()).expect("issue");
    let verified = verifier_for(&issuer, t0()).verify(&token, t0()).expect("verify");
    assert_eq!(verified, claims);
    assert_eq!((verified.sub.as_str(), verified.iss.as_str(), verified.sid()), ("owner-1", ISS, Some("fam-1")));
    assert_eq!(verified.exp - verified.iat, DEFAULT_ACCESS_TTL.as_secs());
    assert_eq!(verified.jti.len(), 22, "16 random bytes, base64url");
    let header: Value =
        serde_json::from_slice(&b64::decode(token.split('.').next().expect("header")).expect("b64")).expect("json");
    assert_eq!(header, json!({ "alg": "ES256", "typ": "JWT", "kid": issuer.current_key().kid() }));
}

#[test]
fn tampered_payload_fails_the_signature() {
    let issuer = issuer();
    let (token, _) = issuer.issue_at("owner-1", Map::new(), t0()).expect("issue");
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = valid_claims(t0());
    claims["sub"] = json!("owner-2");
    let forged = format!("{}.{}.{}", parts[0], b64::encode(claims.to_string()), parts[2]);
    let err = verifier_for(&issuer, t0()).verify(&forged, t0()).expect_err("tampered payload");
    assert_eq!(err, JwtError::BadSignature { kid: issuer.current_key().kid().to_owned() });
}

#[test]
fn tampered_signature_fails() {
    let issuer = issuer();
    let (token, _) = issuer.issue_at("owner-1", Map::new(), t0()).expect("issue");
    let (input, signature) = token.rsplit_once('.').expect("three parts");
    let mut signature = b64::decode(signature).expect("b64");
    signature[10] ^= 0x01;
    let forged = format!("{input}.{}", b64::encode(&signature));
    let verifier = verifier_for(&issuer, t0());
    assert!(matches!(verifier.verify(&forged, t0()), Err(JwtError::BadSignature { .. })));
    let truncated = format!("{input}.{}", b64::encode(&signature[..63]));
    assert!(matches!(verifier.verify(&truncated, t0()), Err(JwtError::BadSignature { .. })));
}

#[test]
fn alg_none_with_an_empty_signature_is_rejected() {
    let issuer = issuer();
    let verifier = verifier_for(&issuer, t0());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({ "alg": alg, "kid": issuer.current_key().kid() });
        let token = forge(header, valid_claims(t0()), |_| Vec::new());
        assert!(token.ends_with('.'), "empty signature part");
        assert_eq!(verifier.verify(&token, t0()), Err(JwtError::UnsupportedAlgorithm { alg: alg.to_owned() }));
    }
}

#[test]
fn hs256_signed_with_the_public_key_as_hmac_secret_is_rejected() {
    // The classic confusion attack: a verifier that lets the token pick the algorithm would run
    // HMAC with the (public!) key bytes as the secret and accept this forgery.
    let issuer = issuer();
    let verifier = verifier_for(&issuer, t0());
    let jwk = issuer.current_key().public_jwk();
    let point = jwk.to_point().expect("point");
    let jwks_json = issuer.jwks(t0()).to_json();
    for secret in [point.as_slice(), jwks_json.as_bytes(), serde_json::to_string(&jwk).expect("jwk").as_bytes()] {
        let header = json!({ "alg": "HS256", "typ": "JWT", "kid": jwk.kid });
        let token = forge(header, valid_claims(t0()), |input| {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
            ring::hmac::sign(&key, input).as_ref().to_vec()
        });
        assert_eq!(verifier.verify(&token, t0()), Err(JwtError::UnsupportedAlgorithm { alg: "HS256".to_owned() }));
    }
}

#[test]
fn every_other_algorithm_is_rejected_even_with_a_valid_es256_signature() {
    let issuer = issuer();
    let verifier = verifier_for(&issuer, t0());
    for alg in ["RS256", "PS256", "ES384", "ES256K", "EdDSA", "es256", ""] {
        let header = json!({ "alg": alg, "kid": issuer.current_key().kid() });
        let token = forge(header, valid_claims(t0()), es256(issuer.current_key()));
        assert_eq!(verifier.verify(&token, t0()), Err(JwtError::UnsupportedAlgorithm { alg: alg.to_owned() }));
    }
}

#[test]
fn missing_and_unknown_kid_are_distinct_errors() {
    let issuer = issuer();
    let verifier = verifier_for(&issuer, t0());
    let no_kid = forge(json!({ "alg": "ES256" }), valid_claims(t0()), es256(issuer.current_key()));
    assert_eq!(verifier.verify(&no_kid, t0()), Err(JwtError::MissingKid));

    let stranger = Issuer::new(SigningKey::generate().expect("key").with_kid("stranger"), ISS, AUD);
    let (token, _) = stranger.issue_at("owner-1", Map::new(), t0()).expect("issue");
    assert_eq!(verifier.verify(&token, t0()), Err(JwtError::UnknownKid { kid: "stranger".to_owned() }));
    assert!(!verifier.knows_kid("stranger"));
    assert!(verifier.knows_kid(issuer.current_key().kid()));

    // Same kid, different key: a forgery, not an unknown key.
    let impostor = Issuer::new(SigningKey::generate().expect("key").with_kid(issuer.current_key().kid()), ISS, AUD);
    let (token, _) = impostor.issue_at("owner-1", Map::new(), t0()).expect("issue");
    assert!(matches!(verifier.verify(&token, t0()), Err(JwtError::BadSignature { .. })));
}

#[test]
fn expired_tokens_are_rejected_after_the_leeway() {
    let issuer = issuer();
    let verifier = verifier_for(&issuer, t0());
    let (token, claims) = issuer.issue_at("owner-1", Map::new(), t0()).expect("issue");
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
    verifier.verify(&token, at(claims.exp + 30)).expect("still inside the 30 s leeway");
    assert_eq!(
        verifier.verify(&token, at(claims.exp + 31)),
        Err(JwtError::Expired { exp: claims.exp, now: claims.exp + 31 })
    );
    let strict = verifier.clone().with_leeway(Duration::ZERO);
    assert!(matches!(strict.verify(&token, at(claims.exp + 1)), Err(JwtError::Expired { .. })));
}

#[test]
fn tokens_from_the_future_are_not_yet_valid() {
    let issuer = issuer();
    let verifier = verifier_for(&issuer, t0());
    let (skewed, _) = issuer.issue_at("owner-1", Map::new(), t0() + Duration::from_secs(20)).expect("issue");
    verifier.verify(&skewed, t0()).expect("20 s of clock skew is inside the leeway");
    let (future, claims) = issuer.issue_at("owner-1", Map::new(), t0() + Duration::from_secs(120)).expect("issue");
    assert_eq!(verifier.verify(&future, t0()), Err(JwtError::NotYetValid { nbf: claims.nbf, now: unix_seconds(t0()) }));
}

#[test]
fn wrong_issuer_is_rejected() {
    let issuer = issuer();
    let verifier = Verifier::new(&issuer.jwks(t0()), "https://evil.example", AUD).expect("verifier");
    let (token, _) = issuer.issue_at("owner-1", Map::new(), t0()).expect("issue");
    assert_eq!(
        verifier.verify(&token, t0()),
        Err(JwtError::WrongIssuer { expected: "https://evil.example".to_owned(), found: ISS.to_owned() })
    );
}

#[test]
fn wrong_audience_is_rejected() {
    let issuer = issuer();
    let verifier = Verifier::new(&issuer.jwks(t0()), ISS, "kem-admin").expect("verifier");
    let (token, _) = issuer.issue_at("owner-1", Map::new(), t0()).expect("issue");
    assert_eq!(
        verifier.verify(&token, t0()),
        Err(JwtError::WrongAudience { expected: "kem-admin".to_owned(), found: vec![AUD.to_owned()] })
    );
}

#[test]
fn audience_array_is_accepted_when_it_contains_ours() {
    let issuer = issuer();
    let verifier = verifier_for(&issuer, t0());
    let header = json!({ "alg": "ES256", "kid": issuer.current_key().kid() });
    let mut claims = valid_claims(t0());
    claims["aud"] = json!(["analytics", AUD]);
    let token = forge(header.clone(), claims.clone(), es256(issuer.current_key()));
    assert_eq!(
        verifier.verify(&token, t0()).expect("aud array with ours").aud,
        Audience::Many(vec!["analytics".into(), AUD.into()])
    );
    claims["aud"] = json!(["analytics", "billing"]);
    let token = forge(header, claims, es256(issuer.current_key()));
    assert!(matches!(verifier.verify(&token, t0()), Err(JwtError::WrongAudience { found, .. }) if found.len() == 2));
}

#[test]
fn rotation_keeps_old_tokens_valid_until_the_old_key_is_retired() {
    let mut issuer = issuer();
    let old_kid = issuer.current_key().kid().to_owned();
    let (old_token, old_claims) = issuer.issue_at("owner-1", Map::new(), t0()).expect("issue");

    let rotated_at = t0() + Duration::from_secs(60);
    let retire_after = issuer.rotate(SigningKey::generate().expect("key"), rotated_at).expect("rotate");
    assert_eq!(retire_after, rotated_at + DEFAULT_ACCESS_TTL + DEFAULT_LEEWAY);
    assert!(UNIX_EPOCH + Duration::from_secs(old_claims.exp) < retire_after, "old tokens expire before retirement");
    let (new_token, _) = issuer.issue_at("owner-1", Map::new(), rotated_at).expect("issue");

    let mut verifier = verifier_for(&issuer, rotated_at);
    assert_eq!(issuer.jwks(rotated_at).keys.len(), 2);
    verifier.verify(&old_token, rotated_at).expect("old key still published");
    verifier.verify(&new_token, rotated_at).expect("new key");

    let later = retire_after + Duration::from_secs(1);
    assert_eq!(issuer.jwks(later).keys.len(), 1);
    verifier.update_keys(&issuer.jwks(later)).expect("refresh");
    assert!(!verifier.knows_kid(&old_kid));
    assert_eq!(verifier.verify(&old_token, rotated_at), Err(JwtError::UnknownKid { kid: old_kid }));
    issuer.prune(later);
    assert!(issuer.previous_keys().is_empty());

    let current = issuer.current_key().kid().to_owned();
    let duplicate = SigningKey::generate().expect("key").with_kid(current);
    assert!(matches!(issuer.rotate(duplicate, later), Err(KeyError::DuplicateKid { .. })));
}

#[test]
fn jwks_json_round_trips_into_a_verifier() {
    let mut issuer = issuer();
    issuer.rotate(SigningKey::generate().expect("key"), t0()).expect("rotate");
    let json = issuer.jwks(t0()).to_json();
    let value: Value = serde_json::from_str(&json).expect("json");
    assert_eq!(value["keys"][0]["kty"], "EC");
    assert_eq!(value["keys"][0]["use"], "sig");
    assert_eq!(Jwks::from_json(&json).expect("parse"), issuer.jwks(t0()));

    let verifier = Verifier::from_jwks_json(&json, ISS, AUD).expect("verifier from json");
    let (token, _) = issuer.issue_at("owner-1", Map::new(), t0()).expect("issue");
    verifier.verify(&token, t0()).expect("verify");
    assert_eq!(verifier.kids().count(), 2);
}

#[test]
fn bad_key_sets_are_refused_and_do_not_replace_good_ones() {
    let issuer = issuer();
    let mut verifier = verifier_for(&issuer, t0());
    assert!(matches!(verifier.update_keys_json("{\"keys\": 3}"), Err(KeyError::Json(_))));
    let mut jwks = issuer.jwks(t0());
    jwks.keys.push(jwks.keys[0].clone());
    assert!(matches!(verifier.update_keys(&jwks), Err(KeyError::DuplicateKid { .. })));
    jwks.keys.truncate(1);
    jwks.keys[0].alg = Some("HS256".to_owned());
    assert!(matches!(verifier.update_keys(&jwks), Err(KeyError::InvalidJwk { .. })));
    assert!(verifier.knows_kid(issuer.current_key().kid()), "previous keys stay in force");
}

#[test]
fn malformed_tokens_are_rejected_as_malformed() {
    let issuer = issuer();
    let verifier = verifier_for(&issuer, t0());
    let kid = issuer.current_key().kid().to_owned();
    let (good, _) = issuer.issue_at("owner-1", Map::new(), t0()).expect("issue");
    let (head, _) = good.split_once('.').expect("parts");
    let missing_sub = {
        let mut claims = valid_claims(t0());
        claims.as_object_mut().expect("object").remove("sub");
        forge(json!({ "alg": "ES256", "kid": kid }), claims, es256(issuer.current_key()))
    };
    let cases = [
        String::new(),
        "abc".to_owned(),
        "a.b".to_owned(),
        format!("{good}.extra"),
        format!("!!!.{}", good.split_once('.').expect("parts").1),
        format!("{}.e30.AAAA", b64::encode("not json")),
        format!("{}.e30.AAAA", b64::encode(r#"{"kid":"x"}"#)),
        format!("{head}.e30.***"),
        missing_sub,
        "a".repeat(9000),
    ];
    for token in cases {
        assert!(
            matches!(verifier.verify(&token, t0()), Err(JwtError::Malformed { .. })),
            "{token:.40} should be malformed, got {:?}",
            verifier.verify(&token, t0())
        );
    }
    let crit =
        forge(json!({ "alg": "ES256", "kid": kid, "crit": ["exp"] }), valid_claims(t0()), es256(issuer.current_key()));
    assert!(matches!(verifier.verify(&crit, t0()), Err(JwtError::Malformed { .. })));
}

#[test]
fn extra_claims_cannot_override_registered_ones() {
    let issuer = issuer();
    let mut extra = sid("fam-1");
    extra.insert("exp".to_owned(), json!(u64::MAX));
    assert!(
        matches!(issuer.issue_at("owner-1", extra, t0()), Err(IssueError::ReservedClaim { name }) if name == "exp")
    );
}

/// Builds a token whose payload is `payload` verbatim (numbers serde_json would never print:
/// `1e400`, `18446744073709551616`, `-0`), signed by `key`.
fn forge_raw(key: &SigningKey, payload: &str) -> String {
    let header = json!({ "alg": "ES256", "kid": key.kid() });
    let input = format!("{}.{}", b64::encode(header.to_string()), b64::encode(payload));
    let signature = key.sign(input.as_bytes()).expect("sign");
    format!("{input}.{}", b64::encode(signature))
}

/// Valid claims with `name` replaced by the raw JSON `literal`.
fn claims_with(name: &str, literal: &str) -> String {
    let now = unix_seconds(t0());
    let mut fields = vec![
        format!(r#""iss":"{ISS}""#),
        r#""sub":"owner-1""#.to_owned(),
        format!(r#""aud":"{AUD}""#),
        r#""jti":"j1""#.to_owned(),
    ];
    for (claim, default) in [("exp", now + 900), ("nbf", now), ("iat", now)] {
        let value = if claim == name { literal.to_owned() } else { default.to_string() };
        fields.push(format!(r#""{claim}":{value}"#));
    }
    format!("{{{}}}", fields.join(","))
}

#[test]
fn hostile_time_claims_are_invalid_not_a_panic() {
    let issuer = issuer();
    let verifier = verifier_for(&issuer, t0());
    let key = issuer.current_key();
    let near_2_63 = (1u64 << 63).to_string();
    let hostile = [
        near_2_63.as_str(),
        "9223372036854775807",
        "18446744073709551615",
        "18446744073709551616",
        "340282366920938463463374607431768211456",
        "-1",
        "-9223372036854775808",
        "1.5",
        "1750000900.0",
        "1e400",
        "-0",
        "1e3",
        "\"1750000900\"",
        "null",
        "true",
        "[1750000900]",
        "{}",
    ];
    for claim in ["exp", "nbf", "iat"] {
        for literal in hostile {
            let token = forge_raw(key, &claims_with(claim, literal));
            let verdict = verifier.verify(&token, t0());
            assert!(verdict.is_err(), "{claim} = {literal} must be refused, got {verdict:?}");
        }
    }
    // In range for u64 but not a plausible date: a typed reason, not "malformed".
    let token = forge_raw(key, &claims_with("exp", &near_2_63));
    assert!(matches!(verifier.verify(&token, t0()), Err(JwtError::ClaimOutOfRange { claim: "exp", .. })));
    let at_limit = forge_raw(key, &claims_with("exp", &MAX_NUMERIC_DATE.to_string()));
    let claims = verifier.verify(&at_limit, t0()).expect("year 9999 is still a date");
    assert!(claims.expires_at().is_some());
    let beyond = forge_raw(key, &claims_with("exp", &(MAX_NUMERIC_DATE + 1).to_string()));
    assert!(matches!(verifier.verify(&beyond, t0()), Err(JwtError::ClaimOutOfRange { .. })));
}

#[test]
fn tokens_issued_in_the_future_or_expiring_before_issue_are_refused() {
    let issuer = issuer();
    let verifier = verifier_for(&issuer, t0());
    let key = issuer.current_key();
    let now = unix_seconds(t0());
    let mut claims = valid_claims(t0());
    claims["iat"] = json!(now + 3600);
    claims["exp"] = json!(now + 7200);
    let future = forge(json!({ "alg": "ES256", "kid": key.kid() }), claims, es256(key));
    assert_eq!(verifier.verify(&future, t0()), Err(JwtError::IssuedInFuture { iat: now + 3600, now }));
    // exp before iat (both plausible and in the window) is nonsense no issuer of ours mints.
    let mut claims = valid_claims(t0());
    claims["iat"] = json!(now + 10);
    claims["exp"] = json!(now + 5);
    let backwards = forge(json!({ "alg": "ES256", "kid": key.kid() }), claims, es256(key));
    assert!(matches!(verifier.verify(&backwards, t0()), Err(JwtError::ClaimOutOfRange { claim: "exp", .. })));
}

#[test]
fn a_foreign_key_reusing_a_real_kid_is_a_bad_signature() {
    // The attacker knows our kid (it is public in the JWKS) and signs with their own P-256 key.
    let issuer = issuer();
    let verifier = verifier_for(&issuer, t0());
    let foreign = SigningKey::generate().expect("key").with_kid(issuer.current_key().kid());
    let token = forge_raw(&foreign, &valid_claims(t0()).to_string());
    assert!(matches!(verifier.verify(&token, t0()), Err(JwtError::BadSignature { .. })));
}

#[test]
fn rotation_with_an_absurd_lifetime_does_not_overflow_the_clock() {
    let mut issuer = issuer().with_access_ttl(Duration::from_secs(u64::MAX));
    let retire_after = issuer.rotate(SigningKey::generate().expect("key"), t0()).expect("rotate");
    assert!(retire_after > t0());
    let (token, claims) = issuer.issue_at("owner-1", Map::new(), t0()).expect("issue saturates exp");
    assert_eq!(claims.exp, u64::MAX);
    let verifier = verifier_for(&issuer, t0());
    assert!(matches!(verifier.verify(&token, t0()), Err(JwtError::ClaimOutOfRange { claim: "exp", .. })));
}

mod properties {
    //! Whatever arrives in `Authorization: Bearer …` or in a correctly signed payload, the
    //! verifier answers; it never panics, and what it accepts is in range.

    use proptest::prelude::*;

    use super::*;

    /// JSON text for a time claim: every numeric shape JSON allows plus the wrong types.
    fn numeric_literal() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<i128>().prop_map(|n| n.to_string()),
            any::<f64>().prop_filter("JSON has no NaN/inf", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
            (0u64..=MAX_NUMERIC_DATE + 10).prop_map(|n| n.to_string()),
            ((1u64 << 62)..u64::MAX).prop_map(|n| n.to_string()),
            "[0-9]{20,60}",
            "-?[0-9]{1,5}(\\.[0-9]{1,5})?[eE][+-]?[0-9]{1,4}",
            Just("null".to_owned()),
            Just("\"1750000900\"".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_token_text_never_panics(token in ".{0,300}") {
            let issuer = issuer();
            let _ = verifier_for(&issuer, t0()).verify(&token, t0());
        }

        #[test]
        fn arbitrary_base64_segments_never_panic(
            header in proptest::collection::vec(any::<u8>(), 0..80),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            signature in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let issuer = issuer();
            let token = format!("{}.{}.{}", b64::encode(header), b64::encode(payload), b64::encode(signature));
            let _ = verifier_for(&issuer, t0()).verify(&token, t0());
        }

        #[test]
        fn signed_arbitrary_time_claims_never_panic_and_accepted_ones_are_in_range(
            exp in numeric_literal(),
            nbf in numeric_literal(),
            iat in numeric_literal(),
            now in 0u64..=MAX_NUMERIC_DATE,
        ) {
            let issuer = issuer();
            let key = issuer.current_key();
            let payload = format!(
                r#"{{"iss":"{ISS}","sub":"owner-1","aud":"{AUD}","jti":"j","exp":{exp},"nbf":{nbf},"iat":{iat}}}"#
            );
            let token = forge_raw(key, &payload);
            let at = UNIX_EPOCH + Duration::from_secs(now);
            if let Ok(claims) = verifier_for(&issuer, at).verify(&token, at) {
                prop_assert!(claims.exp <= MAX_NUMERIC_DATE && claims.nbf <= MAX_NUMERIC_DATE);
                prop_assert!(claims.iat <= MAX_NUMERIC_DATE && claims.iat <= claims.exp);
                prop_assert!(claims.expires_at().is_some() && claims.issued_at().is_some());
            }
        }
    }
}
