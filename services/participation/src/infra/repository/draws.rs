//! Draws: the snapshot-taking transaction, the audit records and the winners.

use kem_kit::outbox::Outbox;
use kem_kit::queue::OutgoingMessage;
use kem_kit::store::{AssertSqlSafe, Row, Tx, query};

use super::blocks::entry_blocked;
use super::entries::{ENTRY_COLUMNS, StoredEntry, stored_entry};
use super::gate::{GateLock, lock_gate};
use super::{Repository, RepositoryError, Result, col, placeholders};
use crate::domain::draw::DrawRecord;

/// Winners inserted per statement (3 values each).
const WINNER_BATCH: usize = 300;

/// An event's entries as a draw sees them (see [`DrawSession::entries_by_eligibility`]).
#[derive(Debug, Default)]
pub struct EntrySplit {
    /// Entries that may win, in arrival order.
    pub eligible: Vec<String>,
    /// Blocked or withdrawn entries, ascending by id.
    pub ineligible: Vec<String>,
}

/// A winner with its entry.
pub struct StoredWinner {
    /// 1-based rank.
    pub rank: u32,
    /// The winning entry.
    pub entry: StoredEntry,
}

pub(super) const DRAW_COLUMNS: &str = "id, event_id, seed, seed_supplied, algorithm, algorithm_version, entry_snapshot_sha256, \
     entry_count, winner_count, excluded_entry_ids, drawn_at, redraw_of";

pub(super) fn draw_record(row: &Row) -> Result<DrawRecord> {
    let excluded: String = col(row, "excluded_entry_ids")?;
    let winner_count: i32 = col(row, "winner_count")?;
    Ok(DrawRecord {
        draw_id: col(row, "id")?,
        event_id: col(row, "event_id")?,
        seed: col(row, "seed")?,
        seed_supplied: col(row, "seed_supplied")?,
        algorithm: col(row, "algorithm")?,
        algorithm_version: col(row, "algorithm_version")?,
        entry_snapshot_sha256: col(row, "entry_snapshot_sha256")?,
        entry_count: col(row, "entry_count")?,
        winner_count: u32::try_from(winner_count)
            .map_err(|_| RepositoryError::Corrupt { what: "draw winner_count", reason: winner_count.to_string() })?,
        excluded_entry_ids: excluded.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect(),
        drawn_at_ms: col(row, "drawn_at")?,
        redraw_of: col(row, "redraw_of")?,
    })
}

/// One draw in progress: a transaction that closed the event's entries, holding the event's gate
/// lock exclusively (see [`gate`](super::gate)) so concurrent draws of the event run one after the
/// other and no entry joins meanwhile. Dropped without [`DrawSession::record`], it rolls back and
/// the gate stays as it was.
#[derive(Debug)]
pub struct DrawSession {
    pub(super) tx: Tx,
    pub(super) event_id: String,
}

impl Repository {
    /// Starts a draw of `event_id`: takes the gate lock for the rest of the transaction (waiting
    /// for entries in flight) and closes its entries (first draw: at `now_ms`; normally EndEvent
    /// closed them already).
    pub async fn begin_draw(&self, event_id: &str, now_ms: i64) -> Result<DrawSession> {
        let mut tx = self.store.begin().await?;
        lock_gate(&mut tx, event_id, GateLock::Exclusive).await?;
        query(
            "INSERT INTO event_gates (event_id, entries, closed_at) VALUES ($1, 0, $2) ON CONFLICT (event_id) \
             DO UPDATE SET closed_at = COALESCE(event_gates.closed_at, $2)",
        )
        .bind(event_id.to_owned())
        .bind(now_ms)
        .execute(&mut tx)
        .await?;
        Ok(DrawSession { tx, event_id: event_id.to_owned() })
    }

    /// The current (not superseded) draw of `event_id`.
    pub async fn current_draw(&self, event_id: &str) -> Result<Option<DrawRecord>> {
        let sql =
            AssertSqlSafe(format!("SELECT {DRAW_COLUMNS} FROM draws WHERE event_id = $1 AND superseded_at IS NULL"));
        let row = query(sql).bind(event_id.to_owned()).fetch_optional(&self.store).await?;
        row.as_ref().map(draw_record).transpose()
    }

    /// When the current draw of each of `event_ids` happened, as (event id, draw time); events
    /// without a draw are absent.
    pub async fn current_draw_times(&self, event_ids: &[String]) -> Result<Vec<(String, i64)>> {
        if event_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = AssertSqlSafe(format!(
            "SELECT event_id, drawn_at FROM draws WHERE event_id IN ({}) AND superseded_at IS NULL",
            placeholders(1, event_ids.len())
        ));
        let rows = event_ids.iter().fold(query(sql), |q, id| q.bind(id.clone())).fetch_all(self.store.reader()).await?;
        rows.iter().map(|row| Ok((col(row, "event_id")?, col(row, "drawn_at")?))).collect()
    }

