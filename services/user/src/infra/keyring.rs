//! Access tokens (ES256 JWTs from the kit's [`Issuer`]) and the signing keys behind them: kept in
//! the user database so that every replica signs with the same key and publishes the same key set,
//! or loaded from a file (a Key Vault mount) whose public half is published the same way.
//!
//! The signing key ring: which key signs now, which public keys verifiers must know.
//!
//! # Storage and races
//!
//! Keys live in `signing_keys`; `current_signing_key` (one row) names the signing key. Replicas
//! starting together each generate a key and try to install it: the insert of the single
//! `current_signing_key` row decides, and the losers discard theirs and read the winner's.
//! Rotation is a compare-and-swap on that row, so two replicas rotating at once make one new key.
//!
//! # Rotation without breaking tokens
//!
//! A rotated-out key stays published (GetSigningKeys) until `retire_after`, the rotation time plus
//! the access TTL, the verifiers' leeway and the reload lag: every token it signed has expired by
//! then, including tokens signed by a replica that had not yet reloaded the key set (replicas
//! reload every maintenance interval).
//! GetSigningKeys reads the database, so any replica publishes a key the moment another one
//! starts signing with it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use kem_kit::clock::Clock;
use kem_kit::jwt::{DEFAULT_LEEWAY, IssueError, Issuer, Jwk, KeyError, SigningKey};
use kem_kit::store::{from_millis, millis};
use serde_json::{Map, Value};

use crate::config::TokenSettings;
use crate::infra::repository::{KeyRow, KeySet, Repository, RepositoryError};

/// Why keys could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// The key file could not be read.
    #[error("cannot read the signing key file {path}: {source}; check KEM_JWT_SIGNING_KEY_FILE and the mount")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key (from the file or the database) is not a usable ES256 key.
    #[error("signing key {which} is unusable: {source}")]
    Key {
        /// Where it came from.
        which: String,
        /// Why.
        source: KeyError,
    },
    /// The database failed.
    #[error("signing keys: {0}")]
    Repository(#[from] RepositoryError),
    /// The stored keys do not let this replica sign.
    #[error("signing keys: {0}")]
    State(String),
    /// A public key could not be written or read as a JWK.
    #[error("signing keys: {what}: {source}")]
    Jwk {
        /// Which key, and what was done with it.
        what: String,
        /// Why.
        source: serde_json::Error,
    },
    /// A token could not be signed.
    #[error("cannot sign an access token: {0}")]
    Issue(#[source] IssueError),
}

/// A public key verifiers should accept, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    /// The JWK.
    pub jwk: Jwk,
    /// When it stops being needed; `None` for the current key.
    pub not_after: Option<SystemTime>,
}

/// The signing state one replica holds between reloads.
struct Signer {
    issuer: Issuer,
    created_at: SystemTime,
    published: Vec<PublishedKey>,
}

/// Signs access tokens and publishes the verification keys.
pub struct KeyRing {
    repo: Repository,
    settings: TokenSettings,
    /// How long another replica may keep signing with a key after it was rotated out.
    reload_lag: Duration,
    signer: ArcSwap<Signer>,
    /// Where rotation, retirement and publication times are read from.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").field("kid", &self.signer.load().issuer.current_key().kid()).finish_non_exhaustive()
    }
}

/// Attempts at settling a key race before giving up (each loser re-reads the winner's key).
const RACE_ATTEMPTS: usize = 5;

