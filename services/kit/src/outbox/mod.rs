//! Reliable messaging on top of a [`Queue`](crate::queue::Queue): at-least-once delivery with
//! exactly-once effects.
//!
//! - **Producer side — transactional outbox.** [`Outbox::enqueue`] writes the message into
//!   `kem_outbox` *inside the caller's transaction*, so the business state change and the message
//!   commit (or roll back) together. An [`OutboxRelay`] claims pending rows in bounded batches
//!   (PostgreSQL `FOR UPDATE SKIP LOCKED`, so several relays can run), publishes them to the queue
//!   and deletes them. A relay that dies between publishing and deleting leaves its claim to
//!   expire, and the rows are published again: delivery is at least once.
//! - **Consumer side — idempotent inbox.** [`Inbox::process`] records `(consumer, message id)` in
//!   `kem_inbox` in the same transaction as the consumer's effect; a redelivered or republished
//!   message finds its id and is skipped, so the effect happens exactly once.
//! - **[`Consumer`]** runs a handler over a queue: bounded concurrency, lock renewal for long
//!   handlers, abandon with exponential backoff on failure, dead-letter on rejection, graceful
//!   shutdown, and a consumer span per message continuing the producer's W3C `traceparent`
//!   ([`TraceParent`]): an OpenTelemetry span exported under the consumer's role when trace
//!   export is on. [`Outbox::enqueue`] stamps each message with the current span (the request or
//!   message being handled), so the work behind a message joins the trace that produced it.
//!
//! The tables come from [`kit_migrations`](crate::store::kit_migrations).

mod consumer;
mod inbox;
mod relay;
pub mod trace;

use std::time::SystemTime;

pub use consumer::{Consumer, ConsumerOptions, ConsumerReport, Handler, HandlerError};
pub use inbox::{Inbox, InboxError, Processed};
pub use relay::{OutboxRelay, OutboxWaker, RelayBatch, RelayOptions};
pub use trace::TraceParent;

use crate::queue::OutgoingMessage;
// Checked at enqueue too, so a bad id fails the producer's transaction instead of sticking in the
// outbox.
use crate::queue::store::MAX_ID_LEN;
use crate::store::{self, Store, StoreError, Tx, duration_millis, millis};

/// The producer side of the transactional outbox.
#[derive(Debug, Clone, Copy)]
pub struct Outbox;

impl Outbox {
    /// Writes `message` to the outbox in `tx`; it is published after `tx` commits, and never if
    /// it rolls back. A message without a `traceparent` gets the current one
    /// ([`TraceParent::current`]), or starts a new trace.
    pub async fn enqueue(tx: &mut Tx, message: OutgoingMessage) -> Result<(), StoreError> {
        if message.queue.is_empty() {
            return Err(StoreError::Invalid(format!("outbox message {} has no queue", message.id)));
        }
        if message.id.is_empty() || message.id.len() > MAX_ID_LEN {
            return Err(StoreError::Invalid(format!(
                "outbox message id must be 1 to {MAX_ID_LEN} characters (queue {})",
                message.queue
            )));
        }
        let traceparent = message.traceparent.unwrap_or_else(|| TraceParent::current_or_new().to_string());
        let properties = serde_json::to_string(&message.properties)
            .map_err(|e| StoreError::Invalid(format!("properties of outbox message {}: {e}", message.id)))?;
        store::query(
            "INSERT INTO kem_outbox (queue, id, body, content_type, traceparent, properties, delay_ms, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(message.queue)
        .bind(message.id)
        .bind(message.body)
        .bind(message.content_type)
        .bind(traceparent)
        .bind(properties)
        .bind(message.delay.map(duration_millis))
        .bind(millis(SystemTime::now()))
        .execute(tx)
        .await?;
        Ok(())
    }

    /// How many messages wait in the outbox (published ones are deleted).
    pub async fn pending(store: &Store) -> Result<u64, StoreError> {
        let row = store::query("SELECT COUNT(*) AS n FROM kem_outbox").fetch_one(store.primary()).await?;
        Ok(u64::try_from(row.get::<i64>("n")?).unwrap_or(0))
    }
}
