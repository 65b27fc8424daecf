//! Azure Service Bus behind the [`Queue`] trait, through `azure_messaging_servicebus` 0.21 (the
//! Service Bus REST API over HTTPS, signed with SAS tokens).
//!
//! # What comes from the crate and what is built here
//!
//! | `Queue` operation | how |
//! | --- | --- |
//! | `send` | crate as is: `QueueClient::send_message` (`POST /<queue>/messages`); id → `BrokerProperties.MessageId`, delay → `ScheduledEnqueueTimeUtc` (rounded *up* to the second), content type, `traceparent` and properties as custom-property headers (see [`properties`]) |
//! | `receive` | crate as is: `QueueClient::peek_lock_message2` (`POST /<queue>/messages/head?timeout=<wait>`), once per message up to `max`; the first call waits `wait` (whole seconds, rounded up), the others `timeout=0`. **Built on top:** `max_deliveries`, enforced here from `DeliveryCount` |
//! | `complete` | crate as is: `PeekLockResponse::delete_message` (`DELETE` the `Location` of the lock) |
//! | `abandon`, `retry_after` zero | crate as is: `PeekLockResponse::unlock_message` (`PUT` the lock location) |
//! | `abandon`, `retry_after` > 0 | **built on top** (REST has no delayed abandon): send a copy scheduled at now + `retry_after`, then complete the original. The copy's broker `MessageId` is `<id>~d<n>` so duplicate detection does not drop it; it carries the producer's id (`kem-message-id`) and the deliveries so far (`kem-prior-deliveries`), which the receiver adds to the copy's `DeliveryCount` |
//! | `renew_lock` | crate as is: `PeekLockResponse::renew_message_lock` (`POST` the lock location); REST does not return the new expiry, so it is reported as now + [`ServiceBusConfig::lock_duration`] |
//! | `dead_letter` | **built on top** (REST cannot dead-letter): send a copy to `<queue>-deadletter` ([`dead_letter_queue`]) with reason, time and the last delivery's details as properties, then complete the original |
//! | `dead_letters` | **built on top**: peek-lock up to `max` messages of `<queue>-deadletter` (crate), then unlock each (crate): the dead letters stay, but each inspection counts as a delivery of the dead-letter queue, so give that queue a high `MaxDeliveryCount` |
//!
//! Also built here: the HTTP transport (reqwest 0.13 on rustls + ring instead of azure_core's
//! reqwest 0.12 backend) and the custom endpoint (requests for `https://<ns>.servicebus.windows.net`
//! are sent to it, SAS tokens unchanged). SAS signing is the crate's.
//!
//! # Semantics and limits
//!
//! - Locks: Service Bus takes the lock duration from the queue's `LockDuration`; the `lock_for` of
//!   `receive` and `renew_lock` cannot change it.
//! - The crate keeps a lock's location inside the `PeekLockResponse` it returns, so this adapter
//!   holds those (by lock token) until the message is settled: `complete`, `abandon`,
//!   `dead_letter` and `renew_lock` must be called on the instance that received the message,
//!   otherwise they report `LockLost` (and the message is redelivered after its lock expires).
//! - Bodies: the crate carries bodies as strings; non-UTF-8 bodies are sent base64 and marked.
//!   A non-UTF-8 body from another producer cannot be received (the crate fails to read it); it is
//!   redelivered until the queue's own `MaxDeliveryCount` moves it to `$DeadLetterQueue`.
//! - Copies (delayed abandon, dead letters) are made only after renewing the original's lock, so
//!   an expired lock fails with `LockLost` before any copy exists; a lock lost in the short window
//!   between the copy and the complete duplicates the message, which consumers' inboxes
//!   deduplicate on the id.
//! - Errors: 401/403 → `Unavailable` naming the credentials; 404/410 on lock operations →
//!   `LockLost`; 404/410 on send/receive (no such queue), 400 and 413 → `Invalid`;
//!   408, 429, 5xx, timeouts and connection failures → `Unavailable`.
//!
//! **Verified only against the local contract server** of the kit tests (`tests/kit/servicebus`),
//! which implements the REST contract for exactly these calls; no Azure namespace was reachable.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use azure_core::HttpClient;
use azure_core::error::ErrorKind;
use azure_core::headers::Headers;
use azure_messaging_servicebus::prelude::QueueClient;
use azure_messaging_servicebus::service_bus::PeekLockResponse;

