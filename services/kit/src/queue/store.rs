//! The store-backed queue: messages live in the service's own database (`kem_queue_messages`,
//! created by [`kit_migrations`](crate::store::kit_migrations)), so `kem up` and the tests need no
//! broker, and a producer can share the database's durability.
//!
//! # Semantics
//!
//! - **send** inserts `(queue, id)` once: a duplicate id is ignored while the first copy is
//!   pending, locked, or completed within [`StoreQueueOptions::dedupe_window`] (completed and
//!   dead-lettered rows stay as tombstones that long, then are purged; with a zero window a
//!   completed row is deleted at once).
//! - **receive** takes ready rows (`visible_at <= now`) oldest first, sets a random lock token,
//!   `visible_at = now + lock_for` (the lock expiry: an expired lock makes the row ready again),
//!   and increments `delivery_count`. PostgreSQL does it in one statement with `FOR UPDATE SKIP
//!   LOCKED`, so concurrent receivers never wait on each other; SQLite in a `BEGIN IMMEDIATE`
//!   transaction (SQLite has one writer at a time anyway). A ready row already delivered
//!   `max_deliveries` times is moved to `kem_queue_dead_letters` instead of being delivered.
//! - **complete / abandon / renew_lock / dead_letter** match on the lock token and an unexpired
//!   lock, and return [`QueueError::LockLost`] otherwise. `abandon` makes the row visible after
//!   the given backoff; abandoning the last allowed delivery dead-letters at once.
//! - **receive with `wait`** polls every [`StoreQueueOptions::poll_interval`], and wakes at once
//!   when a clone of the same `StoreQueue` sends (other processes are seen at the next poll).
//!
//! Times come from this process's clock (milliseconds since the Unix epoch; the [`Clock`] given to
//! [`StoreQueue::with_clock`], the system clock by default); replicas of a service must have
//! synchronized clocks (NTP), which Kubernetes nodes do. Lock durations are seconds long, far
//! above clock skew.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use crate::clock::{Clock, SystemClock};

use super::{DeadLetter, OutgoingMessage, Queue, QueueError, ReceivedMessage};
use crate::store::{self, Pool, Row, Store, StoreError, duration_millis, from_millis};

/// Tuning of a [`StoreQueue`].
#[derive(Debug, Clone)]
pub struct StoreQueueOptions {
    /// Deliveries after which a message is dead-lettered instead of delivered again.
    pub max_deliveries: u32,
    /// How long completed ids are remembered to drop duplicate sends.
    pub dedupe_window: Duration,
    /// How often a waiting `receive` looks for new messages sent by other processes.
    pub poll_interval: Duration,
    /// Largest accepted body.
    pub max_body_bytes: usize,
}

