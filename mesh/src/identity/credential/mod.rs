//! Bootstrap credentials: how a workload proves, once, who it is to the identity CA.
//!
//! A workload that asks `kem identity` for its first certificate sends a CSR and a bootstrap
//! credential. This module verifies that credential and says which [`SpiffeId`] it grants:
//! - a [join token](join_token) minted by the CA itself (`kem up`, laptops, CI), an HMAC-signed
//!   `kemjt2.` token naming one identity, single-use unless minted reusable; the CA's
//!   [replay ledger](replay) remembers which single-use tokens it has redeemed;
//! - a Kubernetes ServiceAccount token, checked by the cluster's API server through the
//!   [TokenReview API](token_review), granting `spiffe://<trust-domain>/ns/<namespace>/sa/<name>`.
//!
//! Once it holds a certificate, a workload bootstrapped with a join token renews with a
//! [renewal proof](renewal) made with that certificate instead of its join token, which a
//! single-use token could not survive. ServiceAccount tokens keep being re-presented (and
//! re-reviewed) at every renewal, as before.
//!
//! [`CredentialVerifier`] accepts whichever kinds the CA is configured for and tells them apart by
//! their shape. Every failure is a [`CredentialError`] that knows its gRPC status code, so the CA's
//! gRPC adapter does not have to interpret it.

pub mod join_token;
pub mod renewal;
pub mod replay;
pub mod token_review;

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use join_token::{JoinTokenError, JoinTokens};
pub use renewal::RenewalProofError;
pub use replay::{LedgerError, ReplayLedger};
pub use token_review::{TokenReviewConfig, TokenReviewConfigError, TokenReviewVerifier};

use crate::identity::spiffe::SpiffeId;

/// Longest bootstrap credential accepted. Projected ServiceAccount tokens are 1–2 KiB and join
/// tokens a few hundred bytes; anything much larger is refused before any parsing or network call.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// What a verified bootstrap credential entitles its bearer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The identity the CA may put in the workload's certificate.
    pub identity: SpiffeId,
    /// Which kind of credential proved it.
    pub method: CredentialKind,
    /// When the credential itself stops being valid, when known. For ServiceAccount tokens this is
    /// read from the JWT without verifying it (the API server did the verifying), so it is
    /// informational only.
    pub expires_at: Option<SystemTime>,
    /// Whether the CA must record the credential's use before it issues anything.
    pub redemption: Redemption,
}

/// Whether a credential may be presented again after the CA issued a certificate for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// Presenting it again is fine: a Kubernetes ServiceAccount token (bound to a live pod and
    /// re-reviewed by the API server every time), a join token minted reusable, or a renewal
    /// proof (bound to the one CSR it signs).
    Repeatable,
    /// A single-use join token: the CA spends it in its [`ReplayLedger`] before it answers, and
    /// refuses it from then on.
    Once {
        /// The token's unique id (`jti`).
        token_id: String,
        /// When the token expires; the ledger forgets it after that.
        expires_at: SystemTime,
    },
}

/// The kinds of bootstrap credential the identity CA understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A `kemjt1.` join token minted by this CA.
    JoinToken,
    /// A Kubernetes ServiceAccount token (JWT), verified with a TokenReview.
    KubernetesServiceAccount,
    /// A renewal proof: the workload's current certificate, and a signature over the new CSR made
    /// with that certificate's key.
    Certificate,
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CredentialKind::JoinToken => "join token",
            CredentialKind::KubernetesServiceAccount => "Kubernetes ServiceAccount token",
            CredentialKind::Certificate => "current workload certificate",
        })
    }
}

