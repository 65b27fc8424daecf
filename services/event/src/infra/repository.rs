//! The event repository on the kit's [`Store`]: one SQL text for PostgreSQL and SQLite (`$n`
//! placeholders, millisecond `BIGINT` times, JSON text for structured values), every write in one
//! transaction with its outbox messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use kem_kit::outbox::{Outbox, OutboxWaker};
use kem_kit::store::{self, AssertSqlSafe, Row, Store, StoreError, Tx};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::page::Cursor;
use crate::app::ports::{AutoDrawOutcome, Due, Inserted, Lease, ListQuery, RepoError, Saved};
use crate::domain::event::{Event, Modified};
use crate::domain::job::{Job, JobFailure, JobKind, JobState};
use crate::domain::lifecycle::EventStatus;
use crate::domain::message::Outgoing;
use crate::domain::validation::EventSpec;
use crate::domain::values::{EntryRules, Millis, Money, Objective, ParticipationMethod, Period};

use super::messages;

const EVENT_COLUMNS: &str = "id, owner_id, status, title, description, objective, target_audience, budget_krw, \
     period_start, period_end, prize, participation_method, channels, selected_recommendation, selected_image_id, \
     recommendations_job_id, images_job_id, created_at, updated_at, published_at, ended_at, version, auto_draw, \
     retention_days, terms, entry_verify_phone, entry_max_per_address, claim_days, anonymize_time";

const JOB_COLUMNS: &str =
    "id, event_id, owner_id, kind, state, request, result, error, created_at, updated_at, deadline_at";

const INSERT_EVENT: &str = "INSERT INTO events (id, owner_id, status, title, description, objective, \
     target_audience, budget_krw, period_start, period_end, prize, participation_method, channels, \
     selected_recommendation, selected_image_id, recommendations_job_id, images_job_id, created_at, updated_at, \
     published_at, ended_at, version, request_id, auto_draw, retention_days, terms, entry_verify_phone, \
     entry_max_per_address, claim_days) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, \
     $24, $25, $26, $27, $28, $29) \
     ON CONFLICT DO NOTHING";

/// Writes every mutable column; guarded by the status and version that were read. Terms, once
/// stored, are never replaced; `anonymize_time` is the scheduler's alone (`settle_anonymize`).
const UPDATE_EVENT: &str = "UPDATE events SET status = $3, title = $4, description = $5, objective = $6, \
     target_audience = $7, budget_krw = $8, period_start = $9, period_end = $10, prize = $11, \
     participation_method = $12, channels = $13, selected_recommendation = $14, selected_image_id = $15, \
     recommendations_job_id = $16, images_job_id = $17, updated_at = $18, published_at = $19, ended_at = $20, \
     version = $21, auto_draw = $23, retention_days = $24, terms = COALESCE(terms, $25), \
     entry_verify_phone = $26, entry_max_per_address = $27, claim_days = $28 \
     WHERE id = $1 AND version = $2 AND status = $22";

/// A conflicting active job (the partial unique index) makes this insert a no-op.
const INSERT_JOB: &str = "INSERT INTO event_jobs (id, event_id, owner_id, kind, state, request, result, error, \
     created_at, updated_at, deadline_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
     ON CONFLICT DO NOTHING";

/// The event repository over a [`Store`], waking the outbox relay after commits with messages.
pub struct SqlEventRepository {
    store: Store,
    waker: OutboxWaker,
    /// Set while the database is failing, so an outage logs one warning.
    degraded: AtomicBool,
}

impl std::fmt::Debug for SqlEventRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlEventRepository").field("store", &self.store.target()).finish_non_exhaustive()
    }
}

fn failed(what: &str, reason: impl std::fmt::Display) -> RepoError {
    RepoError::Corrupt(format!("{what}: {reason}"))
}

fn to_json<T: Serialize + ?Sized>(column: &str, value: &T) -> Result<String, RepoError> {
    serde_json::to_string(value).map_err(|e| failed(&format!("cannot encode {column}"), e))
}

