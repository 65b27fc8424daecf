//! Refresh-token families (sign-in sessions) and their tokens, and the access-token revocations
//! their ends cause (written in the same transaction, so a revoked session never leaves live
//! access tokens behind).
//!
//! # Races with "sign out everywhere"
//!
//! Logout from all sessions revokes every family of the owner and records an owner-wide cut-off:
//! access tokens with `iat` below it are revoked. The cut-off is one second past the latest token
//! issue the transaction can see, and a rotation locks its family row first, so a refresh either
//! commits before the logout (its token is below the cut-off) or finds its family revoked. A
//! token minted later is issued no earlier than the cut-off ([`Repository::create_session`],
//! [`Repository::rotate_refresh`]), so a sign-in right after the logout is not revoked with it.

use kem_kit::store::query;

use super::revocations::{issue_floor, revoke_owner_tokens, revoke_session_tokens};
use super::{Repository, Result, col};

/// What presenting a refresh token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was live: it is now used, and the new token of the same family is stored.
    Rotated {
        /// Whose session.
        owner_id: String,
        /// The family (session id).
        family_id: String,
        /// When the new tokens count as issued (ms): now, or the owner's revocation cut-off if
        /// that is later.
        issued_at_ms: i64,
    },
    /// No such token.
    Unknown,
    /// The token expired.
    Expired,
    /// The token's family was revoked (logout, or reuse detected earlier).
    Revoked,
    /// The token had already been rotated: its family is now revoked.
    Reused {
        /// Whose session.
        owner_id: String,
        /// The revoked family.
        family_id: String,
    },
}

impl Repository {
    /// Starts a session: a new family with its first token, living `ttl_ms` — unless the owner's
    /// password hash is no longer `verified_hash` (a password change won the race against this
    /// sign-in: `None`). Returns when its tokens count as issued (ms): `now_ms`, or the owner's
    /// revocation cut-off if later.
    pub async fn create_session(
        &self,
        owner_id: &str,
        verified_hash: &str,
        family_id: &str,
        token_hash: &str,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.store.begin().await?;
        let current =
            query("SELECT password_hash FROM owners WHERE id = $1").bind(owner_id).fetch_optional(&mut tx).await?;
        let current: Option<String> = current.map(|row| col(&row, "password_hash")).transpose()?;
        if current.as_deref() != Some(verified_hash) {
            return Ok(None);
        }
        let issued_ms = issue_time(&mut tx, owner_id, now_ms).await?;
        query("INSERT INTO refresh_families (id, owner_id, created_at) VALUES ($1, $2, $3)")
            .bind(family_id)
            .bind(owner_id)
            .bind(now_ms)
            .execute(&mut tx)
            .await?;
        insert_token(&mut tx, token_hash, family_id, owner_id, issued_ms, issued_ms.saturating_add(ttl_ms)).await?;
        tx.commit().await?;
        Ok(Some(issued_ms))
    }

