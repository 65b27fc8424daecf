//! The consumer runner: a handler over a queue, with the delivery bookkeeping done once here.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use kem_mesh::Shutdown;
use kem_mesh::telemetry::trace;
use opentelemetry::KeyValue;
use opentelemetry::context::FutureExt as _;
use opentelemetry::trace::SpanKind;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::TraceParent;
use super::inbox::InboxError;
use crate::queue::{Queue, QueueError, ReceivedMessage};
use crate::store::StoreError;

/// Why a handler did not process a message, which decides what happens to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// A transient failure (dependency down, timeout): the message is abandoned and retried after
    /// an exponential backoff, until the queue's delivery limit dead-letters it.
    #[error("retry later: {0}")]
    Retry(String),
    /// The message can never succeed (malformed, refers to nothing): dead-lettered at once.
    #[error("rejected: {0}")]
    Reject(String),
}

impl From<StoreError> for HandlerError {
    fn from(error: StoreError) -> Self {
        HandlerError::Retry(error.to_string())
    }
}

impl<E: std::fmt::Display> From<InboxError<E>> for HandlerError {
    fn from(error: InboxError<E>) -> Self {
        HandlerError::Retry(error.to_string())
    }
}

/// Processes one message. Implemented for every
/// `Fn(ReceivedMessage) -> impl Future<Output = Result<(), HandlerError>>`.
pub trait Handler: Send + Sync + 'static {
    /// Handles `message`; the runner completes, abandons or dead-letters it from the result.
    fn handle(&self, message: ReceivedMessage) -> BoxFuture<'static, Result<(), HandlerError>>;
}

impl<F, Fut> Handler for F
where
    F: Fn(ReceivedMessage) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn handle(&self, message: ReceivedMessage) -> BoxFuture<'static, Result<(), HandlerError>> {
        Box::pin(self(message))
    }
}

/// How a [`Consumer`] runs.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The queue to consume.
    pub queue: String,
    /// Name in logs and spans (usually the service name).
    pub name: String,
    /// Messages handled at once.
    pub concurrency: usize,
    /// Most messages taken by one receive.
    pub max_batch: usize,
    /// Lock taken on each message; renewed every third of it while the handler runs.
    pub lock_for: Duration,
    /// Long-poll of each receive. It also bounds how long shutdown waits for a receive in
    /// progress (a receive is never cut short: it may already hold locks).
    pub receive_wait: Duration,
    /// Backoff of the first retry; doubles per delivery (with jitter) up to `max_retry_delay`.
    pub retry_delay: Duration,
    /// Cap of the retry backoff.
    pub max_retry_delay: Duration,
    /// On shutdown, how long in-flight handlers may run before they are cancelled (their
    /// messages are then redelivered when the locks expire).
    pub drain_timeout: Duration,
}