fn opt_json<T: Serialize>(column: &str, value: Option<&T>) -> Result<Option<String>, RepoError> {
    value.map(|v| to_json(column, v)).transpose()
}

fn from_json<T: DeserializeOwned>(column: &str, text: &str) -> Result<T, RepoError> {
    serde_json::from_str(text).map_err(|e| failed(&format!("stored {column} is not valid"), e))
}

fn get<T: store::Decodable>(row: &Row, column: &str) -> Result<T, RepoError> {
    row.get(column).map_err(|e| failed("cannot read a row", e))
}

fn event_from_row(row: &Row) -> Result<Event, RepoError> {
    let text = |column: &str| get::<String>(row, column);
    let status = text("status")?;
    let objective = text("objective")?;
    let method = text("participation_method")?;
    let spec = EventSpec {
        title: text("title")?,
        description: text("description")?,
        objective: Objective::parse(&objective).ok_or_else(|| failed("unknown stored objective", &objective))?,
        target_audience: text("target_audience")?,
        budget: get::<Option<i64>>(row, "budget_krw")?.map(|amount_krw| Money { amount_krw }),
        period: Period { start: get(row, "period_start")?, end: get(row, "period_end")? },
        prize: get::<Option<String>>(row, "prize")?.map(|p| from_json("prize", &p)).transpose()?,
        participation_method: ParticipationMethod::parse(&method)
            .ok_or_else(|| failed("unknown stored participation method", &method))?,
        channels: from_json("channels", &text("channels")?)?,
        auto_draw: get(row, "auto_draw")?,
        retention_days: get(row, "retention_days")?,
        entry_rules: EntryRules {
            verify_phone: get(row, "entry_verify_phone")?,
            max_entries_per_address: get(row, "entry_max_per_address")?,
        },
        claim_days: get(row, "claim_days")?,
    };
    Ok(Event {
        id: text("id")?,
        owner_id: text("owner_id")?,
        spec,
        status: EventStatus::parse(&status).ok_or_else(|| failed("unknown stored status", &status))?,
        selected_recommendation: get::<Option<String>>(row, "selected_recommendation")?
            .map(|r| from_json("selected_recommendation", &r))
            .transpose()?,
        selected_image_id: get(row, "selected_image_id")?,
        recommendations_job_id: get(row, "recommendations_job_id")?,
        images_job_id: get(row, "images_job_id")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        published_at: get(row, "published_at")?,
        ended_at: get(row, "ended_at")?,
        terms: get::<Option<String>>(row, "terms")?.map(|t| from_json("terms", &t)).transpose()?,
        anonymize_time: get(row, "anonymize_time")?,
        version: get(row, "version")?,
    })
}

fn job_from_row(row: &Row) -> Result<Job, RepoError> {
    let state = get::<String>(row, "state")?;
    let job = Job {
        id: get(row, "id")?,
        event_id: get(row, "event_id")?,
        owner_id: get(row, "owner_id")?,
        request: from_json("request", &get::<String>(row, "request")?)?,
        state: JobState::parse(&state).ok_or_else(|| failed("unknown stored job state", &state))?,
        result: get::<Option<String>>(row, "result")?.map(|r| from_json("result", &r)).transpose()?,
        failure: get::<Option<String>>(row, "error")?.map(|e| from_json("error", &e)).transpose()?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        deadline_at: get(row, "deadline_at")?,
    };
    let kind = get::<String>(row, "kind")?;
    if JobKind::parse(&kind) != Some(job.kind()) {
        return Err(failed("stored job kind does not match its request", &kind));
    }
    Ok(job)
}

