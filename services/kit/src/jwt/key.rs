//! ES256 signing keys, their public JWKs and key sets.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject as _;
use serde::{Deserialize, Serialize};

use super::{ALGORITHM, KeyError, b64};
use crate::Secret;

/// Length of one P-256 coordinate in bytes.
const COORDINATE_LEN: usize = 32;
/// An uncompressed SEC1 point: `0x04 || x || y`.
const POINT_LEN: usize = 1 + 2 * COORDINATE_LEN;

/// An ES256 private key with its key id: what the user service signs access tokens with.
///
/// It keeps its PKCS#8 document so it can be persisted ([`SigningKey::pkcs8_pem`]) and loaded again
/// ([`SigningKey::from_pkcs8_pem`]). `Debug` shows only the `kid`.
pub struct SigningKey {
    kid: String,
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl SigningKey {
    /// Generates a fresh P-256 key; its `kid` is the RFC 7638 JWK thumbprint.
    pub fn generate() -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(|_| KeyError::Generate)?;
        Self::from_pkcs8_der(doc.as_ref())
    }

    /// Loads a PKCS#8 DER private key; its `kid` is the RFC 7638 JWK thumbprint (see [`Self::with_kid`]).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
            .map_err(|e| KeyError::Rejected { reason: e.to_string() })?;
        let kid = thumbprint(pair.public_key().as_ref());
        Ok(Self { kid, pair, pkcs8: der.to_vec() })
    }

    /// Loads a PEM `-----BEGIN PRIVATE KEY-----` (PKCS#8) block.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, KeyError> {
        let der =
            PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| KeyError::Pem { reason: e.to_string() })?;
        Self::from_pkcs8_der(der.secret_pkcs8_der())
    }

    /// Replaces the derived `kid` (e.g. with one the operator chose, like `user-2025-06`).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = kid.into();
        self
    }

    /// The key id tokens signed by this key carry in their header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The PKCS#8 DER document, for persisting the key. Handle as a secret.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The PKCS#8 document as PEM (`PRIVATE KEY`), for persisting the key; redacted in logs.
    pub fn pkcs8_pem(&self) -> Secret {
        let body = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &self.pkcs8);
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in body.as_bytes().chunks(64) {
            // base64 output is ASCII, so every chunk is valid UTF-8.
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        Secret::new(pem)
    }

    /// The public half as a JWK (`kty: EC`, `crv: P-256`, `alg: ES256`, `use: sig`).
    pub fn public_jwk(&self) -> Jwk {
        let point = self.pair.public_key().as_ref();
        let (x, y) = point[1..].split_at(COORDINATE_LEN);
        Jwk {
            kty: "EC".to_owned(),
            crv: "P-256".to_owned(),
            x: b64::encode(x),
            y: b64::encode(y),
            alg: Some(ALGORITHM.to_owned()),
            use_: Some("sig".to_owned()),
            kid: self.kid.clone(),
        }
    }

    /// Signs `message` (the JWS signing input); the result is the 64-byte `r || s` form JWS uses.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        Ok(self.pair.sign(&SystemRandom::new(), message)?.as_ref().to_vec())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// RFC 7638 thumbprint of a P-256 public key given as an uncompressed point.
fn thumbprint(point: &[u8]) -> String {
    let coordinates = point.get(1..).unwrap_or_default();
    let (x, y) = coordinates.split_at(coordinates.len() / 2);
    // Members in lexicographic order, no whitespace: the canonical form the RFC hashes.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, b64::encode(x), b64::encode(y));
    b64::encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
}

/// A public key in JWK form (RFC 7517/7518), as served in the JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type; must be `EC`.
    pub kty: String,
    /// Curve; must be `P-256`.
    pub crv: String,
    /// X coordinate, base64url of 32 bytes.
    pub x: String,
    /// Y coordinate, base64url of 32 bytes.
    pub y: String,
    /// Algorithm; if present must be `ES256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// Public key use; if present must be `sig`.
    #[serde(rename = "use", default, skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// Key id, matched against the token header's `kid`.
    pub kid: String,
}