/// Why a bootstrap credential did not yield a [`Grant`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// The credential is not a join token nor a JWT, or is damaged.
    #[error(
        "the bootstrap credential is malformed: {reason}; pass the join token or the ServiceAccount token file's \
         contents unchanged"
    )]
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
    /// The credential was valid once but has expired.
    #[error(
        "the bootstrap credential expired at {} (unix seconds); mint a new join token, or let the kubelet refresh \
         the projected ServiceAccount token",
        unix_seconds(.expired_at)
    )]
    Expired {
        /// When it expired.
        expired_at: SystemTime,
    },
    /// A join token whose signature does not match this CA's key.
    #[error(
        "the join token's signature does not match this CA's join-token key (altered, minted by another CA, or \
         minted before the key changed); mint a new one from this CA"
    )]
    BadSignature,
    /// The credential is well-formed but does not entitle its bearer to an identity here.
    #[error("the bootstrap credential was rejected: {reason}")]
    Rejected {
        /// Why, as precisely as the verifier knows.
        reason: String,
    },
    /// The credential could not be checked right now (API server unreachable, slow, failing, or
    /// refusing the CA's own credentials). Retryable.
    #[error("the bootstrap credential cannot be verified right now: {reason}")]
    Unavailable {
        /// What failed and what the operator should look at.
        reason: String,
    },
    /// A credential of a kind this CA is not configured to accept.
    #[error(
        "this identity CA does not accept {kind} credentials; enable them in the CA's configuration or bootstrap \
         the workload with a kind of credential the CA accepts"
    )]
    NotConfigured {
        /// The kind presented.
        kind: CredentialKind,
    },
}

