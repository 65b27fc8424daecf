//! The per-event entry gate: whether an event still accepts entries, and the lock that orders
//! every entry against the closes of its event.
//!
//! # Why a lock, and which
//!
//! A close (EndEvent's [`Repository::close_entries`], or a draw taking its snapshot) must split
//! the event's entries in two: committed before the close (they count, in every draw) or refused.
//! On PostgreSQL at READ COMMITTED a plain "insert unless closed" is not enough: an entry whose
//! statement snapshot predates the close's commit would still insert and commit after the close
//! answered. So every entry transaction first takes a transaction-scoped **advisory lock of the
//! event in shared mode**, and a close takes it **exclusively**:
//!
//! - entries never wait for one another (shared locks are compatible), and no shared row is
//!   written per entry, so the entry path keeps its throughput;
//! - a close waits until the entries already admitted to the gate have committed (or rolled back),
//!   then records itself and commits; entries arriving meanwhile queue behind it and, once granted,
//!   see the close (their statement snapshot is taken after the lock).
//!
//! The lock key is `(GATE_LOCK_CLASS, first 4 bytes of SHA-256(event id))`, stable across server
//! versions (unlike `hashtext`); two events sharing a key only ever make each other's closes wait
//! for the other's in-flight entries. Advisory locks are per database, so other services' locks
//! cannot collide.
//!
//! On SQLite every write transaction is `BEGIN IMMEDIATE` (the kit's store): writers are serial,
//! so the check inside the transaction is already exact and no lock is taken.

use kem_kit::store::{Backend, Conn, Tx, query};

use super::{Repository, Result, col};

/// Advisory-lock class of participation's entry gates (`"kemG"` as a big-endian i32).
const GATE_LOCK_CLASS: i32 = i32::from_be_bytes(*b"kemG");

/// How an entry gate is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GateLock {
    /// An entry: concurrent entries share the lock.
    Shared,
    /// A close: waits for the entries in flight and keeps new ones out until it commits.
    Exclusive,
}

/// The recorded closes of an event's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GateState {
    /// When EndEvent closed the entries (the event service's end time).
    pub ended_at_ms: Option<i64>,
    /// When the first draw closed them.
    pub closed_at_ms: Option<i64>,
}

impl GateState {
    /// Whether entries are refused.
    pub fn is_closed(&self) -> bool {
        self.ended_at_ms.is_some() || self.closed_at_ms.is_some()
    }
}

/// The advisory-lock object id of `event_id`.
fn lock_key(event_id: &str) -> i32 {
    let digest = ring::digest::digest(&ring::digest::SHA256, event_id.as_bytes());
    let mut key = [0u8; 4];
    key.copy_from_slice(&digest.as_ref()[..4]);
    i32::from_be_bytes(key)
}

/// Takes `event_id`'s gate lock for the rest of `tx` (PostgreSQL; a no-op on SQLite, whose write
/// transactions are serial).
pub(super) async fn lock_gate(tx: &mut Tx, event_id: &str, mode: GateLock) -> Result<()> {
    if tx.backend() != Backend::Postgres {
        return Ok(());
    }
    let sql = match mode {
        GateLock::Shared => "SELECT pg_advisory_xact_lock_shared($1, $2)",
        GateLock::Exclusive => "SELECT pg_advisory_xact_lock($1, $2)",
    };
    query(sql).bind(GATE_LOCK_CLASS).bind(lock_key(event_id)).execute(tx).await?;
    Ok(())
}

/// The gate of `event_id` as seen `on` a transaction or pool (`None`: never closed, and no
/// first-come entry yet).
pub(super) async fn gate_state<'c>(on: impl Into<Conn<'c>>, event_id: &str) -> Result<Option<GateState>> {
    let row = query("SELECT ended_at, closed_at FROM event_gates WHERE event_id = $1")
        .bind(event_id.to_owned())
        .fetch_optional(on)
        .await?;
    row.map(|row| Ok(GateState { ended_at_ms: col(&row, "ended_at")?, closed_at_ms: col(&row, "closed_at")? }))
        .transpose()
}

impl Repository {
    /// Closes `event_id`'s entries because the event ended at `ended_at_ms` (the first close
    /// wins; repeating it changes nothing). When it returns, every entry of the event is either
    /// committed or will be refused. Returns the recorded end time.
    pub async fn close_entries(&self, event_id: &str, ended_at_ms: i64) -> Result<i64> {
        let mut tx = self.store.begin().await?;
        lock_gate(&mut tx, event_id, GateLock::Exclusive).await?;
        let row = query(
            "INSERT INTO event_gates (event_id, entries, ended_at) VALUES ($1, 0, $2) ON CONFLICT (event_id) \
             DO UPDATE SET ended_at = COALESCE(event_gates.ended_at, $2) RETURNING ended_at",
        )
        .bind(event_id.to_owned())
        .bind(ended_at_ms)
        .fetch_one(&mut tx)
        .await?;
        let recorded: i64 = col(&row, "ended_at")?;
        tx.commit().await?;
        Ok(recorded)
    }

    /// The recorded closes of `event_id`'s entries, from the primary.
    pub async fn gate(&self, event_id: &str) -> Result<GateState> {
        Ok(gate_state(self.store.primary(), event_id).await?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_spread() {
        // Pinned: replicas of different versions must lock the same key for an event.
        assert_eq!(lock_key(""), i32::from_be_bytes([0xe3, 0xb0, 0xc4, 0x42]));
        assert_ne!(lock_key("event-a"), lock_key("event-b"));
        assert_eq!(GATE_LOCK_CLASS, 0x6b65_6d47);
    }
}