impl Default for StoreQueueOptions {
    fn default() -> Self {
        StoreQueueOptions {
            max_deliveries: 10,
            dedupe_window: Duration::from_secs(600),
            poll_interval: Duration::from_millis(50),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// Largest batch a single `receive` returns.
const MAX_BATCH: usize = 1000;
/// Service Bus limits message ids to 128 characters; the same here keeps producers portable.
pub(crate) const MAX_ID_LEN: usize = 128;
/// Service Bus limits entity names to 260 characters.
const MAX_QUEUE_LEN: usize = 260;
/// Tombstones deleted per purge statement.
const PURGE_BATCH: i64 = 1000;

/// A [`Queue`] on the service's own database. Clones share the wake-up signal.
#[derive(Debug, Clone)]
pub struct StoreQueue {
    store: Store,
    options: StoreQueueOptions,
    clock: Arc<dyn Clock>,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Signalled after every successful send, so local receivers need not wait for a poll.
    sent: Notify,
    /// When tombstones were last purged (ms since the epoch) and whether a purge is running.
    last_purge: AtomicI64,
    purging: AtomicBool,
}

/// How many messages of a queue are in each state (for tests, metrics and `kem` diagnostics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Ready to be received now (including messages whose lock expired).
    pub ready: u64,
    /// Locked by a consumer (lock not expired).
    pub locked: u64,
    /// Scheduled for later (delay or abandon backoff).
    pub scheduled: u64,
    /// Dead-lettered (kept for inspection).
    pub dead_lettered: u64,
}

impl StoreQueue {
    /// A queue on `store` with default options. The kit's migrations must have run
    /// ([`Store::migrate`] does it).
    pub fn new(store: Store) -> StoreQueue {
        StoreQueue::with_options(store, StoreQueueOptions::default())
    }

    /// A queue on `store` with `options`.
    pub fn with_options(store: Store, options: StoreQueueOptions) -> StoreQueue {
        StoreQueue { store, options, clock: Arc::new(SystemClock), shared: Arc::default() }
    }

    /// The same queue reading time from `clock`: delays, lock expiry and the dedupe window are
    /// all judged by it (tests move a `ManualClock` instead of waiting).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> StoreQueue {
        self.clock = clock;
        self
    }

    /// The options in force.
    pub fn options(&self) -> &StoreQueueOptions {
        &self.options
    }

    /// The store it runs on.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Counts messages of `queue` by state.
    pub async fn depth(&self, queue: &str) -> Result<QueueDepth, QueueError> {
        let now = self.clock.now_ms();
        let row = store::query(
            "SELECT \
               COALESCE(SUM(CASE WHEN visible_at <= $2 THEN 1 ELSE 0 END), 0) AS ready, \
               COALESCE(SUM(CASE WHEN visible_at > $2 AND lock_token IS NOT NULL THEN 1 ELSE 0 END), 0) AS locked, \
               COALESCE(SUM(CASE WHEN visible_at > $2 AND lock_token IS NULL THEN 1 ELSE 0 END), 0) AS scheduled, \
               (SELECT COUNT(*) FROM kem_queue_dead_letters WHERE queue = $1) AS dead_lettered \
             FROM kem_queue_messages WHERE queue = $1 AND visible_at IS NOT NULL",
        )
        .bind(queue)
        .bind(now)
        .fetch_one(self.store.primary())
        .await
        .map_err(unavailable)?;
        let count = |name: &str| -> Result<u64, QueueError> {
            row.get::<i64>(name).map(|v| u64::try_from(v).unwrap_or(0)).map_err(unavailable)
        };
        Ok(QueueDepth {
            ready: count("ready")?,
            locked: count("locked")?,
            scheduled: count("scheduled")?,
            dead_lettered: count("dead_lettered")?,
        })
    }

    /// Deletes tombstones of completed and dead-lettered messages older than the dedupe window
    /// (done automatically, at most every quarter window, by `receive`). Returns how many.
    pub async fn purge_completed(&self) -> Result<u64, QueueError> {
        let cutoff = self.clock.now_ms().saturating_sub(duration_millis(self.options.dedupe_window));
        let mut total = 0;
        // Bounded batches keep each statement (and its locks) short.
        for _ in 0..100 {
            let deleted = store::query(
                "DELETE FROM kem_queue_messages WHERE seq IN \
                 (SELECT seq FROM kem_queue_messages WHERE completed_at IS NOT NULL AND completed_at < $1 LIMIT $2)",
            )
            .bind(cutoff)
            .bind(PURGE_BATCH)
            .execute(self.store.primary())
            .await
            .map_err(unavailable)?;
            total += deleted;
            if deleted < PURGE_BATCH as u64 {
                break;
            }
        }
        Ok(total)
    }

    /// Deletes the dead letters of `queue` (after inspection). Returns how many.
    pub async fn purge_dead_letters(&self, queue: &str) -> Result<u64, QueueError> {
        store::query("DELETE FROM kem_queue_dead_letters WHERE queue = $1")
            .bind(queue)
            .execute(self.store.primary())
            .await
            .map_err(unavailable)
    }

    fn maybe_purge(&self) {
        let now = self.clock.now_ms();
        let every = duration_millis(self.options.dedupe_window / 4).max(1000);
        let last = self.shared.last_purge.load(Ordering::Relaxed);
        if now.saturating_sub(last) < every || self.shared.purging.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shared.last_purge.store(now, Ordering::Relaxed);
        let this = self.clone();
        // In the background: a receive should never wait for housekeeping.
        tokio::spawn(async move {
            match this.purge_completed().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(purged = n, "purged completed queue messages past the dedupe window"),
                Err(error) => tracing::warn!(%error, "could not purge completed queue messages; will retry"),
            }
            this.shared.purging.store(false, Ordering::Release);
        });
    }

