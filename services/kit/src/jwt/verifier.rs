//! Verifying access tokens against a JWKS; what the gateway runs on every request.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use serde::Deserialize;

use super::{ALGORITHM, Claims, Jwks, JwtError, KeyError, MAX_NUMERIC_DATE, b64, unix_seconds};

/// Clock skew tolerated on `exp` and `nbf` unless configured otherwise.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// Longest token accepted, so a hostile header cannot make us decode megabytes.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// An ES256 JWS signature is `r || s`, 32 bytes each.
const SIGNATURE_LEN: usize = 64;

/// The header fields we read. Everything else (`typ`, `jku`, `jwk`, `x5u`, …) is ignored: keys come
/// only from the configured JWKS, never from the token.
#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// Checks ES256 access tokens against a set of public keys, one issuer and one audience.
///
/// The algorithm is fixed to ES256; the token's `alg` is only compared against it. Keys are
/// replaced with [`Verifier::update_keys`] (the gateway refreshes them periodically and when
/// [`Verifier::knows_kid`] says a token names a key it has not seen).
#[derive(Debug, Clone)]
pub struct Verifier {
    /// `kid` → uncompressed SEC1 P-256 point.
    keys: HashMap<String, Vec<u8>>,
    issuer: String,
    audience: String,
    leeway: Duration,
}

impl Verifier {
    /// A verifier trusting the keys of `jwks` for tokens from `issuer` meant for `audience`.
    pub fn new(jwks: &Jwks, issuer: impl Into<String>, audience: impl Into<String>) -> Result<Self, KeyError> {
        Ok(Self { keys: key_map(jwks)?, issuer: issuer.into(), audience: audience.into(), leeway: DEFAULT_LEEWAY })
    }

    /// Like [`Verifier::new`], from a JWKS JSON document (`{"keys":[...]}`).
    pub fn from_jwks_json(
        json: &str,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, KeyError> {
        Self::new(&Jwks::from_json(json)?, issuer, audience)
    }

    /// Sets the clock-skew tolerance on `exp`/`nbf` (default [`DEFAULT_LEEWAY`]).
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Replaces the trusted keys. All-or-nothing: on error the previous keys stay in force.
    pub fn update_keys(&mut self, jwks: &Jwks) -> Result<(), KeyError> {
        self.keys = key_map(jwks)?;
        Ok(())
    }

    /// Like [`Verifier::update_keys`], from a JWKS JSON document.
    pub fn update_keys_json(&mut self, json: &str) -> Result<(), KeyError> {
        self.update_keys(&Jwks::from_json(json)?)
    }

    /// Whether a key with this id is trusted (if not, the JWKS may be worth refreshing).
    pub fn knows_kid(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// The trusted key ids.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Verifies `token` as of `now` (system clock); see [`Verifier::verify`].
    pub fn verify_now(&self, token: &str) -> Result<Claims, JwtError> {
        self.verify(token, SystemTime::now())
    }

    /// Verifies `token` as of `now` and returns its claims.
    ///
    /// Checks, in order: JWS compact shape, `alg` is ES256, `kid` present and known, signature,
    /// claims JSON, the range of `exp`/`nbf`/`iat`, `exp`, `nbf`, `iat`, `iss`, `aud`. The first
    /// failure is returned.
    ///
    /// Total: any input, however hostile, ends in `Ok` or `Err`, never a panic. Accepted claims
    /// have every time claim at most [`MAX_NUMERIC_DATE`], so callers may turn them into
    /// instants ([`Claims::expires_at`]) without overflow.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, JwtError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(JwtError::malformed(format!("longer than {MAX_TOKEN_LEN} bytes")));
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::malformed("not three dot-separated parts"));
        };

        let header = b64::decode(header_b64).map_err(|_| JwtError::malformed("header is not base64url"))?;
        let header: Header = serde_json::from_slice(&header)
            .map_err(|e| JwtError::malformed(format!("header is not a JWS header: {e}")))?;
        if header.alg != ALGORITHM {
            return Err(JwtError::UnsupportedAlgorithm { alg: header.alg });
        }
        if header.crit.is_some() {
            // RFC 7515 §4.1.11: a recipient that does not understand a critical extension must reject.
            return Err(JwtError::malformed("header has `crit` extensions this verifier does not support"));
        }
        let kid = header.kid.ok_or(JwtError::MissingKid)?;
        let point = self.keys.get(&kid).ok_or_else(|| JwtError::UnknownKid { kid: kid.clone() })?;

        let signature = b64::decode(signature_b64).map_err(|_| JwtError::malformed("signature is not base64url"))?;
        if signature.len() != SIGNATURE_LEN {
            return Err(JwtError::BadSignature { kid });
        }
        // The signing input is the two encoded parts exactly as received.
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
            .verify(signing_input.as_bytes(), &signature)
            .map_err(|_| JwtError::BadSignature { kid })?;

        let payload = b64::decode(payload_b64).map_err(|_| JwtError::malformed("payload is not base64url"))?;
        let claims: Claims = serde_json::from_slice(&payload)
            .map_err(|e| JwtError::malformed(format!("payload is not kem access-token claims: {e}")))?;

        check_time_claims(&claims)?;
        let now = unix_seconds(now);
        let leeway = self.leeway.as_secs();
        if claims.exp.saturating_add(leeway) < now {
            return Err(JwtError::Expired { exp: claims.exp, now });
        }
        if claims.nbf > now.saturating_add(leeway) {
            return Err(JwtError::NotYetValid { nbf: claims.nbf, now });
        }
        if claims.iat > now.saturating_add(leeway) {
            return Err(JwtError::IssuedInFuture { iat: claims.iat, now });
        }
        if claims.iss != self.issuer {
            return Err(JwtError::WrongIssuer { expected: self.issuer.clone(), found: claims.iss });
        }
        if !claims.aud.contains(&self.audience) {
            return Err(JwtError::WrongAudience { expected: self.audience.clone(), found: claims.aud.to_vec() });
        }
        Ok(claims)
    }
}

/// Refuses time claims no issuer of ours can have minted: beyond year 9999, or expiring before
/// they were issued. (Types are settled by parsing: `exp`, `nbf` and `iat` are `u64`, so negative,
/// fractional or larger-than-`u64` numbers are already [`JwtError::Malformed`].)
fn check_time_claims(claims: &Claims) -> Result<(), JwtError> {
    for (claim, value) in [("exp", claims.exp), ("nbf", claims.nbf), ("iat", claims.iat)] {
        if value > MAX_NUMERIC_DATE {
            return Err(JwtError::ClaimOutOfRange { claim, value, reason: "later than 9999-12-31T23:59:59Z" });
        }
    }
    if claims.exp < claims.iat {
        return Err(JwtError::ClaimOutOfRange { claim: "exp", value: claims.exp, reason: "before `iat`" });
    }
    Ok(())
}

fn key_map(jwks: &Jwks) -> Result<HashMap<String, Vec<u8>>, KeyError> {
    let mut keys = HashMap::with_capacity(jwks.keys.len());
    for jwk in &jwks.keys {
        let point = jwk.to_point()?;
        if keys.insert(jwk.kid.clone(), point).is_some() {
            return Err(KeyError::DuplicateKid { kid: jwk.kid.clone() });
        }
    }
    Ok(keys)
}
