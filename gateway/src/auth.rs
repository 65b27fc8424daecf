//! End-user authentication at the edge: ES256 access tokens issued by the user service,
//! verified against its JWKS, minus the tokens it has revoked.
//!
//! The keys come from the user service (`GetSigningKeys`, mesh-internal, callable only by the
//! gateway), refreshed periodically and — rate limited — when a token names an unknown `kid`,
//! so a key rotation at the user service needs no gateway restart. The same keys are published
//! at `/.well-known/jwks.json` for other verifiers. Revocations (logout) come from the same
//! service ([`revocations`]) and are checked on every request, verified-token cache hits included.
//!
//! Nothing a client sends can panic here or poison a lock: the verifier is total and bounds the
//! time claims, instants are computed with checked arithmetic, and the locks are `parking_lot`'s
//! (no poisoning) around critical sections that do not run request-dependent arithmetic.

pub mod revocations;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use futures_util::future::BoxFuture;
use kem_kit::jwt::{Jwk, Jwks, Verifier};
use parking_lot::Mutex;

pub use revocations::{RevocationList, RevocationSource, UserServiceRevocations};

/// Verifies bearer tokens, returning the subject (owner id).
pub trait Authenticate: Send + Sync {
    /// The verified subject, or why the token is refused (safe to show the client). Shared:
    /// every request of a client carries the same subject, and the edge passes it to several
    /// stages (rate limit, idempotency scope, backend metadata, access log).
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Arc<str>, String>>;

    /// The same verdict when it needs no I/O (a remembered token, or one the current keys
    /// decide); `None` when keys must be fetched first. Lets the edge skip boxing a future on
    /// nearly every request.
    fn authenticate_now(&self, _token: &str) -> Option<Result<Arc<str>, String>> {
        None
    }
}

/// Where signing keys come from.
pub trait KeySource: Send + Sync {
    /// The current JWKS.
    fn fetch(&self) -> BoxFuture<'_, Result<Jwks, String>>;
}

/// JWT verification with keys refreshed from a [`KeySource`] and revocations from a
/// [`RevocationList`].
pub struct JwtAuthenticator {
    issuer: String,
    audience: String,
    verifier: ArcSwap<Option<Verifier>>,
    jwks: ArcSwap<Jwks>,
    source: Arc<dyn KeySource>,
    revocations: Arc<RevocationList>,
    last_refresh: Mutex<Option<tokio::time::Instant>>,
    last_revocation_sync: Mutex<Option<tokio::time::Instant>>,
    /// Tokens already verified: an ES256 verification costs far more than the rest of the edge,
    /// and a client sends the same access token for up to 15 minutes. Cleared whenever the key
    /// set changes, so a retired key's tokens stop working at once; revocations are checked on
    /// every hit.
    verified: Mutex<HashMap<String, Verified>>,
}

/// What the edge remembers of a verified token.
struct Verified {
    subject: Arc<str>,
    /// `exp` as an instant (the verifier bounds it, so this never overflowed).
    expires: SystemTime,
    /// `iat`, for owner-wide revocation cut-offs.
    issued_at: u64,
    /// `sid`, for session revocations.
    session: Option<Box<str>>,
}

/// Verified tokens remembered at most (the map is cleared when full: a cache, not a ledger).
const VERIFIED_CACHE_ENTRIES: usize = 50_000;

/// Minimum time between two refreshes triggered by unknown `kid`s (an attacker sending random
/// kids must not turn the gateway into a load generator against the user service).
const REFRESH_COOLDOWN: Duration = Duration::from_secs(5);

/// Minimum time between two revocation loads triggered by requests while the list has never
/// been loaded (the background poll retries on its own).
const REVOCATION_COOLDOWN: Duration = Duration::from_secs(1);