use super::{DeadLetter, OutgoingMessage, Queue, QueueError, ReceivedMessage};

mod config;
mod transport;
mod wire;

pub use config::{ServiceBusConfig, ServiceBusConfigError};
pub use wire::properties;

use transport::{Transport, error_chain};
use wire::{Incoming, Outgoing, copy_id, unix_millis};

/// Suffix of the queue that [`Queue::dead_letter`] forwards to.
pub const DEAD_LETTER_SUFFIX: &str = "-deadletter";

/// How long after its lock expired a held lock is forgotten (a settle after that reports
/// `LockLost` without asking Service Bus).
const FORGET_AFTER: Duration = Duration::from_secs(300);

/// How much of a reason or a Service Bus error text is kept.
const MAX_TEXT: usize = 1024;

/// The queue dead letters of `queue` are kept in: `<queue>-deadletter`. It must exist.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}{DEAD_LETTER_SUFFIX}")
}

/// A [`Queue`] on one Azure Service Bus namespace.
pub struct ServiceBusQueue {
    http: Arc<dyn HttpClient>,
    config: ServiceBusConfig,
    /// Locks this instance holds, by lock token.
    held: Mutex<HashMap<String, Held>>,
}

struct Held {
    lock: Arc<PeekLockResponse>,
    locked_until: SystemTime,
}

impl fmt::Debug for ServiceBusQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceBusQueue")
            .field("namespace", &self.config.namespace)
            .field("key_name", &self.config.key_name)
            .field("endpoint", &self.config.endpoint)
            .field("held_locks", &self.held().len())
            .finish_non_exhaustive()
    }
}

/// What was being done, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Send,
    Receive,
    Complete,
    Abandon,
    Renew,
    DeadLetter,
    ReadDeadLetters,
}

impl Op {
    /// Operations on an existing lock, where "not found" means the lock is gone.
    fn on_lock(self) -> bool {
        matches!(self, Op::Complete | Op::Abandon | Op::Renew | Op::DeadLetter)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Send => "send to",
            Op::Receive => "receive from",
            Op::Complete => "complete a message of",
            Op::Abandon => "abandon a message of",
            Op::Renew => "renew a lock in",
            Op::DeadLetter => "dead-letter a message of",
            Op::ReadDeadLetters => "read the dead letters of",
        })
    }
}