impl Jwk {
    /// Checks the JWK is an ES256 signature key and returns its uncompressed SEC1 point.
    pub(crate) fn to_point(&self) -> Result<Vec<u8>, KeyError> {
        let invalid = |reason| KeyError::InvalidJwk { kid: self.kid.clone(), reason };
        if self.kid.is_empty() {
            return Err(invalid("`kid` is empty"));
        }
        if self.kty != "EC" {
            return Err(invalid("`kty` is not `EC`"));
        }
        if self.crv != "P-256" {
            return Err(invalid("`crv` is not `P-256`"));
        }
        if self.alg.as_deref().is_some_and(|alg| alg != ALGORITHM) {
            return Err(invalid("`alg` is not `ES256`"));
        }
        if self.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(invalid("`use` is not `sig`"));
        }
        let x = b64::decode(&self.x).map_err(|_| invalid("`x` is not base64url"))?;
        let y = b64::decode(&self.y).map_err(|_| invalid("`y` is not base64url"))?;
        if x.len() != COORDINATE_LEN || y.len() != COORDINATE_LEN {
            return Err(invalid("`x` and `y` must be 32 bytes each"));
        }
        let mut point = Vec::with_capacity(POINT_LEN);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        Ok(point)
    }
}

/// A JWK Set: `{"keys":[...]}`, as served at `/.well-known/jwks.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The public keys, current first.
    pub keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses a JWKS JSON document (does not validate the keys; [`Verifier`](super::Verifier) does).
    pub fn from_json(json: &str) -> Result<Self, KeyError> {
        Ok(serde_json::from_str(json)?)
    }

    /// The JWKS as JSON, ready to serve.
    pub fn to_json(&self) -> String {
        // A struct of strings always serializes.
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"keys":[]}"#.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs8_pem_and_der_round_trip_keep_the_public_key_and_kid() {
        let key = SigningKey::generate().expect("generate");
        let from_pem = SigningKey::from_pkcs8_pem(key.pkcs8_pem().expose()).expect("load pem");
        let from_der = SigningKey::from_pkcs8_der(key.pkcs8_der()).expect("load der");
        assert_eq!(from_pem.public_jwk(), key.public_jwk());
        assert_eq!(from_der.kid(), key.kid());
        assert!(!format!("{key:?}").contains("BEGIN"), "Debug must not print the private key");
        assert!(!key.pkcs8_pem().to_string().contains("BEGIN"), "Display is redacted");
    }

    #[test]
    fn public_jwk_has_the_es256_shape() {
        let key = SigningKey::generate().expect("generate").with_kid("user-1");
        let jwk = key.public_jwk();
        assert_eq!((jwk.kty.as_str(), jwk.crv.as_str(), jwk.kid.as_str()), ("EC", "P-256", "user-1"));
        assert_eq!(jwk.alg.as_deref(), Some("ES256"));
        assert_eq!(jwk.use_.as_deref(), Some("sig"));
        assert_eq!(b64::decode(&jwk.x).expect("x").len(), 32);
        assert_eq!(b64::decode(&jwk.y).expect("y").len(), 32);
        let json = serde_json::to_value(&jwk).expect("json");
        assert_eq!(json["use"], "sig");
        assert_eq!(jwk.to_point().expect("point").len(), POINT_LEN);
    }

    #[test]
    fn garbage_keys_are_rejected_with_a_reason() {
        assert!(matches!(SigningKey::from_pkcs8_der(b"not a key"), Err(KeyError::Rejected { .. })));
        assert!(matches!(SigningKey::from_pkcs8_pem("hello"), Err(KeyError::Pem { .. })));
        let mut jwk = SigningKey::generate().expect("generate").public_jwk();
        jwk.crv = "P-384".to_owned();
        assert!(matches!(jwk.to_point(), Err(KeyError::InvalidJwk { reason: "`crv` is not `P-256`", .. })));
    }

    #[test]
    fn thumbprint_matches_rfc7638_for_a_known_key() {
        // RFC 7638 has only an RSA example; this pins our EC canonical form (the RFC 7515 appendix A.3
        // key) to a value computed with Python's hashlib, so a formatting change cannot alter every kid.
        let x = b64::decode("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU").expect("x");
        let y = b64::decode("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0").expect("y");
        let mut point = vec![0x04];
        point.extend(x);
        point.extend(y);
        assert_eq!(thumbprint(&point), "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
    }
}