impl JwtAuthenticator {
    /// An authenticator for tokens from `issuer` for `audience`, keys from `source`, no
    /// revocations (see [`JwtAuthenticator::with_revocations`]).
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        source: Arc<dyn KeySource>,
    ) -> Arc<JwtAuthenticator> {
        Self::with_revocations(issuer, audience, source, RevocationList::disabled())
    }

    /// Like [`JwtAuthenticator::new`], refusing the tokens `revocations` lists (and every token
    /// until it has been loaded once).
    pub fn with_revocations(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        source: Arc<dyn KeySource>,
        revocations: Arc<RevocationList>,
    ) -> Arc<JwtAuthenticator> {
        Arc::new(JwtAuthenticator {
            issuer: issuer.into(),
            audience: audience.into(),
            verifier: ArcSwap::from_pointee(None),
            jwks: ArcSwap::from_pointee(Jwks { keys: Vec::new() }),
            source,
            revocations,
            last_refresh: Mutex::new(None),
            last_revocation_sync: Mutex::new(None),
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The revocations this authenticator enforces.
    pub fn revocations(&self) -> &Arc<RevocationList> {
        &self.revocations
    }

    /// Fetches keys now.
    pub async fn refresh(&self) -> Result<usize, String> {
        *self.last_refresh.lock() = Some(tokio::time::Instant::now());
        let jwks = self.source.fetch().await?;
        let count = jwks.keys.len();
        let verifier = Verifier::new(&jwks, self.issuer.clone(), self.audience.clone()).map_err(|e| e.to_string())?;
        if **self.jwks.load() != jwks {
            self.verified.lock().clear();
        }
        self.verifier.store(Arc::new(Some(verifier)));
        self.jwks.store(Arc::new(jwks));
        Ok(count)
    }

    /// Refreshes every `period` in the background until `shutdown`.
    pub fn spawn_refresh(self: &Arc<Self>, period: Duration, shutdown: kem_mesh::Shutdown) {
        let this = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(auth) = this.upgrade() else { return };
                if let Err(error) = auth.refresh().await {
                    tracing::warn!(%error, "cannot refresh the access-token signing keys; keeping the previous ones");
                }
                drop(auth);
                tokio::select! {
                    _ = tokio::time::sleep(period) => {}
                    _ = shutdown.wait() => return,
                }
            }
        });
    }

    /// The public keys, for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Vec<Jwk> {
        self.jwks.load().keys.clone()
    }

    fn check_token(&self, token: &str) -> Result<Arc<str>, VerifyOutcome> {
        if !self.revocations.is_ready() {
            return Err(VerifyOutcome::NotReady);
        }
        let now = SystemTime::now();
        let hit = {
            let verified = self.verified.lock();
            verified.get(token).filter(|v| v.expires > now).map(|v| {
                let revoked = self.revocations.is_revoked(&v.subject, v.session.as_deref(), v.issued_at);
                (v.subject.clone(), revoked)
            })
        };
        if let Some((subject, revoked)) = hit {
            return if revoked { Err(VerifyOutcome::Invalid(REVOKED.to_owned())) } else { Ok(subject) };
        }
        let guard = self.verifier.load();
        let Some(verifier) = guard.as_ref() else { return Err(VerifyOutcome::NoKeys) };
        match verifier.verify(token, now) {
            Ok(claims) => {
                // The verifier bounds `exp` (year 9999), so this is always `Some`; a token it
                // could not be turned into an instant for is simply not cached.
                let expires = claims.expires_at();
                let subject: Arc<str> = claims.sub.as_str().into();
                let session = claims.sid().map(Box::from);
                let revoked = self.revocations.is_revoked(&subject, session.as_deref(), claims.iat);
                if let Some(expires) = expires {
                    let entry = Verified { subject: subject.clone(), expires, issued_at: claims.iat, session };
                    let mut verified = self.verified.lock();
                    if verified.len() >= VERIFIED_CACHE_ENTRIES {
                        verified.clear();
                    }
                    verified.insert(token.to_owned(), entry);
                }
                if revoked { Err(VerifyOutcome::Invalid(REVOKED.to_owned())) } else { Ok(subject) }
            }
            Err(error @ kem_kit::jwt::JwtError::UnknownKid { .. }) => Err(VerifyOutcome::UnknownKid(error.to_string())),
            Err(error) => Err(VerifyOutcome::Invalid(error.to_string())),
        }
    }

    /// Loads revocations now if they were never loaded and no load was tried within
    /// [`REVOCATION_COOLDOWN`] (the first requests after a start should not wait for the poll).
    async fn load_revocations_if_needed(&self) {
        if self.revocations.is_ready() {
            return;
        }
        let may_sync = {
            let mut last = self.last_revocation_sync.lock();
            let due = last.is_none_or(|t| t.elapsed() >= REVOCATION_COOLDOWN);
            if due {
                *last = Some(tokio::time::Instant::now());
            }
            due
        };
        if may_sync && let Err(error) = self.revocations.sync().await {
            tracing::warn!(%error, "cannot load access-token revocations while verifying a token");
        }
    }
}

