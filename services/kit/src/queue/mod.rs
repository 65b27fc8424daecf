//! Queues: one trait, two real implementations.
//!
//! - [`store`] (store-backed): the service's own database — PostgreSQL `FOR UPDATE SKIP LOCKED`,
//!   or SQLite for the embedded default — used by `kem up` and the tests;
//! - [`servicebus`]: Azure Service Bus through `azure_messaging_servicebus` (peek-lock).
//!
//! Delivery is at least once with peek-lock semantics: a received message is invisible to other
//! consumers until its lock expires; `complete` removes it, `abandon` makes it visible again
//! (after a backoff), and a message delivered more than `max_deliveries` times is moved to the
//! dead-letter queue where it stays for inspection. Exactly-once *effects* come from the
//! consumer's idempotent inbox (see `outbox`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

pub mod servicebus;
pub mod store;

/// The production queue names.
pub mod names {
    /// Event → AI: generate recommendations.
    pub const AI_EVENT_GENERATION: &str = "ai-event-generation";
    /// Event → content: generate images.
    pub const CONTENT_GENERATION: &str = "content-generation";
    /// Event → distribution: publish to channels.
    pub const DISTRIBUTION_JOBS: &str = "distribution-jobs";
    /// Everyone → analytics: facts to aggregate.
    pub const ANALYTICS_AGGREGATION: &str = "analytics-aggregation";
    /// All of them.
    pub const ALL: [&str; 4] = [AI_EVENT_GENERATION, CONTENT_GENERATION, DISTRIBUTION_JOBS, ANALYTICS_AGGREGATION];
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Destination queue.
    pub queue: String,
    /// Unique message id, chosen by the producer: sending the same id twice enqueues it once
    /// where the backend supports duplicate detection (store-backed: always), and consumers'
    /// inboxes deduplicate on it.
    pub id: String,
    /// Payload.
    pub body: Vec<u8>,
    /// MIME type of the payload (usually `application/json`).
    pub content_type: String,
    /// W3C `traceparent` of the producing span, continued by the consumer.
    pub traceparent: Option<String>,
    /// Deliver no earlier than this far in the future.
    pub delay: Option<Duration>,
    /// Application properties.
    pub properties: BTreeMap<String, String>,
}

/// A message received under a peek-lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The queue it came from.
    pub queue: String,
    /// The producer's message id.
    pub id: String,
    /// Payload.
    pub body: Vec<u8>,
    /// MIME type.
    pub content_type: String,
    /// W3C `traceparent` carried from the producer.
    pub traceparent: Option<String>,
    /// Application properties.
    pub properties: BTreeMap<String, String>,
    /// How many times it has been delivered, including this time (starts at 1).
    pub delivery_count: u32,
    /// Opaque lock token identifying this delivery.
    pub lock_token: String,
    /// Until when the lock holds unless renewed.
    pub locked_until: SystemTime,
    /// When it was enqueued.
    pub enqueued_at: SystemTime,
}

/// A dead-lettered message kept for inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message as last delivered.
    pub message: ReceivedMessage,
    /// Why it was dead-lettered.
    pub reason: String,
    /// When.
    pub dead_lettered_at: SystemTime,
}

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The lock expired or was taken by another consumer: the message will be redelivered.
    #[error("the lock on message {id} in {queue} was lost; it will be redelivered")]
    LockLost {
        /// Queue.
        queue: String,
        /// Message id.
        id: String,
    },
    /// The backend is unreachable or failing; retry later.
    #[error("queue backend unavailable: {0}")]
    Unavailable(String),
    /// The request is invalid (unknown queue, oversized message, ...).
    #[error("invalid queue request: {0}")]
    Invalid(String),
}

/// A peek-lock message queue.
#[async_trait::async_trait]
pub trait Queue: Send + Sync {
    /// Enqueues a message (idempotent on `message.id` where the backend can tell).
    async fn send(&self, message: OutgoingMessage) -> Result<(), QueueError>;

    /// Receives up to `max` messages from `queue`, locking each for `lock_for`. Waits up to
    /// `wait` for the first message; returns an empty batch when none arrived.
    async fn receive(
        &self,
        queue: &str,
        max: usize,
        lock_for: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Removes a processed message. `LockLost` if the lock expired first.
    async fn complete(&self, message: &ReceivedMessage) -> Result<(), QueueError>;

    /// Releases a message for redelivery after `retry_after`.
    async fn abandon(&self, message: &ReceivedMessage, retry_after: Duration) -> Result<(), QueueError>;

    /// Moves a message to the dead-letter queue with a reason.
    async fn dead_letter(&self, message: &ReceivedMessage, reason: &str) -> Result<(), QueueError>;

    /// Extends the lock for long work; returns the new expiry.
    async fn renew_lock(&self, message: &ReceivedMessage, lock_for: Duration) -> Result<SystemTime, QueueError>;

    /// Dead-lettered messages of `queue`, oldest first, for inspection.
    async fn dead_letters(&self, queue: &str, max: usize) -> Result<Vec<DeadLetter>, QueueError>;
}
