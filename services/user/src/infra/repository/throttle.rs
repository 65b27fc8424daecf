//! Sign-in throttle counters (see [`crate::domain::login_throttle`]), shared by every replica
//! through the database.
//!
//! Why the database and not the cache: the counters must hold across replicas and survive a
//! cache flush or a Redis outage (cache failures degrade, and a throttle that resets whenever the
//! cache hiccups is one an attacker can reset), and every decision must be atomic with its
//! update — which PostgreSQL row locks and SQLite's single writer give on both backends.
//!
//! Each call is one short transaction: both rows are locked and read (an upsert that changes
//! nothing takes the row lock on PostgreSQL and creates the row if missing), the caller's rule
//! computes the new counters in memory, and they are written back. The account row is always
//! locked before the address row, so two attempts cannot deadlock. No password is hashed inside
//! the transaction.

use kem_kit::store::{Tx, query};

use super::{Repository, Result, col};
use crate::domain::login_throttle::{AccountCounter, AddressCounter};

impl Repository {
    /// Locks and reads the counters of (`email`, `client`), lets `decide` compute the outcome
    /// and, when it returns new counters, stores them — all in one transaction.
    pub async fn update_login_throttle<T>(
        &self,
        email: &str,
        client: &str,
        decide: impl FnOnce(AddressCounter, AccountCounter) -> (T, Option<(AddressCounter, AccountCounter)>),
    ) -> Result<T> {
        let mut tx = self.store.begin().await?;
        let account = lock_account(&mut tx, email).await?;
        let address = lock_address(&mut tx, email, client).await?;
        let (outcome, update) = decide(address, account);
        if let Some((address, account)) = update {
            query("UPDATE login_account_throttle SET failures = $2, last_failure = $3, next_attempt = $4 WHERE email = $1")
                .bind(email)
                .bind(count(account.failures))
                .bind(account.last_failure_ms)
                .bind(account.next_attempt_ms)
                .execute(&mut tx)
                .await?;
            query(
                "UPDATE login_address_throttle SET failures = $3, window_start = $4, locked_until = $5, \
                 last_success = $6 WHERE email = $1 AND client = $2",
            )
            .bind(email)
            .bind(client)
            .bind(count(address.failures))
            .bind(address.window_start_ms)
            .bind(address.locked_until_ms)
            .bind(address.last_success_ms)
            .execute(&mut tx)
            .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Deletes counters with nothing left to enforce or remember: per-account rows quiet since
    /// `quiet_before_ms`, per-address rows whose window started before `window_before_ms`, whose
    /// lock has ended by `now_ms` and whose last success is older than `known_before_ms`.
    pub async fn purge_login_throttle(
        &self,
        now_ms: i64,
        quiet_before_ms: i64,
        window_before_ms: i64,
        known_before_ms: i64,
    ) -> Result<u64> {
        let accounts = query("DELETE FROM login_account_throttle WHERE last_failure < $1 AND next_attempt <= $2")
            .bind(quiet_before_ms)
            .bind(now_ms)
            .execute(&self.store)
            .await?;
        let addresses = query(
            "DELETE FROM login_address_throttle WHERE window_start < $1 AND locked_until <= $2 AND last_success < $3",
        )
        .bind(window_before_ms)
        .bind(now_ms)
        .bind(known_before_ms)
        .execute(&self.store)
        .await?;
        Ok(accounts + addresses)
    }
}

async fn lock_account(tx: &mut Tx, email: &str) -> Result<AccountCounter> {
    let row = query(
        "INSERT INTO login_account_throttle (email) VALUES ($1) \
         ON CONFLICT (email) DO UPDATE SET failures = login_account_throttle.failures \
         RETURNING failures, last_failure, next_attempt",
    )
    .bind(email)
    .fetch_one(tx)
    .await?;
    Ok(AccountCounter {
        failures: failures(col(&row, "failures")?),
        last_failure_ms: col(&row, "last_failure")?,
        next_attempt_ms: col(&row, "next_attempt")?,
    })
}

async fn lock_address(tx: &mut Tx, email: &str, client: &str) -> Result<AddressCounter> {
    let row = query(
        "INSERT INTO login_address_throttle (email, client) VALUES ($1, $2) \
         ON CONFLICT (email, client) DO UPDATE SET failures = login_address_throttle.failures \
         RETURNING failures, window_start, locked_until, last_success",
    )
    .bind(email)
    .bind(client)
    .fetch_one(tx)
    .await?;
    Ok(AddressCounter {
        failures: failures(col(&row, "failures")?),
        window_start_ms: col(&row, "window_start")?,
        locked_until_ms: col(&row, "locked_until")?,
        last_success_ms: col(&row, "last_success")?,
    })
}

/// A stored count (never negative; a corrupt negative one counts as none).
fn failures(stored: i32) -> u32 {
    u32::try_from(stored).unwrap_or(0)
}

/// A count as stored (`INTEGER`), saturating.
fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
