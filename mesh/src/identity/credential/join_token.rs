//! Join tokens: short-lived bootstrap credentials the identity CA mints for one identity.
//!
//! Used where there is no Kubernetes to vouch for a workload (`kem up`, a laptop, CI). Format:
//!
//! ```text
//! kemjt2.<base64url(JSON {"sub": SPIFFE ID, "exp": unix seconds, "jti": random hex, "reusable": bool})>.<base64url(HMAC-SHA256)>
//! ```
//!
//! The HMAC covers `kemjt2.` plus the payload segment, under a key only the CA holds (persisted by
//! the CA through [`JoinTokens::key_bytes`]). The signature is checked, in constant time, before the
//! payload is even decoded.
//!
//! A join token is **single-use** unless it was minted with [`JoinTokens::mint_reusable`]: the CA
//! records the `jti` of every single-use token it redeems in its [replay ledger](super::replay) and
//! refuses it afterwards. Reusability is a signed claim, so only whoever holds the CA's key decides
//! it (`kem up` for its own roles, an operator with `kem join-token --reusable`); a holder of a
//! single-use token cannot turn it into a reusable one.
//!
//! Version 1 tokens (`kemjt1.`) had no `reusable` claim and were accepted any number of times until
//! they expired (up to a year). They are refused outright rather than grandfathered as single-use:
//! one already used before the upgrade would otherwise be good for one more bootstrap.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use super::{CredentialError, CredentialKind, Grant, Redemption};
use crate::identity::spiffe::SpiffeId;

/// Every join token starts with this (format version 2).
pub const PREFIX: &str = "kemjt2.";

/// What every version of the join-token format starts with, so that tokens of another version are
/// recognised as join tokens and refused with a message saying so.
pub const FAMILY: &str = "kemjt";

/// Version 1, refused since join tokens became single-use.
const LEGACY_PREFIX: &str = "kemjt1.";

/// Shortest HMAC key accepted: the SHA-256 output length.
pub const MIN_KEY_LEN: usize = 32;

/// Random bytes in a token's `jti`, so that two tokens for the same identity never coincide.
const JTI_LEN: usize = 16;

/// Why a join-token key could not be set up or a token minted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinTokenError {
    /// The key given to [`JoinTokens::from_key`] is too short to be safe.
    #[error(
        "the join-token key is {len} bytes; it must be at least {MIN_KEY_LEN} random bytes (let the CA generate it)"
    )]
    KeyTooShort {
        /// Its length in bytes.
        len: usize,
    },
    /// The trust domain is not a valid SPIFFE trust domain.
    #[error("{trust_domain:?} is not a valid trust domain for join tokens: {reason}")]
    TrustDomain {
        /// The trust domain given.
        trust_domain: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A token was requested for an identity outside this CA's trust domain.
    #[error("cannot mint a join token for {identity}: this CA issues identities in the trust domain {trust_domain}")]
    ForeignIdentity {
        /// The identity requested.
        identity: SpiffeId,
        /// This CA's trust domain.
        trust_domain: String,
    },
    /// The requested lifetime puts the expiry beyond what the token format can carry.
    #[error("cannot mint a join token valid for {ttl:?}: its expiry would be out of range; use a shorter lifetime")]
    TtlOutOfRange {
        /// The lifetime requested.
        ttl: Duration,
    },
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed while trying to {what}")]
    Random {
        /// What was being generated.
        what: &'static str,
    },
}

/// The CA's join-token key and trust domain: mints and verifies join tokens.
#[derive(Clone)]
pub struct JoinTokens {
    key_bytes: Vec<u8>,
    key: hmac::Key,
    trust_domain: String,
    rng: SystemRandom,
}

impl fmt::Debug for JoinTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinTokens").field("trust_domain", &self.trust_domain).field("key", &"<redacted>").finish()
    }
}

/// The signed payload.
#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: u64,
    /// Unique token id: the key of the replay ledger.
    jti: String,
    /// Whether the token may bootstrap more than once. Always written; a version-2 payload
    /// without it is refused as malformed rather than defaulted.
    reusable: bool,
}

fn malformed(reason: impl Into<String>) -> CredentialError {
    CredentialError::Malformed { reason: format!("join token: {}", reason.into()) }
}

impl JoinTokens {
    /// A fresh random key for `trust_domain`.
    pub fn generate(trust_domain: &str) -> Result<JoinTokens, JoinTokenError> {
        let rng = SystemRandom::new();
        let mut key = vec![0u8; MIN_KEY_LEN];
        rng.fill(&mut key).map_err(|_| JoinTokenError::Random { what: "generate a join-token key" })?;
        JoinTokens::from_key(&key, trust_domain)
    }