    /// The winners of `draw_id` with their entries, by rank.
    pub async fn winners(&self, draw_id: &str) -> Result<Vec<StoredWinner>> {
        let sql = AssertSqlSafe(format!(
            "SELECT w.rank, {ENTRY_COLUMNS} FROM winners w JOIN entries e ON e.id = w.entry_id \
             WHERE w.draw_id = $1 ORDER BY w.rank"
        ));
        let rows = query(sql).bind(draw_id.to_owned()).fetch_all(&self.store).await?;
        rows.iter()
            .map(|row| {
                let rank: i32 = col(row, "rank")?;
                let rank = u32::try_from(rank)
                    .map_err(|_| RepositoryError::Corrupt { what: "winner rank", reason: rank.to_string() })?;
                Ok(StoredWinner { rank, entry: stored_entry(row)? })
            })
            .collect()
    }
}

impl DrawSession {
    /// The current draw, as of this transaction.
    pub async fn current(&mut self) -> Result<Option<DrawRecord>> {
        let sql =
            AssertSqlSafe(format!("SELECT {DRAW_COLUMNS} FROM draws WHERE event_id = $1 AND superseded_at IS NULL"));
        let row = query(sql).bind(self.event_id.clone()).fetch_optional(&mut self.tx).await?;
        row.as_ref().map(draw_record).transpose()
    }

    /// The event's entries split in one read, under the gate lock (exactly the entries accepted
    /// before the close): `eligible` in arrival order, `(created_at, id)` as ListParticipants
    /// lists them (the draw's input before the owner's exclusions), and `ineligible` — blocked
    /// phones and withdrawn entries — ascending by id: the draw records those with its exclusions,
    /// so the audit replays over all the event's entries ([`verify_draw`](crate::verify_draw))
    /// whatever the block list says later.
    pub async fn entries_by_eligibility(&mut self) -> Result<EntrySplit> {
        const ALL: &str = concat!(
            "SELECT e.id, CASE WHEN e.withdrawn_at IS NOT NULL OR ",
            entry_blocked!(),
            " THEN 1 ELSE 0 END AS ineligible FROM entries e WHERE e.event_id = $1 ORDER BY e.created_at, e.id"
        );
        let rows = query(ALL).bind(self.event_id.clone()).fetch_all(&mut self.tx).await?;
        let mut split = EntrySplit::default();
        for row in &rows {
            let id: String = col(row, "id")?;
            let ineligible: i32 = col(row, "ineligible")?;
            if ineligible == 0 { split.eligible.push(id) } else { split.ineligible.push(id) }
        }
        split.ineligible.sort();
        Ok(split)
    }

    /// Stores `record` and its `winners` (entry ids by rank) with `message`, superseding
    /// `record.redraw_of` if set, and commits.
    pub async fn record(
        mut self,
        record: &DrawRecord,
        winners: &[String],
        message: OutgoingMessage,
        repository: &Repository,
    ) -> Result<()> {
        if let Some(previous) = &record.redraw_of {
            let superseded =
                query("UPDATE draws SET superseded_at = $3 WHERE id = $1 AND event_id = $2 AND superseded_at IS NULL")
                    .bind(previous.clone())
                    .bind(self.event_id.clone())
                    .bind(record.drawn_at_ms)
                    .execute(&mut self.tx)
                    .await?;
            if superseded != 1 {
                // The gate lock serializes draws, so this is a broken invariant, not a race.
                return Err(RepositoryError::Corrupt {
                    what: "current draw",
                    reason: format!("draw {previous} was no longer current when replacing it"),
                });
            }
        }
        let winner_count = i32::try_from(record.winner_count).map_err(|_| RepositoryError::Corrupt {
            what: "draw winner_count",
            reason: record.winner_count.to_string(),
        })?;
        query(
            "INSERT INTO draws (id, event_id, seed, seed_supplied, algorithm, algorithm_version, entry_snapshot_sha256, \
             entry_count, winner_count, excluded_entry_ids, drawn_at, redraw_of) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(record.draw_id.clone())
        .bind(record.event_id.clone())
        .bind(record.seed.clone())
        .bind(record.seed_supplied)
        .bind(record.algorithm.clone())
        .bind(record.algorithm_version.clone())
        .bind(record.entry_snapshot_sha256.clone())
        .bind(record.entry_count)
        .bind(winner_count)
        .bind(record.excluded_entry_ids.join("\n"))
        .bind(record.drawn_at_ms)
        .bind(record.redraw_of.clone())
        .execute(&mut self.tx)
        .await?;
        for (batch_index, batch) in winners.chunks(WINNER_BATCH).enumerate() {
            let values: Vec<String> = (0..batch.len()).map(|i| format!("({})", placeholders(1 + i * 3, 3))).collect();
            let sql =
                AssertSqlSafe(format!("INSERT INTO winners (draw_id, rank, entry_id) VALUES {}", values.join(", ")));
            let mut insert = query(sql);
            for (i, entry_id) in batch.iter().enumerate() {
                let rank = i32::try_from(batch_index * WINNER_BATCH + i + 1).unwrap_or(i32::MAX);
                insert = insert.bind(record.draw_id.clone()).bind(rank).bind(entry_id.clone());
            }
            insert.execute(&mut self.tx).await?;
        }
        Outbox::enqueue(&mut self.tx, message).await?;
        self.tx.commit().await?;
        repository.wake_outbox();
        Ok(())
    }
}
