//! Prize claims: each winner's claim row (code hash, deadline, claim, retirement), written with
//! the winner notices in the draw's transaction; wrong-code counting for ClaimPrize.

use kem_kit::store::{AssertSqlSafe, Row, query};

use super::draws::{DRAW_COLUMNS, DrawSession, draw_record};
use super::entries::{ENTRY_COLUMNS, StoredEntry, stored_entry};
use super::placeholders;
use super::{Repository, RepositoryError, Result, col};
use crate::domain::claim::Claim;

/// A winner's claim to store with its draw.
#[derive(Clone)]
pub struct NewClaim {
    /// The draw.
    pub draw_id: String,
    /// Rank in the draw.
    pub rank: u32,
    /// The winning entry.
    pub entry_id: String,
    /// Tag of the claim code ([`code_tag`](crate::infra::pii::PhoneHasher::code_tag)).
    pub code_hash: String,
    /// Claim deadline.
    pub deadline_ms: i64,
}

/// A winner notice to queue with its draw.
#[derive(Clone)]
pub struct NewNotification {
    /// Row id (the sealed message is bound to it).
    pub id: String,
    /// The draw.
    pub draw_id: String,
    /// Rank in the draw.
    pub rank: u32,
    /// The winning entry.
    pub entry_id: String,
    /// `NotificationChannel` number.
    pub channel: i32,
    /// The text, sealed.
    pub message_sealed: Vec<u8>,
    /// Who will carry it (`ProviderKind` number, name).
    pub provider: (i32, String),
}

/// Which earlier winners a draw retires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retire {
    /// Every current winner (DrawWinners: a first draw, or a redraw replacing the whole draw).
    All,
    /// The unclaimed winners whose deadline passed before `now` (RedrawUnclaimed): their prizes
    /// are REDRAWN.
    Expired {
        /// The redraw's time.
        now: i64,
    },
}

/// A claim row with its draw's time.
#[derive(Debug, Clone)]
pub struct StoredClaim {
    /// The draw.
    pub draw_id: String,
    /// Rank in the draw.
    pub rank: u32,
    /// The winning entry.
    pub entry_id: String,
    /// Tag of the claim code; `None` for winners drawn before claims existed.
    pub code_hash: Option<String>,
    /// Deadline, claim and redraw.
    pub claim: Claim,
    /// When it stopped being a current winner.
    pub retired_at_ms: Option<i64>,
}

const CLAIM_COLUMNS: &str =
    "c.draw_id, c.rank, c.entry_id, c.code_hash, c.deadline, c.claimed_at, c.retired_at, c.redrawn_at";

fn stored_claim(row: &Row) -> Result<StoredClaim> {
    let rank: i32 = col(row, "rank")?;
    Ok(StoredClaim {
        draw_id: col(row, "draw_id")?,
        rank: u32::try_from(rank)
            .map_err(|_| RepositoryError::Corrupt { what: "claim rank", reason: rank.to_string() })?,
        entry_id: col(row, "entry_id")?,
        code_hash: col(row, "code_hash")?,
        claim: Claim {
            deadline_ms: col(row, "deadline")?,
            claimed_at_ms: col(row, "claimed_at")?,
            redrawn_at_ms: col(row, "redrawn_at")?,
        },
        retired_at_ms: col(row, "retired_at")?,
    })
}

fn rank_i32(rank: u32) -> i32 {
    i32::try_from(rank).unwrap_or(i32::MAX)
}

/// Entries read per statement.
const ENTRY_BATCH: usize = 500;

impl DrawSession {
    /// The entries `ids` of the event, in the order given, read in this transaction: a draw
    /// holds its connection while waiting for the gate lock, so it must not need a second one
    /// from the pool (concurrent draws would exhaust it).
    pub async fn entries(&mut self, ids: &[String]) -> Result<Vec<StoredEntry>> {
        let mut found = Vec::with_capacity(ids.len());
        for batch in ids.chunks(ENTRY_BATCH) {
            let sql = AssertSqlSafe(format!(
                "SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.event_id = $1 AND e.id IN ({})",
                placeholders(2, batch.len())
            ));
            let rows = batch
                .iter()
                .fold(query(sql).bind(self.event_id.clone()), |q, id| q.bind(id.clone()))
                .fetch_all(&mut self.tx)
                .await?;
            found.extend(rows.iter().map(stored_entry).collect::<Result<Vec<_>>>()?);
        }
        ids.iter()
            .map(|id| {
                found.iter().position(|e| &e.id == id).map(|i| found.swap_remove(i)).ok_or_else(|| {
                    RepositoryError::Corrupt { what: "winner", reason: format!("{id} is not an entry of the event") }
                })
            })
            .collect()
    }

