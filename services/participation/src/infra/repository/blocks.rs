//! Block lists (an event's blocked phones, by keyed phone hash), per-address entry counts, and
//! what AnonymizeEntries erases of both.

use kem_kit::store::{AssertSqlSafe, Row, Tx, query};

use super::{Repository, RepositoryError, Result, col};

/// Whether entry `e`'s phone is on its event's block list (an SQL condition over `entries e`):
/// the one definition of "blocked" that listings (`ENTRY_COLUMNS`) and the draw snapshot share. A
/// macro, so that constant SQL can `concat!` it.
macro_rules! entry_blocked {
    () => {
        "EXISTS (SELECT 1 FROM blocks b WHERE b.event_id = e.event_id AND b.phone_hash = e.phone_hash \
         AND b.removed_at IS NULL)"
    };
}
pub(super) use entry_blocked;

/// A block to store (the phone already hashed and masked).
#[derive(Debug, Clone)]
pub struct NewBlock {
    /// Block id.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// Keyed hash of the phone within the event (as entries store it).
    pub phone_hash: String,
    /// The masked phone shown in the list.
    pub masked_phone: String,
    /// The owner's note.
    pub reason: String,
    /// The entry it was made from, when blocked by entry.
    pub entry_id: Option<String>,
    /// When.
    pub created_at_ms: i64,
}

/// A block as stored (no hash: nothing above the repository needs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlock {
    /// Block id.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// Masked phone; empty once anonymized.
    pub masked_phone: String,
    /// The owner's note; empty once anonymized.
    pub reason: String,
    /// The entry it was made from.
    pub entry_id: Option<String>,
    /// When it was made.
    pub created_at_ms: i64,
}

/// What became of an UnblockParticipant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unblocked {
    /// The block was active and is removed now.
    Removed,
    /// It had been removed before.
    AlreadyRemoved,
    /// The event has no such block.
    NotFound,
}

/// An entry's phone as a block needs it.
#[derive(Clone)]
pub struct EntryPhone {
    /// Keyed phone hash.
    pub phone_hash: String,
    /// Sealed phone; `None` once anonymized (withdrawn or erased).
    pub phone_sealed: Option<Vec<u8>>,
}

const BLOCK_COLUMNS: &str = "id, event_id, masked_phone, reason, entry_id, created_at";

fn stored_block(row: &Row) -> Result<StoredBlock> {
    Ok(StoredBlock {
        id: col(row, "id")?,
        event_id: col(row, "event_id")?,
        masked_phone: col(row, "masked_phone")?,
        reason: col(row, "reason")?,
        entry_id: col(row, "entry_id")?,
        created_at_ms: col(row, "created_at")?,
    })
}