    /// Consumes the token hashed `presented` and, if it was live, stores `next` (living `ttl_ms`)
    /// in its family — atomically, so of two concurrent presentations of one token exactly one
    /// rotates and the other is reuse. Reuse revokes the family and its access tokens (the
    /// revocation kept for `revocation_ttl_ms`).
    pub async fn rotate_refresh(
        &self,
        presented: &str,
        next: &str,
        now_ms: i64,
        ttl_ms: i64,
        revocation_ttl_ms: i64,
    ) -> Result<Rotation> {
        let mut tx = self.store.begin().await?;
        // Lock the family first: a concurrent logout (one session or all) then either commits
        // before this rotation (which finds the family revoked) or waits for it (and sees the new
        // token when it computes its cut-off).
        query(
            "UPDATE refresh_families SET revoked_at = revoked_at \
             WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
        )
        .bind(presented)
        .execute(&mut tx)
        .await?;
        let consumed = query(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
             AND family_id IN (SELECT id FROM refresh_families WHERE revoked_at IS NULL)",
        )
        .bind(presented)
        .bind(now_ms)
        .execute(&mut tx)
        .await?;
        let row = query(
            "SELECT t.family_id, t.owner_id, t.used_at, t.expires_at, f.revoked_at FROM refresh_tokens t \
             JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = $1",
        )
        .bind(presented)
        .fetch_optional(&mut tx)
        .await?;
        let Some(row) = row else { return Ok(Rotation::Unknown) };
        let family_id: String = col(&row, "family_id")?;
        let owner_id: String = col(&row, "owner_id")?;
        if consumed == 1 {
            let issued_at_ms = issue_time(&mut tx, &owner_id, now_ms).await?;
            insert_token(&mut tx, next, &family_id, &owner_id, issued_at_ms, issued_at_ms.saturating_add(ttl_ms))
                .await?;
            tx.commit().await?;
            return Ok(Rotation::Rotated { owner_id, family_id, issued_at_ms });
        }
        let used_at: Option<i64> = col(&row, "used_at")?;
        let revoked_at: Option<i64> = col(&row, "revoked_at")?;
        let expires_at: i64 = col(&row, "expires_at")?;
        if used_at.is_some() {
            revoke(&mut tx, &family_id, now_ms, "refresh token reused").await?;
            // Whoever holds the stolen token may also hold its access tokens.
            revoke_session_tokens(&mut tx, &owner_id, &family_id, now_ms, now_ms.saturating_add(revocation_ttl_ms))
                .await?;
            tx.commit().await?;
            return Ok(Rotation::Reused { owner_id, family_id });
        }
        Ok(if revoked_at.is_some() {
            Rotation::Revoked
        } else if expires_at <= now_ms {
            Rotation::Expired
        } else {
            // Consumed by nobody yet not live: cannot happen within one transaction; treat as unknown.
            Rotation::Unknown
        })
    }