    /// Every entry that won any draw of the event, as of this transaction (RedrawUnclaimed leaves
    /// them out of its snapshot).
    pub async fn previous_winner_ids(&mut self) -> Result<Vec<String>> {
        let rows = query(
            "SELECT DISTINCT w.entry_id FROM winners w JOIN draws d ON d.id = w.draw_id WHERE d.event_id = $1 \
             ORDER BY w.entry_id",
        )
        .bind(self.event_id.clone())
        .fetch_all(&mut self.tx)
        .await?;
        rows.iter().map(|row| col(row, "entry_id")).collect()
    }

    /// The current winners' claims, as of this transaction, oldest draw first.
    pub async fn current_claims(&mut self) -> Result<Vec<StoredClaim>> {
        let sql = AssertSqlSafe(format!(
            "SELECT {CLAIM_COLUMNS} FROM winner_claims c JOIN draws d ON d.id = c.draw_id \
             WHERE c.event_id = $1 AND c.retired_at IS NULL ORDER BY d.drawn_at, c.rank"
        ));
        let rows = query(sql).bind(self.event_id.clone()).fetch_all(&mut self.tx).await?;
        rows.iter().map(stored_claim).collect()
    }

    /// Retires earlier winners as `retire` says, then stores the new draw's `claims` and queues
    /// its `notices` (due at `now_ms`): in the draw's transaction, so a draw never exists without
    /// them (the outbox of winner SMS). Notices of retired winners not yet tried are given up:
    /// nobody is told about a prize that went elsewhere.
    pub async fn add_claims(
        &mut self,
        claims: &[NewClaim],
        notices: &[NewNotification],
        retire: Retire,
        now_ms: i64,
    ) -> Result<()> {
        let retired = match retire {
            Retire::All => {
                query("UPDATE winner_claims SET retired_at = $2 WHERE event_id = $1 AND retired_at IS NULL")
                    .bind(self.event_id.clone())
                    .bind(now_ms)
                    .execute(&mut self.tx)
                    .await?
            }
            Retire::Expired { now } => {
                query(
                    "UPDATE winner_claims SET retired_at = $2, redrawn_at = $2 WHERE event_id = $1 \
                     AND retired_at IS NULL AND claimed_at IS NULL AND deadline < $2",
                )
                .bind(self.event_id.clone())
                .bind(now)
                .execute(&mut self.tx)
                .await?
            }
        };
        if retired > 0 {
            query(
                "UPDATE winner_notifications SET state = 'FAILED', message_sealed = NULL, updated_at = $2, \
                 last_error = '당첨이 다른 참여자에게 넘어가 보내지 않았습니다. Not sent: the prize went to another draw.' \
                 WHERE event_id = $1 AND state = 'PENDING' AND send_started_at IS NULL AND EXISTS \
                 (SELECT 1 FROM winner_claims c WHERE c.draw_id = winner_notifications.draw_id \
                 AND c.rank = winner_notifications.rank AND c.retired_at IS NOT NULL)",
            )
            .bind(self.event_id.clone())
            .bind(now_ms)
            .execute(&mut self.tx)
            .await?;
        }
        for claim in claims {
            query(
                "INSERT INTO winner_claims (draw_id, rank, event_id, entry_id, code_hash, deadline) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(claim.draw_id.clone())
            .bind(rank_i32(claim.rank))
            .bind(self.event_id.clone())
            .bind(claim.entry_id.clone())
            .bind(claim.code_hash.clone())
            .bind(claim.deadline_ms)
            .execute(&mut self.tx)
            .await?;
        }
        for notice in notices {
            query(
                "INSERT INTO winner_notifications (id, event_id, draw_id, rank, entry_id, channel, state, \
                 provider_kind, provider_name, message_sealed, due_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'PENDING', $7, $8, $9, $10, $10)",
            )
            .bind(notice.id.clone())
            .bind(self.event_id.clone())
            .bind(notice.draw_id.clone())
            .bind(rank_i32(notice.rank))
            .bind(notice.entry_id.clone())
            .bind(notice.channel)
            .bind(notice.provider.0)
            .bind(notice.provider.1.clone())
            .bind(notice.message_sealed.clone())
            .bind(now_ms)
            .execute(&mut self.tx)
            .await?;
        }
        Ok(())
    }
}

impl Repository {
    /// The current winners' claims of `event_id`, oldest draw first, then by rank.
    pub async fn current_claims(&self, event_id: &str) -> Result<Vec<StoredClaim>> {
        let sql = AssertSqlSafe(format!(
            "SELECT {CLAIM_COLUMNS} FROM winner_claims c JOIN draws d ON d.id = c.draw_id \
             WHERE c.event_id = $1 AND c.retired_at IS NULL ORDER BY d.drawn_at, c.rank"
        ));
        let rows = query(sql).bind(event_id.to_owned()).fetch_all(self.store.primary()).await?;
        rows.iter().map(stored_claim).collect()
    }