    /// Restores a key previously obtained from [`JoinTokens::key_bytes`].
    pub fn from_key(key: &[u8], trust_domain: &str) -> Result<JoinTokens, JoinTokenError> {
        if key.len() < MIN_KEY_LEN {
            return Err(JoinTokenError::KeyTooShort { len: key.len() });
        }
        // The SPIFFE ID type owns the trust-domain syntax; validate through it.
        SpiffeId::new(trust_domain, "ns", "sa").map_err(|e| JoinTokenError::TrustDomain {
            trust_domain: trust_domain.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(JoinTokens {
            key_bytes: key.to_vec(),
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            trust_domain: trust_domain.to_owned(),
            rng: SystemRandom::new(),
        })
    }

    /// The raw key, for the CA to persist (it is a secret: store it like a private key).
    pub fn key_bytes(&self) -> &[u8] {
        &self.key_bytes
    }

    /// The trust domain whose identities these tokens grant.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// Mints a **single-use** token granting `identity`, valid for `ttl` from now: the CA redeems it
    /// once; the workload then renews with its certificate (see [`super::renewal`]).
    pub fn mint(&self, identity: &SpiffeId, ttl: Duration) -> Result<String, JoinTokenError> {
        self.mint_claims(identity, ttl, false)
    }

    /// Mints a token granting `identity` that the CA accepts **any number of times** until it
    /// expires. Only for workloads that must bootstrap again without an operator: `kem up`'s own
    /// roles (a supervised child restarted after a crash presents the same token file) and
    /// `kem join-token --reusable`. Whoever copies such a token can obtain the identity until it
    /// expires, so keep its lifetime short and its file private.
    pub fn mint_reusable(&self, identity: &SpiffeId, ttl: Duration) -> Result<String, JoinTokenError> {
        self.mint_claims(identity, ttl, true)
    }

    fn mint_claims(&self, identity: &SpiffeId, ttl: Duration, reusable: bool) -> Result<String, JoinTokenError> {
        if identity.trust_domain() != self.trust_domain {
            return Err(JoinTokenError::ForeignIdentity {
                identity: identity.clone(),
                trust_domain: self.trust_domain.clone(),
            });
        }
        let exp = SystemTime::now()
            .checked_add(ttl)
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .ok_or(JoinTokenError::TtlOutOfRange { ttl })?
            .as_secs();
        let mut jti = [0u8; JTI_LEN];
        self.rng.fill(&mut jti).map_err(|_| JoinTokenError::Random { what: "mint a join token id" })?;
        let claims = Claims { sub: identity.to_string(), exp, jti: crate::hex::encode(jti), reusable };
        // Serializing a struct of strings and integers cannot fail; fall back to an empty payload
        // (which no verifier accepts) rather than panic if it ever did.
        let payload = serde_json::to_vec(&claims).unwrap_or_default();
        let mut token = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(payload));
        let signature = hmac::sign(&self.key, token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        Ok(token)
    }

    /// Verifies `token` as of `now` and returns the identity it grants.
    ///
    /// This checks the token only; a single-use token comes back with [`Redemption::Once`] and is
    /// not spent until the CA records it in its replay ledger (after the CSR has been checked).
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Grant, CredentialError> {
        if token.starts_with(LEGACY_PREFIX) {
            return Err(CredentialError::Rejected {
                reason: format!(
                    "this is a version-1 join token ({LEGACY_PREFIX}…), minted before join tokens became single-use; \
                     mint a new one with `kem join-token`"
                ),
            });
        }
        let rest = token.strip_prefix(PREFIX).ok_or_else(|| malformed(format!("it does not start with {PREFIX:?}")))?;
        let (payload_segment, signature_segment) =
            rest.split_once('.').ok_or_else(|| malformed("the signature segment is missing"))?;
        if signature_segment.contains('.') {
            return Err(malformed("it has more than three segments"));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature_segment)
            .map_err(|e| malformed(format!("the signature is not base64url: {e}")))?;
        let signed = &token[..PREFIX.len() + payload_segment.len()];
        hmac::verify(&self.key, signed.as_bytes(), &signature).map_err(|_| CredentialError::BadSignature)?;

        // Authentic from here on: anything odd below is a bug in the minting side, not an attack.
        let payload = URL_SAFE_NO_PAD
            .decode(payload_segment)
            .map_err(|e| malformed(format!("the payload is not base64url: {e}")))?;
        let claims: Claims = serde_json::from_slice(&payload)
            .map_err(|e| malformed(format!("the payload is not the expected JSON: {e}")))?;
        let identity: SpiffeId = claims.sub.parse().map_err(|e| malformed(format!("its subject: {e}")))?;
        if identity.trust_domain() != self.trust_domain {
            return Err(CredentialError::Rejected {
                reason: format!(
                    "the join token grants {identity}, outside this CA's trust domain {}; mint it from the CA of {}",
                    self.trust_domain,
                    identity.trust_domain()
                ),
            });
        }
        let expires_at = UNIX_EPOCH
            .checked_add(Duration::from_secs(claims.exp))
            .ok_or_else(|| malformed(format!("its expiry {} is out of range", claims.exp)))?;
        if now >= expires_at {
            return Err(CredentialError::Expired { expired_at: expires_at });
        }
        if claims.jti.len() != 2 * JTI_LEN || !claims.jti.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(malformed(format!("its id {:?} is not {} hex digits", claims.jti, 2 * JTI_LEN)));
        }
        let redemption = if claims.reusable {
            Redemption::Repeatable
        } else {
            Redemption::Once { token_id: claims.jti, expires_at }
        };
        Ok(Grant { identity, method: CredentialKind::JoinToken, expires_at: Some(expires_at), redemption })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(600);

    fn participation() -> SpiffeId {
        SpiffeId::new("kem.test", "kem", "participation").expect("valid id")
    }

    fn tokens() -> JoinTokens {
        JoinTokens::generate("kem.test").expect("random key")
    }

    #[test]
    fn round_trip() {
        let join = tokens();
        let before = SystemTime::now();
        let token = join.mint(&participation(), TTL).expect("mint");
        assert!(token.starts_with(PREFIX));

        let grant = join.verify(&token, SystemTime::now()).expect("valid");
        assert_eq!(grant.identity, participation());
        assert_eq!(grant.method, CredentialKind::JoinToken);
        let expires_at = grant.expires_at.expect("join tokens expire");
        // Whole seconds: at most one second earlier than before + ttl.
        assert!(expires_at + Duration::from_secs(1) > before + TTL && expires_at <= SystemTime::now() + TTL);
    }

    #[test]
    fn the_key_survives_a_restart() {
        let join = tokens();
        let token = join.mint(&participation(), TTL).expect("mint");
        let restored = JoinTokens::from_key(join.key_bytes(), "kem.test").expect("same key");
        assert_eq!(restored.verify(&token, SystemTime::now()).expect("valid").identity, participation());
    }

    #[test]
    fn two_tokens_for_one_identity_differ() {
        let join = tokens();
        let a = join.mint(&participation(), TTL).expect("mint");
        let b = join.mint(&participation(), TTL).expect("mint");
        assert_ne!(a, b);
    }

    #[test]
    fn tampered_payload_is_a_bad_signature() {
        let join = tokens();
        let token = join.mint(&participation(), TTL).expect("mint");
        let mut segments: Vec<&str> = token.split('.').collect();
        let payload = URL_SAFE_NO_PAD.decode(segments[1]).expect("base64url");
        let mut claims: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        claims["sub"] = "spiffe://kem.test/ns/kem/sa/gateway".into();
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json"));
        segments[1] = &forged;

        let err = join.verify(&segments.join("."), SystemTime::now()).expect_err("forged");
        assert_eq!(err, CredentialError::BadSignature);
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn another_key_is_a_bad_signature() {
        let token = tokens().mint(&participation(), TTL).expect("mint");
        assert_eq!(tokens().verify(&token, SystemTime::now()), Err(CredentialError::BadSignature));
    }

    #[test]
    fn expired_token_says_when() {
        let join = tokens();
        let token = join.mint(&participation(), Duration::from_secs(60)).expect("mint");
        let expires_at = join.verify(&token, SystemTime::now()).expect("valid now").expires_at.expect("expiry");

        let later = SystemTime::now() + Duration::from_secs(61);
        assert_eq!(join.verify(&token, later), Err(CredentialError::Expired { expired_at: expires_at }));
        assert_eq!(join.verify(&token, expires_at), Err(CredentialError::Expired { expired_at: expires_at }));
    }

    #[test]
    fn garbage_is_malformed() {
        let join = tokens();
        let token = join.mint(&participation(), TTL).expect("mint");
        for bad in [
            "",
            "kemjt2.",
            "kemjt2.abc",
            "kemjt2.abc.!!!",
            "kemjt9.abc.def",
            "eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
            &format!("{token}.extra"),
        ] {
            let err = join.verify(bad, SystemTime::now()).expect_err("garbage");
            assert!(matches!(err, CredentialError::Malformed { .. }), "{bad:?} gave {err:?}");
        }
    }

    #[test]
    fn a_token_for_another_trust_domain_is_rejected() {
        let here = tokens();
        let there = JoinTokens::from_key(here.key_bytes(), "elsewhere.test").expect("key");
        let foreign = SpiffeId::new("elsewhere.test", "kem", "participation").expect("valid id");
        let token = there.mint(&foreign, TTL).expect("mint");

        let err = here.verify(&token, SystemTime::now()).expect_err("foreign trust domain");
        assert!(matches!(&err, CredentialError::Rejected { reason } if reason.contains("elsewhere.test")), "{err:?}");
    }

    #[test]
    fn keys_and_identities_are_checked_when_set_up() {
        assert_eq!(JoinTokens::from_key(&[7; 31], "kem.test").err(), Some(JoinTokenError::KeyTooShort { len: 31 }));
        assert!(matches!(JoinTokens::from_key(&[7; 32], "Not A Domain"), Err(JoinTokenError::TrustDomain { .. })));

        let foreign = SpiffeId::new("elsewhere.test", "kem", "participation").expect("valid id");
        assert!(matches!(tokens().mint(&foreign, TTL), Err(JoinTokenError::ForeignIdentity { .. })));
        assert!(matches!(tokens().mint(&participation(), Duration::MAX), Err(JoinTokenError::TtlOutOfRange { .. })));
    }

    #[test]
    fn tokens_are_single_use_unless_minted_reusable() {
        let join = tokens();
        let single = join.verify(&join.mint(&participation(), TTL).expect("mint"), SystemTime::now()).expect("valid");
        let Redemption::Once { token_id, expires_at } = &single.redemption else {
            panic!("a token from mint() must be single-use: {single:?}");
        };
        assert_eq!(token_id.len(), 2 * JTI_LEN);
        assert_eq!(Some(*expires_at), single.expires_at, "the ledger keeps the entry until the token expires");

        let other = join.verify(&join.mint(&participation(), TTL).expect("mint"), SystemTime::now()).expect("valid");
        assert_ne!(single.redemption, other.redemption, "every token has its own id");

        let reusable = join.mint_reusable(&participation(), TTL).expect("mint");
        let grant = join.verify(&reusable, SystemTime::now()).expect("valid");
        assert_eq!(grant.redemption, Redemption::Repeatable);
        assert_eq!(grant.identity, participation());
    }

    /// Signs `claims` with `join`'s key under `prefix`, as a minting side of another version would.
    fn signed(join: &JoinTokens, prefix: &str, claims: serde_json::Value) -> String {
        let mut token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).expect("json")));
        let signature = hmac::sign(&join.key, token.as_bytes());
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
        token
    }

