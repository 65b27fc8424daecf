//! The idempotent inbox: a consumer's effect and the record that it happened commit together.

use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;

use crate::clock::{Clock, SystemClock};
use crate::store::{self, Store, StoreError, Tx, duration_millis, millis};

/// The consumer side of exactly-once effects.
#[derive(Debug, Clone, Copy)]
pub struct Inbox;

/// What [`Inbox::process`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed<T> {
    /// The effect ran and committed, returning this.
    Applied(T),
    /// The message had already been processed by this consumer; the effect did not run.
    Duplicate,
}

impl<T> Processed<T> {
    /// Whether the effect ran this time.
    pub fn applied(&self) -> bool {
        matches!(self, Processed::Applied(_))
    }
}

/// Why [`Inbox::process`] failed. Nothing was committed: the message should be retried.
#[derive(Debug, thiserror::Error)]
pub enum InboxError<E> {
    /// The inbox bookkeeping or the commit failed.
    #[error("inbox: {0}")]
    Store(#[from] StoreError),
    /// The effect returned an error (its writes were rolled back).
    #[error("the message's effect failed: {0}")]
    Effect(E),
}

impl Inbox {
    /// Runs `effect` in a transaction that also records `(consumer, message_id)`, unless that
    /// record exists already, in which case nothing runs and [`Processed::Duplicate`] returns.
    ///
    /// Two deliveries of the same message racing each other serialize on the record's primary
    /// key: the second waits for the first to commit, then sees a duplicate. If the effect fails
    /// or the commit does, nothing is recorded and a redelivery runs the effect again.
    ///
    /// ```ignore
    /// Inbox::process(&store, "analytics", &message.id, |tx| Box::pin(async move {
    ///     store::query("UPDATE counters SET n = n + 1 WHERE event_id = $1").bind(event).execute(tx).await
    /// })).await?;
    /// ```
    ///
    /// The record is stamped with the system clock; a service with an injected
    /// [`Clock`](crate::clock::Clock) calls [`Inbox::process_at`] with `clock.now()` instead.
    pub async fn process<T, E, F>(
        store: &Store,
        consumer: &str,
        message_id: &str,
        effect: F,
    ) -> Result<Processed<T>, InboxError<E>>
    where
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, E>>,
    {
        Inbox::process_at(store, SystemClock.now(), consumer, message_id, effect).await
    }

    /// [`Inbox::process`], stamping the record as processed at `now` (what [`Inbox::purge_at`]
    /// later compares with).
    pub async fn process_at<T, E, F>(
        store: &Store,
        now: SystemTime,
        consumer: &str,
        message_id: &str,
        effect: F,
    ) -> Result<Processed<T>, InboxError<E>>
    where
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, E>>,
    {
        let mut tx = store.begin().await?;
        let first = store::query(
            "INSERT INTO kem_inbox (consumer, message_id, processed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (consumer, message_id) DO NOTHING",
        )
        .bind(consumer)
        .bind(message_id)
        .bind(millis(now))
        .execute(&mut tx)
        .await?;
        if first == 0 {
            tx.rollback().await?;
            tracing::debug!(consumer, message_id, "duplicate message skipped by the inbox");
            return Ok(Processed::Duplicate);
        }
        // On error the transaction is dropped, which rolls back the record with the effect.
        let value = effect(&mut tx).await.map_err(InboxError::Effect)?;
        tx.commit().await?;
        Ok(Processed::Applied(value))
    }

    /// Whether `consumer` has processed `message_id`.
    pub async fn seen(store: &Store, consumer: &str, message_id: &str) -> Result<bool, StoreError> {
        let row = store::query("SELECT 1 AS one FROM kem_inbox WHERE consumer = $1 AND message_id = $2")
            .bind(consumer)
            .bind(message_id)
            .fetch_optional(store.primary())
            .await?;
        Ok(row.is_some())
    }

    /// Forgets records older than `older_than` by the system clock. A service with an injected
    /// [`Clock`](crate::clock::Clock) calls [`Inbox::purge_at`] with `clock.now()` instead.
    pub async fn purge(store: &Store, older_than: Duration) -> Result<u64, StoreError> {
        Inbox::purge_at(store, SystemClock.now(), older_than).await
    }

    /// Forgets records processed more than `older_than` before `now` (which must exceed how long
    /// a message can still be redelivered: the queue's dedupe window plus the outbox's worst-case
    /// delay). Returns how many were removed.
    pub async fn purge_at(store: &Store, now: SystemTime, older_than: Duration) -> Result<u64, StoreError> {
        let cutoff = millis(now).saturating_sub(duration_millis(older_than));
        let mut total = 0;
        for _ in 0..100 {
            let deleted = store::query(
                "DELETE FROM kem_inbox WHERE (consumer, message_id) IN \
                 (SELECT consumer, message_id FROM kem_inbox WHERE processed_at < $1 LIMIT 1000)",
            )
            .bind(cutoff)
            .execute(store.primary())
            .await?;
            total += deleted;
            if deleted < 1000 {
                break;
            }
        }
        Ok(total)
    }
}
