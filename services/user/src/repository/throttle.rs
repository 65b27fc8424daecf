//! Failed sign-in counters per email, shared by every replica through the database.

use kem_kit::store::query;

use super::{Repository, Result, col};

impl Repository {
    /// Until when (ms) sign-in for `email` is locked, if it is locked at `now_ms`.
    pub async fn locked_until(&self, email: &str, now_ms: i64) -> Result<Option<i64>> {
        let row = query("SELECT locked_until FROM login_failures WHERE email = $1 AND locked_until > $2")
            .bind(email)
            .bind(now_ms)
            .fetch_optional(&self.store)
            .await?;
        row.map(|row| col(&row, "locked_until")).transpose()
    }

    /// Counts a failed sign-in for `email`. Failures are counted in a window starting at the
    /// first failure; the `max_failures`-th failure within it locks the email until
    /// `now + lockout` (returned) and starts a fresh count.
    pub async fn record_login_failure(
        &self,
        email: &str,
        now_ms: i64,
        window_ms: i64,
        max_failures: u32,
        lockout_ms: i64,
    ) -> Result<Option<i64>> {
        let mut tx = self.store.begin().await?;
        // One statement, so concurrent failures are all counted (the row lock / SQLite's writer
        // lock serializes them).
        let row = query(
            "INSERT INTO login_failures (email, failures, window_start, locked_until) VALUES ($1, 1, $2, 0) \
             ON CONFLICT (email) DO UPDATE SET \
             failures = CASE WHEN login_failures.window_start <= $3 THEN 1 ELSE login_failures.failures + 1 END, \
             window_start = CASE WHEN login_failures.window_start <= $3 THEN $2 ELSE login_failures.window_start END \
             RETURNING failures",
        )
        .bind(email)
        .bind(now_ms)
        .bind(now_ms.saturating_sub(window_ms))
        .fetch_one(&mut tx)
        .await?;
        let failures: i32 = col(&row, "failures")?;
        let locked = if u32::try_from(failures).unwrap_or(0) >= max_failures {
            let until = now_ms.saturating_add(lockout_ms);
            query("UPDATE login_failures SET locked_until = $2, failures = 0, window_start = $3 WHERE email = $1")
                .bind(email)
                .bind(until)
                .bind(now_ms)
                .execute(&mut tx)
                .await?;
            Some(until)
        } else {
            None
        };
        tx.commit().await?;
        Ok(locked)
    }

    /// Forgets the failures of `email` (after a successful sign-in).
    pub async fn clear_login_failures(&self, email: &str) -> Result<()> {
        query("DELETE FROM login_failures WHERE email = $1").bind(email).execute(&self.store).await?;
        Ok(())
    }

    /// Deletes counters whose window and lock both ended before `before_ms`.
    pub async fn purge_login_failures(&self, before_ms: i64) -> Result<u64> {
        Ok(query("DELETE FROM login_failures WHERE window_start < $1 AND locked_until < $1")
            .bind(before_ms)
            .execute(&self.store)
            .await?)
    }
}
