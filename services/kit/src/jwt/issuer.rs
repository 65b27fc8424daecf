//! Minting access tokens, with key rotation.

use std::time::{Duration, SystemTime};

use rand::RngCore as _;
use serde_json::{Map, Value};

use super::verifier::DEFAULT_LEEWAY;
use super::{
    ALGORITHM, Audience, Claims, IssueError, Jwk, Jwks, KeyError, REGISTERED_CLAIMS, SigningKey, b64, unix_seconds,
};

/// How long an access token lives unless configured otherwise (DESIGN.md: 15 minutes).
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(15 * 60);

/// A rotated-out key: no longer signs, but stays in the JWKS until tokens it signed have expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousKey {
    /// Its public half.
    pub jwk: Jwk,
    /// From this instant on it is left out of the JWKS (every token it signed has expired by then).
    pub retire_after: SystemTime,
}

/// Mints ES256 access tokens for one issuer/audience pair; owned by the user service.
///
/// Rotation: [`Issuer::rotate`] makes a new key current and keeps the old one's public half in
/// [`Issuer::jwks`] for `access_ttl + leeway`, so tokens it signed stay verifiable until they expire.
#[derive(Debug)]
pub struct Issuer {
    current: SigningKey,
    previous: Vec<PreviousKey>,
    issuer: String,
    audience: String,
    access_ttl: Duration,
}

impl Issuer {
    /// An issuer signing with `current` for `issuer` (the `iss`) and `audience` (the `aud`).
    pub fn new(current: SigningKey, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            current,
            previous: Vec::new(),
            issuer: issuer.into(),
            audience: audience.into(),
            access_ttl: DEFAULT_ACCESS_TTL,
        }
    }

    /// Sets the access-token lifetime (default [`DEFAULT_ACCESS_TTL`]).
    pub fn with_access_ttl(mut self, access_ttl: Duration) -> Self {
        self.access_ttl = access_ttl;
        self
    }

    /// The access-token lifetime.
    pub fn access_ttl(&self) -> Duration {
        self.access_ttl
    }

    /// The `iss` of minted tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` of minted tokens.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The key new tokens are signed with (e.g. to persist it).
    pub fn current_key(&self) -> &SigningKey {
        &self.current
    }

    /// The rotated-out keys still published (e.g. to persist them across restarts).
    pub fn previous_keys(&self) -> &[PreviousKey] {
        &self.previous
    }

    /// Mints a token for `subject` now (system clock); see [`Issuer::issue_at`].
    pub fn issue(&self, subject: &str, extra: Map<String, Value>) -> Result<(String, Claims), IssueError> {
        self.issue_at(subject, extra, SystemTime::now())
    }

    /// Mints a token for `subject` as of `now`, with `extra` claims (e.g. `{"sid": family_id}`).
    ///
    /// Returns the compact token and the claims it carries.
    pub fn issue_at(
        &self,
        subject: &str,
        extra: Map<String, Value>,
        now: SystemTime,
    ) -> Result<(String, Claims), IssueError> {
        if let Some(name) = extra.keys().find(|name| REGISTERED_CLAIMS.contains(&name.as_str())) {
            return Err(IssueError::ReservedClaim { name: name.clone() });
        }
        let iat = unix_seconds(now);
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: subject.to_owned(),
            aud: Audience::One(self.audience.clone()),
            exp: iat.saturating_add(self.access_ttl.as_secs()),
            nbf: iat,
            iat,
            jti: b64::encode(jti),
            extra,
        };
        let header = serde_json::json!({ "alg": ALGORITHM, "typ": "JWT", "kid": self.current.kid() });
        let signing_input =
            format!("{}.{}", b64::encode(serde_json::to_vec(&header)?), b64::encode(serde_json::to_vec(&claims)?));
        let signature = self
            .current
            .sign(signing_input.as_bytes())
            .map_err(|_| IssueError::Sign { kid: self.current.kid().to_owned() })?;
        Ok((format!("{signing_input}.{}", b64::encode(signature)), claims))
    }

    /// Makes `new_key` current as of `now`; the old key stays published until the returned instant
    /// (`now + access_ttl + leeway`), after which every token it signed has expired.
    pub fn rotate(&mut self, new_key: SigningKey, now: SystemTime) -> Result<SystemTime, KeyError> {
        self.check_new_kid(new_key.kid())?;
        let retire_after = super::later(now, self.access_ttl.saturating_add(DEFAULT_LEEWAY));
        let old = std::mem::replace(&mut self.current, new_key);
        self.previous.push(PreviousKey { jwk: old.public_jwk(), retire_after });
        Ok(retire_after)
    }

    /// Publishes a rotated-out key again (e.g. restored from storage after a restart).
    pub fn add_previous(&mut self, jwk: Jwk, retire_after: SystemTime) -> Result<(), KeyError> {
        jwk.to_point()?;
        self.check_new_kid(&jwk.kid)?;
        self.previous.push(PreviousKey { jwk, retire_after });
        Ok(())
    }

    /// Forgets rotated-out keys whose `retire_after` has passed.
    pub fn prune(&mut self, now: SystemTime) {
        self.previous.retain(|p| p.retire_after > now);
    }

    /// The key set to publish as of `now`: the current key first, then unretired previous keys.
    pub fn jwks(&self, now: SystemTime) -> Jwks {
        let previous = self.previous.iter().filter(|p| p.retire_after > now).map(|p| p.jwk.clone());
        Jwks { keys: std::iter::once(self.current.public_jwk()).chain(previous).collect() }
    }

    fn check_new_kid(&self, kid: &str) -> Result<(), KeyError> {
        if kid == self.current.kid() || self.previous.iter().any(|p| p.jwk.kid == kid) {
            return Err(KeyError::DuplicateKid { kid: kid.to_owned() });
        }
        Ok(())
    }
}
