//! How a kem message is laid out on the Service Bus REST wire, and back.
//!
//! Over HTTP a message is a body, a `Content-Type`, a `BrokerProperties` JSON header (broker-owned
//! fields such as `MessageId` and `ScheduledEnqueueTimeUtc`) and one HTTP header per custom
//! property. HTTP header names are case-insensitive and header values must be visible ASCII, so:
//!
//! - every custom property value is sent as a JSON string literal with non-ASCII escaped
//!   (`"caf\u00e9"`), which is also how Service Bus returns string properties on receive;
//! - the application property *names* (with their case) travel in [`properties::PROPERTY_NAMES`],
//!   so the receiver knows which headers are properties and how they were spelled;
//! - a body that is not UTF-8 (the crate sends and receives bodies as `String`) is sent base64 with
//!   [`properties::BODY_ENCODING`] = `base64`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azure_core::headers::{HeaderName, Headers};
use azure_messaging_servicebus::service_bus::{BrokerProperties, SendMessageOptions, SettableBrokerProperties};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;

use crate::queue::{DeadLetter, QueueError, ReceivedMessage};

/// Names of the custom properties this adapter puts on the wire. Application properties may not
/// use the `kem-` prefix.
pub mod properties {
    /// Comma-separated names (original case) of the application properties of the message.
    pub const PROPERTY_NAMES: &str = "kem-properties";
    /// W3C trace context of the producer (the name OpenTelemetry-aware Service Bus SDKs use too).
    pub const TRACEPARENT: &str = "traceparent";
    /// `base64` when the body is not UTF-8 and was encoded to fit the REST client's string body.
    pub const BODY_ENCODING: &str = "kem-body-encoding";
    /// The producer's message id, when the broker `MessageId` had to differ (re-sent copies).
    pub const MESSAGE_ID: &str = "kem-message-id";
    /// Deliveries of earlier copies: a delayed abandon re-sends the message, whose broker
    /// `DeliveryCount` starts again at 1; the adapter adds this.
    pub const PRIOR_DELIVERIES: &str = "kem-prior-deliveries";
    /// Dead letters: why.
    pub const DEAD_LETTER_REASON: &str = "kem-dead-letter-reason";
    /// Dead letters: when, in milliseconds since the Unix epoch.
    pub const DEAD_LETTERED_AT: &str = "kem-dead-lettered-at";
    /// Dead letters: the queue the message was dead-lettered from.
    pub const DEAD_LETTER_SOURCE: &str = "kem-dead-letter-source";
    /// Dead letters: the delivery count when it was dead-lettered.
    pub const DELIVERY_COUNT: &str = "kem-delivery-count";
    /// Dead letters: the lock token of that last delivery.
    pub const LOCK_TOKEN: &str = "kem-lock-token";
    /// Dead letters: until when that last delivery was locked, in ms since the Unix epoch.
    pub const LOCKED_UNTIL: &str = "kem-locked-until";
    /// Dead letters: when the message was first enqueued, in ms since the Unix epoch.
    pub const ENQUEUED_AT: &str = "kem-enqueued-at";
}

/// Service Bus limits `MessageId` to 128 characters.
const MAX_MESSAGE_ID_LEN: usize = 128;

/// Headers an application property may not be named after: HTTP's own, and the ones Service
/// Bus or this adapter give a meaning.
const RESERVED_HEADERS: [&str; 21] = [
    "accept",
    "accept-encoding",
    "authorization",
    "brokerproperties",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "date",
    "expect",
    "host",
    "keep-alive",
    "location",
    "proxy-authorization",
    "server",
    "te",
    "traceparent",
    "tracestate",
    "transfer-encoding",
    "upgrade",
    "user-agent",
];

/// Everything needed to put one message on the wire.
pub(crate) struct Outgoing<'a> {
    /// Broker `MessageId` (duplicate detection key).
    pub broker_id: String,
    /// The producer's id, when it differs from `broker_id`.
    pub original_id: Option<&'a str>,
    pub body: &'a [u8],
    pub content_type: &'a str,
    pub traceparent: Option<&'a str>,
    pub properties: &'a BTreeMap<String, String>,
    /// Not visible before this instant.
    pub scheduled: Option<SystemTime>,
    /// Further `kem-` properties (re-sends, dead letters).
    pub extra: Vec<(&'static str, String)>,
}