impl KeyRing {
    /// Loads the key ring: the file key when configured (published and made current), otherwise
    /// the stored current key, generating and installing one when there is none. Key times
    /// (creation, rotation, retirement) are read from `clock`.
    pub async fn load(
        repo: Repository,
        settings: TokenSettings,
        reload_lag: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<KeyRing, KeyRingError> {
        let file_key = match &settings.signing_key_file {
            Some(path) => Some(read_key_file(path).await?),
            None => None,
        };
        let now = clock.now();
        let set = ensure_current(&repo, file_key.as_ref(), retire_after(&settings, reload_lag, now), now).await?;
        let signer = build_signer(&settings, &set, file_key)?;
        tracing::info!(
            kid = signer.issuer.current_key().kid(),
            published = signer.published.len(),
            source = if settings.signing_key_file.is_some() { "file" } else { "database" },
            "access-token signing key loaded"
        );
        Ok(KeyRing { repo, settings, reload_lag, signer: ArcSwap::from_pointee(signer), clock })
    }

    /// The kid new tokens are signed with.
    pub fn current_kid(&self) -> String {
        self.signer.load().issuer.current_key().kid().to_owned()
    }

    /// Issuer and audience of the tokens.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// A new access token for `owner_id` in session `session_id` (`sid` claim), issued at
    /// `issued_at` (the instant its refresh token was recorded, so the token's `iat` matches what
    /// the database knows about the session; see `infra::repository::sessions`).
    pub fn issue(&self, owner_id: &str, session_id: &str, issued_at: SystemTime) -> Result<String, KeyRingError> {
        let mut extra = Map::new();
        extra.insert("sid".to_owned(), Value::String(session_id.to_owned()));
        let signer = self.signer.load();
        signer.issuer.issue_at(owner_id, extra, issued_at).map(|(token, _)| token).map_err(KeyRingError::Issue)
    }

    /// The keys verifiers must accept now, current first. Read from the database so a key another
    /// replica just started signing with is included; the last loaded set if the database fails.
    pub async fn published(&self) -> Vec<PublishedKey> {
        let now = self.clock.now();
        match self.repo.key_set(millis(now)).await {
            Ok(set) => match published(&set) {
                Ok(keys) if !keys.is_empty() => return keys,
                Ok(_) => tracing::warn!("no signing key stored; publishing the keys loaded last"),
                Err(error) => tracing::warn!(%error, "stored signing keys unreadable; publishing the keys loaded last"),
            },
            Err(error) => tracing::warn!(%error, "cannot read signing keys; publishing the keys loaded last"),
        }
        let signer = self.signer.load();
        signer.published.iter().filter(|k| k.not_after.is_none_or(|t| t > now)).cloned().collect()
    }

    /// Rotates now: a new generated key signs from now on, the old one stays published until
    /// every token it signed has expired. Not available with a key file (replace the file).
    pub async fn rotate(&self) -> Result<String, KeyRingError> {
        if self.settings.signing_key_file.is_some() {
            return Err(KeyRingError::State(
                "the signing key comes from KEM_JWT_SIGNING_KEY_FILE: rotate by replacing the file".to_owned(),
            ));
        }
        let now = self.clock.now();
        let current = self.repo.key_set(millis(now)).await?.current.map(|k| k.kid);
        let Some(expected) = current else {
            return Err(KeyRingError::State("no current signing key to rotate".to_owned()));
        };
        let (next, row) = generated(now)?;
        let swapped = self
            .repo
            .swap_current_key(&expected, &row, millis(retire_after(&self.settings, self.reload_lag, now)))
            .await?;
        if swapped {
            tracing::info!(old = %expected, new = next.kid(), "access-token signing key rotated");
        } else {
            tracing::info!("another replica rotated the signing key first; using its key");
        }
        self.reload().await?;
        Ok(self.current_kid())
    }

    /// Re-reads the stored keys (and the key file) and signs with the current one.
    pub async fn reload(&self) -> Result<(), KeyRingError> {
        let now = self.clock.now();
        let file_key = match &self.settings.signing_key_file {
            Some(path) => Some(read_key_file(path).await?),
            None => None,
        };
        let set =
            ensure_current(&self.repo, file_key.as_ref(), retire_after(&self.settings, self.reload_lag, now), now)
                .await?;
        let signer = build_signer(&self.settings, &set, file_key)?;
        let before = self.current_kid();
        if signer.issuer.current_key().kid() != before {
            tracing::info!(old = %before, new = signer.issuer.current_key().kid(), "now signing with another key");
        }
        self.signer.store(Arc::new(signer));
        Ok(())
    }

    /// Periodic upkeep: rotate when the current generated key is older than the rotation
    /// interval, reload, and forget keys retired more than an hour ago.
    pub async fn maintain(&self) -> Result<(), KeyRingError> {
        let now = self.clock.now();
        let due = self.settings.signing_key_file.is_none()
            && self.settings.rotation_interval.is_some_and(|every| {
                let created = self.signer.load().created_at;
                now.duration_since(created).is_ok_and(|age| age >= every)
            });
        if due {
            self.rotate().await?;
        } else {
            self.reload().await?;
        }
        let forget_before = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
        self.repo.delete_retired_keys(millis(forget_before)).await?;
        Ok(())
    }
}

/// When a key rotated out at `now` may be dropped from the published set.
fn retire_after(settings: &TokenSettings, reload_lag: Duration, now: SystemTime) -> SystemTime {
    kem_kit::jwt::later(now, settings.access_ttl.saturating_add(DEFAULT_LEEWAY).saturating_add(reload_lag))
}

async fn read_key_file(path: &PathBuf) -> Result<SigningKey, KeyRingError> {
    let pem =
        tokio::fs::read_to_string(path).await.map_err(|source| KeyRingError::File { path: path.clone(), source })?;
    SigningKey::from_pkcs8_pem(&pem).map_err(|source| KeyRingError::Key { which: path.display().to_string(), source })
}

fn generated(now: SystemTime) -> Result<(SigningKey, KeyRow), KeyRingError> {
    let key = SigningKey::generate().map_err(|source| KeyRingError::Key { which: "new".to_owned(), source })?;
    let row = row_of(&key, Some(key.pkcs8_pem().expose().to_owned()), now)?;
    Ok((key, row))
}

fn row_of(key: &SigningKey, private_pem: Option<String>, now: SystemTime) -> Result<KeyRow, KeyRingError> {
    let public_jwk = serde_json::to_string(&key.public_jwk())
        .map_err(|source| KeyRingError::Jwk { what: "cannot encode the public key".to_owned(), source })?;
    Ok(KeyRow { kid: key.kid().to_owned(), private_pem, public_jwk, created_at_ms: millis(now), retire_after_ms: None })
}

/// Makes sure a current key exists (and is the file key, when one is configured) and returns the
/// key set, settling races with other replicas.
async fn ensure_current(
    repo: &Repository,
    file_key: Option<&SigningKey>,
    retire_after: SystemTime,
    now: SystemTime,
) -> Result<KeySet, KeyRingError> {
    for _ in 0..RACE_ATTEMPTS {
        let set = repo.key_set(millis(now)).await?;
        let wanted = match (file_key, &set.current) {
            // The file key is already current: done.
            (Some(file), Some(current)) if current.kid == file.kid() => return Ok(set),
            // Generated keys and one exists: done.
            (None, Some(_)) => return Ok(set),
            (Some(file), _) => row_of(file, None, now)?,
            (None, None) => generated(now)?.1,
        };
        let won = match &set.current {
            None => repo.install_first_key(&wanted).await?,
            Some(current) => repo.swap_current_key(&current.kid, &wanted, millis(retire_after)).await?,
        };
        if won {
            tracing::info!(kid = %wanted.kid, "installed the current access-token signing key");
        }
        // Won or lost, the next read shows the winner.
    }
    Err(KeyRingError::State(format!("the current signing key kept changing over {RACE_ATTEMPTS} attempts")))
}

fn published(set: &KeySet) -> Result<Vec<PublishedKey>, KeyRingError> {
    let mut keys = Vec::with_capacity(1 + set.previous.len());
    for row in set.current.iter().chain(&set.previous) {
        let jwk: Jwk = serde_json::from_str(&row.public_jwk).map_err(|source| KeyRingError::Jwk {
            what: format!("stored public key {} is unreadable", row.kid),
            source,
        })?;
        keys.push(PublishedKey { jwk, not_after: row.retire_after_ms.map(from_millis) });
    }
    if let Some(current) = keys.first_mut() {
        current.not_after = None;
    }
    Ok(keys)
}

fn build_signer(settings: &TokenSettings, set: &KeySet, file_key: Option<SigningKey>) -> Result<Signer, KeyRingError> {
    let current = set.current.as_ref().ok_or_else(|| KeyRingError::State("no current signing key".to_owned()))?;
    let key = match (file_key, &current.private_pem) {
        (Some(file), _) if file.kid() == current.kid => file,
        (_, Some(pem)) => SigningKey::from_pkcs8_pem(pem)
            .map_err(|source| KeyRingError::Key { which: format!("stored key {}", current.kid), source })?
            .with_kid(current.kid.clone()),
        (_, None) => {
            return Err(KeyRingError::State(format!(
                "the current key {} comes from another replica's key file; mount the same KEM_JWT_SIGNING_KEY_FILE here",
                current.kid
            )));
        }
    };
    let issuer =
        Issuer::new(key, settings.issuer.clone(), settings.audience.clone()).with_access_ttl(settings.access_ttl);
    Ok(Signer { issuer, created_at: from_millis(current.created_at_ms), published: published(set)? })
}
