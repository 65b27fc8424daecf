//! The claims of a kem access token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Claim names the issuer sets itself; an extra claim may not reuse them.
pub const REGISTERED_CLAIMS: [&str; 7] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

/// The latest `NumericDate` a verifier accepts: 9999-12-31T23:59:59Z. Anything later is not a
/// time but an attack on whoever adds it to a clock (`SystemTime + Duration::from_secs(2^63)`
/// panics), so [`Verifier`](super::Verifier) refuses it before any such arithmetic can happen.
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// The payload of an access token: the registered claims plus service-defined extras (e.g. `sid`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: who minted the token (the user service).
    pub iss: String,
    /// Subject: the owner id the token speaks for.
    pub sub: String,
    /// Audience: who the token is for (the edge); one string or an array.
    pub aud: Audience,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Not before, Unix seconds.
    pub nbf: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Unique token id.
    pub jti: String,
    /// Any other claims, e.g. `sid` (the session / refresh-token family id).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Claims {
    /// The `sid` claim (session / refresh-token family), if present and a string.
    pub fn sid(&self) -> Option<&str> {
        self.extra.get("sid").and_then(Value::as_str)
    }

    /// `exp` as an instant; `None` when it does not fit the platform clock (never for claims a
    /// [`Verifier`](super::Verifier) accepted: they are at most [`MAX_NUMERIC_DATE`]).
    pub fn expires_at(&self) -> Option<SystemTime> {
        numeric_date(self.exp)
    }

    /// `iat` as an instant; `None` when it does not fit the platform clock.
    pub fn issued_at(&self) -> Option<SystemTime> {
        numeric_date(self.iat)
    }
}

/// A `NumericDate` as an instant, with checked arithmetic.
pub(crate) fn numeric_date(seconds: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// The `aud` claim: RFC 7519 allows a single string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// `"aud": "kem-edge"`.
    One(String),
    /// `"aud": ["kem-edge", "…"]`.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `audience` is (one of) the token's audience(s).
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|a| a == audience),
        }
    }

    /// All values, for error messages.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            Audience::One(one) => vec![one.clone()],
            Audience::Many(many) => many.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_claims_are_flattened_and_audience_takes_both_forms() {
        let json = r#"{"iss":"i","sub":"s","aud":["a","b"],"exp":3,"nbf":1,"iat":1,"jti":"j","sid":"fam-1"}"#;
        let claims: Claims = serde_json::from_str(json).expect("claims");
        assert_eq!(claims.sid(), Some("fam-1"));
        assert!(claims.aud.contains("b") && !claims.aud.contains("c"));
        let one: Audience = serde_json::from_str(r#""a""#).expect("aud");
        assert!(one.contains("a"));
        let back = serde_json::to_value(&claims).expect("json");
        assert_eq!(back["sid"], "fam-1");
        assert_eq!(claims.expires_at(), Some(UNIX_EPOCH + Duration::from_secs(3)));
    }

    #[test]
    fn numeric_dates_convert_without_overflow() {
        assert!(numeric_date(MAX_NUMERIC_DATE).is_some());
        // Whether u64::MAX seconds fit depends on the platform's clock; it must not panic.
        let _ = numeric_date(u64::MAX);
        let _ = numeric_date(1 << 63);
    }
}