    async fn try_receive(
        &self,
        queue: &str,
        max: usize,
        lock_for: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let now = self.clock.now_ms();
        let locked_until = now.saturating_add(duration_millis(lock_for));
        let token_prefix = format!("{:032x}", rand::random::<u128>());
        let max_deliveries = i64::from(self.options.max_deliveries);
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        let reason = format!(
            "delivered {} times without being completed (max_deliveries = {})",
            self.options.max_deliveries, self.options.max_deliveries
        );
        let mut rows = match self.store.primary() {
            Pool::Postgres(_) => {
                store::query(PG_RECEIVE)
                    .bind(queue)
                    .bind(now)
                    .bind(limit)
                    .bind(max_deliveries)
                    .bind(reason)
                    .bind(token_prefix)
                    .bind(locked_until)
                    .fetch_all(self.store.primary())
                    .await
            }
            Pool::Sqlite(_) => {
                self.sqlite_receive(queue, now, limit, max_deliveries, reason, token_prefix, locked_until).await
            }
        }
        .map_err(unavailable)?;
        rows.sort_by_key(|row| row.get::<i64>("seq").unwrap_or(i64::MAX));
        rows.iter().map(to_received).collect()
    }

    #[allow(clippy::too_many_arguments)]
    async fn sqlite_receive(
        &self,
        queue: &str,
        now: i64,
        limit: i64,
        max_deliveries: i64,
        reason: String,
        token_prefix: String,
        locked_until: i64,
    ) -> Result<Vec<Row>, StoreError> {
        let mut tx = self.store.begin().await?;
        let buried = store::query(
            "INSERT INTO kem_queue_dead_letters (queue, id, body, content_type, traceparent, properties, enqueued_at, \
               delivery_count, lock_token, locked_until, reason, dead_lettered_at) \
             SELECT queue, id, body, content_type, traceparent, properties, enqueued_at, delivery_count, lock_token, \
               visible_at, $4, $2 \
             FROM kem_queue_messages WHERE queue = $1 AND visible_at <= $2 AND delivery_count >= $3",
        )
        .bind(queue)
        .bind(now)
        .bind(max_deliveries)
        .bind(reason)
        .execute(&mut tx)
        .await?;
        if buried > 0 {
            store::query(
                "UPDATE kem_queue_messages SET visible_at = NULL, lock_token = NULL, completed_at = $2 \
                 WHERE queue = $1 AND visible_at <= $2 AND delivery_count >= $3",
            )
            .bind(queue)
            .bind(now)
            .bind(max_deliveries)
            .execute(&mut tx)
            .await?;
        }
        let rows = store::query(
            "UPDATE kem_queue_messages \
             SET delivery_count = delivery_count + 1, lock_token = $5 || '.' || seq, visible_at = $6 \
             WHERE seq IN (SELECT seq FROM kem_queue_messages \
                           WHERE queue = $1 AND visible_at <= $2 AND delivery_count < $4 \
                           ORDER BY visible_at, seq LIMIT $3) \
             RETURNING seq, queue, id, body, content_type, traceparent, properties, enqueued_at, delivery_count, \
               lock_token, visible_at",
        )
        .bind(queue)
        .bind(now)
        .bind(limit)
        .bind(max_deliveries)
        .bind(token_prefix)
        .bind(locked_until)
        .fetch_all(&mut tx)
        .await?;
        tx.commit().await?;
        if buried > 0 {
            tracing::warn!(queue, count = buried, "dead-lettered messages that exceeded max_deliveries");
        }
        Ok(rows)
    }

