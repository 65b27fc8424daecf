//! Access-token signing keys, shared by the replicas.

use kem_kit::store::{Row, query};

use super::{Repository, Result, col};

/// One stored key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// Key id.
    pub kid: String,
    /// PKCS#8 PEM, `None` for a key whose private half lives in a file.
    pub private_pem: Option<String>,
    /// Public JWK (JSON).
    pub public_jwk: String,
    /// When it was created.
    pub created_at_ms: i64,
    /// Set once rotated out: published until then.
    pub retire_after_ms: Option<i64>,
}

/// The keys to publish: the current one and the rotated-out ones not yet retired.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    /// The signing key, if one was installed.
    pub current: Option<KeyRow>,
    /// Earlier keys still published, newest first.
    pub previous: Vec<KeyRow>,
}

const KEY_COLUMNS: &str = "k.kid, k.private_pem, k.public_jwk, k.created_at, k.retire_after";

impl Repository {
    /// The current key and the unretired previous ones as of `now_ms`.
    pub async fn key_set(&self, now_ms: i64) -> Result<KeySet> {
        let sql = kem_kit::store::AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS}, CASE WHEN c.kid IS NULL THEN 0 ELSE 1 END AS is_current \
             FROM signing_keys k LEFT JOIN current_signing_key c ON c.kid = k.kid \
             WHERE c.kid IS NOT NULL OR k.retire_after > $1 ORDER BY k.created_at DESC, k.kid"
        ));
        let rows = query(sql).bind(now_ms).fetch_all(&self.store).await?;
        let mut set = KeySet::default();
        for row in rows {
            let is_current: i32 = col(&row, "is_current")?;
            let key = key_row(&row)?;
            if is_current == 1 {
                set.current = Some(key);
            } else {
                set.previous.push(key);
            }
        }
        Ok(set)
    }

    /// Installs `key` as the first current key; `false` (nothing written) when another replica
    /// installed one first.
    pub async fn install_first_key(&self, key: &KeyRow) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        insert_key(&mut tx, key).await?;
        let claimed = query("INSERT INTO current_signing_key (id, kid) VALUES (1, $1) ON CONFLICT (id) DO NOTHING")
            .bind(key.kid.as_str())
            .execute(&mut tx)
            .await?;
        if claimed != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Makes `next` current if `expected_kid` still is (compare-and-swap); the replaced key stays
    /// published until `retire_after_ms`. `false` when another replica changed the key first.
    pub async fn swap_current_key(&self, expected_kid: &str, next: &KeyRow, retire_after_ms: i64) -> Result<bool> {
        let mut tx = self.store.begin().await?;
        insert_key(&mut tx, next).await?;
        let swapped = query("UPDATE current_signing_key SET kid = $2 WHERE id = 1 AND kid = $1")
            .bind(expected_kid)
            .bind(next.kid.as_str())
            .execute(&mut tx)
            .await?;
        if swapped != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        query("UPDATE signing_keys SET retire_after = $2 WHERE kid = $1")
            .bind(expected_kid)
            .bind(retire_after_ms)
            .execute(&mut tx)
            .await?;
        // A key adopted again (e.g. a file key restored) is current, not retiring.
        query("UPDATE signing_keys SET retire_after = NULL WHERE kid = $1")
            .bind(next.kid.as_str())
            .execute(&mut tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes keys retired before `before_ms` (never the current one).
    pub async fn delete_retired_keys(&self, before_ms: i64) -> Result<u64> {
        Ok(query(
            "DELETE FROM signing_keys WHERE retire_after IS NOT NULL AND retire_after < $1 \
             AND kid NOT IN (SELECT kid FROM current_signing_key)",
        )
        .bind(before_ms)
        .execute(&self.store)
        .await?)
    }
}

async fn insert_key(tx: &mut kem_kit::store::Tx, key: &KeyRow) -> Result<()> {
    query(
        "INSERT INTO signing_keys (kid, private_pem, public_jwk, created_at, retire_after) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kid) DO NOTHING",
    )
    .bind(key.kid.as_str())
    .bind(key.private_pem.clone())
    .bind(key.public_jwk.as_str())
    .bind(key.created_at_ms)
    .bind(key.retire_after_ms)
    .execute(tx)
    .await?;
    Ok(())
}

fn key_row(row: &Row) -> Result<KeyRow> {
    Ok(KeyRow {
        kid: col(row, "kid")?,
        private_pem: col(row, "private_pem")?,
        public_jwk: col(row, "public_jwk")?,
        created_at_ms: col(row, "created_at")?,
        retire_after_ms: col(row, "retire_after")?,
    })
}