/// Why a revoked token is refused (safe to show the client).
const REVOKED: &str = "the token has been revoked (signed out)";

enum VerifyOutcome {
    NoKeys,
    NotReady,
    UnknownKid(String),
    Invalid(String),
}

impl Authenticate for JwtAuthenticator {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Arc<str>, String>> {
        Box::pin(async move {
            if let Some(verdict) = self.authenticate_now(token) {
                return verdict;
            }
            self.load_revocations_if_needed().await;
            let may_refresh = self.last_refresh.lock().is_none_or(|t| t.elapsed() >= REFRESH_COOLDOWN);
            if may_refresh && let Err(error) = self.refresh().await {
                tracing::warn!(%error, "cannot fetch signing keys while verifying a token");
            }
            match self.check_token(token) {
                Ok(subject) => Ok(subject),
                Err(VerifyOutcome::NoKeys | VerifyOutcome::NotReady) => {
                    Err("access tokens cannot be verified right now".to_owned())
                }
                Err(VerifyOutcome::UnknownKid(reason) | VerifyOutcome::Invalid(reason)) => {
                    Err(format!("invalid access token: {reason}"))
                }
            }
        })
    }

    fn authenticate_now(&self, token: &str) -> Option<Result<Arc<str>, String>> {
        match self.check_token(token) {
            Ok(subject) => Some(Ok(subject)),
            Err(VerifyOutcome::Invalid(reason)) => Some(Err(format!("invalid access token: {reason}"))),
            Err(VerifyOutcome::NoKeys | VerifyOutcome::NotReady | VerifyOutcome::UnknownKid(_)) => None,
        }
    }
}

/// Keys given directly (tests, and deployments that mount a JWKS file).
pub struct StaticKeys(pub Jwks);

impl KeySource for StaticKeys {
    fn fetch(&self) -> BoxFuture<'_, Result<Jwks, String>> {
        let jwks = self.0.clone();
        Box::pin(async move { Ok(jwks) })
    }
}

/// Keys from the user service's internal `GetSigningKeys` RPC, over the mesh.
pub struct UserServiceKeys(pub crate::upstream::Upstream);