impl Outgoing<'_> {
    /// The body and send options the crate's `send_message` takes.
    pub(crate) fn encode(&self) -> Result<(String, SendMessageOptions), QueueError> {
        if self.broker_id.is_empty() || self.broker_id.chars().count() > MAX_MESSAGE_ID_LEN {
            return Err(QueueError::Invalid(format!(
                "a Service Bus message id must be 1 to {MAX_MESSAGE_ID_LEN} characters, got {:?}",
                self.broker_id
            )));
        }
        let mut custom = std::collections::HashMap::new();
        let body = match std::str::from_utf8(self.body) {
            Ok(text) => text.to_owned(),
            Err(_) => {
                custom.insert(properties::BODY_ENCODING.to_owned(), quote("base64"));
                STANDARD.encode(self.body)
            }
        };
        let mut names = Vec::with_capacity(self.properties.len());
        let mut seen = std::collections::HashSet::new();
        for (name, value) in self.properties {
            validate_property_name(name)?;
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(QueueError::Invalid(format!(
                    "application properties {name:?} and another differ only in case; Service Bus over HTTP \
                     carries properties as case-insensitive headers"
                )));
            }
            custom.insert(name.clone(), quote(value));
            names.push(name.as_str());
        }
        if !names.is_empty() {
            custom.insert(properties::PROPERTY_NAMES.to_owned(), quote(&names.join(",")));
        }
        if let Some(traceparent) = self.traceparent {
            custom.insert(properties::TRACEPARENT.to_owned(), quote(traceparent));
        }
        if let Some(id) = self.original_id {
            custom.insert(properties::MESSAGE_ID.to_owned(), quote(id));
        }
        for (name, value) in &self.extra {
            custom.insert((*name).to_owned(), quote(value));
        }
        let content_type = (!self.content_type.is_empty()).then(|| self.content_type.to_owned());
        if let Some(ct) = &content_type
            && !is_header_value(ct)
        {
            return Err(QueueError::Invalid(format!("content type {ct:?} is not a valid HTTP header value")));
        }
        let broker = SettableBrokerProperties {
            message_id: Some(self.broker_id.clone()),
            scheduled_enqueue_time_utc: self.scheduled.map(whole_second_at_or_after),
            ..Default::default()
        };
        let options =
            SendMessageOptions { content_type, broker_properties: Some(broker), custom_properties: Some(custom) };
        Ok((body, options))
    }
}

/// `ScheduledEnqueueTimeUtc` travels as RFC 1123 (whole seconds): round *up* so a delay is never
/// shortened.
fn whole_second_at_or_after(at: SystemTime) -> OffsetDateTime {
    let at = OffsetDateTime::from(at);
    if at.nanosecond() == 0 {
        return at;
    }
    at.replace_nanosecond(0).map_or(at, |t| t + Duration::from_secs(1))
}

fn validate_property_name(name: &str) -> Result<(), QueueError> {
    let token = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !token {
        return Err(QueueError::Invalid(format!(
            "application property name {name:?} must be an HTTP token (letters, digits, !#$%&'*+-.^_`|~): Service Bus \
             over HTTP carries each property as a header"
        )));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("kem-") || lower.starts_with("x-ms-") || RESERVED_HEADERS.contains(&lower.as_str()) {
        return Err(QueueError::Invalid(format!("application property name {name:?} is reserved")));
    }
    Ok(())
}

fn is_header_value(value: &str) -> bool {
    value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
}

/// A JSON string literal that is a valid HTTP header value: control characters, `"`, `\` and
/// everything outside ASCII escaped.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// The string a property header carries: a JSON string literal decoded, anything else as is
/// (Service Bus returns non-string properties, e.g. numbers, unquoted).
pub(crate) fn unquote(value: &str) -> String {
    if value.len() >= 2
        && value.starts_with('"')
        && value.ends_with('"')
        && let Ok(decoded) = serde_json::from_str::<String>(value)
    {
        return decoded;
    }
    value.to_owned()
}

/// A peek-locked message as the REST API returned it.
pub(crate) struct Incoming<'a> {
    pub queue: &'a str,
    pub body: String,
    pub headers: &'a Headers,
    pub broker: &'a BrokerProperties,
}

