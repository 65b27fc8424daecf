//! Sign-in sessions: Login (throttled), Refresh (rotation with reuse detection), Logout (with
//! access-token revocation).

use std::net::IpAddr;
use std::time::Duration;

use kem_kit::jwt::{refresh_token, refresh_token_hash};
use kem_kit::store::from_millis;

use super::{UserCore, UserError, ms};
use crate::app::ids::uuid_v4;
use crate::domain::FieldViolation;
use crate::domain::login_throttle::{self, AccountCounter, AddressCounter, Admission, LoginThrottle};
use crate::infra::repository::Rotation;

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
    /// Login from `client` (the end user's address as the edge saw it; `None` when unknown).
    ///
    /// An unknown email and a wrong password take the same time and give the same error. Before
    /// any hashing the attempt passes the throttle ([`crate::domain::login_throttle`]): a locked
    /// (email, address) pair or a pending per-account delay is answered at once with
    /// RESOURCE_EXHAUSTED and the remaining wait, so a refused attempt costs no argon2 work.
    pub async fn login(&self, email: &str, password: String, client: Option<IpAddr>) -> Result<TokenPair, UserError> {
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
        // touching the database, so hostile input cannot grow the throttle tables.
        if email.len() > crate::domain::email::MAX_LEN {
            return Err(UserError::InvalidCredentials);
        }
        let attempt = self.admit_attempt(&email, client).await?;
        let credentials = self.repo.credentials(&email).await?;
        let matched = if password.len() > MAX_PASSWORD_BYTES {
            false
        } else {
            self.hasher.verify(password.clone(), credentials.as_ref().map(|(_, hash)| hash.clone())).await?
        };
        let Some((owner_id, stored_hash)) = credentials.filter(|_| matched) else {
            attempt.failed();
            return Err(UserError::InvalidCredentials);
        };
        self.attempt_succeeded(&email, &attempt).await;
        // A password change that committed since the check above wins: no session from the old
        // password.
        let pair = self.start_session(&owner_id, &stored_hash).await?.ok_or(UserError::InvalidCredentials)?;
        if self.hasher.needs_rehash(&stored_hash) {
            match self.hasher.hash(password).await {
                Ok(hash) => {
                    let now_ms = self.now_ms();
                    if let Err(error) = self.repo.set_password_hash(&owner_id, &stored_hash, &hash, now_ms).await {
                        tracing::warn!(%error, "cannot store the re-hashed password");
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot re-hash the password with the current parameters"),
            }
        }
        Ok(pair)
    }

    /// ChangePassword for the signed-in `owner_id` from `client`: checks the current password
    /// (throttled like a sign-in, so a stolen access token gives no unlimited guesses at it),
    /// stores the new one and ends every session with its access tokens — someone who knew the
    /// old password must not stay signed in. The caller gets a new session.
    pub async fn change_password(
        &self,
        owner_id: &str,
        current: String,
        new: String,
        client: Option<IpAddr>,
    ) -> Result<TokenPair, UserError> {
        let mut missing = Vec::new();
        if current.is_empty() {
            missing.push(FieldViolation::new("currentPassword", "the current password is required"));
        }
        if new.is_empty() {
            missing.push(FieldViolation::new("newPassword", "the new password is required"));
        }
        if !missing.is_empty() {
            return Err(UserError::invalid(missing));
        }
        let Some((email, stored_hash)) = self.repo.owner_credentials(owner_id).await? else {
            return Err(UserError::OwnerNotFound);
        };
        if let Err(reason) = crate::domain::password::check(&new, &email) {
            return Err(UserError::field("newPassword", reason));
        }
        if new == current {
            return Err(UserError::field("newPassword", "must differ from the current password"));
        }
        let attempt = self.admit_attempt(&email, client).await?;
        let matched =
            current.len() <= MAX_PASSWORD_BYTES && self.hasher.verify(current, Some(stored_hash.clone())).await?;
        if !matched {
            attempt.failed();
            return Err(UserError::InvalidArgument {
                violations: vec![FieldViolation::new("currentPassword", "the current password is incorrect")],
                reason: REASON_WRONG_PASSWORD,
            });
        }
        self.attempt_succeeded(&email, &attempt).await;
        let hash = self.hasher.hash(new).await?;
        let now_ms = self.now_ms();
        let changed =
            self.repo.change_password(owner_id, &stored_hash, &hash, now_ms, ms(self.revocation_ttl())).await?;
        let Some((revoked, cutoff_s)) = changed else {
            // Another change committed since the check: the password checked is no longer current.
            return Err(UserError::InvalidArgument {
                violations: vec![FieldViolation::new("currentPassword", "the password was changed meanwhile")],
                reason: REASON_WRONG_PASSWORD,
            });
        };
        self.owners.invalidate(&super::profile::owner_key(owner_id)).await;
        tracing::info!(%owner_id, revoked, issued_before = cutoff_s,
            "password changed: every session and access token revoked");
        self.start_session(owner_id, &hash).await?.ok_or(UserError::InvalidCredentials)
    }

    /// Passes a password attempt for `email` from `client` through the throttle, counting it as a
    /// failure until [`UserCore::attempt_succeeded`] says otherwise.
    async fn admit_attempt(&self, email: &str, client: Option<IpAddr>) -> Result<Attempt, UserError> {
        let client = login_throttle::client_key(client);
        let policy = self.config.login;
        let now_ms = self.now_ms();
        let admission = self
            .repo
            .update_login_throttle(email, &client, |address, account| {
                let admission = login_throttle::admit(&policy, address, account, now_ms);
                let update = match admission {
                    Admission::Admit { address, account } => Some((address, account)),
                    Admission::Refuse { .. } => None,
                };
                (admission, update)
            })
            .await?;
        match admission {
            Admission::Refuse { wait, limit } => {
                // Debug, not info: an attacker hammering a locked account must not flood the logs
                // (the lock itself was logged at warn when it began).
                tracing::debug!(%client, ?limit, ?wait, "password attempt refused by the throttle");
                Err(UserError::TooManyAttempts { retry_after: wait })
            }
            Admission::Admit { address, account } => Ok(Attempt { client, address, account, now_ms, policy }),
        }
    }

    /// Resets the attempt's address counter and un-counts it for the account.
    async fn attempt_succeeded(&self, email: &str, attempt: &Attempt) {
        let policy = attempt.policy;
        let reset = self
            .repo
            .update_login_throttle(email, &attempt.client, |_, account| {
                ((), Some(login_throttle::succeeded(&policy, account, self.now_ms())))
            })
            .await;
        if let Err(error) = reset {
            tracing::warn!(%error, "cannot reset the sign-in throttle after a correct password");
        }
    }

    /// A new session of `owner_id` with its token pair, unless the password hash is no longer
    /// `verified_hash` (`None`).
    async fn start_session(&self, owner_id: &str, verified_hash: &str) -> Result<Option<TokenPair>, UserError> {
        let session_id = uuid_v4();
        let (refresh, refresh_hash) = refresh_token();
        let refresh_ttl = self.config.tokens.refresh_ttl;
        let now_ms = self.now_ms();
        let created = self
            .repo
            .create_session(owner_id, verified_hash, &session_id, &refresh_hash, now_ms, ms(refresh_ttl))
            .await?;
        let Some(issued_ms) = created else { return Ok(None) };
        let access_token = self.keys.issue(owner_id, &session_id, from_millis(issued_ms))?;
        tracing::info!(%owner_id, %session_id, "owner signed in");
        let access_ttl = self.config.tokens.access_ttl;
        Ok(Some(TokenPair { access_token, access_ttl, refresh_token: refresh, refresh_ttl }))
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
        let now_ms = self.now_ms();
        let (next, next_hash) = refresh_token();
        let refresh_ttl = self.config.tokens.refresh_ttl;
        let rotation = self
            .repo
            .rotate_refresh(
                &refresh_token_hash(presented),
                &next_hash,
                now_ms,
                ms(refresh_ttl),
                ms(self.revocation_ttl()),
            )
            .await?;
        match rotation {
            Rotation::Rotated { owner_id, family_id, issued_at_ms } => {
                let access_token = self.keys.issue(&owner_id, &family_id, from_millis(issued_at_ms))?;
                Ok(TokenPair {
                    access_token,
                    access_ttl: self.config.tokens.access_ttl,
                    refresh_token: next,
                    refresh_ttl,
                })
            }
            Rotation::Reused { owner_id, family_id } => {
                tracing::warn!(%owner_id, session_id = %family_id,
                    "a rotated refresh token was presented again: session and its access tokens revoked \
                     (possible token theft)");
                Err(UserError::RefreshTokenReused)
            }
            Rotation::Unknown | Rotation::Expired | Rotation::Revoked => Err(UserError::InvalidRefreshToken),
        }
    }

    /// Logout: revokes the session of `refresh_token` (if it is the caller's; anything else is a
    /// quiet success, so the call is idempotent) or every session of the caller — with their
    /// access tokens, which the edge refuses within its revocation poll period.
    pub async fn logout(&self, owner_id: &str, refresh_token: &str, all_sessions: bool) -> Result<(), UserError> {
        let now_ms = self.now_ms();
        let revocation_ttl = ms(self.revocation_ttl());
        if all_sessions {
            let (revoked, cutoff_s) = self.repo.revoke_all_sessions(owner_id, now_ms, revocation_ttl).await?;
            tracing::info!(%owner_id, revoked, issued_before = cutoff_s,
                "owner signed out everywhere: sessions and access tokens revoked");
            return Ok(());
        }
        let token = refresh_token.trim();
        if token.is_empty() {
            return Err(UserError::field("refreshToken", "give the refresh token to revoke, or set allSessions"));
        }
        if token.len() <= MAX_REFRESH_TOKEN_LEN {
            let revoked =
                self.repo.revoke_session_of_token(owner_id, &refresh_token_hash(token), now_ms, revocation_ttl).await?;
            tracing::info!(%owner_id, revoked, "owner signed out");
        }
        Ok(())
    }
}

/// `ErrorInfo.reason` when ChangePassword's current password is wrong.
pub const REASON_WRONG_PASSWORD: &str = "CURRENT_PASSWORD_INCORRECT";

/// An admitted password attempt: counted as a failure until it succeeds.
struct Attempt {
    client: String,
    address: AddressCounter,
    account: AccountCounter,
    now_ms: i64,
    policy: LoginThrottle,
}

impl Attempt {
    /// Logs when this failure (already counted) started a lock or a delay.
    fn failed(&self) {
        if self.address.locked_until_ms > self.now_ms {
            tracing::warn!(client = %self.client, failures = self.address.failures,
                lockout = ?self.policy.address_lockout,
                "password attempts from this address locked for the account after repeated failures");
        }
        if self.account.next_attempt_ms > self.now_ms {
            tracing::warn!(
                failures = self.account.failures,
                delay_ms = self.account.next_attempt_ms - self.now_ms,
                "password attempts for the account slowed down after repeated failures across addresses"
            );
        }
    }
}
