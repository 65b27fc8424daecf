//! The winner notices queued by draws, as the notifier works through them: due rows claimed with
//! a lease (one conditional UPDATE, so with several replicas one works on a row at a time), every
//! state change a conditional UPDATE of the lease holder.

use kem_kit::store::{Row, query};

use super::{Repository, RepositoryError, Result, col};

/// Where a notice stands (stored as its name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeState {
    /// To send, or waiting for a retry.
    Pending,
    /// Accepted by the provider.
    Sent,
    /// Delivered to the handset.
    Delivered,
    /// Given up.
    Failed,
}

impl NoticeState {
    fn parse(name: &str) -> Result<NoticeState> {
        Ok(match name {
            "PENDING" => NoticeState::Pending,
            "SENT" => NoticeState::Sent,
            "DELIVERED" => NoticeState::Delivered,
            "FAILED" => NoticeState::Failed,
            other => return Err(RepositoryError::Corrupt { what: "notification state", reason: other.to_owned() }),
        })
    }
}

/// A notice as stored.
#[derive(Clone)]
pub struct StoredNotice {
    /// Row id.
    pub id: String,
    /// The event.
    pub event_id: String,
    /// The draw.
    pub draw_id: String,
    /// Rank in the draw.
    pub rank: u32,
    /// The winning entry.
    pub entry_id: String,
    /// `NotificationChannel` number.
    pub channel: i32,
    /// Where it stands.
    pub state: NoticeState,
    /// Sends tried.
    pub attempts: u32,
    /// Delivery lookups made while SENT.
    pub lookups: u32,
    /// Why the last try failed.
    pub last_error: String,
    /// Who carries it (`ProviderKind` number, name).
    pub provider: (i32, String),
    /// The provider's request id once accepted.
    pub request_id: Option<String>,
    /// The text, sealed (erased once DELIVERED or FAILED).
    pub message_sealed: Option<Vec<u8>>,
    /// Set while a send's outcome is unknown.
    pub send_started_at_ms: Option<i64>,
    /// When the state last changed.
    pub updated_at_ms: i64,
}

const NOTICE_COLUMNS: &str = "id, event_id, draw_id, rank, entry_id, channel, state, attempts, lookups, last_error, \
     provider_kind, provider_name, request_id, message_sealed, send_started_at, updated_at";

fn stored_notice(row: &Row) -> Result<StoredNotice> {
    let count = |name: &'static str| -> Result<u32> {
        let n: i32 = col(row, name)?;
        u32::try_from(n).map_err(|_| RepositoryError::Corrupt { what: name, reason: n.to_string() })
    };
    let state: String = col(row, "state")?;
    Ok(StoredNotice {
        id: col(row, "id")?,
        event_id: col(row, "event_id")?,
        draw_id: col(row, "draw_id")?,
        rank: count("rank")?,
        entry_id: col(row, "entry_id")?,
        channel: col(row, "channel")?,
        state: NoticeState::parse(&state)?,
        attempts: count("attempts")?,
        lookups: count("lookups")?,
        last_error: col(row, "last_error")?,
        provider: (col(row, "provider_kind")?, col(row, "provider_name")?),
        request_id: col(row, "request_id")?,
        message_sealed: col(row, "message_sealed")?,
        send_started_at_ms: col(row, "send_started_at")?,
        updated_at_ms: col(row, "updated_at")?,
    })
}

/// What the notifier records about a notice it holds.
#[derive(Debug, Clone)]
pub enum NoticeUpdate {
    /// A send is about to be tried: counts the attempt and marks its outcome unknown until
    /// recorded.
    SendStarted,
    /// The provider accepted it: recorded before anything else, so it is never sent again.
    Accepted {
        /// The provider's request id.
        request_id: String,
        /// When to look it up.
        due_at_ms: i64,
    },
    /// Nothing was sent; try again at `due_at_ms`.
    RetryAt {
        /// Next try.
        due_at_ms: i64,
        /// Why, for the owner.
        error: String,
    },
    /// A send's outcome is unknown: search for it at `due_at_ms` before any resend.
    Unknown {
        /// Next look.
        due_at_ms: i64,
        /// Why, for the owner.
        error: String,
    },
    /// Still in flight at the provider; look again at `due_at_ms`.
    LookAgain {
        /// Next lookup.
        due_at_ms: i64,
    },
    /// Delivered to the handset.
    Delivered,
    /// Given up.
    Failed {
        /// Why, for the owner.
        error: String,
    },
}