impl Repository {
    /// Blocks `block.phone_hash` in its event, or finds the active block of that phone: concurrent
    /// blocks of one phone end in one block (the partial unique index decides). Returns the block
    /// that is active now.
    pub async fn block(&self, block: &NewBlock) -> Result<StoredBlock> {
        let sql = format!(
            "SELECT {BLOCK_COLUMNS} FROM blocks WHERE event_id = $1 AND phone_hash = $2 AND removed_at IS NULL"
        );
        // An unblock committing between the insert that found the phone's block and the read
        // leaves nothing to read: the next round inserts this block. Every round either reads an
        // active block or had one removed under it, so three rounds only fail under a flood of
        // block/unblock pairs of one phone.
        for _ in 0..3 {
            query(
                "INSERT INTO blocks (id, event_id, phone_hash, masked_phone, reason, entry_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(block.id.clone())
            .bind(block.event_id.clone())
            .bind(block.phone_hash.clone())
            .bind(block.masked_phone.clone())
            .bind(block.reason.clone())
            .bind(block.entry_id.clone())
            .bind(block.created_at_ms)
            .execute(&self.store)
            .await?;
            let row = query(AssertSqlSafe(sql.clone()))
                .bind(block.event_id.clone())
                .bind(block.phone_hash.clone())
                .fetch_optional(&self.store)
                .await?;
            if let Some(row) = row {
                return stored_block(&row);
            }
        }
        Err(RepositoryError::Corrupt {
            what: "block",
            reason: format!("the block of a phone in event {} kept being removed while blocking it", block.event_id),
        })
    }

    /// The active blocks of `event_id`, newest first.
    pub async fn blocks(&self, event_id: &str) -> Result<Vec<StoredBlock>> {
        let sql = AssertSqlSafe(format!(
            "SELECT {BLOCK_COLUMNS} FROM blocks WHERE event_id = $1 AND removed_at IS NULL \
             ORDER BY created_at DESC, id DESC"
        ));
        let rows = query(sql).bind(event_id.to_owned()).fetch_all(&self.store).await?;
        rows.iter().map(stored_block).collect()
    }

    /// Removes block `block_id` of `event_id`. A removed block keeps no personal data: its hash,
    /// masked phone and reason are erased with the removal.
    pub async fn unblock(&self, event_id: &str, block_id: &str, now_ms: i64) -> Result<Unblocked> {
        let removed = query(
            "UPDATE blocks SET removed_at = $3, phone_hash = 'removed:' || id, masked_phone = '', reason = '' \
             WHERE event_id = $1 AND id = $2 AND removed_at IS NULL",
        )
        .bind(event_id.to_owned())
        .bind(block_id.to_owned())
        .bind(now_ms)
        .execute(&self.store)
        .await?;
        if removed > 0 {
            return Ok(Unblocked::Removed);
        }
        let known = query("SELECT 1 AS found FROM blocks WHERE event_id = $1 AND id = $2")
            .bind(event_id.to_owned())
            .bind(block_id.to_owned())
            .fetch_optional(&self.store)
            .await?;
        Ok(if known.is_some() { Unblocked::AlreadyRemoved } else { Unblocked::NotFound })
    }

    /// The phone of entry `entry_id` of `event_id`, from the primary (a block must match the
    /// stored hash, whatever key hashes new phones).
    pub async fn entry_phone(&self, event_id: &str, entry_id: &str) -> Result<Option<EntryPhone>> {
        let row = query("SELECT phone_hash, phone_sealed FROM entries WHERE event_id = $1 AND id = $2")
            .bind(event_id.to_owned())
            .bind(entry_id.to_owned())
            .fetch_optional(&self.store)
            .await?;
        row.map(|row| Ok(EntryPhone { phone_hash: col(&row, "phone_hash")?, phone_sealed: col(&row, "phone_sealed")? }))
            .transpose()
    }
}

/// Whether `phone_hash` is blocked in `event_id`, as `tx` sees it (after an entry's insert was
/// refused: which refusal it was).
pub(super) async fn phone_blocked(tx: &mut Tx, event_id: &str, phone_hash: &str) -> Result<bool> {
    let row = query("SELECT 1 AS found FROM blocks WHERE event_id = $1 AND phone_hash = $2 AND removed_at IS NULL")
        .bind(event_id.to_owned())
        .bind(phone_hash.to_owned())
        .fetch_optional(tx)
        .await?;
    Ok(row.is_some())
}

/// Counts one more accepted entry from `address_hash` in `event_id` unless it already made `max`;
/// `false` when it did (the caller rolls back). The conditional upsert takes the (event, address)
/// row lock, so concurrent entries from one address — on any replica — count one at a time and
/// the limit is exact; entries from other addresses never wait on it.
pub(super) async fn count_address(tx: &mut Tx, event_id: &str, address_hash: &str, max: u32) -> Result<bool> {
    let counted = query(
        "INSERT INTO address_entries (event_id, address_hash, entries) VALUES ($1, $2, 1) \
         ON CONFLICT (event_id, address_hash) DO UPDATE SET entries = address_entries.entries + 1 \
         WHERE address_entries.entries < $3",
    )
    .bind(event_id.to_owned())
    .bind(address_hash.to_owned())
    .bind(i64::from(max))
    .execute(tx)
    .await?;
    // A limit of 0 is no limit (the event service never sends it); the first entry still counts.
    Ok(counted > 0)
}

/// AnonymizeEntries, before the entries are erased: the active blocks matching an entry about to
/// be anonymized take that entry's future hash (`'anonymized:' || entry id`), so the entry stays
/// blocked (out of later draws) while nothing links the block to a phone any more; their masked
/// phone and reason (the owner's note may name the person) are erased.
pub(super) async fn anonymize_entry_blocks(tx: &mut Tx, event_id: &str, before_ms: i64, now_ms: i64) -> Result<u64> {
    Ok(query(
        "UPDATE blocks SET phone_hash = 'anonymized:' || (SELECT e.id FROM entries e WHERE e.event_id = blocks.event_id \
         AND e.phone_hash = blocks.phone_hash), masked_phone = '', reason = '', anonymized_at = $3 \
         WHERE event_id = $1 AND removed_at IS NULL AND anonymized_at IS NULL AND EXISTS (SELECT 1 FROM entries e \
         WHERE e.event_id = blocks.event_id AND e.phone_hash = blocks.phone_hash AND e.created_at < $2 \
         AND e.anonymized_at IS NULL)",
    )
    .bind(event_id.to_owned())
    .bind(before_ms)
    .bind(now_ms)
    .execute(tx)
    .await?)
}

/// AnonymizeEntries, after the entries were erased: active blocks made before the cutoff that
/// match no entry (phones blocked by number that never entered) lose their hash, masked phone
/// and reason too; the record and its times stay. Also records the event's erasure (the first
/// time, and the latest cutoff), which refuses exports from then on.
pub(super) async fn anonymize_other_blocks(tx: &mut Tx, event_id: &str, before_ms: i64, now_ms: i64) -> Result<u64> {
    let erased = query(
        "UPDATE blocks SET phone_hash = 'anonymized-block:' || id, masked_phone = '', reason = '', anonymized_at = $3 \
         WHERE event_id = $1 AND removed_at IS NULL AND anonymized_at IS NULL AND created_at < $2 \
         AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.event_id = blocks.event_id AND e.phone_hash = blocks.phone_hash)",
    )
    .bind(event_id.to_owned())
    .bind(before_ms)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    query(
        "INSERT INTO event_erasures (event_id, erased_at, erased_before) VALUES ($1, $2, $3) \
         ON CONFLICT (event_id) DO UPDATE SET erased_before = CASE WHEN event_erasures.erased_before < $3 \
         THEN $3 ELSE event_erasures.erased_before END",
    )
    .bind(event_id.to_owned())
    .bind(now_ms)
    .bind(before_ms)
    .execute(tx)
    .await?;
    Ok(erased)
}