/// The condition of events with work `due` (`$1` now, `$2` the end before which an auto-draw
/// event is due), the order to take them in, and the first placeholder left free.
///
/// Anonymization is due `retention_days` after the end, or at `anonymize_not_before` once the
/// scheduler learned of a later draw; an auto-draw event waits for its draw to be settled first
/// (anonymizing before a pending draw would leave the draw nobody to contact). The retention is
/// widened to BIGINT before the multiplication: 365 days in ms overflow PostgreSQL's INTEGER.
fn due_condition(due: Due) -> (&'static str, &'static str, usize) {
    match due {
        Due::End => (
            "status = 'PUBLISHED' AND period_end <= $1 \
             AND (schedule_lease_until IS NULL OR schedule_lease_until <= $1)",
            "period_end",
            2,
        ),
        Due::Draw { .. } => (
            "status = 'ENDED' AND auto_draw AND auto_drawn_at IS NULL AND ended_at <= $2 \
             AND (schedule_lease_until IS NULL OR schedule_lease_until <= $1)",
            "ended_at",
            3,
        ),
        Due::Anonymize => (
            "status = 'ENDED' AND anonymize_time IS NULL AND (NOT auto_draw OR auto_drawn_at IS NOT NULL) \
             AND COALESCE(anonymize_not_before, ended_at + CAST(retention_days AS BIGINT) * 86400000) <= $1 \
             AND (schedule_lease_until IS NULL OR schedule_lease_until <= $1)",
            "ended_at",
            2,
        ),
    }
}

/// Binds the placeholders of [`due_condition`].
fn bind_due(query: store::Query, due: Due, now: Millis) -> store::Query {
    match due {
        Due::End | Due::Anonymize => query.bind(now),
        Due::Draw { ended_before } => query.bind(now).bind(ended_before),
    }
}

/// The mutable columns of an event, bound in `UPDATE_EVENT` order from `$3`.
struct EventColumns {
    prize: Option<String>,
    channels: String,
    selected_recommendation: Option<String>,
    terms: Option<String>,
}

impl EventColumns {
    fn of(event: &Event) -> Result<EventColumns, RepoError> {
        Ok(EventColumns {
            prize: opt_json("prize", event.spec.prize.as_ref())?,
            channels: to_json("channels", &event.spec.channels)?,
            selected_recommendation: opt_json("selected_recommendation", event.selected_recommendation.as_ref())?,
            terms: opt_json("terms", event.terms.as_ref())?,
        })
    }

    /// Binds the participant settings and the terms after every other value (`$24`… on insert,
    /// `$23`… on update).
    fn bind_participants(query: store::Query, e: &Event, terms: Option<String>) -> store::Query {
        query
            .bind(e.spec.auto_draw)
            .bind(e.spec.retention_days)
            .bind(terms)
            .bind(e.spec.entry_rules.verify_phone)
            .bind(e.spec.entry_rules.max_entries_per_address)
            .bind(e.spec.claim_days)
    }

    /// Binds `$3` to `$17` (status … images_job_id) after the two leading values.
    fn bind(&self, query: store::Query, e: &Event) -> store::Query {
        query
            .bind(e.status.as_str())
            .bind(e.spec.title.clone())
            .bind(e.spec.description.clone())
            .bind(e.spec.objective.as_str())
            .bind(e.spec.target_audience.clone())
            .bind(e.spec.budget.map(|m| m.amount_krw))
            .bind(e.spec.period.start)
            .bind(e.spec.period.end)
            .bind(self.prize.clone())
            .bind(e.spec.participation_method.as_str())
            .bind(self.channels.clone())
            .bind(self.selected_recommendation.clone())
            .bind(e.selected_image_id.clone())
            .bind(e.recommendations_job_id.clone())
            .bind(e.images_job_id.clone())
    }
}

impl SqlEventRepository {
    /// A repository on `store` (its migrations applied) that wakes `waker` after enqueuing.
    pub fn new(store: Store, waker: OutboxWaker) -> SqlEventRepository {
        SqlEventRepository { store, waker, degraded: AtomicBool::new(false) }
    }

    fn store_error(&self, error: StoreError) -> RepoError {
        if error.is_transient() {
            if !self.degraded.swap(true, Ordering::Relaxed) {
                tracing::warn!(%error, database = self.store.target(), "event database unavailable");
            }
            RepoError::Unavailable(Arc::new(error))
        } else {
            tracing::error!(%error, database = self.store.target(), "event database failure");
            RepoError::Failed(Arc::new(error))
        }
    }