    /// Moves a locked message to the dead letters (shared by `dead_letter` and `abandon`).
    async fn bury(&self, message: &ReceivedMessage, reason: &str) -> Result<(), QueueError> {
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await.map_err(unavailable)?;
        let moved = store::query(
            "INSERT INTO kem_queue_dead_letters (queue, id, body, content_type, traceparent, properties, enqueued_at, \
               delivery_count, lock_token, locked_until, reason, dead_lettered_at) \
             SELECT queue, id, body, content_type, traceparent, properties, enqueued_at, delivery_count, lock_token, \
               visible_at, $4, $5 \
             FROM kem_queue_messages WHERE queue = $1 AND id = $2 AND lock_token = $3 AND visible_at > $5",
        )
        .bind(&message.queue)
        .bind(&message.id)
        .bind(&message.lock_token)
        .bind(reason)
        .bind(now)
        .execute(&mut tx)
        .await
        .map_err(unavailable)?;
        if moved == 0 {
            // Dropping the transaction rolls it back.
            return Err(lock_lost(message));
        }
        store::query(
            "UPDATE kem_queue_messages SET visible_at = NULL, lock_token = NULL, completed_at = $4 \
             WHERE queue = $1 AND id = $2 AND lock_token = $3",
        )
        .bind(&message.queue)
        .bind(&message.id)
        .bind(&message.lock_token)
        .bind(now)
        .execute(&mut tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        tracing::warn!(queue = %message.queue, message_id = %message.id, deliveries = message.delivery_count, reason, "message dead-lettered");
        Ok(())
    }

    fn validate(&self, message: &OutgoingMessage) -> Result<(), QueueError> {
        if message.queue.is_empty() || message.queue.len() > MAX_QUEUE_LEN {
            return Err(QueueError::Invalid(format!("queue name must be 1 to {MAX_QUEUE_LEN} characters")));
        }
        if message.id.is_empty() || message.id.len() > MAX_ID_LEN {
            return Err(QueueError::Invalid(format!(
                "message id must be 1 to {MAX_ID_LEN} characters (got {} in {})",
                message.id.len(),
                message.queue
            )));
        }
        if message.body.len() > self.options.max_body_bytes {
            return Err(QueueError::Invalid(format!(
                "message {} is {} bytes; the limit is {}",
                message.id,
                message.body.len(),
                self.options.max_body_bytes
            )));
        }
        Ok(())
    }
}

/// PostgreSQL receive in one statement: pick ready rows without waiting on rows other receivers
/// hold, dead-letter those past `max_deliveries`, lock and return the rest.
const PG_RECEIVE: &str = "\
WITH picked AS (
    SELECT seq, queue, id, body, content_type, traceparent, properties, enqueued_at, delivery_count, lock_token, visible_at
    FROM kem_queue_messages
    WHERE queue = $1 AND visible_at <= $2
    ORDER BY visible_at, seq
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), buried AS (
    INSERT INTO kem_queue_dead_letters (queue, id, body, content_type, traceparent, properties, enqueued_at,
        delivery_count, lock_token, locked_until, reason, dead_lettered_at)
    SELECT queue, id, body, content_type, traceparent, properties, enqueued_at, delivery_count, lock_token, visible_at, $5, $2
    FROM picked WHERE delivery_count >= $4
), tombstoned AS (
    UPDATE kem_queue_messages m SET visible_at = NULL, lock_token = NULL, completed_at = $2
    FROM picked WHERE m.seq = picked.seq AND picked.delivery_count >= $4
)
UPDATE kem_queue_messages m
SET delivery_count = m.delivery_count + 1, lock_token = $6 || '.' || m.seq::text, visible_at = $7
FROM picked
WHERE m.seq = picked.seq AND picked.delivery_count < $4
RETURNING m.seq, m.queue, m.id, m.body, m.content_type, m.traceparent, m.properties, m.enqueued_at, m.delivery_count,
    m.lock_token, m.visible_at";