    #[test]
    fn version_1_tokens_are_refused_with_what_to_do() {
        let join = tokens();
        let exp = SystemTime::now().duration_since(UNIX_EPOCH).expect("after epoch").as_secs() + 600;
        let v1 = signed(
            &join,
            LEGACY_PREFIX,
            serde_json::json!({"sub": participation().to_string(), "exp": exp, "jti": "00".repeat(JTI_LEN)}),
        );
        let err = join.verify(&v1, SystemTime::now()).expect_err("version 1 is refused");
        assert!(
            matches!(&err, CredentialError::Rejected { reason } if reason.contains("version-1") && reason.contains("kem join-token")),
            "{err:?}"
        );
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn a_payload_without_the_reusable_claim_or_an_id_is_malformed() {
        let join = tokens();
        let exp = SystemTime::now().duration_since(UNIX_EPOCH).expect("after epoch").as_secs() + 600;
        let sub = participation().to_string();
        for claims in [
            serde_json::json!({"sub": sub, "exp": exp, "jti": "00".repeat(JTI_LEN)}),
            serde_json::json!({"sub": sub, "exp": exp, "jti": "", "reusable": false}),
            serde_json::json!({"sub": sub, "exp": exp, "reusable": false}),
        ] {
            let err = join.verify(&signed(&join, PREFIX, claims.clone()), SystemTime::now()).expect_err("malformed");
            assert!(matches!(err, CredentialError::Malformed { .. }), "{claims}: {err:?}");
        }
    }

    #[test]
    fn debug_output_does_not_leak_the_key() {
        let join = JoinTokens::from_key(&[0xab; 32], "kem.test").expect("key");
        let debug = format!("{join:?}");
        assert!(debug.contains("redacted") && !debug.contains("171"), "{debug}");
    }
}