    fn ok<T>(&self, result: Result<T, StoreError>) -> Result<T, RepoError> {
        match result {
            Ok(value) => {
                if self.degraded.load(Ordering::Relaxed) && self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!(database = self.store.target(), "event database available again");
                }
                Ok(value)
            }
            Err(error) => Err(self.store_error(error)),
        }
    }

    async fn enqueue(&self, tx: &mut Tx, outgoing: &[Outgoing]) -> Result<(), RepoError> {
        for message in outgoing {
            let result = Outbox::enqueue(tx, messages::encode(message)).await;
            self.ok(result)?;
        }
        Ok(())
    }

    async fn commit(&self, tx: Tx, outgoing: &[Outgoing]) -> Result<(), RepoError> {
        let result = tx.commit().await;
        self.ok(result)?;
        if !outgoing.is_empty() {
            self.waker.wake();
        }
        Ok(())
    }

    async fn insert_job(&self, tx: &mut Tx, job: &Job) -> Result<u64, RepoError> {
        let result = store::query(INSERT_JOB)
            .bind(job.id.clone())
            .bind(job.event_id.clone())
            .bind(job.owner_id.clone())
            .bind(job.kind().as_str())
            .bind(job.state.as_str())
            .bind(to_json("request", &job.request)?)
            .bind(opt_json("result", job.result.as_ref())?)
            .bind(opt_json("error", job.failure.as_ref())?)
            .bind(job.created_at)
            .bind(job.updated_at)
            .bind(job.deadline_at)
            .execute(tx)
            .await;
        self.ok(result)
    }

    /// Jobs of `kind` of an event matching `condition` (after `event_id = $1 AND kind = $2`;
    /// `$3` is the limit).
    async fn jobs(&self, condition: &str, event_id: &str, kind: JobKind, limit: i64) -> Result<Vec<Job>, RepoError> {
        let sql = AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM event_jobs WHERE event_id = $1 AND kind = $2 AND {condition} LIMIT $3"
        ));
        let rows =
            store::query(sql).bind(event_id).bind(kind.as_str()).bind(limit).fetch_all(self.store.primary()).await;
        self.ok(rows)?.iter().map(job_from_row).collect()
    }

    /// Inserts a new event and its messages. With `request_id`, an event of the same owner and
    /// key created at or after `request_window_start` is returned instead (and nothing is
    /// stored); an older one releases the key.
    pub async fn insert_event(
        &self,
        event: &Event,
        request_id: Option<&str>,
        request_window_start: Millis,
        outgoing: &[Outgoing],
    ) -> Result<Inserted, RepoError> {
        let columns = EventColumns::of(event)?;
        let begun = self.store.begin().await;
        let mut tx = self.ok(begun)?;
        if let Some(key) = request_id {
            // A key older than its window is released, so it may create a new event.
            let released = store::query(
                "UPDATE events SET request_id = NULL WHERE owner_id = $1 AND request_id = $2 AND created_at < $3",
            )
            .bind(event.owner_id.as_str())
            .bind(key)
            .bind(request_window_start)
            .execute(&mut tx)
            .await;
            self.ok(released)?;
        }
        let insert = columns
            .bind(store::query(INSERT_EVENT).bind(event.id.as_str()).bind(event.owner_id.as_str()), event)
            .bind(event.created_at)
            .bind(event.updated_at)
            .bind(event.published_at)
            .bind(event.ended_at)
            .bind(event.version)
            .bind(request_id.map(str::to_owned));
        let insert = EventColumns::bind_participants(insert, event, columns.terms);
        let inserted = insert.execute(&mut tx).await;
        if self.ok(inserted)? == 0 {
            // Same owner and key: the first event wins (a concurrent insert waited on the index).
            let key = request_id.unwrap_or_default();
            let sql =
                AssertSqlSafe(format!("SELECT {EVENT_COLUMNS} FROM events WHERE owner_id = $1 AND request_id = $2"));
            let existing = store::query(sql).bind(event.owner_id.as_str()).bind(key).fetch_optional(&mut tx).await;
            let existing = self.ok(existing)?;
            let rolled_back = tx.rollback().await;
            self.ok(rolled_back)?;
            return match existing {
                Some(row) => Ok(Inserted::Existing(Box::new(event_from_row(&row)?))),
                None => Err(failed("event insert had no effect", format!("id {} already exists", event.id))),
            };
        }
        self.enqueue(&mut tx, outgoing).await?;
        self.commit(tx, outgoing).await?;
        Ok(Inserted::Created)
    }

    /// The event, read from the primary (fresh).
    pub async fn find_event(&self, id: &str) -> Result<Option<Event>, RepoError> {
        let sql = AssertSqlSafe(format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1"));
        let row = store::query(sql).bind(id).fetch_optional(self.store.primary()).await;
        self.ok(row)?.as_ref().map(event_from_row).transpose()
    }

    /// The events among `ids` that exist (any order).
    pub async fn find_events(&self, ids: &[String]) -> Result<Vec<Event>, RepoError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql =
            AssertSqlSafe(format!("SELECT {EVENT_COLUMNS} FROM events WHERE id IN ({})", placeholders.join(", ")));
        let query = ids.iter().fold(store::query(sql), |q, id| q.bind(id.clone()));
        let rows = query.fetch_all(self.store.reader()).await;
        self.ok(rows)?.iter().map(event_from_row).collect()
    }

    /// One page of an owner's events, newest first (`created_at DESC, id DESC`).
    pub async fn list_events(&self, query: &ListQuery) -> Result<Vec<Event>, RepoError> {
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE owner_id = $1");
        let mut next = 2;
        if query.status.is_some() {
            sql.push_str(&format!(" AND status = ${next}"));
            next += 1;
        }
        if query.after.is_some() {
            // Keyset: strictly after the cursor in (created_at DESC, id DESC) order.
            sql.push_str(&format!(" AND (created_at < ${next} OR (created_at = ${next} AND id < ${}))", next + 1));
            next += 2;
        }
        sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ${next}"));
        let mut q = store::query(AssertSqlSafe(sql)).bind(query.owner_id.clone());
        if let Some(status) = query.status {
            q = q.bind(status.as_str());
        }
        if let Some(Cursor { created_at, id }) = &query.after {
            q = q.bind(*created_at).bind(id.clone());
        }
        let rows = q.bind(i64::try_from(query.limit).unwrap_or(i64::MAX)).fetch_all(self.store.reader()).await;
        self.ok(rows)?.iter().map(event_from_row).collect()
    }

    /// Stores `change` if the event still has the expected status and version, plus `new_job`
    /// (refused as a conflict when the event already has an active job of that kind) and the
    /// messages, atomically.
    pub async fn save_event(
        &self,
        change: &Modified,
        new_job: Option<&Job>,
        outgoing: &[Outgoing],
    ) -> Result<Saved, RepoError> {
        let event = &change.event;
        let columns = EventColumns::of(event)?;
        let begun = self.store.begin().await;
        let mut tx = self.ok(begun)?;
        let update = columns
            .bind(store::query(UPDATE_EVENT).bind(event.id.as_str()).bind(change.expected_version), event)
            .bind(event.updated_at)
            .bind(event.published_at)
            .bind(event.ended_at)
            .bind(event.version)
            .bind(change.expected_status.as_str());
        let update = EventColumns::bind_participants(update, event, columns.terms);
        let updated = update.execute(&mut tx).await;
        if self.ok(updated)? == 0 {
            return Ok(Saved::Conflict);
        }
        if let Some(job) = new_job
            && self.insert_job(&mut tx, job).await? == 0
        {
            // Another request started a job of this kind first.
            return Ok(Saved::Conflict);
        }
        self.enqueue(&mut tx, outgoing).await?;
        self.commit(tx, outgoing).await?;
        Ok(Saved::Done)
    }

    /// Deletes `event` (and its jobs) if it still has the same status and version, with the
    /// messages, atomically.
    pub async fn delete_event(&self, event: &Event, outgoing: &[Outgoing]) -> Result<Saved, RepoError> {
        let begun = self.store.begin().await;
        let mut tx = self.ok(begun)?;
        let deleted = store::query("DELETE FROM events WHERE id = $1 AND version = $2 AND status = $3")
            .bind(event.id.as_str())
            .bind(event.version)
            .bind(event.status.as_str())
            .execute(&mut tx)
            .await;
        if self.ok(deleted)? == 0 {
            return Ok(Saved::Conflict);
        }
        // ON DELETE CASCADE does this too; explicit so it never depends on SQLite's foreign_keys pragma.
        let jobs =
            store::query("DELETE FROM event_jobs WHERE event_id = $1").bind(event.id.as_str()).execute(&mut tx).await;
        self.ok(jobs)?;
        self.enqueue(&mut tx, outgoing).await?;
        self.commit(tx, outgoing).await?;
        Ok(Saved::Done)
    }

    /// The job, read from the primary.
    pub async fn find_job(&self, id: &str) -> Result<Option<Job>, RepoError> {
        let sql = AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM event_jobs WHERE id = $1"));
        let row = store::query(sql).bind(id).fetch_optional(self.store.primary()).await;
        self.ok(row)?.as_ref().map(job_from_row).transpose()
    }

    /// The PENDING or RUNNING job of `kind` of the event, if any (at most one exists).
    pub async fn active_job(&self, event_id: &str, kind: JobKind) -> Result<Option<Job>, RepoError> {
        let condition = "state IN ('PENDING', 'RUNNING') ORDER BY created_at DESC";
        Ok(self.jobs(condition, event_id, kind, 1).await?.into_iter().next())
    }

    /// Up to `limit` SUCCEEDED jobs of `kind` of the event, newest first.
    pub async fn succeeded_jobs(&self, event_id: &str, kind: JobKind, limit: usize) -> Result<Vec<Job>, RepoError> {
        let condition = "state = 'SUCCEEDED' ORDER BY created_at DESC, id DESC";
        self.jobs(condition, event_id, kind, i64::try_from(limit).unwrap_or(i64::MAX)).await
    }

    /// Stores `job` if it is still in state `from`.
    pub async fn save_job(&self, from: JobState, job: &Job) -> Result<Saved, RepoError> {
        let updated = store::query(
            "UPDATE event_jobs SET state = $3, result = $4, error = $5, updated_at = $6 WHERE id = $1 AND state = $2",
        )
        .bind(job.id.as_str())
        .bind(from.as_str())
        .bind(job.state.as_str())
        .bind(opt_json("result", job.result.as_ref())?)
        .bind(opt_json("error", job.failure.as_ref())?)
        .bind(job.updated_at)
        .execute(self.store.primary())
        .await;
        Ok(if self.ok(updated)? == 0 { Saved::Conflict } else { Saved::Done })
    }

    /// Fails every PENDING or RUNNING job whose deadline is at or before `now` with
    /// DEADLINE_EXCEEDED. Returns how many.
    pub async fn fail_expired_jobs(&self, now: Millis) -> Result<u64, RepoError> {
        let mut total = 0;
        for kind in [JobKind::Recommendations, JobKind::Images] {
            let failure = to_json("error", &JobFailure::deadline_exceeded(kind))?;
            let failed = store::query(
                "UPDATE event_jobs SET state = 'FAILED', error = $1, updated_at = $2 \
                 WHERE kind = $3 AND state IN ('PENDING', 'RUNNING') AND deadline_at <= $2",
            )
            .bind(failure)
            .bind(now)
            .bind(kind.as_str())
            .execute(self.store.primary())
            .await;
            total += self.ok(failed)?;
        }
        Ok(total)
    }

    /// Up to `limit` events with work `due` at `now`, not leased by a live scheduler (the
    /// longest-waiting first).
    pub async fn due(&self, due: Due, now: Millis, limit: usize) -> Result<Vec<String>, RepoError> {
        let (condition, order, next) = due_condition(due);
        let sql = AssertSqlSafe(format!("SELECT id FROM events WHERE {condition} ORDER BY {order} LIMIT ${next}"));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = bind_due(store::query(sql), due, now).bind(limit).fetch_all(self.store.primary()).await;
        self.ok(rows)?.iter().map(|row| get(row, "id")).collect()
    }

    /// Leases event `id` to `lease.worker` if its work is still `due` and no live lease is held:
    /// one conditional UPDATE, so of several replicas claiming at once exactly one wins (on
    /// PostgreSQL the row lock makes the others re-check the condition, on SQLite writes are
    /// serial).
    pub async fn claim(&self, id: &str, due: Due, lease: &Lease) -> Result<bool, RepoError> {
        let (condition, _, next) = due_condition(due);
        let (worker, until, event) = (next, next + 1, next + 2);
        let sql = AssertSqlSafe(format!(
            "UPDATE events SET schedule_lease_owner = ${worker}, schedule_lease_until = ${until} \
             WHERE id = ${event} AND {condition}"
        ));
        let claimed = bind_due(store::query(sql), due, lease.now)
            .bind(lease.worker.as_str())
            .bind(lease.until)
            .bind(id)
            .execute(self.store.primary())
            .await;
        Ok(self.ok(claimed)? == 1)
    }

    /// Gives `worker`'s lease on event `id` up (the work is done or is to be retried).
    pub async fn release(&self, id: &str, worker: &str) -> Result<(), RepoError> {
        let released = store::query(
            "UPDATE events SET schedule_lease_owner = NULL, schedule_lease_until = NULL \
             WHERE id = $1 AND schedule_lease_owner = $2",
        )
        .bind(id)
        .bind(worker)
        .execute(self.store.primary())
        .await;
        self.ok(released).map(drop)
    }

    /// Records how event `id`'s auto draw was settled, and releases `worker`'s lease. `false`
    /// when the worker no longer held the lease (it expired and another replica took over).
    pub async fn settle_auto_draw(
        &self,
        id: &str,
        worker: &str,
        outcome: AutoDrawOutcome,
        now: Millis,
    ) -> Result<bool, RepoError> {
        let settled = store::query(
            "UPDATE events SET auto_drawn_at = $3, auto_draw_outcome = $4, schedule_lease_owner = NULL, \
             schedule_lease_until = NULL WHERE id = $1 AND schedule_lease_owner = $2 AND auto_drawn_at IS NULL",
        )
        .bind(id)
        .bind(worker)
        .bind(now)
        .bind(outcome.as_str())
        .execute(self.store.primary())
        .await;
        Ok(self.ok(settled)? == 1)
    }

    /// Gives `worker`'s lease on event `id` up and records that its anonymization is not due
    /// before `not_before` (participation reported a draw later than the end).
    pub async fn defer_anonymize(&self, id: &str, worker: &str, not_before: Millis) -> Result<(), RepoError> {
        self.record_anonymize(id, worker, "anonymize_not_before", not_before).await.map(drop)
    }

    /// Records that event `id`'s entries were anonymized at `now`, and releases `worker`'s lease.
    /// `false` when the worker no longer held the lease or it was recorded already.
    pub async fn settle_anonymize(&self, id: &str, worker: &str, now: Millis) -> Result<bool, RepoError> {
        self.record_anonymize(id, worker, "anonymize_time", now).await
    }

    /// Sets `column` (one of the retention job's two, named by the callers above) of event `id`,
    /// not anonymized yet, to `value` and releases `worker`'s lease, if it still holds it.
    async fn record_anonymize(
        &self,
        id: &str,
        worker: &str,
        column: &'static str,
        value: Millis,
    ) -> Result<bool, RepoError> {
        let sql = AssertSqlSafe(format!(
            "UPDATE events SET {column} = $3, schedule_lease_owner = NULL, schedule_lease_until = NULL \
             WHERE id = $1 AND schedule_lease_owner = $2 AND anonymize_time IS NULL"
        ));
        let recorded = store::query(sql).bind(id).bind(worker).bind(value).execute(self.store.primary()).await;
        Ok(self.ok(recorded)? == 1)
    }
}
