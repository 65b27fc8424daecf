//! One-time codes (their spacing and daily count, tags and attempts), entries found by receipt
//! or phone, and withdrawals.

use kem_kit::store::{AssertSqlSafe, query};

use super::entries::{ENTRY_COLUMNS, StoredEntry, stored_entry};
use super::gate::{GateLock, gate_state, lock_gate};
use super::{Repository, Result, col};

/// A one-time code row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    /// Tag of the code; `None` once consumed.
    pub code_hash: Option<String>,
    /// When it stops working.
    pub expires_at_ms: i64,
    /// Wrong tries left.
    pub attempts_left: u32,
    /// When the last code was sent.
    pub sent_at_ms: i64,
    /// Start of the current day window.
    pub day_start_ms: i64,
    /// Codes sent in it.
    pub day_count: u32,
}

/// A new code to store (replacing the previous one of the same phone and purpose).
#[derive(Debug, Clone)]
pub struct NewCode {
    /// The event.
    pub event_id: String,
    /// The phone's hash in the event.
    pub phone_hash: String,
    /// `CodePurpose` number.
    pub purpose: i32,
    /// The code's tag.
    pub code_hash: String,
    /// When it stops working.
    pub expires_at_ms: i64,
    /// Attempts it allows.
    pub attempts: u32,
    /// Now.
    pub sent_at_ms: i64,
    /// The day window this send counts in (now, or the window already running).
    pub day_start_ms: i64,
    /// Codes in that window with this one.
    pub day_count: u32,
}

/// How a withdrawal went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// Withdrawn now or before, at this time.
    Withdrawn(i64),
    /// Winners were drawn already.
    AlreadyDrawn,
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

impl Repository {
    /// The code of (`event_id`, `phone_hash`, `purpose`), if any was sent.
    pub async fn code(&self, event_id: &str, phone_hash: &str, purpose: i32) -> Result<Option<StoredCode>> {
        let row = query(
            "SELECT code_hash, expires_at, attempts_left, sent_at, day_start, day_count FROM participant_codes \
             WHERE event_id = $1 AND phone_hash = $2 AND purpose = $3",
        )
        .bind(event_id.to_owned())
        .bind(phone_hash.to_owned())
        .bind(purpose)
        .fetch_optional(self.store.primary())
        .await?;
        row.map(|row| {
            Ok(StoredCode {
                code_hash: col(&row, "code_hash")?,
                expires_at_ms: col(&row, "expires_at")?,
                attempts_left: count(col(&row, "attempts_left")?),
                sent_at_ms: col(&row, "sent_at")?,
                day_start_ms: col(&row, "day_start")?,
                day_count: count(col(&row, "day_count")?),
            })
        })
        .transpose()
    }

    /// Stores `code`, replacing the previous one, unless another send for the same phone and
    /// purpose got there since `previous_sent_at_ms` was read (`false`: two sends raced; the
    /// other one counts). One conditional statement: concurrent sends store one code.
    pub async fn put_code(&self, code: &NewCode, previous_sent_at_ms: Option<i64>) -> Result<bool> {
        let stored = query(
            "INSERT INTO participant_codes (event_id, phone_hash, purpose, code_hash, expires_at, attempts_left, \
             sent_at, day_start, day_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (event_id, phone_hash, purpose) DO UPDATE SET code_hash = $4, expires_at = $5, \
             attempts_left = $6, sent_at = $7, day_start = $8, day_count = $9 \
             WHERE participant_codes.sent_at = $10",
        )
        .bind(code.event_id.clone())
        .bind(code.phone_hash.clone())
        .bind(code.purpose)
        .bind(code.code_hash.clone())
        .bind(code.expires_at_ms)
        .bind(i32::try_from(code.attempts).unwrap_or(i32::MAX))
        .bind(code.sent_at_ms)
        .bind(code.day_start_ms)
        .bind(i32::try_from(code.day_count).unwrap_or(i32::MAX))
        .bind(previous_sent_at_ms.unwrap_or(i64::MIN))
        .execute(self.store.primary())
        .await?;
        Ok(stored == 1)
    }

    /// Takes one attempt of the code of (`event_id`, `phone_hash`, `purpose`) if it has any left;
    /// `false` when none was left. Conditional: concurrent wrong guesses never exceed the count.
    pub async fn spend_code_attempt(&self, event_id: &str, phone_hash: &str, purpose: i32) -> Result<bool> {
        let spent = query(
            "UPDATE participant_codes SET attempts_left = attempts_left - 1 WHERE event_id = $1 AND phone_hash = $2 \
             AND purpose = $3 AND attempts_left > 0",
        )
        .bind(event_id.to_owned())
        .bind(phone_hash.to_owned())
        .bind(purpose)
        .execute(self.store.primary())
        .await?;
        Ok(spent == 1)
    }