impl ConsumerOptions {
    /// Defaults for `queue`: concurrency 4, batches of 16, 30 s locks.
    pub fn new(queue: impl Into<String>) -> ConsumerOptions {
        let queue = queue.into();
        ConsumerOptions {
            name: queue.clone(),
            queue,
            concurrency: 4,
            max_batch: 16,
            lock_for: Duration::from_secs(30),
            receive_wait: Duration::from_secs(1),
            retry_delay: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// What a [`Consumer::run`] did, returned when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerReport {
    /// Handled and completed.
    pub completed: u64,
    /// Failed with [`HandlerError::Retry`] (or panicked) and abandoned for a later retry.
    pub abandoned: u64,
    /// Rejected and dead-lettered.
    pub dead_lettered: u64,
    /// Whose lock was lost before settling (they are redelivered; the inbox dedupes).
    pub lock_lost: u64,
    /// Whose handler panicked (also counted in `abandoned` when the abandon succeeded).
    pub panicked: u64,
    /// Failed receives (retried with backoff).
    pub receive_errors: u64,
    /// Handlers cancelled because they outlived the drain timeout.
    pub cancelled: u64,
}

/// How one message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    Completed,
    Abandoned { panicked: bool },
    DeadLettered,
    LockLost { panicked: bool },
    Failed { panicked: bool },
}

/// The consumer runner.
#[derive(Debug, Clone, Copy)]
pub struct Consumer;

impl Consumer {
    /// Receives from `options.queue` and runs `handler` on each message until `shutdown`, then
    /// stops receiving and lets in-flight handlers finish (up to `drain_timeout`).
    ///
    /// Each message runs in a `process <queue>` consumer span that continues the producer's
    /// `traceparent` (a new trace when absent or malformed): an OpenTelemetry span of the
    /// `options.name` role, exported when trace export is on (else only a child span id in the
    /// same trace), and a `queue.message` log span. It is the current context for the handler, so
    /// the mesh calls it makes and the messages it enqueues stay in the trace.
    pub async fn run<H: Handler>(
        queue: Arc<dyn Queue>,
        handler: H,
        options: ConsumerOptions,
        shutdown: Shutdown,
    ) -> ConsumerReport {
        let handler = Arc::new(handler);
        let options = Arc::new(options);
        let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
        let mut tasks: JoinSet<Settled> = JoinSet::new();
        let mut report = ConsumerReport::default();
        let mut error_delay = Duration::from_millis(100);
        tracing::info!(consumer = %options.name, queue = %options.queue, concurrency = options.concurrency, "consumer started");
        loop {
            while let Some(done) = tasks.try_join_next() {
                tally(&mut report, done);
            }
            // Wait for a free slot before taking messages: a message never waits for a handler
            // while its lock runs.
            let first = tokio::select! {
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                _ = shutdown.wait() => break,
            };
            if shutdown.is_triggered() {
                break;
            }
            let room = (permits.available_permits() + 1).min(options.max_batch.max(1));
            let batch = match queue.receive(&options.queue, room, options.lock_for, options.receive_wait).await {
                Ok(batch) => {
                    error_delay = Duration::from_millis(100);
                    batch
                }
                Err(error) => {
                    report.receive_errors += 1;
                    tracing::warn!(consumer = %options.name, queue = %options.queue, %error, retry_in = ?error_delay, "receive failed");
                    drop(first);
                    tokio::select! {
                        _ = tokio::time::sleep(error_delay) => {}
                        _ = shutdown.wait() => break,
                    }
                    error_delay = (error_delay * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            let mut first = Some(first);
            for message in batch {
                let permit = match first.take() {
                    Some(permit) => permit,
                    // `room` counted free permits, and only this loop takes them.
                    None => match permits.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                };
                let (queue, handler, options) = (queue.clone(), handler.clone(), options.clone());
                tasks.spawn(async move {
                    let settled = handle_one(queue.as_ref(), handler.as_ref(), &options, message).await;
                    drop(permit);
                    settled
                });
            }
        }
        // Drain: no new messages; in-flight ones finish or are cancelled after the timeout.
        let in_flight = tasks.len();
        if in_flight > 0 {
            tracing::info!(consumer = %options.name, in_flight, "consumer draining");
        }
        let drained = tokio::time::timeout(options.drain_timeout, async {
            while let Some(done) = tasks.join_next().await {
                tally(&mut report, done);
            }
        })
        .await;
        if drained.is_err() {
            report.cancelled += tasks.len() as u64;
            tracing::warn!(consumer = %options.name, cancelled = tasks.len(), "drain timeout: cancelling handlers; their messages will be redelivered");
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
        }
        tracing::info!(consumer = %options.name, ?report, "consumer stopped");
        report
    }
}

fn tally(report: &mut ConsumerReport, done: Result<Settled, tokio::task::JoinError>) {
    match done {
        Ok(Settled::Completed) => report.completed += 1,
        Ok(Settled::Abandoned { panicked }) => {
            report.abandoned += 1;
            report.panicked += u64::from(panicked);
        }
        Ok(Settled::DeadLettered) => report.dead_lettered += 1,
        Ok(Settled::LockLost { panicked }) => {
            report.lock_lost += 1;
            report.panicked += u64::from(panicked);
        }
        Ok(Settled::Failed { panicked }) => report.panicked += u64::from(panicked),
        // Only cancellation gets here: panics inside handlers are caught in `handle_one`.
        Err(_) => report.cancelled += 1,
    }
}

async fn handle_one(
    queue: &dyn Queue,
    handler: &dyn Handler,
    options: &ConsumerOptions,
    message: ReceivedMessage,
) -> Settled {
    let cx = if trace::exporting() {
        let parent = trace::with_role(&trace::remote_parent(message.traceparent.as_deref(), None), &options.name);
        let attributes = vec![
            KeyValue::new("messaging.operation.type", "process"),
            KeyValue::new("messaging.destination.name", message.queue.clone()),
            KeyValue::new("messaging.message.id", message.id.clone()),
            KeyValue::new("messaging.consumer.group.name", options.name.clone()),
            KeyValue::new("kem.delivery_count", i64::from(message.delivery_count)),
        ];
        trace::start_span(&parent, format!("process {}", message.queue), SpanKind::Consumer, attributes)
    } else {
        // No span is exported: a child span id in the producer's trace still carries it on.
        let parent = message.traceparent.as_deref().and_then(TraceParent::parse);
        let context = parent.map(|p| p.child()).unwrap_or_else(TraceParent::new_root);
        trace::remote_parent(Some(&context.to_string()), None)
    };
    let context =
        trace::traceparent_of(&cx).as_deref().and_then(TraceParent::parse).unwrap_or_else(TraceParent::new_root);
    let span = tracing::info_span!(
        "queue.message",
        consumer = %options.name,
        queue = %message.queue,
        message_id = %message.id,
        delivery = message.delivery_count,
        trace_id = %context.trace_id(),
        traceparent = %context,
        parent_traceparent = message.traceparent.as_deref().unwrap_or(""),
    );
    let settled = async {
        let work = AssertUnwindSafe(handler.handle(message.clone())).catch_unwind();
        tokio::pin!(work);
        let renew_every = (options.lock_for / 3).max(Duration::from_millis(100));
        let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + renew_every, renew_every);
        let mut lock_held = true;
        let outcome = loop {
            tokio::select! {
                outcome = &mut work => break outcome,
                _ = renew.tick(), if lock_held => match queue.renew_lock(&message, options.lock_for).await {
                    Ok(_) => {}
                    Err(QueueError::LockLost { .. }) => {
                        // Keep going: the message will be redelivered, and the inbox makes
                        // the second run a no-op. Cancelling could leave external calls half done.
                        tracing::warn!("lock lost while handling; the message will be delivered again");
                        lock_held = false;
                    }
                    Err(error) => tracing::warn!(%error, "lock renewal failed; retrying at the next interval"),
                },
            }
        };
        settle(queue, options, &message, outcome).await
    }
    .instrument(span)
    .with_context(cx.clone())
    .await;
    let error = match settled {
        Settled::Completed => None,
        Settled::DeadLettered => Some("rejected; dead-lettered".to_owned()),
        Settled::Abandoned { .. } | Settled::LockLost { .. } | Settled::Failed { .. } => {
            Some(format!("not completed: {settled:?}"))
        }
    };
    trace::end_span(&cx, error);
    settled
}

async fn settle(
    queue: &dyn Queue,
    options: &ConsumerOptions,
    message: &ReceivedMessage,
    outcome: Result<Result<(), HandlerError>, Box<dyn std::any::Any + Send>>,
) -> Settled {
    let (result, panicked) = match outcome {
        Ok(Ok(())) => {
            return match queue.complete(message).await {
                Ok(()) => Settled::Completed,
                Err(QueueError::LockLost { .. }) => {
                    tracing::warn!("handled, but the lock was lost before completing; it will be delivered again");
                    Settled::LockLost { panicked: false }
                }
                Err(error) => {
                    tracing::warn!(%error, "handled, but completing failed; it will be delivered again");
                    Settled::Failed { panicked: false }
                }
            };
        }
        Ok(Err(HandlerError::Reject(reason))) => {
            tracing::warn!(%reason, "handler rejected the message; dead-lettering");
            return match queue.dead_letter(message, &reason).await {
                Ok(()) => Settled::DeadLettered,
                Err(QueueError::LockLost { .. }) => Settled::LockLost { panicked: false },
                Err(error) => {
                    tracing::warn!(%error, "dead-lettering failed; it will be delivered again");
                    Settled::Failed { panicked: false }
                }
            };
        }
        Ok(Err(HandlerError::Retry(reason))) => (reason, false),
        Err(panic) => {
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            (format!("handler panicked: {text}"), true)
        }
    };
    let delay = backoff(options, message.delivery_count);
    tracing::warn!(reason = %result, retry_in = ?delay, "handler failed; abandoning for a retry");
    match queue.abandon(message, delay).await {
        Ok(()) => Settled::Abandoned { panicked },
        Err(QueueError::LockLost { .. }) => Settled::LockLost { panicked },
        Err(error) => {
            tracing::warn!(%error, "abandon failed; the message returns when its lock expires");
            Settled::Failed { panicked }
        }
    }
}

/// `retry_delay * 2^(delivery-1)`, capped, with "equal jitter" (half fixed, half random) so
/// a burst of failures does not come back as a burst.
fn backoff(options: &ConsumerOptions, delivery_count: u32) -> Duration {
    let exponent = delivery_count.saturating_sub(1).min(20);
    let full = options.retry_delay.saturating_mul(1 << exponent).min(options.max_retry_delay);
    let half = full / 2;
    half + half.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_with_bounded_jitter() {
        let mut options = ConsumerOptions::new("q");
        options.retry_delay = Duration::from_millis(100);
        options.max_retry_delay = Duration::from_secs(1);
        for (delivery, full) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (30, 1000)] {
            let d = backoff(&options, delivery);
            let full = Duration::from_millis(full);
            assert!(d >= full / 2 && d <= full, "delivery {delivery}: {d:?} not in [{:?}, {full:?}]", full / 2);
        }
    }
}
