//! End-user authentication at the edge: ES256 access tokens issued by the user service,
//! verified against its JWKS.
//!
//! The keys come from the user service (`GetSigningKeys`, mesh-internal, callable only by the
//! gateway), refreshed periodically and — rate limited — when a token names an unknown `kid`,
//! so a key rotation at the user service needs no gateway restart. The same keys are published
//! at `/.well-known/jwks.json` for other verifiers.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use futures_util::future::BoxFuture;
use kem_kit::jwt::{Jwk, Jwks, Verifier};
use tokio::sync::Mutex;

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

/// JWT verification with keys refreshed from a [`KeySource`].
pub struct JwtAuthenticator {
    issuer: String,
    audience: String,
    verifier: ArcSwap<Option<Verifier>>,
    jwks: ArcSwap<Jwks>,
    source: Arc<dyn KeySource>,
    last_refresh: Mutex<Option<tokio::time::Instant>>,
    /// Tokens already verified → (subject, expiry): an ES256 verification costs far more than
    /// the rest of the edge, and a client sends the same access token for up to 15 minutes.
    /// Cleared whenever the key set changes, so a retired key's tokens stop working at once.
    verified: std::sync::Mutex<std::collections::HashMap<String, (Arc<str>, SystemTime)>>,
}

/// Verified tokens remembered at most (the map is cleared when full: a cache, not a ledger).
const VERIFIED_CACHE_ENTRIES: usize = 50_000;

/// Minimum time between two refreshes triggered by unknown `kid`s (an attacker sending random
/// kids must not turn the gateway into a load generator against the user service).
const REFRESH_COOLDOWN: Duration = Duration::from_secs(5);

impl JwtAuthenticator {
    /// An authenticator for tokens from `issuer` for `audience`, keys from `source`.
    pub fn new(
        issuer: impl Into<String>,
        audience: impl Into<String>,
        source: Arc<dyn KeySource>,
    ) -> Arc<JwtAuthenticator> {
        Arc::new(JwtAuthenticator {
            issuer: issuer.into(),
            audience: audience.into(),
            verifier: ArcSwap::from_pointee(None),
            jwks: ArcSwap::from_pointee(Jwks { keys: Vec::new() }),
            source,
            last_refresh: Mutex::new(None),
            verified: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Fetches keys now.
    pub async fn refresh(&self) -> Result<usize, String> {
        *self.last_refresh.lock().await = Some(tokio::time::Instant::now());
        let jwks = self.source.fetch().await?;
        let count = jwks.keys.len();
        let verifier = Verifier::new(&jwks, self.issuer.clone(), self.audience.clone()).map_err(|e| e.to_string())?;
        if **self.jwks.load() != jwks
            && let Ok(mut verified) = self.verified.lock()
        {
            verified.clear();
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
        let now = SystemTime::now();
        if let Ok(verified) = self.verified.lock()
            && let Some((subject, expires)) = verified.get(token)
            && *expires > now
        {
            return Ok(subject.clone());
        }
        let guard = self.verifier.load();
        let Some(verifier) = guard.as_ref() else { return Err(VerifyOutcome::NoKeys) };
        match verifier.verify(token, now) {
            Ok(claims) => {
                let subject: Arc<str> = claims.sub.into();
                if let Ok(mut verified) = self.verified.lock() {
                    if verified.len() >= VERIFIED_CACHE_ENTRIES {
                        verified.clear();
                    }
                    let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(claims.exp);
                    verified.insert(token.to_owned(), (subject.clone(), expires));
                }
                Ok(subject)
            }
            Err(error @ kem_kit::jwt::JwtError::UnknownKid { .. }) => Err(VerifyOutcome::UnknownKid(error.to_string())),
            Err(error) => Err(VerifyOutcome::Invalid(error.to_string())),
        }
    }
}

enum VerifyOutcome {
    NoKeys,
    UnknownKid(String),
    Invalid(String),
}

impl Authenticate for JwtAuthenticator {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<Arc<str>, String>> {
        Box::pin(async move {
            if let Some(verdict) = self.authenticate_now(token) {
                return verdict;
            }
            let may_refresh = self.last_refresh.lock().await.is_none_or(|t| t.elapsed() >= REFRESH_COOLDOWN);
            if may_refresh && let Err(error) = self.refresh().await {
                tracing::warn!(%error, "cannot fetch signing keys while verifying a token");
            }
            match self.check_token(token) {
                Ok(subject) => Ok(subject),
                Err(VerifyOutcome::NoKeys) => Err("access tokens cannot be verified right now".to_owned()),
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
            Err(VerifyOutcome::NoKeys | VerifyOutcome::UnknownKid(_)) => None,
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