impl ServiceBusQueue {
    /// A queue client for the namespace of `config`. Nothing is sent until the first call.
    pub fn new(config: ServiceBusConfig) -> Result<Self, ServiceBusConfigError> {
        let endpoint = config.validate()?;
        let http = Arc::new(Transport::new(&config.namespace, endpoint, config.request_timeout)?);
        Ok(ServiceBusQueue { http, config, held: Mutex::new(HashMap::new()) })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        // The map stays consistent even if a holder panicked: every update is a single insert/remove.
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The crate's client for one queue (cheap: it holds the shared transport).
    fn client(&self, queue: &str) -> Result<QueueClient, QueueError> {
        check_queue_name(queue)?;
        QueueClient::new(
            self.http.clone(),
            self.config.namespace.clone(),
            queue,
            self.config.key_name.clone(),
            self.config.key.expose().to_owned(),
        )
        .map_err(|e| QueueError::Unavailable(format!("Service Bus client for {queue}: {}", error_chain(&e))))
    }

    /// The lock of `message` this instance holds.
    fn lock_of(&self, message: &ReceivedMessage) -> Result<Arc<PeekLockResponse>, QueueError> {
        self.held().get(&message.lock_token).map(|h| h.lock.clone()).ok_or_else(|| lock_lost(message))
    }

    /// Maps the result of settling `message` (complete, unlock), forgetting its lock once the
    /// message is settled or the lock is gone.
    fn settled<T>(&self, message: &ReceivedMessage, op: Op, result: azure_core::Result<T>) -> Result<T, QueueError> {
        let result = result.map_err(|e| self.failure(op, &message.queue, Some(&message.id), &e));
        if matches!(result, Ok(_) | Err(QueueError::LockLost { .. })) {
            self.held().remove(&message.lock_token);
        }
        result
    }

    /// Completes (deletes) the locked original.
    async fn delete(&self, message: &ReceivedMessage, op: Op) -> Result<(), QueueError> {
        let lock = self.lock_of(message)?;
        let result = lock.delete_message().await.map(drop);
        self.settled(message, op, result)
    }

    /// Renews the lock of `message`; returns the new expiry. REST does not return it: the
    /// renewal took effect no earlier than now, for the queue's lock duration.
    async fn renew(&self, message: &ReceivedMessage, op: Op) -> Result<SystemTime, QueueError> {
        let lock = self.lock_of(message)?;
        let result =
            lock.renew_message_lock().await.map_err(|e| self.failure(op, &message.queue, Some(&message.id), &e));
        let mut held = self.held();
        match result {
            Ok(()) => {
                let until = SystemTime::now() + self.config.lock_duration;
                if let Some(h) = held.get_mut(&message.lock_token) {
                    h.locked_until = until;
                }
                Ok(until)
            }
            Err(e) => {
                if matches!(e, QueueError::LockLost { .. }) {
                    held.remove(&message.lock_token);
                }
                Err(e)
            }
        }
    }

    /// Sends a copy of `message` to `queue`.
    async fn send_copy(
        &self,
        queue: &str,
        message: &ReceivedMessage,
        broker_id: String,
        scheduled: Option<SystemTime>,
        extra: Vec<(&'static str, String)>,
    ) -> Result<(), QueueError> {
        let outgoing = Outgoing {
            original_id: (broker_id != message.id).then_some(message.id.as_str()),
            broker_id,
            body: &message.body,
            content_type: &message.content_type,
            traceparent: message.traceparent.as_deref(),
            properties: &message.properties,
            scheduled,
            extra,
        };
        let (body, options) = outgoing.encode()?;
        self.client(queue)?
            .send_message(&body, Some(options))
            .await
            .map_err(|e| self.failure(Op::Send, queue, Some(&message.id), &e))
    }

    /// Peek-locks one message of `queue`, waiting up to `wait` for it.
    async fn lock_one(
        &self,
        client: &QueueClient,
        queue: &str,
        wait: Duration,
        op: Op,
    ) -> Result<Option<(PeekLockResponse, Headers)>, QueueError> {
        let response = client.peek_lock_message2(Some(wait)).await.map_err(|e| self.failure(op, queue, None, &e))?;
        let status = u16::from(*response.status());
        match status {
            204 => return Ok(None),
            200 | 201 => {}
            _ => return Err(self.status_failure(op, queue, None, status, error_detail(&response.body()))),
        }
        let Ok(headers) = response.custom_properties::<Headers>();
        if headers.get_optional_str(&azure_core::headers::LOCATION).is_none_or(str::is_empty) {
            return Err(QueueError::Unavailable(format!(
                "Service Bus locked a message of {queue} without a Location; it will be redelivered when the lock expires"
            )));
        }
        Ok(Some((response, headers)))
    }

    /// Prunes locks long expired (their messages were redelivered to someone else).
    fn forget_expired(&self) {
        let now = SystemTime::now();
        self.held().retain(|_, h| h.locked_until + FORGET_AFTER > now);
    }

    fn failure(&self, op: Op, queue: &str, id: Option<&str>, error: &azure_core::Error) -> QueueError {
        match error.kind() {
            ErrorKind::HttpResponse { status, error_code } => {
                self.status_failure(op, queue, id, u16::from(*status), error_code.as_deref().unwrap_or_default())
            }
            _ => QueueError::Unavailable(format!(
                "Service Bus: cannot {op} {queue}{}: {}",
                about(id),
                truncate(&error_chain(error))
            )),
        }
    }

    fn status_failure(&self, op: Op, queue: &str, id: Option<&str>, status: u16, detail: &str) -> QueueError {
        let detail = detail.trim();
        let detail = if detail.is_empty() { String::new() } else { format!(": {}", truncate(detail)) };
        let target = format!("{queue}{}", about(id));
        let key_name = &self.config.key_name;
        let namespace = &self.config.namespace;
        match status {
            401 => QueueError::Unavailable(format!(
                "Service Bus rejected the credentials (401) to {op} {target}: check the namespace {namespace:?}, \
                 SharedAccessKeyName {key_name:?} and SharedAccessKey{detail}"
            )),
            403 => QueueError::Unavailable(format!(
                "Service Bus refused (403) to {op} {target}: the credentials of policy {key_name:?} may lack the \
                 Send/Listen right, or a quota is exceeded or the message too large{detail}"
            )),
            404 | 410 if op.on_lock() => {
                QueueError::LockLost { queue: queue.to_owned(), id: id.unwrap_or_default().to_owned() }
            }
            404 | 410 => QueueError::Invalid(format!("Service Bus queue {queue} does not exist ({status}){detail}")),
            400 | 413 => {
                QueueError::Invalid(format!("Service Bus rejected the request to {op} {target} ({status}){detail}"))
            }
            408 | 429 | 500..=599 => {
                QueueError::Unavailable(format!("Service Bus could not {op} {target} ({status}), retry later{detail}"))
            }
            _ => QueueError::Unavailable(format!("Service Bus answered {status} to {op} {target}{detail}")),
        }
    }
}

#[async_trait::async_trait]
impl Queue for ServiceBusQueue {
    async fn send(&self, message: OutgoingMessage) -> Result<(), QueueError> {
        let scheduled = message.delay.filter(|d| !d.is_zero()).map(|d| SystemTime::now() + d);
        let outgoing = Outgoing {
            broker_id: message.id.clone(),
            original_id: None,
            body: &message.body,
            content_type: &message.content_type,
            traceparent: message.traceparent.as_deref(),
            properties: &message.properties,
            scheduled,
            extra: Vec::new(),
        };
        let (body, options) = outgoing.encode()?;
        self.client(&message.queue)?
            .send_message(&body, Some(options))
            .await
            .map_err(|e| self.failure(Op::Send, &message.queue, Some(&message.id), &e))?;
        tracing::debug!(queue = %message.queue, id = %message.id, "sent to Service Bus");
        Ok(())
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        lock_for: Duration,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let client = self.client(queue)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        if lock_for != self.config.lock_duration {
            tracing::trace!(queue, ?lock_for, lock_duration = ?self.config.lock_duration,
                "Service Bus locks for the queue's LockDuration, not per receive");
        }
        self.forget_expired();
        // The REST timeout is in whole seconds: round up so `wait` is never cut short.
        let mut wait = Some(Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0)));
        let mut out = Vec::new();
        // Bounded: messages dead-lettered on the way do not count against `max`, but against this.
        for _ in 0..max.saturating_mul(2) {
            if out.len() == max {
                break;
            }
            let locked = match self.lock_one(&client, queue, wait.take().unwrap_or_default(), Op::Receive).await {
                Ok(Some(locked)) => locked,
                Ok(None) => break,
                Err(e) if out.is_empty() => return Err(e),
                Err(e) => {
                    // Hand over what is locked already; the rest is received next time.
                    tracing::warn!(queue, error = %e, "Service Bus receive stopped early");
                    break;
                }
            };
            let (response, headers) = locked;
            let Some(broker) = response.broker_properties() else {
                tracing::warn!(queue, "Service Bus locked a message without BrokerProperties; it will be redelivered");
                continue;
            };
            let message = Incoming { queue, body: response.body(), headers: &headers, broker: &broker }.message();
            self.held().insert(
                message.lock_token.clone(),
                Held { lock: Arc::new(response), locked_until: message.locked_until },
            );
            if message.delivery_count > self.config.max_deliveries {
                let reason = format!(
                    "delivered {} times, more than max_deliveries ({})",
                    message.delivery_count, self.config.max_deliveries
                );
                tracing::warn!(queue, id = %message.id, %reason, "dead-lettering a poison message");
                if let Err(e) = self.dead_letter(&message, &reason).await {
                    tracing::warn!(queue, id = %message.id, error = %e, "dead-lettering failed; it will be redelivered");
                }
                continue;
            }
            out.push(message);
        }
        Ok(out)
    }