    /// Consumes the code of (`event_id`, `phone_hash`, `purpose`) (an entry used it).
    pub async fn consume_code(&self, event_id: &str, phone_hash: &str, purpose: i32) -> Result<()> {
        query("UPDATE participant_codes SET code_hash = NULL WHERE event_id = $1 AND phone_hash = $2 AND purpose = $3")
            .bind(event_id.to_owned())
            .bind(phone_hash.to_owned())
            .bind(purpose)
            .execute(self.store.primary())
            .await?;
        Ok(())
    }

    /// The entry of `phone_hash` in `event_id`.
    pub async fn entry_of_phone(&self, event_id: &str, phone_hash: &str) -> Result<Option<StoredEntry>> {
        let sql =
            AssertSqlSafe(format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.event_id = $1 AND e.phone_hash = $2"));
        let row = query(sql)
            .bind(event_id.to_owned())
            .bind(phone_hash.to_owned())
            .fetch_optional(self.store.primary())
            .await?;
        row.as_ref().map(stored_entry).transpose()
    }

    /// The entry of `event_id` with receipt code `receipt` (stored form).
    pub async fn entry_of_receipt(&self, event_id: &str, receipt: &str) -> Result<Option<StoredEntry>> {
        let sql = AssertSqlSafe(format!(
            "SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.event_id = $1 AND e.receipt_code = $2"
        ));
        let row =
            query(sql).bind(event_id.to_owned()).bind(receipt.to_owned()).fetch_optional(self.store.primary()).await?;
        row.as_ref().map(stored_entry).transpose()
    }

    /// Whether personal data of `event_id` was anonymized (withdrawals aside): nobody left to
    /// notify, so nothing to redraw.
    pub async fn has_erased_entries(&self, event_id: &str) -> Result<bool> {
        let row = query(
            "SELECT 1 AS found FROM entries WHERE event_id = $1 AND anonymized_at IS NOT NULL AND withdrawn_at IS NULL \
             LIMIT 1",
        )
        .bind(event_id.to_owned())
        .fetch_optional(self.store.primary())
        .await?;
        Ok(row.is_some())
    }

    /// Replaces the phone hashes of `event_id`'s withdrawn entries received before `before_ms`
    /// (kept until now so a repeated withdrawal finds its entry) like anonymization does.
    pub async fn erase_withdrawn_hashes(&self, event_id: &str, before_ms: i64) -> Result<u64> {
        Ok(query(
            "UPDATE entries SET phone_hash = 'anonymized:' || id WHERE event_id = $1 AND created_at < $2 \
             AND withdrawn_at IS NOT NULL AND phone_hash NOT LIKE 'anonymized:%'",
        )
        .bind(event_id.to_owned())
        .bind(before_ms)
        .execute(self.store.primary())
        .await?)
    }

    /// When entry `entry_id` was withdrawn, if it was.
    pub async fn withdrawn_at(&self, entry_id: &str) -> Result<Option<i64>> {
        let row = query("SELECT withdrawn_at FROM entries WHERE id = $1")
            .bind(entry_id.to_owned())
            .fetch_optional(self.store.primary())
            .await?;
        Ok(match row {
            Some(row) => col(&row, "withdrawn_at")?,
            None => None,
        })
    }

    /// Withdraws entry `entry_id` of `event_id` at `now_ms` — erasing its name and phone at once
    /// — unless winners were drawn (a draw closed the gate). Under the event's gate lock in shared
    /// mode, like an entry, so a withdrawal and a draw's snapshot never overlap: the entry is in
    /// the draw or withdrawn before it. A withdrawn entry answers its first withdrawal time.
    pub async fn withdraw(&self, event_id: &str, entry_id: &str, now_ms: i64) -> Result<Withdrawal> {
        let mut tx = self.store.begin().await?;
        lock_gate(&mut tx, event_id, GateLock::Shared).await?;
        let row = query("SELECT withdrawn_at FROM entries WHERE id = $1 AND event_id = $2")
            .bind(entry_id.to_owned())
            .bind(event_id.to_owned())
            .fetch_optional(&mut tx)
            .await?;
        if let Some(row) = row
            && let Some(at) = col::<Option<i64>>(&row, "withdrawn_at")?
        {
            tx.rollback().await?;
            return Ok(Withdrawal::Withdrawn(at));
        }
        if gate_state(&mut tx, event_id).await?.is_some_and(|gate| gate.closed_at_ms.is_some()) {
            tx.rollback().await?;
            return Ok(Withdrawal::AlreadyDrawn);
        }
        query(
            "UPDATE entries SET withdrawn_at = $3, name_sealed = NULL, phone_sealed = NULL, request_id = NULL, \
             anonymized_at = COALESCE(anonymized_at, $3) WHERE id = $1 AND event_id = $2 AND withdrawn_at IS NULL",
        )
        .bind(entry_id.to_owned())
        .bind(event_id.to_owned())
        .bind(now_ms)
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(Withdrawal::Withdrawn(now_ms))
    }
}
