//! The database tier of the NTS verification cache.

use kem_kit::store::query;

use super::{Repository, RepositoryError, Result, col};
use crate::domain::Verification;

impl Repository {
    /// The stored answer for `business_number`, if it has not expired at `now_ms`.
    pub async fn fresh_verification(&self, business_number: &str, now_ms: i64) -> Result<Option<Verification>> {
        let row = query("SELECT report FROM business_verifications WHERE business_number = $1 AND expires_at > $2")
            .bind(business_number)
            .bind(now_ms)
            .fetch_optional(&self.store)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let report: String = col(&row, "report")?;
        serde_json::from_str(&report)
            .map(Some)
            .map_err(|e| RepositoryError::Corrupt { what: "business verification", reason: e.to_string() })
    }

    /// Stores (or replaces) the answer for its number until `expires_ms`.
    pub async fn store_verification(&self, verification: &Verification, expires_ms: i64) -> Result<()> {
        let report = serde_json::to_string(verification)
            .map_err(|e| RepositoryError::Corrupt { what: "business verification", reason: e.to_string() })?;
        query(
            "INSERT INTO business_verifications (business_number, report, verified_at, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (business_number) DO UPDATE SET \
             report = excluded.report, verified_at = excluded.verified_at, expires_at = excluded.expires_at",
        )
        .bind(verification.business_number.as_str())
        .bind(report)
        .bind(verification.verified_at_ms)
        .bind(expires_ms)
        .execute(&self.store)
        .await?;
        Ok(())
    }

    /// Deletes answers that expired before `before_ms`.
    pub async fn purge_verifications(&self, before_ms: i64) -> Result<u64> {
        Ok(query("DELETE FROM business_verifications WHERE expires_at < $1")
            .bind(before_ms)
            .execute(&self.store)
            .await?)
    }
}