#[async_trait::async_trait]
impl Queue for StoreQueue {
    async fn send(&self, message: OutgoingMessage) -> Result<(), QueueError> {
        self.validate(&message)?;
        let now = self.clock.now_ms();
        let visible_at = now.saturating_add(message.delay.map(duration_millis).unwrap_or(0));
        let properties = serde_json::to_string(&message.properties)
            .map_err(|e| QueueError::Invalid(format!("properties of {} do not serialize: {e}", message.id)))?;
        let inserted = store::query(
            "INSERT INTO kem_queue_messages (queue, id, body, content_type, traceparent, properties, enqueued_at, visible_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (queue, id) DO NOTHING",
        )
        .bind(message.queue.as_str())
        .bind(message.id.as_str())
        .bind(message.body)
        .bind(message.content_type)
        .bind(message.traceparent)
        .bind(properties)
        .bind(now)
        .bind(visible_at)
        .execute(self.store.primary())
        .await
        .map_err(unavailable)?;
        if inserted == 0 {
            tracing::debug!(queue = %message.queue, message_id = %message.id, "duplicate send ignored");
        } else {
            self.shared.sent.notify_waiters();
        }
        Ok(())
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        lock_for: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        if max == 0 {
            return Err(QueueError::Invalid("receive needs max >= 1".into()));
        }
        if lock_for.is_zero() {
            return Err(QueueError::Invalid("receive needs a non-zero lock duration".into()));
        }
        let max = max.min(MAX_BATCH);
        self.maybe_purge();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so a send between the query and the wait is not missed.
            let sent = self.shared.sent.notified();
            tokio::pin!(sent);
            sent.as_mut().enable();
            let batch = self.try_receive(queue, max, lock_for).await?;
            let now = tokio::time::Instant::now();
            if !batch.is_empty() || now >= deadline {
                return Ok(batch);
            }
            let nap = self.options.poll_interval.min(deadline - now);
            tokio::select! {
                _ = sent => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn complete(&self, message: &ReceivedMessage) -> Result<(), QueueError> {
        let now = self.clock.now_ms();
        // Without a dedupe window there is nothing to remember: delete at once.
        let sql = if self.options.dedupe_window.is_zero() {
            "DELETE FROM kem_queue_messages WHERE queue = $1 AND id = $2 AND lock_token = $3 AND visible_at > $4"
        } else {
            "UPDATE kem_queue_messages SET visible_at = NULL, lock_token = NULL, completed_at = $4 \
             WHERE queue = $1 AND id = $2 AND lock_token = $3 AND visible_at > $4"
        };
        let done = store::query(sql)
            .bind(&message.queue)
            .bind(&message.id)
            .bind(&message.lock_token)
            .bind(now)
            .execute(self.store.primary())
            .await
            .map_err(unavailable)?;
        if done == 0 { Err(lock_lost(message)) } else { Ok(()) }
    }

    async fn abandon(&self, message: &ReceivedMessage, retry_after: Duration) -> Result<(), QueueError> {
        if message.delivery_count >= self.options.max_deliveries {
            let reason = format!(
                "abandoned on delivery {} of max_deliveries = {}",
                message.delivery_count, self.options.max_deliveries
            );
            return self.bury(message, &reason).await;
        }
        let now = self.clock.now_ms();
        let released = store::query(
            "UPDATE kem_queue_messages SET visible_at = $5, lock_token = NULL \
             WHERE queue = $1 AND id = $2 AND lock_token = $3 AND visible_at > $4",
        )
        .bind(&message.queue)
        .bind(&message.id)
        .bind(&message.lock_token)
        .bind(now)
        .bind(now.saturating_add(duration_millis(retry_after)))
        .execute(self.store.primary())
        .await
        .map_err(unavailable)?;
        if released == 0 {
            return Err(lock_lost(message));
        }
        if retry_after.is_zero() {
            self.shared.sent.notify_waiters();
        }
        Ok(())
    }

    async fn dead_letter(&self, message: &ReceivedMessage, reason: &str) -> Result<(), QueueError> {
        self.bury(message, reason).await
    }

    async fn renew_lock(&self, message: &ReceivedMessage, lock_for: Duration) -> Result<SystemTime, QueueError> {
        let now = self.clock.now_ms();
        let until = now.saturating_add(duration_millis(lock_for));
        let renewed = store::query(
            "UPDATE kem_queue_messages SET visible_at = $5 \
             WHERE queue = $1 AND id = $2 AND lock_token = $3 AND visible_at > $4",
        )
        .bind(&message.queue)
        .bind(&message.id)
        .bind(&message.lock_token)
        .bind(now)
        .bind(until)
        .execute(self.store.primary())
        .await
        .map_err(unavailable)?;
        if renewed == 0 { Err(lock_lost(message)) } else { Ok(from_millis(until)) }
    }

    async fn dead_letters(&self, queue: &str, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let rows = store::query(
            "SELECT seq, queue, id, body, content_type, traceparent, properties, enqueued_at, delivery_count, \
               lock_token, locked_until, reason, dead_lettered_at \
             FROM kem_queue_dead_letters WHERE queue = $1 ORDER BY seq LIMIT $2",
        )
        .bind(queue)
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(self.store.reader())
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let mut message = to_message(row, "locked_until")?;
                // A dead letter may never have been locked (dead-lettered straight from an expired lock).
                message.lock_token = row.get::<Option<String>>("lock_token").map_err(unavailable)?.unwrap_or_default();
                Ok(DeadLetter {
                    message,
                    reason: row.get::<String>("reason").map_err(unavailable)?,
                    dead_lettered_at: from_millis(row.get::<i64>("dead_lettered_at").map_err(unavailable)?),
                })
            })
            .collect()
    }
}

