//! The outbox relay: moves committed outbox rows to the queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use kem_mesh::Shutdown;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::clock::{Clock, SystemClock};
use crate::queue::{OutgoingMessage, Queue};
use crate::store::{self, Pool, Row, Store, StoreError, duration_millis};

/// Tuning of an [`OutboxRelay`].
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Rows claimed per batch.
    pub batch_size: usize,
    /// Sends in flight at once within a batch.
    pub publish_concurrency: usize,
    /// How often an idle relay looks for new rows (an [`OutboxWaker`] skips the wait).
    pub poll_interval: Duration,
    /// How long a claim holds. A relay that dies leaves its batch to be reclaimed after this, so
    /// it must comfortably exceed the time to publish one batch.
    pub lease: Duration,
    /// Longest wait before retrying a row whose publication failed (doubling from 1 s).
    pub max_retry_delay: Duration,
    /// On shutdown, how long an in-flight batch may take to finish before it is dropped (its
    /// rows are then published again after the lease).
    pub drain_timeout: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            batch_size: 256,
            publish_concurrency: 16,
            poll_interval: Duration::from_millis(100),
            lease: Duration::from_secs(30),
            max_retry_delay: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayBatch {
    /// Rows claimed.
    pub claimed: usize,
    /// Rows published and deleted.
    pub published: usize,
    /// Rows whose publication failed (retried later with backoff).
    pub failed: usize,
}

/// Publishes outbox rows to a queue, in the background or one batch at a time.
#[derive(Clone)]
pub struct OutboxRelay {
    store: Store,
    queue: Arc<dyn Queue>,
    options: RelayOptions,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for OutboxRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboxRelay").field("store", &self.store.target()).field("options", &self.options).finish()
    }
}

/// Wakes an idle relay at once (call after committing a transaction that enqueued messages);
/// without it the relay still finds them within its poll interval.
#[derive(Debug, Clone)]
pub struct OutboxWaker(Arc<Notify>);

impl OutboxWaker {
    /// Wakes the relay.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Claim a batch whose lease is free or expired. PostgreSQL skips rows another relay is claiming
/// right now instead of waiting for it.
const PG_CLAIM: &str = "\
UPDATE kem_outbox SET claimed_until = $1, claim_token = $2, attempts = attempts + 1
WHERE seq IN (SELECT seq FROM kem_outbox WHERE claimed_until IS NULL OR claimed_until <= $3
              ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING seq, queue, id, body, content_type, traceparent, properties, delay_ms, created_at, attempts";

/// SQLite runs one writing statement at a time, so the same claim needs no row locks.
const SQLITE_CLAIM: &str = "\
UPDATE kem_outbox SET claimed_until = $1, claim_token = $2, attempts = attempts + 1
WHERE seq IN (SELECT seq FROM kem_outbox WHERE claimed_until IS NULL OR claimed_until <= $3
              ORDER BY seq LIMIT $4)
RETURNING seq, queue, id, body, content_type, traceparent, properties, delay_ms, created_at, attempts";

impl OutboxRelay {
    /// A relay from `store`'s outbox to `queue`.
    pub fn new(store: Store, queue: Arc<dyn Queue>, options: RelayOptions) -> OutboxRelay {
        OutboxRelay { store, queue, options, clock: Arc::new(SystemClock), wake: Arc::new(Notify::new()) }
    }

    /// The same relay reading time from `clock`: leases, retry backoff and message delays are
    /// judged by it (tests move a `ManualClock` instead of waiting out a backoff).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> OutboxRelay {
        self.clock = clock;
        self
    }

    /// A handle that wakes this relay (and its clones) when idle.
    pub fn waker(&self) -> OutboxWaker {
        OutboxWaker(self.wake.clone())
    }

    /// Runs until `shutdown`: publishes batches back to back while rows are pending, polls when
    /// idle, and backs off (bounded) while the database is unavailable.
    pub async fn run(self, shutdown: Shutdown) {
        let mut error_delay = self.options.poll_interval;
        loop {
            if shutdown.is_triggered() {
                break;
            }
            let batch = self.relay_once();
            tokio::pin!(batch);
            let result = tokio::select! {
                result = &mut batch => result,
                _ = shutdown.wait() => match tokio::time::timeout(self.options.drain_timeout, batch).await {
                    Ok(result) => result,
                    Err(_) => {
                        tracing::warn!("outbox relay stopped mid-batch; its rows will be published again after the lease");
                        break;
                    }
                },
            };
            let wait = match result {
                Ok(batch) => {
                    error_delay = self.options.poll_interval;
                    if batch.claimed >= self.options.batch_size && batch.failed == 0 {
                        continue; // more may be pending
                    }
                    self.options.poll_interval
                }
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?error_delay, "outbox relay cannot reach the database");
                    let wait = error_delay;
                    error_delay = (error_delay * 2).min(Duration::from_secs(5));
                    wait
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => break,
            }
        }
        tracing::debug!("outbox relay stopped");
    }