    async fn complete(&self, message: &ReceivedMessage) -> Result<(), QueueError> {
        self.delete(message, Op::Complete).await
    }

    async fn abandon(&self, message: &ReceivedMessage, retry_after: Duration) -> Result<(), QueueError> {
        let lock = self.lock_of(message)?;
        if retry_after.is_zero() {
            let result = lock.unlock_message().await;
            return self.settled(message, Op::Abandon, result);
        }
        // Renew first: a lock already lost fails here, before a copy exists, and the lock
        // outlives the send.
        self.renew(message, Op::Abandon).await?;
        let generation = format!("d{}", message.delivery_count);
        let extra = vec![(properties::PRIOR_DELIVERIES, message.delivery_count.to_string())];
        let at = SystemTime::now() + retry_after;
        self.send_copy(&message.queue, message, copy_id(&message.id, &generation), Some(at), extra).await?;
        self.delete(message, Op::Abandon).await
    }

    async fn dead_letter(&self, message: &ReceivedMessage, reason: &str) -> Result<(), QueueError> {
        self.renew(message, Op::DeadLetter).await?;
        let extra = vec![
            (properties::DEAD_LETTER_REASON, truncate(reason)),
            (properties::DEAD_LETTERED_AT, unix_millis(SystemTime::now())),
            (properties::DEAD_LETTER_SOURCE, message.queue.clone()),
            (properties::DELIVERY_COUNT, message.delivery_count.to_string()),
            (properties::LOCK_TOKEN, message.lock_token.clone()),
            (properties::LOCKED_UNTIL, unix_millis(message.locked_until)),
            (properties::ENQUEUED_AT, unix_millis(message.enqueued_at)),
        ];
        self.send_copy(&dead_letter_queue(&message.queue), message, message.id.clone(), None, extra).await?;
        self.delete(message, Op::DeadLetter).await
    }