impl Repository {
    /// Ids of up to `limit` notices due at `now_ms` (PENDING or SENT, lease free or expired).
    pub async fn due_notices(&self, now_ms: i64, limit: u32) -> Result<Vec<String>> {
        let rows = query(
            "SELECT id FROM winner_notifications WHERE state IN ('PENDING', 'SENT') AND due_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) ORDER BY due_at, id LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(self.store.primary())
        .await?;
        rows.iter().map(|row| col(row, "id")).collect()
    }

    /// Claims notice `id` for `worker` until `until_ms` if it is still due and nobody holds it:
    /// one conditional UPDATE, so of several replicas exactly one gets it. The claimed row.
    pub async fn claim_notice(
        &self,
        id: &str,
        worker: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Option<StoredNotice>> {
        let claimed = query(
            "UPDATE winner_notifications SET lease_owner = $2, lease_until = $4 WHERE id = $1 \
             AND state IN ('PENDING', 'SENT') AND due_at <= $3 AND (lease_until IS NULL OR lease_until < $3)",
        )
        .bind(id.to_owned())
        .bind(worker.to_owned())
        .bind(now_ms)
        .bind(until_ms)
        .execute(self.store.primary())
        .await?;
        if claimed != 1 {
            return Ok(None);
        }
        let sql = kem_kit::store::AssertSqlSafe(format!(
            "SELECT {NOTICE_COLUMNS} FROM winner_notifications WHERE id = $1 AND lease_owner = $2"
        ));
        let row = query(sql).bind(id.to_owned()).bind(worker.to_owned()).fetch_optional(self.store.primary()).await?;
        row.as_ref().map(stored_notice).transpose()
    }

    /// Records `update` of notice `id` at `now_ms` if `worker` still holds it; `false` when it
    /// does not (its lease expired and another replica took over: nothing is written).
    /// Every update but [`SendStarted`](NoticeUpdate::SendStarted) releases the lease.
    pub async fn update_notice(&self, id: &str, worker: &str, now_ms: i64, update: NoticeUpdate) -> Result<bool> {
        // $1 id, $2 worker, $3 now (where used); each statement binds exactly what it uses.
        const RELEASE: &str = "lease_owner = NULL, lease_until = NULL";
        let at = |set: String| {
            query(kem_kit::store::AssertSqlSafe(format!(
                "UPDATE winner_notifications SET {set} WHERE id = $1 AND lease_owner = $2"
            )))
            .bind(id.to_owned())
            .bind(worker.to_owned())
        };
        let update = match update {
            NoticeUpdate::SendStarted => at("attempts = attempts + 1, send_started_at = $3".to_owned()).bind(now_ms),
            NoticeUpdate::Accepted { request_id, due_at_ms } => at(format!(
                "state = 'SENT', request_id = $4, send_started_at = NULL, due_at = $5, last_error = '', lookups = 0, \
                 updated_at = $3, {RELEASE}"
            ))
            .bind(now_ms)
            .bind(request_id)
            .bind(due_at_ms),
            NoticeUpdate::RetryAt { due_at_ms, error } => {
                at(format!("send_started_at = NULL, due_at = $4, last_error = $5, updated_at = $3, {RELEASE}"))
                    .bind(now_ms)
                    .bind(due_at_ms)
                    .bind(error)
            }
            NoticeUpdate::Unknown { due_at_ms, error } => {
                at(format!("due_at = $4, last_error = $5, updated_at = $3, {RELEASE}"))
                    .bind(now_ms)
                    .bind(due_at_ms)
                    .bind(error)
            }
            NoticeUpdate::LookAgain { due_at_ms } => {
                at(format!("due_at = $3, lookups = lookups + 1, {RELEASE}")).bind(due_at_ms)
            }
            NoticeUpdate::Delivered => at(format!(
                "state = 'DELIVERED', message_sealed = NULL, send_started_at = NULL, last_error = '', updated_at = $3, \
                 {RELEASE}"
            ))
            .bind(now_ms),
            NoticeUpdate::Failed { error } => at(format!(
                "state = 'FAILED', message_sealed = NULL, send_started_at = NULL, last_error = $4, updated_at = $3, \
                 {RELEASE}"
            ))
            .bind(now_ms)
            .bind(error),
        };
        Ok(update.execute(self.store.primary()).await? == 1)
    }

    /// Every notice of `event_id` (for ListWinners).
    pub async fn notices_of_event(&self, event_id: &str) -> Result<Vec<StoredNotice>> {
        let sql = kem_kit::store::AssertSqlSafe(format!(
            "SELECT {NOTICE_COLUMNS} FROM winner_notifications WHERE event_id = $1 ORDER BY draw_id, rank, channel"
        ));
        let rows = query(sql).bind(event_id.to_owned()).fetch_all(self.store.primary()).await?;
        rows.iter().map(stored_notice).collect()
    }
}
