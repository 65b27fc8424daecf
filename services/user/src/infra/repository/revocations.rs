//! Access-token revocations: what the edge must refuse although the token's signature and expiry
//! are fine. Rows are written in the same transaction as the refresh-token change that causes
//! them (logout, logout everywhere, refresh-token reuse) and kept until every token they revoke
//! has expired.

use kem_kit::store::{Tx, query};

use super::{Repository, Result, col};

/// One revocation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRow {
    /// Whose tokens.
    pub owner_id: String,
    /// The revoked session (`sid` claim); empty for an owner-wide cut-off.
    pub session_id: String,
    /// Owner-wide rows: tokens with `iat` (Unix seconds) below this are revoked.
    pub issued_before_s: i64,
    /// When the row was last written (ms); the listing order.
    pub recorded_at_ms: i64,
    /// When the last token it revokes has expired (ms).
    pub expires_at_ms: i64,
}

/// Where a listing resumes: rows recorded at or after `recorded_at_ms`, or — within a page
/// boundary — strictly after the row (`recorded_at_ms`, `owner_id`, `session_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFrom {
    /// Every live row recorded at or after this instant (ms).
    RecordedSince(i64),
    /// Rows strictly after this one, in (recorded_at, owner_id, session_id) order.
    After {
        /// The last row's `recorded_at`.
        recorded_at_ms: i64,
        /// Its owner.
        owner_id: String,
        /// Its session.
        session_id: String,
    },
}

impl Repository {
    /// Live revocations (not expired at `now_ms`) from `from`, oldest first, at most `limit`.
    pub async fn revocations(&self, from: &ListFrom, now_ms: i64, limit: i64) -> Result<Vec<RevocationRow>> {
        let rows = match from {
            ListFrom::RecordedSince(since) => {
                query(
                    "SELECT owner_id, session_id, issued_before, recorded_at, expires_at FROM access_revocations \
                     WHERE recorded_at >= $1 AND expires_at > $2 ORDER BY recorded_at, owner_id, session_id LIMIT $3",
                )
                .bind(*since)
                .bind(now_ms)
                .bind(limit)
                .fetch_all(&self.store)
                .await?
            }
            ListFrom::After { recorded_at_ms, owner_id, session_id } => {
                // The expanded form of (recorded_at, owner_id, session_id) > ($1, $2, $3), which
                // both backends plan as a range on the recorded_at index.
                query(
                    "SELECT owner_id, session_id, issued_before, recorded_at, expires_at FROM access_revocations \
                     WHERE expires_at > $4 AND recorded_at >= $1 \
                     AND (recorded_at > $1 OR owner_id > $2 OR (owner_id = $2 AND session_id > $3)) \
                     ORDER BY recorded_at, owner_id, session_id LIMIT $5",
                )
                .bind(*recorded_at_ms)
                .bind(owner_id.as_str())
                .bind(session_id.as_str())
                .bind(now_ms)
                .bind(limit)
                .fetch_all(&self.store)
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(RevocationRow {
                    owner_id: col(row, "owner_id")?,
                    session_id: col(row, "session_id")?,
                    issued_before_s: col(row, "issued_before")?,
                    recorded_at_ms: col(row, "recorded_at")?,
                    expires_at_ms: col(row, "expires_at")?,
                })
            })
            .collect()
    }

    /// Deletes revocations whose tokens have all expired by `now_ms`.
    pub async fn purge_revocations(&self, now_ms: i64) -> Result<u64> {
        Ok(query("DELETE FROM access_revocations WHERE expires_at <= $1").bind(now_ms).execute(&self.store).await?)
    }
}

/// The owner-wide cut-off of `owner_id` (Unix seconds), if one is live: tokens minted from now on
/// must not be issued before it, or the cut-off would revoke them too.
pub(super) async fn issue_floor(tx: &mut Tx, owner_id: &str, now_ms: i64) -> Result<Option<i64>> {
    let row = query(
        "SELECT issued_before FROM access_revocations WHERE owner_id = $1 AND session_id = '' AND expires_at > $2",
    )
    .bind(owner_id)
    .bind(now_ms)
    .fetch_optional(tx)
    .await?;
    row.map(|row| col(&row, "issued_before")).transpose()
}

/// Revokes every token of session `session_id`.
pub(super) async fn revoke_session_tokens(
    tx: &mut Tx,
    owner_id: &str,
    session_id: &str,
    now_ms: i64,
    expires_ms: i64,
) -> Result<()> {
    upsert(tx, owner_id, session_id, 0, now_ms, expires_ms).await
}

/// Revokes every token of `owner_id` issued before `issued_before_s` (never lowering an earlier
/// cut-off).
pub(super) async fn revoke_owner_tokens(
    tx: &mut Tx,
    owner_id: &str,
    issued_before_s: i64,
    now_ms: i64,
    expires_ms: i64,
) -> Result<()> {
    upsert(tx, owner_id, "", issued_before_s, now_ms, expires_ms).await
}

async fn upsert(
    tx: &mut Tx,
    owner_id: &str,
    session_id: &str,
    issued_before_s: i64,
    now_ms: i64,
    expires_ms: i64,
) -> Result<()> {
    // CASE rather than GREATEST/MAX: the one spelling of "the larger" both backends accept.
    query(
        "INSERT INTO access_revocations (owner_id, session_id, issued_before, recorded_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (owner_id, session_id) DO UPDATE SET \
         issued_before = CASE WHEN excluded.issued_before > access_revocations.issued_before \
             THEN excluded.issued_before ELSE access_revocations.issued_before END, \
         expires_at = CASE WHEN excluded.expires_at > access_revocations.expires_at \
             THEN excluded.expires_at ELSE access_revocations.expires_at END, \
         recorded_at = excluded.recorded_at",
    )
    .bind(owner_id)
    .bind(session_id)
    .bind(issued_before_s)
    .bind(now_ms)
    .bind(expires_ms)
    .execute(tx)
    .await?;
    Ok(())
}