impl KeySource for UserServiceKeys {
    fn fetch(&self) -> BoxFuture<'_, Result<Jwks, String>> {
        Box::pin(async move {
            use kem_proto::kem::user::v1::GetSigningKeysRequest;
            use kem_proto::kem::user::v1::user_service_client::UserServiceClient;
            let mut client = UserServiceClient::new(self.0.clone());
            let response = client
                .get_signing_keys(GetSigningKeysRequest::default())
                .await
                .map_err(|s| format!("user service GetSigningKeys: {:?} {}", s.code(), s.message()))?
                .into_inner();
            let keys = response
                .keys
                .into_iter()
                .map(|k| Jwk {
                    kty: k.kty,
                    crv: k.crv,
                    x: k.x,
                    y: k.y,
                    alg: Some(k.alg).filter(|a| !a.is_empty()),
                    use_: Some(k.r#use).filter(|u| !u.is_empty()),
                    kid: k.kid,
                })
                .collect();
            Ok(Jwks { keys })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use kem_kit::jwt::SigningKey;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

    use super::revocations::Revocation;
    use super::*;

    const ISS: &str = "kem-user";
    const AUD: &str = "kem-api";

    /// A P-256 key usable both by the kit's issuer (for the JWKS) and directly with ring, to
    /// sign payloads no issuer of ours would produce.
    struct Forger {
        key: SigningKey,
        pair: EcdsaKeyPair,
    }

    impl Forger {
        fn new() -> Forger {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("pair");
            Forger { key: SigningKey::from_pkcs8_der(pkcs8.as_ref()).expect("signing key"), pair }
        }

        fn jwks(&self) -> Jwks {
            Jwks { keys: vec![self.key.public_jwk()] }
        }

        /// A correctly signed token with `payload` verbatim.
        fn sign(&self, payload: &str) -> String {
            use base64::Engine as _;
            let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            let header = format!(r#"{{"alg":"ES256","typ":"JWT","kid":"{}"}}"#, self.key.kid());
            let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
            let signature = self.pair.sign(&SystemRandom::new(), input.as_bytes()).expect("sign");
            format!("{input}.{}", b64(signature.as_ref()))
        }
    }

    fn now_s() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
    }

    fn payload(exp: &str, nbf: &str, iat: &str, sid: &str) -> String {
        format!(
            r#"{{"iss":"{ISS}","sub":"owner-1","aud":"{AUD}","jti":"j","exp":{exp},"nbf":{nbf},"iat":{iat},"sid":"{sid}"}}"#
        )
    }

    async fn authenticator(forger: &Forger, revocations: Arc<RevocationList>) -> Arc<JwtAuthenticator> {
        let auth = JwtAuthenticator::with_revocations(ISS, AUD, Arc::new(StaticKeys(forger.jwks())), revocations);
        auth.refresh().await.expect("keys");
        auth
    }

    #[tokio::test]
    async fn an_exp_near_2_pow_63_is_a_401_and_the_cache_keeps_working() {
        let forger = Forger::new();
        let auth = authenticator(&forger, RevocationList::disabled()).await;
        let now = now_s().to_string();
        for exp in [(1u64 << 63).to_string(), (u64::MAX).to_string(), "9223372036854775807".to_owned()] {
            let token = forger.sign(&payload(&exp, &now, &now, "s"));
            let verdict = auth.authenticate(&token).await;
            assert!(verdict.as_ref().is_err_and(|e| e.contains("out of range")), "{exp}: {verdict:?}");
        }
        for hostile in ["-1", "1.5", "1e400", "18446744073709551616", "\"900\""] {
            let token = forger.sign(&payload(hostile, &now, &now, "s"));
            assert!(auth.authenticate(&token).await.is_err(), "exp = {hostile}");
            let token = forger.sign(&payload(&(now_s() + 900).to_string(), hostile, &now, "s"));
            assert!(auth.authenticate(&token).await.is_err(), "nbf = {hostile}");
            let token = forger.sign(&payload(&(now_s() + 900).to_string(), &now, hostile, "s"));
            assert!(auth.authenticate(&token).await.is_err(), "iat = {hostile}");
        }
        // The verified-token cache still serves (its lock was never poisoned).
        let good = forger.sign(&payload(&(now_s() + 900).to_string(), &now, &now, "s"));
        assert_eq!(auth.authenticate(&good).await.as_deref(), Ok("owner-1"));
        assert_eq!(auth.authenticate_now(&good).map(|v| v.map(|s| s.to_string())), Some(Ok("owner-1".to_owned())));
    }

    #[tokio::test]
    async fn revocations_apply_to_cached_tokens_too() {
        let forger = Forger::new();
        let list = RevocationList::disabled();
        let auth = authenticator(&forger, list.clone()).await;
        let issued = now_s();
        let exp = (issued + 900).to_string();
        let (iat, iat_s) = (issued.to_string(), issued);
        let token = forger.sign(&payload(&exp, &iat, &iat, "session-a"));
        let other = forger.sign(&payload(&exp, &iat, &iat, "session-b"));
        assert!(auth.authenticate(&token).await.is_ok(), "verified and cached");
        assert!(auth.authenticate_now(&token).is_some_and(|v| v.is_ok()), "a cache hit");

        list.apply(vec![Revocation::Session {
            session_id: "session-a".into(),
            expires: SystemTime::now() + Duration::from_secs(60),
        }]);
        let refused = auth.authenticate_now(&token).expect("decided without I/O");
        assert!(refused.is_err_and(|e| e.contains("revoked")), "the cached token is refused");
        assert!(auth.authenticate(&other).await.is_ok(), "another session is not");

        // Logout everywhere: tokens issued before the cut-off go, later ones stay.
        list.apply(vec![Revocation::Owner {
            owner_id: "owner-1".into(),
            issued_before: iat_s + 1,
            expires: SystemTime::now() + Duration::from_secs(60),
        }]);
        assert!(auth.authenticate(&other).await.is_err());
        let after = (iat_s + 1).to_string();
        let fresh = forger.sign(&payload(&exp, &after, &after, "session-c"));
        assert!(auth.authenticate(&fresh).await.is_ok(), "a sign-in after the logout works");
    }

    struct Flaky {
        pages: Mutex<Vec<Result<revocations::RevocationPage, String>>>,
    }

    impl RevocationSource for Flaky {
        fn list<'a>(&'a self, _cursor: &'a str) -> BoxFuture<'a, Result<revocations::RevocationPage, String>> {
            let next = self.pages.lock().pop().unwrap_or_else(|| Err("user service unreachable".to_owned()));
            Box::pin(async move { next })
        }
    }

    #[tokio::test]
    async fn nothing_is_accepted_before_the_first_load_and_the_last_list_survives_outages() {
        let forger = Forger::new();
        let revoked = revocations::RevocationPage {
            revocations: vec![Revocation::Session {
                session_id: "stolen".into(),
                expires: SystemTime::now() + Duration::from_secs(60),
            }],
            next_cursor: "t1".into(),
            more: false,
        };
        // Served from the end: two outages (the second one met by a request's own load attempt),
        // then the list, then outages forever.
        let down = || Err("down".to_owned());
        let source = Arc::new(Flaky { pages: Mutex::new(vec![Ok(revoked), down(), down()]) });
        let list = RevocationList::new(source);
        let auth = authenticator(&forger, list.clone()).await;
        let iat = now_s().to_string();
        let exp = (now_s() + 900).to_string();
        let good = forger.sign(&payload(&exp, &iat, &iat, "fine"));
        let stolen = forger.sign(&payload(&exp, &iat, &iat, "stolen"));

        assert!(auth.authenticate_now(&good).is_none(), "undecided until the list is loaded");
        assert!(list.sync().await.is_err());
        assert!(auth.authenticate(&good).await.is_err(), "fail closed at start");
        list.sync().await.expect("loaded");
        assert!(auth.authenticate(&good).await.is_ok());
        assert!(auth.authenticate(&stolen).await.is_err());
        // The user service goes away: the last list stays in force and the edge keeps serving.
        assert!(list.sync().await.is_err());
        assert!(auth.authenticate(&good).await.is_ok());
        assert!(auth.authenticate(&stolen).await.is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn literal() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<u64>().prop_map(|n| n.to_string()),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| format!("{f:?}")),
                ((1u64 << 62)..u64::MAX).prop_map(|n| n.to_string()),
                "[0-9]{20,40}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

            #[test]
            fn arbitrary_signed_time_claims_never_panic_the_edge(exp in literal(), nbf in literal(), iat in literal()) {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async {
                    let forger = Forger::new();
                    let auth = authenticator(&forger, RevocationList::disabled()).await;
                    let token = forger.sign(&payload(&exp, &nbf, &iat, "s"));
                    let _ = auth.authenticate(&token).await;
                    let _ = auth.authenticate_now(&token);
                    // The cache is still usable afterwards.
                    let now = now_s().to_string();
                    let good = forger.sign(&payload(&(now_s() + 900).to_string(), &now, &now, "s"));
                    assert!(auth.authenticate(&good).await.is_ok());
                });
            }

            #[test]
            fn arbitrary_bearer_text_never_panics_the_edge(token in ".{0,200}") {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async {
                    let forger = Forger::new();
                    let auth = authenticator(&forger, RevocationList::disabled()).await;
                    let _ = auth.authenticate(&token).await;
                });
            }
        }
    }
}