    async fn renew_lock(&self, message: &ReceivedMessage, lock_for: Duration) -> Result<SystemTime, QueueError> {
        if lock_for != self.config.lock_duration {
            tracing::trace!(queue = %message.queue, ?lock_for, "Service Bus renews for the queue's LockDuration");
        }
        self.renew(message, Op::Renew).await
    }

    async fn dead_letters(&self, queue: &str, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        check_queue_name(queue)?;
        let dlq = dead_letter_queue(queue);
        let client = self.client(&dlq)?;
        let mut locked = Vec::new();
        let mut failure = None;
        for _ in 0..max {
            match self.lock_one(&client, &dlq, Duration::ZERO, Op::ReadDeadLetters).await {
                Ok(Some(one)) => locked.push(one),
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let mut letters = Vec::with_capacity(locked.len());
        for (response, headers) in &locked {
            match response.broker_properties() {
                Some(broker) => letters
                    .push(Incoming { queue: &dlq, body: response.body(), headers, broker: &broker }.dead_letter()),
                None => tracing::warn!(queue = %dlq, "a dead letter without BrokerProperties was skipped"),
            }
        }
        // Put them back: inspection must not consume them (their locks would expire anyway).
        for (response, _) in &locked {
            if let Err(e) = response.unlock_message().await {
                tracing::debug!(queue = %dlq, error = %error_chain(&e), "unlocking an inspected dead letter failed");
            }
        }
        match failure {
            Some(e) if letters.is_empty() => Err(e),
            _ => Ok(letters),
        }
    }
}

/// Queue names go into URLs verbatim: letters, digits, `.`, `-`, `_`, and `/` between segments.
fn check_queue_name(queue: &str) -> Result<(), QueueError> {
    let valid = !queue.is_empty()
        && queue.len() <= 260
        && queue.split('/').all(|segment| !segment.is_empty() && segment != "." && segment != "..")
        && queue.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_/".contains(&b));
    if valid { Ok(()) } else { Err(QueueError::Invalid(format!("invalid Service Bus queue name {queue:?}"))) }
}

/// The `<Detail>` of a Service Bus XML error body, or the body.
fn error_detail(body: &str) -> &str {
    body.split_once("<Detail>").and_then(|(_, rest)| rest.split_once("</Detail>")).map_or(body, |(detail, _)| detail)
}

fn lock_lost(message: &ReceivedMessage) -> QueueError {
    QueueError::LockLost { queue: message.queue.clone(), id: message.id.clone() }
}

fn about(id: Option<&str>) -> String {
    id.map(|id| format!(" (message {id})")).unwrap_or_default()
}

fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    fn queue() -> ServiceBusQueue {
        let config = ServiceBusConfig::new("kem-test", "policy", Secret::new("k")).with_endpoint("http://127.0.0.1:9");
        ServiceBusQueue::new(config).expect("queue")
    }

    #[test]
    fn statuses_map_to_queue_errors() {
        let q = queue();
        let e = q.status_failure(Op::Send, "jobs", Some("m"), 401, "");
        assert!(matches!(&e, QueueError::Unavailable(m) if m.contains("credentials")), "{e}");
        assert!(matches!(q.status_failure(Op::Complete, "jobs", Some("m"), 404, ""), QueueError::LockLost { .. }));
        assert!(matches!(q.status_failure(Op::Renew, "jobs", Some("m"), 410, ""), QueueError::LockLost { .. }));
        assert!(matches!(q.status_failure(Op::Receive, "jobs", None, 410, ""), QueueError::Invalid(_)));
        assert!(matches!(q.status_failure(Op::Send, "jobs", None, 400, ""), QueueError::Invalid(_)));
        for status in [429, 500, 503] {
            assert!(matches!(q.status_failure(Op::Send, "jobs", None, status, ""), QueueError::Unavailable(_)));
        }
    }

    #[test]
    fn error_details_are_taken_from_service_bus_xml() {
        let body = "<Error><Code>401</Code><Detail>InvalidSignature: bad. TrackingId:1</Detail></Error>";
        assert_eq!(error_detail(body), "InvalidSignature: bad. TrackingId:1");
        assert_eq!(error_detail("plain text"), "plain text");
    }

    #[test]
    fn queue_names_cannot_escape_the_url_path() {
        assert!(check_queue_name("ai-event-generation").is_ok());
        for bad in ["", "a?b", "a#b", "../x", "/x", "a b", "a//b"] {
            assert!(check_queue_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let config = ServiceBusConfig::new("kem-test", "policy", Secret::new("very-secret-key"));
        let q = ServiceBusQueue::new(config).expect("queue");
        assert!(!format!("{q:?}").contains("very-secret-key"));
    }
}