    /// The claims of `event_id` whose entry has `phone_hash`: current winners and those whose
    /// prize was redrawn (what ClaimPrize and LookupEntry may answer about).
    pub async fn claims_of_phone(&self, event_id: &str, phone_hash: &str) -> Result<Vec<StoredClaim>> {
        let sql = AssertSqlSafe(format!(
            "SELECT {CLAIM_COLUMNS} FROM winner_claims c JOIN entries e ON e.id = c.entry_id \
             WHERE c.event_id = $1 AND e.phone_hash = $2 AND (c.retired_at IS NULL OR c.redrawn_at IS NOT NULL) \
             ORDER BY c.retired_at IS NULL DESC, c.deadline DESC"
        ));
        let rows =
            query(sql).bind(event_id.to_owned()).bind(phone_hash.to_owned()).fetch_all(self.store.primary()).await?;
        rows.iter().map(stored_claim).collect()
    }

    /// The claims of entry `entry_id` (current or redrawn), latest first.
    pub async fn claims_of_entry(&self, event_id: &str, entry_id: &str) -> Result<Vec<StoredClaim>> {
        let sql = AssertSqlSafe(format!(
            "SELECT {CLAIM_COLUMNS} FROM winner_claims c WHERE c.event_id = $1 AND c.entry_id = $2 \
             AND (c.retired_at IS NULL OR c.redrawn_at IS NOT NULL) ORDER BY c.retired_at IS NULL DESC, c.deadline DESC"
        ));
        let rows =
            query(sql).bind(event_id.to_owned()).bind(entry_id.to_owned()).fetch_all(self.store.primary()).await?;
        rows.iter().map(stored_claim).collect()
    }

    /// Records the claim of winner (`draw_id`, `rank`) at `now_ms` unless it was claimed already
    /// (the first claim stays) or is no longer current; returns the recorded claim time, `None`
    /// when the winner is not current. One conditional UPDATE: concurrent claims record one time.
    pub async fn claim_prize(&self, draw_id: &str, rank: u32, now_ms: i64) -> Result<Option<i64>> {
        query(
            "UPDATE winner_claims SET claimed_at = $3 WHERE draw_id = $1 AND rank = $2 AND claimed_at IS NULL \
             AND retired_at IS NULL",
        )
        .bind(draw_id.to_owned())
        .bind(rank_i32(rank))
        .bind(now_ms)
        .execute(self.store.primary())
        .await?;
        let row = query("SELECT claimed_at FROM winner_claims WHERE draw_id = $1 AND rank = $2")
            .bind(draw_id.to_owned())
            .bind(rank_i32(rank))
            .fetch_optional(self.store.primary())
            .await?;
        Ok(match row {
            Some(row) => col(&row, "claimed_at")?,
            None => None,
        })
    }

    /// Counts one claim attempt of (`event_id`, `phone_hash`) at `now_ms`, before its code is
    /// compared, and answers the attempts in the current window with the window's start. One
    /// statement, so concurrent guesses are counted exactly: with a limit of 5, 20 simultaneous
    /// wrong codes get 5 comparisons, never more. A window that started at or before
    /// `window_after` is over and starts again at `now_ms`. A matching code gives its attempt back
    /// ([`Repository::forgive_claim_attempt`]), so only wrong codes add up.
    pub async fn count_claim_attempt(
        &self,
        event_id: &str,
        phone_hash: &str,
        now_ms: i64,
        window_after: i64,
    ) -> Result<(u32, i64)> {
        let row = query(
            "INSERT INTO claim_failures (event_id, phone_hash, window_start, failures) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (event_id, phone_hash) DO UPDATE SET \
             failures = CASE WHEN claim_failures.window_start <= $4 THEN 1 ELSE claim_failures.failures + 1 END, \
             window_start = CASE WHEN claim_failures.window_start <= $4 THEN $3 ELSE claim_failures.window_start END \
             RETURNING failures, window_start",
        )
        .bind(event_id.to_owned())
        .bind(phone_hash.to_owned())
        .bind(now_ms)
        .bind(window_after)
        .fetch_one(self.store.primary())
        .await?;
        let failures: i32 = col(&row, "failures")?;
        Ok((u32::try_from(failures).unwrap_or(0), col(&row, "window_start")?))
    }

    /// Gives back the attempt [`Repository::count_claim_attempt`] counted for a code that matched.
    pub async fn forgive_claim_attempt(&self, event_id: &str, phone_hash: &str) -> Result<()> {
        query(
            "UPDATE claim_failures SET failures = failures - 1 \
             WHERE event_id = $1 AND phone_hash = $2 AND failures > 0",
        )
        .bind(event_id.to_owned())
        .bind(phone_hash.to_owned())
        .execute(self.store.primary())
        .await?;
        Ok(())
    }

    /// Every draw of `event_id`, oldest first.
    pub async fn draws_of(&self, event_id: &str) -> Result<Vec<crate::domain::draw::DrawRecord>> {
        let sql = AssertSqlSafe(format!("SELECT {DRAW_COLUMNS} FROM draws WHERE event_id = $1 ORDER BY drawn_at, id"));
        let rows = query(sql).bind(event_id.to_owned()).fetch_all(self.store.primary()).await?;
        rows.iter().map(draw_record).collect()
    }
}