fn to_received(row: &Row) -> Result<ReceivedMessage, QueueError> {
    to_message(row, "visible_at")
}

fn to_message(row: &Row, locked_until_column: &str) -> Result<ReceivedMessage, QueueError> {
    let id: String = row.get("id").map_err(unavailable)?;
    let raw_properties: String = row.get("properties").map_err(unavailable)?;
    let properties = serde_json::from_str::<BTreeMap<String, String>>(&raw_properties).unwrap_or_else(|error| {
        // Written by `send` from a map, so this means manual tampering: deliver without them.
        tracing::warn!(message_id = %id, %error, "message properties are not a JSON string map; delivering without them");
        BTreeMap::new()
    });
    Ok(ReceivedMessage {
        queue: row.get("queue").map_err(unavailable)?,
        body: row.get("body").map_err(unavailable)?,
        content_type: row.get("content_type").map_err(unavailable)?,
        traceparent: row.get("traceparent").map_err(unavailable)?,
        properties,
        delivery_count: u32::try_from(row.get::<i32>("delivery_count").map_err(unavailable)?).unwrap_or(0),
        lock_token: row.get::<Option<String>>("lock_token").map_err(unavailable)?.unwrap_or_default(),
        locked_until: from_millis(row.get::<Option<i64>>(locked_until_column).map_err(unavailable)?.unwrap_or(0)),
        enqueued_at: from_millis(row.get("enqueued_at").map_err(unavailable)?),
        id,
    })
}

fn unavailable(error: StoreError) -> QueueError {
    QueueError::Unavailable(format!("store-backed queue: {error}"))
}

fn lock_lost(message: &ReceivedMessage) -> QueueError {
    QueueError::LockLost { queue: message.queue.clone(), id: message.id.clone() }
}