    /// Starts [`OutboxRelay::run`] on the runtime.
    pub fn spawn(self, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        shutdown.clone().spawn(self.run(shutdown))
    }

    /// Claims, publishes and deletes one batch.
    pub async fn relay_once(&self) -> Result<RelayBatch, StoreError> {
        let now = self.clock.now_ms();
        let token = format!("{:032x}", rand::random::<u128>());
        let claim = match self.store.primary() {
            Pool::Postgres(_) => PG_CLAIM,
            Pool::Sqlite(_) => SQLITE_CLAIM,
        };
        let rows = store::query(claim)
            .bind(now.saturating_add(duration_millis(self.options.lease)))
            .bind(token.as_str())
            .bind(now)
            .bind(i64::try_from(self.options.batch_size.max(1)).unwrap_or(i64::MAX))
            .fetch_all(self.store.primary())
            .await?;
        if rows.is_empty() {
            return Ok(RelayBatch::default());
        }
        let span = tracing::debug_span!("outbox.relay", claimed = rows.len());
        async {
            let claimed = rows.len();
            let mut pending = Vec::with_capacity(claimed);
            for row in &rows {
                pending.push(to_outgoing(row, now)?);
            }
            let queue = &self.queue;
            let results: Vec<(i64, i32, Result<(), String>)> = futures_util::stream::iter(pending)
                .map(|(seq, attempts, message)| async move {
                    let id = message.id.clone();
                    let result = queue.send(message).await.map_err(|e| format!("publishing {id}: {e}"));
                    (seq, attempts, result)
                })
                .buffer_unordered(self.options.publish_concurrency.max(1))
                .collect()
                .await;
            let mut failed = 0;
            for (seq, attempts, result) in &results {
                if let Err(error) = result {
                    failed += 1;
                    let delay = retry_delay(*attempts, self.options.max_retry_delay);
                    tracing::warn!(seq, attempts, %error, retry_in = ?delay, "outbox message not published; will retry");
                    store::query(
                        "UPDATE kem_outbox SET claim_token = NULL, claimed_until = $3, last_error = $4 \
                         WHERE seq = $1 AND claim_token = $2",
                    )
                    .bind(*seq)
                    .bind(token.as_str())
                    .bind(self.clock.now_ms().saturating_add(duration_millis(delay)))
                    .bind(error.as_str())
                    .execute(self.store.primary())
                    .await?;
                }
            }
            // Everything still carrying our token was published.
            let deleted = store::query("DELETE FROM kem_outbox WHERE claim_token = $1")
                .bind(token.as_str())
                .execute(self.store.primary())
                .await?;
            let published = claimed - failed;
            if usize::try_from(deleted).unwrap_or(usize::MAX) < published {
                // Our lease expired mid-batch and another relay reclaimed some rows: they will be
                // published twice, which consumers' inboxes absorb.
                tracing::warn!(published, deleted, "outbox lease expired during a batch; raise RelayOptions::lease");
            }
            Ok(RelayBatch { claimed, published, failed })
        }
        .instrument(span)
        .await
    }
}

fn to_outgoing(row: &Row, now: i64) -> Result<(i64, i32, OutgoingMessage), StoreError> {
    let id: String = row.get("id")?;
    let properties: BTreeMap<String, String> =
        serde_json::from_str(&row.get::<String>("properties")?).map_err(|e| StoreError::Mapping {
            action: "decode",
            column: "kem_outbox.properties".into(),
            reason: e.to_string(),
        })?;
    // The delay counts from the commit, not from when the relay got to the row.
    let delay = row.get::<Option<i64>>("delay_ms")?.map(|delay| {
        let due = row.get::<i64>("created_at").unwrap_or(now).saturating_add(delay);
        Duration::from_millis(u64::try_from(due.saturating_sub(now)).unwrap_or(0))
    });
    let message = OutgoingMessage {
        queue: row.get("queue")?,
        body: row.get("body")?,
        content_type: row.get("content_type")?,
        traceparent: row.get("traceparent")?,
        delay: delay.filter(|d| !d.is_zero()),
        properties,
        id,
    };
    Ok((row.get("seq")?, row.get("attempts")?, message))
}

fn retry_delay(attempts: i32, max: Duration) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(16);
    Duration::from_secs(1).saturating_mul(1 << exponent).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_the_cap() {
        let max = Duration::from_secs(60);
        assert_eq!(retry_delay(1, max), Duration::from_secs(1));
        assert_eq!(retry_delay(3, max), Duration::from_secs(4));
        assert_eq!(retry_delay(30, max), max);
        assert_eq!(retry_delay(0, max), Duration::from_secs(1));
    }
}