    /// Revokes the family of the token hashed `token_hash` and the family's access tokens (the
    /// revocation kept for `revocation_ttl_ms`) if it belongs to `owner_id`; `false` when there
    /// is no such token of that owner (already gone, or someone else's).
    pub async fn revoke_session_of_token(
        &self,
        owner_id: &str,
        token_hash: &str,
        now_ms: i64,
        revocation_ttl_ms: i64,
    ) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let row = query("SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND owner_id = $2")
            .bind(token_hash)
            .bind(owner_id)
            .fetch_optional(&mut tx)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let family_id: String = col(&row, "family_id")?;
        revoke(&mut tx, &family_id, now_ms, "logout").await?;
        revoke_session_tokens(&mut tx, owner_id, &family_id, now_ms, now_ms.saturating_add(revocation_ttl_ms)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes every live session of `owner_id` and every access token issued so far (an
    /// owner-wide cut-off kept until `revocation_ttl_ms` after it). Returns how many sessions
    /// were revoked and the cut-off (Unix seconds: tokens with a lower `iat` are revoked).
    pub async fn revoke_all_sessions(&self, owner_id: &str, now_ms: i64, revocation_ttl_ms: i64) -> Result<(u64, i64)> {
        let mut tx = self.store.begin().await?;
        let revoked = revoke_everything(&mut tx, owner_id, now_ms, revocation_ttl_ms, "logout (all sessions)").await?;
        tx.commit().await?;
        Ok(revoked)
    }

    /// Replaces the password hash `old` of `owner_id` by `password_hash` and, in the same
    /// transaction, ends every session and access token as [`Repository::revoke_all_sessions`]
    /// does (someone who learnt the old password must not stay signed in). `None` when the hash
    /// is no longer `old` (another change came first) or there is no such owner.
    pub async fn change_password(
        &self,
        owner_id: &str,
        old: &str,
        password_hash: &str,
        now_ms: i64,
        revocation_ttl_ms: i64,
    ) -> Result<Option<(u64, i64)>> {
        let mut tx = self.store.begin().await?;
        let updated =
            query("UPDATE owners SET password_hash = $3, updated_at = $4 WHERE id = $1 AND password_hash = $2")
                .bind(owner_id)
                .bind(old)
                .bind(password_hash)
                .bind(now_ms)
                .execute(&mut tx)
                .await?;
        if updated == 0 {
            return Ok(None);
        }
        let revoked = revoke_everything(&mut tx, owner_id, now_ms, revocation_ttl_ms, "password changed").await?;
        tx.commit().await?;
        Ok(Some(revoked))
    }

    /// Whether the session `family_id` is live (not revoked).
    pub async fn session_live(&self, family_id: &str) -> Result<bool> {
        let row = query("SELECT revoked_at FROM refresh_families WHERE id = $1")
            .bind(family_id)
            .fetch_optional(&self.store)
            .await?;
        Ok(match row {
            Some(row) => col::<Option<i64>>(&row, "revoked_at")?.is_none(),
            None => false,
        })
    }

    /// Deletes tokens expired before `before_ms` and the families left without tokens.
    pub async fn purge_sessions(&self, before_ms: i64) -> Result<u64> {
        let tokens =
            query("DELETE FROM refresh_tokens WHERE expires_at < $1").bind(before_ms).execute(&self.store).await?;
        let families = query(
            "DELETE FROM refresh_families WHERE created_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = refresh_families.id)",
        )
        .bind(before_ms)
        .execute(&self.store)
        .await?;
        Ok(tokens + families)
    }
}

/// Revokes every live family of `owner_id` and records the owner-wide access-token cut-off.
async fn revoke_everything(
    tx: &mut kem_kit::store::Tx,
    owner_id: &str,
    now_ms: i64,
    revocation_ttl_ms: i64,
    reason: &str,
) -> Result<(u64, i64)> {
    let revoked = query(
        "UPDATE refresh_families SET revoked_at = $2, revoke_reason = $3 WHERE owner_id = $1 AND revoked_at IS NULL",
    )
    .bind(owner_id)
    .bind(now_ms)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    // Access tokens are issued with their refresh token (same instant), so the latest issue
    // recorded here bounds every `iat` minted so far, including ones minted a moment ahead of this
    // replica's clock (another replica's, or one moved up to an earlier cut-off).
    let row = query("SELECT MAX(issued_at) AS latest FROM refresh_tokens WHERE owner_id = $1")
        .bind(owner_id)
        .fetch_one(&mut *tx)
        .await?;
    let latest: Option<i64> = col(&row, "latest")?;
    let cutoff_s = latest.unwrap_or(now_ms).max(now_ms).div_euclid(1000).saturating_add(1);
    let expires_ms = cutoff_s.saturating_mul(1000).saturating_add(revocation_ttl_ms);
    revoke_owner_tokens(tx, owner_id, cutoff_s, now_ms, expires_ms).await?;
    Ok((revoked, cutoff_s))
}

/// When tokens minted now for `owner_id` count as issued (ms): not before the owner's live
/// cut-off, or the cut-off would revoke them the moment they exist.
async fn issue_time(tx: &mut kem_kit::store::Tx, owner_id: &str, now_ms: i64) -> Result<i64> {
    let floor_s = issue_floor(tx, owner_id, now_ms).await?;
    Ok(floor_s.map_or(now_ms, |floor| now_ms.max(floor.saturating_mul(1000))))
}

async fn insert_token(
    tx: &mut kem_kit::store::Tx,
    token_hash: &str,
    family_id: &str,
    owner_id: &str,
    now_ms: i64,
    expires_ms: i64,
) -> Result<()> {
    query(
        "INSERT INTO refresh_tokens (token_hash, family_id, owner_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(family_id)
    .bind(owner_id)
    .bind(now_ms)
    .bind(expires_ms)
    .execute(tx)
    .await?;
    Ok(())
}

async fn revoke(tx: &mut kem_kit::store::Tx, family_id: &str, now_ms: i64, reason: &str) -> Result<()> {
    query("UPDATE refresh_families SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL")
        .bind(family_id)
        .bind(now_ms)
        .bind(reason)
        .execute(tx)
        .await?;
    Ok(())
}
