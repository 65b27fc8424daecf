//! The export audit log (ExportParticipants, ListExports) and the record of an event's erasure.

use kem_kit::store::{Row, query};

use super::entries::ArrivalCursor;
use super::{Repository, Result, col};

/// One export, as it is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// Export id.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// The `x-request-id` of the call; `None` when it carried none.
    pub request_id: Option<String>,
    /// The owner who exported.
    pub actor_id: String,
    /// The client address as the edge saw it; empty when it sent none.
    pub client_address: String,
    /// `kem.participation.v1.ExportKind` number.
    pub kind: i32,
    /// Whether full names and phones were in the file.
    pub revealed: bool,
    /// Data rows in the file.
    pub row_count: i64,
    /// When.
    pub created_at_ms: i64,
}

const EXPORT_COLUMNS: &str =
    "id, event_id, request_id, actor_id, client_address, kind, revealed, row_count, created_at";

fn export_row(row: &Row) -> Result<ExportRow> {
    Ok(ExportRow {
        id: col(row, "id")?,
        event_id: col(row, "event_id")?,
        request_id: col(row, "request_id")?,
        actor_id: col(row, "actor_id")?,
        client_address: col(row, "client_address")?,
        kind: col(row, "kind")?,
        revealed: col(row, "revealed")?,
        row_count: col(row, "row_count")?,
        created_at_ms: col(row, "created_at")?,
    })
}

impl Repository {
    /// Records `export`, or — when the same request already recorded the same export (same
    /// request id, event, actor, address, kind and reveal) — counts the repeat on that record.
    /// Returns the record that stands for the export: `export` itself, or the first one.
    pub async fn record_export(&self, export: &ExportRow) -> Result<ExportRow> {
        let sql = kem_kit::store::AssertSqlSafe(format!(
            "INSERT INTO exports (id, event_id, request_id, actor_id, client_address, kind, revealed, row_count, \
             created_at, repeats, last_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $9) \
             ON CONFLICT (event_id, request_id, actor_id, client_address, kind, revealed) \
             DO UPDATE SET repeats = exports.repeats + 1, last_at = $9 RETURNING {EXPORT_COLUMNS}"
        ));
        let row = query(sql)
            .bind(export.id.clone())
            .bind(export.event_id.clone())
            .bind(export.request_id.clone())
            .bind(export.actor_id.clone())
            .bind(export.client_address.clone())
            .bind(export.kind)
            .bind(export.revealed)
            .bind(export.row_count)
            .bind(export.created_at_ms)
            .fetch_one(&self.store)
            .await?;
        export_row(&row)
    }

    /// Up to `limit` exports of `event_id`, newest first (`created_at`, then id, descending),
    /// after `after` (from the newest when `None`).
    pub async fn exports_page(
        &self,
        event_id: &str,
        after: Option<&ArrivalCursor>,
        limit: u32,
    ) -> Result<Vec<ExportRow>> {
        let sql = kem_kit::store::AssertSqlSafe(format!(
            "SELECT {EXPORT_COLUMNS} FROM exports WHERE event_id = $1 AND (created_at, id) < ($2, $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4"
        ));
        // Before every real row: its time is below i64::MAX (ids are never compared then).
        let (before_ms, before_id) = match after {
            Some(cursor) => (cursor.created_at_ms, cursor.id.clone()),
            None => (i64::MAX, String::new()),
        };
        let rows = query(sql)
            .bind(event_id.to_owned())
            .bind(before_ms)
            .bind(before_id)
            .bind(i64::from(limit))
            .fetch_all(&self.store)
            .await?;
        rows.iter().map(export_row).collect()
    }

    /// When AnonymizeEntries first erased `event_id`'s personal data; `None` if it never did.
    /// From the primary: an export must not slip past an erasure that just committed.
    pub async fn erased_at(&self, event_id: &str) -> Result<Option<i64>> {
        let row = query("SELECT erased_at FROM event_erasures WHERE event_id = $1")
            .bind(event_id.to_owned())
            .fetch_optional(&self.store)
            .await?;
        row.map(|row| col(&row, "erased_at")).transpose()
    }
}
