//! Owner accounts.

use kem_kit::store::{Row, query};

use super::{Repository, RepositoryError, Result, col};
use crate::domain::{NewOwner, Owner, ProfileChanges, Verification};

/// Columns of an [`Owner`] (everything but the password hash).
const OWNER_COLUMNS: &str = "SELECT id, email, name, phone, store_name, business_category, region, region_code, \
                             business_number, verification, created_at, updated_at FROM owners";

impl Repository {
    /// Inserts a new owner; `false` when the email is already registered (concurrent
    /// registrations of one address: exactly one gets `true`).
    pub async fn insert_owner(&self, new: &NewOwner) -> Result<bool> {
        let o = &new.owner;
        let verification = verification_json(&o.verification)?;
        let inserted = query(
            "INSERT INTO owners (id, email, password_hash, name, phone, store_name, business_category, region, \
             region_code, business_number, verification, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (email) DO NOTHING",
        )
        .bind(o.id.as_str())
        .bind(o.email.as_str())
        .bind(new.password_hash.as_str())
        .bind(o.name.as_str())
        .bind(o.phone.as_str())
        .bind(o.store_name.as_str())
        .bind(o.business_category)
        .bind(o.region.as_str())
        .bind(o.region_code.as_str())
        .bind(o.business_number.as_str())
        .bind(verification)
        .bind(o.created_at_ms)
        .bind(o.updated_at_ms)
        .execute(&self.store)
        .await?;
        Ok(inserted == 1)
    }

    /// Whether `email` (normalized) is registered.
    pub async fn email_registered(&self, email: &str) -> Result<bool> {
        Ok(query("SELECT 1 AS found FROM owners WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.store)
            .await?
            .is_some())
    }

    /// The owner with `id`.
    pub async fn owner(&self, id: &str) -> Result<Option<Owner>> {
        let sql = kem_kit::store::AssertSqlSafe(format!("{OWNER_COLUMNS} WHERE id = $1"));
        query(sql).bind(id).fetch_optional(&self.store).await?.map(|row| owner(&row)).transpose()
    }

    /// The id and password hash of the account with `email` (normalized).
    pub async fn credentials(&self, email: &str) -> Result<Option<(String, String)>> {
        let row = query("SELECT id, password_hash FROM owners WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.store)
            .await?;
        row.map(|row| Ok((col(&row, "id")?, col(&row, "password_hash")?))).transpose()
    }

    /// The email and password hash of the owner with `id`.
    pub async fn owner_credentials(&self, id: &str) -> Result<Option<(String, String)>> {
        let row =
            query("SELECT email, password_hash FROM owners WHERE id = $1").bind(id).fetch_optional(&self.store).await?;
        row.map(|row| Ok((col(&row, "email")?, col(&row, "password_hash")?))).transpose()
    }

    /// Replaces the password hash `old` by `hash` (the same password re-hashed with new
    /// parameters) — only if it is still `old`, so a re-hash racing a password change can never
    /// bring the old password back.
    pub async fn set_password_hash(&self, id: &str, old: &str, hash: &str, now_ms: i64) -> Result<()> {
        query("UPDATE owners SET password_hash = $3, updated_at = $4 WHERE id = $1 AND password_hash = $2")
            .bind(id)
            .bind(old)
            .bind(hash)
            .bind(now_ms)
            .execute(&self.store)
            .await?;
        Ok(())
    }

    /// Applies `changes` (only the fields set; the others keep their stored value, so concurrent
    /// updates of different fields do not undo each other); `false` when the owner is gone.
    ///
    /// A new email taken by another account (also by a concurrent change: the unique index
    /// decides) is [`ProfileUpdate::EmailTaken`].
    pub async fn update_profile(&self, id: &str, changes: &ProfileChanges, now_ms: i64) -> Result<ProfileUpdate> {
        if let Some(email) = &changes.email {
            let taken = query("SELECT 1 AS found FROM owners WHERE email = $1 AND id <> $2")
                .bind(email.clone())
                .bind(id.to_owned())
                .fetch_optional(&self.store)
                .await?;
            if taken.is_some() {
                return Ok(ProfileUpdate::EmailTaken);
            }
        }
        let updated = query(
            "UPDATE owners SET name = COALESCE($2, name), phone = COALESCE($3, phone), \
             store_name = COALESCE($4, store_name), business_category = COALESCE($5, business_category), \
             region = COALESCE($6, region), region_code = COALESCE($7, region_code), updated_at = $8, \
             email = COALESCE($9, email) WHERE id = $1",
        )
        .bind(id)
        .bind(changes.name.clone())
        .bind(changes.phone.clone())
        .bind(changes.store_name.clone())
        .bind(changes.business_category)
        .bind(changes.region.clone())
        .bind(changes.region_code.clone())
        .bind(now_ms)
        .bind(changes.email.clone())
        .execute(&self.store)
        .await;
        match updated {
            Ok(1) => Ok(ProfileUpdate::Updated),
            Ok(_) => Ok(ProfileUpdate::OwnerGone),
            Err(kem_kit::store::StoreError::Database { source: sqlx::Error::Database(db), .. })
                if db.is_unique_violation() =>
            {
                Ok(ProfileUpdate::EmailTaken)
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn verification_json(v: &Verification) -> Result<String> {
    serde_json::to_string(v).map_err(|e| RepositoryError::Corrupt { what: "verification", reason: e.to_string() })
}

fn owner(row: &Row) -> Result<Owner> {
    let verification: String = col(row, "verification")?;
    let verification = serde_json::from_str(&verification)
        .map_err(|e| RepositoryError::Corrupt { what: "owner verification", reason: e.to_string() })?;
    Ok(Owner {
        id: col(row, "id")?,
        email: col(row, "email")?,
        name: col(row, "name")?,
        phone: col(row, "phone")?,
        store_name: col(row, "store_name")?,
        business_category: col(row, "business_category")?,
        region: col(row, "region")?,
        region_code: col(row, "region_code")?,
        business_number: col(row, "business_number")?,
        verification,
        created_at_ms: col(row, "created_at")?,
        updated_at_ms: col(row, "updated_at")?,
    })
}

/// How an UpdateMe write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileUpdate {
    /// Written.
    Updated,
    /// The owner no longer exists.
    OwnerGone,
    /// The new email belongs to another account.
    EmailTaken,
}
