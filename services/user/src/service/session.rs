//! Sign-in sessions: Login, Refresh (rotation with reuse detection), Logout.

use std::time::{Duration, SystemTime};

use kem_kit::jwt::{refresh_token, refresh_token_hash};
use kem_kit::store::millis;

use super::{UserCore, UserError, ms};
use crate::ids::uuid_v4;
use crate::model::FieldViolation;
use crate::repository::Rotation;

/// Longest password accepted at sign-in (bytes): bounds the hashing work of a hostile request.
const MAX_PASSWORD_BYTES: usize = 4096;
/// Longest refresh token looked up (ours are 43 characters).
const MAX_REFRESH_TOKEN_LEN: usize = 512;

/// A new access/refresh token pair.
#[derive(Clone)]
pub struct TokenPair {
    /// The ES256 JWT.
    pub access_token: String,
    /// Its lifetime.
    pub access_ttl: Duration,
    /// The opaque refresh token (only its hash is stored).
    pub refresh_token: String,
    /// Its lifetime.
    pub refresh_ttl: Duration,
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair").field("access_ttl", &self.access_ttl).finish_non_exhaustive()
    }
}

impl UserCore {
    /// Login. An unknown email and a wrong password take the same time and give the same error;
    /// failures are counted per email in the database and lock sign-in for a while once
    /// `max_failures` is reached (checked before any hashing, so a locked account costs nothing).
    pub async fn login(&self, email: &str, password: String) -> Result<TokenPair, UserError> {
        let email = email.trim().to_lowercase();
        let mut missing = Vec::new();
        if email.is_empty() {
            missing.push(FieldViolation::new("email", "email is required"));
        }
        if password.is_empty() {
            missing.push(FieldViolation::new("password", "password is required"));
        }
        if !missing.is_empty() {
            return Err(UserError::invalid(missing));
        }
        // No account can have a longer address (registration enforces it): answer without
        // touching the database, so hostile input cannot grow the failure table.
        if email.len() > crate::model::email::MAX_LEN {
            return Err(UserError::InvalidCredentials);
        }
        let now = SystemTime::now();
        let now_ms = millis(now);
        if let Some(until) = self.repo.locked_until(&email, now_ms).await? {
            return Err(too_many(until, now_ms));
        }
        let credentials = self.repo.credentials(&email).await?;
        let matched = if password.len() > MAX_PASSWORD_BYTES {
            false
        } else {
            self.hasher.verify(password.clone(), credentials.as_ref().map(|(_, hash)| hash.clone())).await?
        };
        let Some((owner_id, stored_hash)) = credentials.filter(|_| matched) else {
            let login = &self.config.login;
            let locked = self
                .repo
                .record_login_failure(&email, now_ms, ms(login.window), login.max_failures, ms(login.lockout))
                .await?;
            if locked.is_some() {
                tracing::warn!(failures = login.max_failures, lockout = ?login.lockout, "sign-in locked after repeated failures");
            }
            return Err(UserError::InvalidCredentials);
        };
        if let Err(error) = self.repo.clear_login_failures(&email).await {
            tracing::warn!(%error, "cannot reset the sign-in failure counter");
        }
        if self.hasher.needs_rehash(&stored_hash) {
            match self.hasher.hash(password).await {
                Ok(hash) => {
                    if let Err(error) = self.repo.set_password_hash(&owner_id, &hash, now_ms).await {
                        tracing::warn!(%error, "cannot store the re-hashed password");
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot re-hash the password with the current parameters"),
            }
        }
        let session_id = uuid_v4();
        let (refresh, refresh_hash) = refresh_token();
        let refresh_ttl = self.config.tokens.refresh_ttl;
        self.repo
            .create_session(&owner_id, &session_id, &refresh_hash, now_ms, now_ms.saturating_add(ms(refresh_ttl)))
            .await?;
        let access_token = self.keys.issue(&owner_id, &session_id)?;
        tracing::info!(%owner_id, %session_id, "owner signed in");
        Ok(TokenPair { access_token, access_ttl: self.config.tokens.access_ttl, refresh_token: refresh, refresh_ttl })
    }

    /// Refresh: consumes the presented token and returns a new pair in the same session.
    /// Presenting a token that was already consumed revokes the whole session.
    pub async fn refresh(&self, presented: &str) -> Result<TokenPair, UserError> {
        let presented = presented.trim();
        if presented.is_empty() {
            return Err(UserError::field("refreshToken", "refresh token is required"));
        }
        if presented.len() > MAX_REFRESH_TOKEN_LEN {
            return Err(UserError::InvalidRefreshToken);
        }
        let now_ms = millis(SystemTime::now());
        let (next, next_hash) = refresh_token();
        let refresh_ttl = self.config.tokens.refresh_ttl;
        let rotation = self
            .repo
            .rotate_refresh(&refresh_token_hash(presented), &next_hash, now_ms, now_ms.saturating_add(ms(refresh_ttl)))
            .await?;
        match rotation {
            Rotation::Rotated { owner_id, family_id } => {
                let access_token = self.keys.issue(&owner_id, &family_id)?;
                Ok(TokenPair {
                    access_token,
                    access_ttl: self.config.tokens.access_ttl,
                    refresh_token: next,
                    refresh_ttl,
                })
            }
            Rotation::Reused { owner_id, family_id } => {
                tracing::warn!(%owner_id, session_id = %family_id,
                    "a rotated refresh token was presented again: session revoked (possible token theft)");
                Err(UserError::RefreshTokenReused)
            }
            Rotation::Unknown | Rotation::Expired | Rotation::Revoked => Err(UserError::InvalidRefreshToken),
        }
    }

    /// Logout: revokes the session of `refresh_token` (if it is the caller's; anything else is a
    /// quiet success, so the call is idempotent) or every session of the caller.
    pub async fn logout(&self, owner_id: &str, refresh_token: &str, all_sessions: bool) -> Result<(), UserError> {
        let now_ms = millis(SystemTime::now());
        if all_sessions {
            let revoked = self.repo.revoke_all_sessions(owner_id, now_ms).await?;
            tracing::info!(%owner_id, revoked, "owner signed out everywhere");
            return Ok(());
        }
        let token = refresh_token.trim();
        if token.is_empty() {
            return Err(UserError::field("refreshToken", "give the refresh token to revoke, or set allSessions"));
        }
        if token.len() <= MAX_REFRESH_TOKEN_LEN {
            let revoked = self.repo.revoke_session_of_token(owner_id, &refresh_token_hash(token), now_ms).await?;
            tracing::info!(%owner_id, revoked, "owner signed out");
        }
        Ok(())
    }
}

fn too_many(until_ms: i64, now_ms: i64) -> UserError {
    let wait = u64::try_from(until_ms.saturating_sub(now_ms)).unwrap_or(0);
    UserError::TooManyAttempts { retry_after: Duration::from_millis(wait).max(Duration::from_secs(1)) }
}