fn unix_seconds(at: &SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl CredentialError {
    /// The gRPC status code the CA answers with.
    ///
    /// Everything about the credential itself is `UNAUTHENTICATED` (the request lacks a valid
    /// credential and retrying it unchanged will not help); only a verifier that could not do its
    /// job is `UNAVAILABLE`, which clients retry with backoff.
    pub fn code(&self) -> tonic::Code {
        match self {
            CredentialError::Malformed { .. }
            | CredentialError::Expired { .. }
            | CredentialError::BadSignature
            | CredentialError::Rejected { .. }
            | CredentialError::NotConfigured { .. } => tonic::Code::Unauthenticated,
            CredentialError::Unavailable { .. } => tonic::Code::Unavailable,
        }
    }
}

/// Verifies bootstrap credentials of every kind the CA is configured for.
#[derive(Debug, Clone)]
pub struct CredentialVerifier {
    join: Option<(JoinTokens, Arc<ReplayLedger>)>,
    kubernetes: Option<TokenReviewVerifier>,
}

impl CredentialVerifier {
    /// A verifier accepting join tokens signed with `join` (if any) and ServiceAccount tokens
    /// reviewed by `kubernetes` (if any).
    ///
    /// Join tokens come with the ledger their single-use ids are recorded in: a CA that cannot keep
    /// one (a read-only CA directory) must not accept join tokens at all, so there is no way to
    /// configure them without it.
    pub fn new(join: Option<(JoinTokens, ReplayLedger)>, kubernetes: Option<TokenReviewVerifier>) -> Self {
        CredentialVerifier { join: join.map(|(tokens, ledger)| (tokens, Arc::new(ledger))), kubernetes }
    }

    /// Whether join tokens are accepted.
    pub fn accepts_join_tokens(&self) -> bool {
        self.join.is_some()
    }

    /// Verifies `token` and returns the identity it grants.
    ///
    /// Tokens starting with `kemjt1.` are join tokens; anything shaped like a JWT (three base64url
    /// segments) is sent to the Kubernetes API server. Surrounding whitespace (a trailing newline
    /// from a token file) is ignored.
    pub async fn verify(&self, token: &str) -> Result<Grant, CredentialError> {
        let token = token.trim();
        match classify(token)? {
            CredentialKind::JoinToken => match &self.join {
                Some((join, _)) => join.verify(token, SystemTime::now()),
                None => Err(CredentialError::NotConfigured { kind: CredentialKind::JoinToken }),
            },
            CredentialKind::KubernetesServiceAccount => match &self.kubernetes {
                Some(kubernetes) => kubernetes.verify(token).await,
                None => Err(CredentialError::NotConfigured { kind: CredentialKind::KubernetesServiceAccount }),
            },
            CredentialKind::Certificate => Err(CredentialError::Malformed {
                reason: "a renewal proof is only valid together with the CSR it signs; the identity CA checks it \
                         with renewal::verify"
                    .to_owned(),
            }),
        }
    }

    /// Spends `grant` if its credential is single-use: records it in the replay ledger, failing if
    /// it was spent before (by this CA process or an earlier one using the same directory).
    ///
    /// Call it once the request has passed every other check and right before answering, so that
    /// a request refused for another reason (a bad CSR) does not burn the token. Concurrent calls
    /// for one token are serialised by the ledger: exactly one succeeds.
    pub async fn redeem(&self, grant: &Grant) -> Result<(), LedgerError> {
        let Redemption::Once { token_id, expires_at } = &grant.redemption else {
            return Ok(());
        };
        let Some((_, ledger)) = &self.join else {
            // Only a join-token verifier hands out single-use grants; fail closed regardless.
            return Err(LedgerError::NotKept);
        };
        let ledger = ledger.clone();
        let (token_id, expires_at, identity) = (token_id.clone(), *expires_at, grant.identity.clone());
        // The ledger does blocking file I/O (lock, fsync, rename): keep it off the async workers.
        tokio::task::spawn_blocking(move || ledger.redeem(&token_id, &identity, expires_at, SystemTime::now()))
            .await
            .map_err(|e| LedgerError::Worker(Arc::new(e)))?
    }
}

/// Tells the kind of a credential from its shape alone.
fn classify(token: &str) -> Result<CredentialKind, CredentialError> {
    if token.is_empty() {
        return Err(CredentialError::Malformed { reason: "it is empty".to_owned() });
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(CredentialError::Malformed {
            reason: format!("it is {} bytes long, more than the {MAX_TOKEN_LEN} bytes accepted", token.len()),
        });
    }
    if token.starts_with(join_token::FAMILY) {
        return Ok(CredentialKind::JoinToken);
    }
    if token.starts_with(renewal::PREFIX) {
        return Ok(CredentialKind::Certificate);
    }
    if looks_like_jwt(token) {
        return Ok(CredentialKind::KubernetesServiceAccount);
    }
    Err(CredentialError::Malformed {
        reason: format!(
            "it is neither a join token (starting with {:?}) nor a JWT (three base64url segments separated by '.')",
            join_token::PREFIX
        ),
    })
}

/// Three non-empty base64url segments separated by dots (JWS compact serialization).
fn looks_like_jwt(token: &str) -> bool {
    let segments: Vec<&str> = token.split('.').collect();
    segments.len() == 3
        && segments.iter().all(|s| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn participation() -> SpiffeId {
        SpiffeId::new("kem.test", "kem", "participation").expect("valid id")
    }

    /// A verifier for join tokens of `join`, with its ledger in a fresh directory.
    fn with_ledger(join: JoinTokens) -> (tempfile::TempDir, CredentialVerifier) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = ReplayLedger::open(dir.path()).expect("ledger");
        (dir, CredentialVerifier::new(Some((join, ledger)), None))
    }

    #[tokio::test]
    async fn join_tokens_are_dispatched_to_the_join_token_key() {
        let join = JoinTokens::generate("kem.test").expect("key");
        let token = join.mint(&participation(), Duration::from_secs(600)).expect("mint");
        let (_dir, verifier) = with_ledger(join);

        let grant = verifier.verify(&format!("{token}\n")).await.expect("valid join token");
        assert_eq!(grant.identity, participation());
        assert_eq!(grant.method, CredentialKind::JoinToken);
    }

    #[tokio::test]
    async fn kinds_the_ca_was_not_configured_for_are_refused_by_kind() {
        let join = JoinTokens::generate("kem.test").expect("key");
        let token = join.mint(&participation(), Duration::from_secs(600)).expect("mint");
        let nothing = CredentialVerifier::new(None, None);

        let err = nothing.verify(&token).await.expect_err("join tokens not accepted");
        assert_eq!(err, CredentialError::NotConfigured { kind: CredentialKind::JoinToken });

        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let err = nothing.verify(jwt).await.expect_err("ServiceAccount tokens not accepted");
        assert_eq!(err, CredentialError::NotConfigured { kind: CredentialKind::KubernetesServiceAccount });
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }

    #[tokio::test]
    async fn a_single_use_token_is_spent_once_and_a_reusable_one_never() {
        let join = JoinTokens::generate("kem.test").expect("key");
        let single = join.mint(&participation(), Duration::from_secs(600)).expect("mint");
        let reusable = join.mint_reusable(&participation(), Duration::from_secs(600)).expect("mint");
        let (_dir, verifier) = with_ledger(join);

        let grant = verifier.verify(&single).await.expect("valid");
        verifier.redeem(&grant).await.expect("first redemption");
        // Verifying again still succeeds (the token is authentic); spending it again does not.
        let again = verifier.verify(&single).await.expect("still authentic");
        let err = verifier.redeem(&again).await.expect_err("replay");
        assert!(matches!(err, LedgerError::AlreadyUsed { .. }), "{err:?}");
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
        assert!(err.to_string().contains("join token already used; mint a new one with `kem join-token`"), "{err}");

        for _ in 0..3 {
            let grant = verifier.verify(&reusable).await.expect("valid");
            verifier.redeem(&grant).await.expect("a reusable token is never spent");
        }
    }

    #[tokio::test]
    async fn a_single_use_grant_without_a_ledger_is_refused() {
        let join = JoinTokens::generate("kem.test").expect("key");
        let grant = join
            .verify(&join.mint(&participation(), Duration::from_secs(600)).expect("mint"), SystemTime::now())
            .expect("valid");
        let err = CredentialVerifier::new(None, None).redeem(&grant).await.expect_err("fails closed");
        assert!(matches!(err, LedgerError::NotKept), "{err:?}");
    }

    #[tokio::test]
    async fn renewal_proofs_are_not_bootstrap_credentials() {
        let (_dir, verifier) = with_ledger(JoinTokens::generate("kem.test").expect("key"));
        let err = verifier.verify("kemrn1.abc.def").await.expect_err("needs the CSR");
        assert!(matches!(err, CredentialError::Malformed { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn shapeless_credentials_are_malformed() {
        let join = JoinTokens::generate("kem.test").expect("key");
        let (_dir, verifier) = with_ledger(join);
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        for bad in ["", "   ", "hunter2", "a.b", "a.b.c.d", "a..c", "a.b c.d", "ey$.ey.sig", huge.as_str()] {
            let err = verifier.verify(bad).await.expect_err("malformed");
            assert!(matches!(err, CredentialError::Malformed { .. }), "{bad:?} gave {err:?}");
            assert_eq!(err.code(), tonic::Code::Unauthenticated);
        }
    }

    #[test]
    fn only_unavailability_is_retryable() {
        let unavailable = CredentialError::Unavailable { reason: "connection refused".to_owned() };
        assert_eq!(unavailable.code(), tonic::Code::Unavailable);
        for err in [
            CredentialError::Malformed { reason: String::new() },
            CredentialError::Expired { expired_at: UNIX_EPOCH },
            CredentialError::BadSignature,
            CredentialError::Rejected { reason: String::new() },
        ] {
            assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err}");
        }
    }

    #[test]
    fn expiry_is_reported_in_unix_seconds() {
        let err = CredentialError::Expired { expired_at: UNIX_EPOCH + Duration::from_secs(1_700_000_000) };
        assert!(err.to_string().contains("1700000000"), "{err}");
    }
}
