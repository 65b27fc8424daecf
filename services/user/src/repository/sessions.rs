//! Refresh-token families (sign-in sessions) and their tokens.

use kem_kit::store::query;

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
    /// Starts a session: a new family with its first token.
    pub async fn create_session(
        &self,
        owner_id: &str,
        family_id: &str,
        token_hash: &str,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<()> {
        let mut tx = self.store.begin().await?;
        query("INSERT INTO refresh_families (id, owner_id, created_at) VALUES ($1, $2, $3)")
            .bind(family_id)
            .bind(owner_id)
            .bind(now_ms)
            .execute(&mut tx)
            .await?;
        insert_token(&mut tx, token_hash, family_id, owner_id, now_ms, expires_ms).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Consumes the token hashed `presented` and, if it was live, stores `next` in its family —
    /// atomically, so of two concurrent presentations of one token exactly one rotates and the
    /// other is reuse. Reuse revokes the family.
    pub async fn rotate_refresh(&self, presented: &str, next: &str, now_ms: i64, expires_ms: i64) -> Result<Rotation> {
        let mut tx = self.store.begin().await?;
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
            insert_token(&mut tx, next, &family_id, &owner_id, now_ms, expires_ms).await?;
            tx.commit().await?;
            return Ok(Rotation::Rotated { owner_id, family_id });
        }
        let used_at: Option<i64> = col(&row, "used_at")?;
        let revoked_at: Option<i64> = col(&row, "revoked_at")?;
        let expires_at: i64 = col(&row, "expires_at")?;
        if used_at.is_some() {
            revoke(&mut tx, &family_id, now_ms, "refresh token reused").await?;
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

    /// Revokes the family of the token hashed `token_hash` if it belongs to `owner_id`;
    /// `false` when there is no such token of that owner (already gone, or someone else's).
    pub async fn revoke_session_of_token(&self, owner_id: &str, token_hash: &str, now_ms: i64) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        let row = query("SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND owner_id = $2")
            .bind(token_hash)
            .bind(owner_id)
            .fetch_optional(&mut tx)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let family_id: String = col(&row, "family_id")?;
        revoke(&mut tx, &family_id, now_ms, "logout").await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes every live session of `owner_id`; returns how many.
    pub async fn revoke_all_sessions(&self, owner_id: &str, now_ms: i64) -> Result<u64> {
        Ok(query(
            "UPDATE refresh_families SET revoked_at = $2, revoke_reason = 'logout (all sessions)' \
             WHERE owner_id = $1 AND revoked_at IS NULL",
        )
        .bind(owner_id)
        .bind(now_ms)
        .execute(&self.store)
        .await?)
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