impl Incoming<'_> {
    fn property(&self, name: &str) -> Option<String> {
        self.headers.get_optional_str(&HeaderName::from(name.to_ascii_lowercase())).map(unquote)
    }

    fn millis(&self, name: &str) -> Option<SystemTime> {
        let ms = self.property(name)?.parse::<u64>().ok()?;
        UNIX_EPOCH.checked_add(Duration::from_millis(ms))
    }

    /// The message as the `Queue` trait shows it.
    pub(crate) fn message(&self) -> ReceivedMessage {
        let body = match self.property(properties::BODY_ENCODING).as_deref() {
            Some("base64") => STANDARD.decode(self.body.as_bytes()).unwrap_or_else(|e| {
                tracing::warn!(queue = self.queue, id = %self.broker.message_id, error = %e,
                    "Service Bus message marked base64 is not; handing over the raw body");
                self.body.clone().into_bytes()
            }),
            _ => self.body.clone().into_bytes(),
        };
        let mut app = BTreeMap::new();
        if let Some(names) = self.property(properties::PROPERTY_NAMES) {
            for name in names.split(',').filter(|n| !n.is_empty()) {
                if let Some(value) = self.property(name) {
                    app.insert(name.to_owned(), value);
                }
            }
        }
        let prior = self.property(properties::PRIOR_DELIVERIES).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
        let delivery_count = u32::try_from(self.broker.delivery_count).unwrap_or(0).max(1).saturating_add(prior);
        ReceivedMessage {
            queue: self.queue.to_owned(),
            id: self.property(properties::MESSAGE_ID).unwrap_or_else(|| self.broker.message_id.clone()),
            body,
            content_type: self.headers.get_optional_string(&azure_core::headers::CONTENT_TYPE).unwrap_or_default(),
            traceparent: self.property(properties::TRACEPARENT),
            properties: app,
            delivery_count,
            lock_token: self.broker.lock_token.clone(),
            locked_until: SystemTime::from(self.broker.locked_until_utc),
            enqueued_at: self.broker.enqueued_time_utc.map_or_else(SystemTime::now, SystemTime::from),
        }
    }

    /// The dead letter this message (read from a dead-letter queue) records.
    pub(crate) fn dead_letter(&self) -> DeadLetter {
        let mut message = self.message();
        if let Some(source) = self.property(properties::DEAD_LETTER_SOURCE) {
            message.queue = source;
        }
        if let Some(count) = self.property(properties::DELIVERY_COUNT).and_then(|c| c.parse().ok()) {
            message.delivery_count = count;
        }
        if let Some(token) = self.property(properties::LOCK_TOKEN) {
            message.lock_token = token;
        }
        if let Some(until) = self.millis(properties::LOCKED_UNTIL) {
            message.locked_until = until;
        }
        if let Some(at) = self.millis(properties::ENQUEUED_AT) {
            message.enqueued_at = at;
        }
        DeadLetter {
            message,
            reason: self.property(properties::DEAD_LETTER_REASON).unwrap_or_default(),
            dead_lettered_at: self.millis(properties::DEAD_LETTERED_AT).unwrap_or(UNIX_EPOCH),
        }
    }
}

/// Milliseconds since the Unix epoch, as the dead-letter properties carry instants.
pub(crate) fn unix_millis(at: SystemTime) -> String {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis().to_string()
}

/// A broker `MessageId` for a re-sent copy of `id`: distinct from the original so a queue with
/// duplicate detection does not drop it, and from other copies by `generation`.
pub(crate) fn copy_id(id: &str, generation: &str) -> String {
    let suffix = format!("~{generation}");
    let keep = MAX_MESSAGE_ID_LEN.saturating_sub(suffix.chars().count());
    let mut out: String = id.chars().take(keep).collect();
    out.push_str(&suffix);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_through_ascii_header_values() {
        for value in ["plain", "with \"quotes\" and \\", "café ☕ 𝄞", "", "tab\tnew\nline"] {
            let quoted = quote(value);
            assert!(quoted.bytes().all(|b| (0x20..0x7f).contains(&b)), "{quoted}");
            assert_eq!(unquote(&quoted), value);
        }
        assert_eq!(unquote("12345"), "12345", "non-string properties come back unquoted");
    }

    #[test]
    fn property_names_must_be_tokens_and_not_reserved() {
        assert!(validate_property_name("tenant-id").is_ok());
        for bad in ["", "has space", "kem-x", "Content-Type", "traceparent", "x-ms-foo", "a,b"] {
            assert!(matches!(validate_property_name(bad), Err(QueueError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn schedules_round_up_to_whole_seconds() {
        let at = UNIX_EPOCH + Duration::from_millis(10_250);
        assert_eq!(whole_second_at_or_after(at).unix_timestamp(), 11);
        assert_eq!(whole_second_at_or_after(UNIX_EPOCH + Duration::from_secs(10)).unix_timestamp(), 10);
    }

    #[test]
    fn copy_ids_stay_within_the_broker_limit() {
        assert_eq!(copy_id("m-1", "r3"), "m-1~r3");
        let long = "x".repeat(200);
        assert_eq!(copy_id(&long, "r3").chars().count(), MAX_MESSAGE_ID_LEN);
    }

    #[test]
    fn binary_bodies_are_sent_base64_and_marked() {
        let props = BTreeMap::from([("Tenant".to_owned(), "t1".to_owned())]);
        let out = Outgoing {
            broker_id: "m".to_owned(),
            original_id: None,
            body: &[0xff, 0x00, 0x10],
            content_type: "application/octet-stream",
            traceparent: None,
            properties: &props,
            scheduled: None,
            extra: Vec::new(),
        };
        let (body, options) = out.encode().expect("valid message");
        assert_eq!(body, STANDARD.encode([0xff, 0x00, 0x10]));
        let custom = options.custom_properties.expect("custom properties");
        assert_eq!(custom.get(properties::BODY_ENCODING).map(String::as_str), Some("\"base64\""));
        assert_eq!(custom.get(properties::PROPERTY_NAMES).map(String::as_str), Some("\"Tenant\""));
    }
}
