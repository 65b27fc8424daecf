//! A local Azure Service Bus: the REST contract of exactly the calls the adapter makes, on
//! 127.0.0.1, with the real behaviour those calls depend on.
//!
//! - every request must carry `Authorization: SharedAccessSignature sr=..&sig=..&se=..&skn=..`;
//!   the signature is recomputed (HMAC-SHA256 of `<url-encoded sr>\n<se>` with the policy key),
//!   the policy name, expiry and audience (`sr` must be a prefix of the requested Azure URL) are
//!   checked, and anything else is answered `401` with Service Bus's XML error body;
//! - `POST /<queue>/messages`: send, reading `BrokerProperties` (`MessageId`,
//!   `ScheduledEnqueueTimeUtc`), `Content-Type` and custom-property headers → `201`;
//! - `POST /<queue>/messages/head?timeout=<s>`: peek-lock, holding the call up to `timeout`
//!   seconds → `201` with the body, `BrokerProperties` (RFC 1123 dates), `Location` of the lock
//!   and the custom properties (string values quoted), or `204` when nothing arrived;
//! - `DELETE` / `PUT` / `POST` on the lock location: complete / unlock / renew → `200`, or `404`
//!   when the lock expired, was released, or the message is gone;
//! - locks expire after the queue's lock duration and the message is delivered again with a
//!   higher `DeliveryCount`; unknown queues answer `410`;
//! - fault injection: answer every request with a status, or stall before answering.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kem_kit::Secret;
use kem_kit::queue::servicebus::ServiceBusConfig;
use rand::Rng;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc2822;

/// The namespace the server plays.
pub const NAMESPACE: &str = "kem-contract";
/// The shared access policy it accepts.
pub const KEY_NAME: &str = "kem-test-send-listen";
/// That policy's key.
pub const KEY: &str = "bG9jYWwtY29udHJhY3Qtc2VydmVyLWtleQ==";

/// Request headers that are transport or broker headers, not custom properties.
const NOT_PROPERTIES: [&str; 11] = [
    "accept",
    "accept-encoding",
    "authorization",
    "brokerproperties",
    "connection",
    "content-length",
    "content-type",
    "host",
    "transfer-encoding",
    "user-agent",
    "expect",
];

/// A running contract server; stops when dropped.
pub struct ContractServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    lock_duration: Duration,
    state: Mutex<Broker>,
}

#[derive(Default)]
struct Broker {
    queues: HashMap<String, BTreeMap<i64, Stored>>,
    next_sequence: i64,
    fail_with: Option<StatusCode>,
    stall: Option<Duration>,
    rejected: usize,
}

struct Stored {
    message_id: String,
    body: Bytes,
    content_type: Option<String>,
    /// Custom properties: lower-case header name → string value.
    properties: Vec<(String, String)>,
    enqueued_at: SystemTime,
    visible_at: SystemTime,
    delivery_count: i64,
    lock: Option<(String, SystemTime)>,
}

impl Stored {
    fn available(&self, now: SystemTime) -> bool {
        self.visible_at <= now && self.lock.as_ref().is_none_or(|(_, until)| *until <= now)
    }
}

impl Drop for ContractServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ContractServer {
    /// Serves `queues` (each with its `<queue>-deadletter`), locking messages for `lock_duration`.
    pub async fn start(queues: &[&str], lock_duration: Duration) -> ContractServer {
        let mut broker = Broker { next_sequence: 1, ..Broker::default() };
        for queue in queues {
            broker.queues.insert((*queue).to_owned(), BTreeMap::new());
            broker.queues.insert(kem_kit::queue::servicebus::dead_letter_queue(queue), BTreeMap::new());
        }
        let shared = Arc::new(Shared { lock_duration, state: Mutex::new(broker) });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind contract server");
        let addr = listener.local_addr().expect("contract server address");
        let app = axum::Router::new().fallback(handle).with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("contract server");
        });
        ContractServer { addr, shared, task }
    }

    /// The adapter configuration that reaches this server with the right credentials.
    pub fn config(&self) -> ServiceBusConfig {
        self.config_with_key(KEY)
    }

    /// The same with another key.
    pub fn config_with_key(&self, key: &str) -> ServiceBusConfig {
        ServiceBusConfig::new(NAMESPACE, KEY_NAME, Secret::new(key))
            .with_endpoint(format!("http://{}", self.addr))
            .with_lock_duration(self.shared.lock_duration)
    }

    fn broker(&self) -> std::sync::MutexGuard<'_, Broker> {
        self.shared.broker()
    }

    /// Answers every request with `status` (or normally again with `None`).
    pub fn fail_with(&self, status: Option<u16>) {
        self.broker().fail_with = status.map(|s| StatusCode::from_u16(s).expect("status"));
    }

    /// Waits this long before answering any request.
    pub fn stall(&self, delay: Option<Duration>) {
        self.broker().stall = delay;
    }

    /// Messages in `queue`, visible or not.
    pub fn message_count(&self, queue: &str) -> usize {
        self.broker().queues.get(queue).map_or(0, BTreeMap::len)
    }

    /// Requests refused for their authorization.
    pub fn rejected(&self) -> usize {
        self.broker().rejected
    }
}

impl Shared {
    fn broker(&self) -> std::sync::MutexGuard<'_, Broker> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (fail_with, stall) = {
        let broker = shared.broker();
        (broker.fail_with, broker.stall)
    };
    if let Some(delay) = stall {
        // The injected broker stall: the client's real timeouts are what is tested.
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = fail_with {
        return error(status, "The service is unavailable (injected fault).");
    }
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    if let Err(reason) = authorize(&headers, path_and_query) {
        shared.broker().rejected += 1;
        return error(StatusCode::UNAUTHORIZED, &reason);
    }
    let segments: Vec<&str> = uri.path().trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (Method::POST, [queue, "messages"]) => send(&shared, queue, &headers, body),
        (Method::POST, [queue, "messages", "head"]) => peek_lock(&shared, queue, uri.query()).await,
        (method, [queue, "messages", message, lock]) => lock_operation(&shared, &method, queue, message, lock),
        _ => error(StatusCode::BAD_REQUEST, "Unsupported operation."),
    }
}

/// Checks the SAS token as Service Bus does.
fn authorize(headers: &HeaderMap, path_and_query: &str) -> Result<(), String> {
    let value = headers.get(header::AUTHORIZATION).ok_or("MissingToken: the request has no authorization header.")?;
    let value = value.to_str().map_err(|_| "InvalidToken: not ASCII.")?;
    let token = value.strip_prefix("SharedAccessSignature ").ok_or("InvalidToken: not a SharedAccessSignature.")?;
    let fields: HashMap<&str, &str> = token.split('&').filter_map(|kv| kv.split_once('=')).collect();
    let field = |name: &str| fields.get(name).copied().ok_or(format!("InvalidToken: no {name}."));
    let (sr, sig, se, skn) = (field("sr")?, field("sig")?, field("se")?, field("skn")?);
    if skn != KEY_NAME {
        return Err(format!("InvalidSignature: unknown policy {skn}."));
    }
    let expiry: i64 = se.parse().map_err(|_| "InvalidToken: se is not a number.")?;
    if expiry <= OffsetDateTime::now_utc().unix_timestamp() {
        return Err("ExpiredToken: the token has expired.".to_owned());
    }
    let audience = form_decode(sr).to_ascii_lowercase();
    let resource = format!("https://{NAMESPACE}.servicebus.windows.net{path_and_query}").to_ascii_lowercase();
    if !resource.starts_with(&audience) {
        return Err(format!("InvalidAudience: the token is for {audience}, not {resource}."));
    }
    let signature = STANDARD.decode(form_decode(sig)).map_err(|_| "InvalidSignature: not base64.")?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, KEY.as_bytes());
    ring::hmac::verify(&key, format!("{sr}\n{se}").as_bytes(), &signature)
        .map_err(|_| "InvalidSignature: The token has an invalid signature.".to_owned())
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space).
fn form_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (byte, None) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn send(shared: &Shared, queue: &str, headers: &HeaderMap, body: Bytes) -> Response {
    let broker_properties = match headers.get("brokerproperties").map(|v| v.to_str()) {
        None => serde_json::Value::Object(serde_json::Map::new()),
        Some(Ok(json)) => match serde_json::from_str(json) {
            Ok(value) => value,
            Err(_) => return error(StatusCode::BAD_REQUEST, "BrokerProperties is not JSON."),
        },
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "BrokerProperties is not ASCII."),
    };
    let now = SystemTime::now();
    let visible_at = match broker_properties.get("ScheduledEnqueueTimeUtc").and_then(|v| v.as_str()) {
        None => now,
        Some(at) => match OffsetDateTime::parse(at, &Rfc2822) {
            Ok(at) => SystemTime::from(at),
            Err(_) => return error(StatusCode::BAD_REQUEST, "ScheduledEnqueueTimeUtc is not an RFC 1123 date."),
        },
    };
    let mut properties = Vec::new();
    for (name, value) in headers {
        if NOT_PROPERTIES.contains(&name.as_str()) {
            continue;
        }
        let Ok(value) = value.to_str() else { return error(StatusCode::BAD_REQUEST, "A property is not ASCII.") };
        // Quoted values are strings; Service Bus would type unquoted ones (numbers, booleans).
        let value = serde_json::from_str::<String>(value).unwrap_or_else(|_| value.to_owned());
        properties.push((name.as_str().to_owned(), value));
    }
    let mut broker = shared.broker();
    let sequence = broker.next_sequence;
    broker.next_sequence += 1;
    let Some(messages) = broker.queues.get_mut(queue) else {
        return error(StatusCode::GONE, &format!("The messaging entity '{queue}' could not be found."));
    };
    let message_id = broker_properties
        .get("MessageId")
        .and_then(|v| v.as_str())
        .map_or_else(|| format!("{:032x}", rand::rng().random::<u128>()), str::to_owned);
    messages.insert(
        sequence,
        Stored {
            message_id,
            body,
            content_type: headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned),
            properties,
            enqueued_at: now,
            visible_at,
            delivery_count: 0,
            lock: None,
        },
    );
    StatusCode::CREATED.into_response()
}

async fn peek_lock(shared: &Shared, queue: &str, query: Option<&str>) -> Response {
    let timeout = match query.unwrap_or_default().split('&').find_map(|kv| kv.strip_prefix("timeout=")) {
        None => 60,
        Some(seconds) => match seconds.parse::<u64>() {
            Ok(seconds) => seconds,
            Err(_) => return error(StatusCode::BAD_REQUEST, "Invalid timeout."),
        },
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        if let Some(response) = lock_next(shared, queue) {
            return response;
        }
        if tokio::time::Instant::now() >= deadline {
            return StatusCode::NO_CONTENT.into_response();
        }
        // The long poll's recheck: expiring locks and schedules free messages but notify nobody.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Locks the first available message of `queue`, if any.
fn lock_next(shared: &Shared, queue: &str) -> Option<Response> {
    let mut broker = shared.broker();
    let Some(messages) = broker.queues.get_mut(queue) else {
        return Some(error(StatusCode::GONE, &format!("The messaging entity '{queue}' could not be found.")));
    };
    let now = SystemTime::now();
    let (&sequence, message) = messages.iter_mut().find(|(_, m)| m.available(now))?;
    let token = uuid_like();
    let until = now + shared.lock_duration;
    message.delivery_count += 1;
    message.lock = Some((token.clone(), until));
    let broker_properties = serde_json::json!({
        "DeliveryCount": message.delivery_count,
        "EnqueuedSequenceNumber": sequence,
        "EnqueuedTimeUtc": rfc1123(message.enqueued_at),
        "LockToken": token,
        "LockedUntilUtc": rfc1123(until),
        "MessageId": message.message_id,
        "SequenceNumber": sequence,
        "State": "Active",
        "TimeToLive": 922_337_203_685.477_6_f64,
    });
    let location = format!("https://{NAMESPACE}.servicebus.windows.net/{queue}/messages/{sequence}/{token}");
    let content_type =
        message.content_type.clone().unwrap_or_else(|| "application/atom+xml;type=entry;charset=utf-8".to_owned());
    let mut response = Response::new(Body::from(message.body.clone()));
    *response.status_mut() = StatusCode::CREATED;
    let headers = response.headers_mut();
    headers.insert("brokerproperties", header_value(&broker_properties.to_string()));
    headers.insert(header::LOCATION, header_value(&location));
    headers.insert(header::CONTENT_TYPE, header_value(&content_type));
    for (name, value) in &message.properties {
        if let Ok(name) = header::HeaderName::from_bytes(name.as_bytes()) {
            headers.insert(name, header_value(&ascii_json_string(value)));
        }
    }
    Some(response)
}

fn lock_operation(shared: &Shared, method: &Method, queue: &str, message: &str, lock: &str) -> Response {
    let mut broker = shared.broker();
    let Some(messages) = broker.queues.get_mut(queue) else {
        return error(StatusCode::GONE, &format!("The messaging entity '{queue}' could not be found."));
    };
    let now = SystemTime::now();
    let held = messages.iter().find(|(sequence, m)| {
        (sequence.to_string() == message || m.message_id == message)
            && m.lock.as_ref().is_some_and(|(token, until)| token == lock && *until > now)
    });
    let Some((&sequence, _)) = held else {
        return error(
            StatusCode::NOT_FOUND,
            "MessageLockLost: The lock supplied is invalid. Either the lock expired, or the message has already been \
             removed from the queue.",
        );
    };
    match *method {
        Method::DELETE => {
            messages.remove(&sequence);
        }
        Method::PUT => {
            if let Some(m) = messages.get_mut(&sequence) {
                m.lock = None;
            }
        }
        Method::POST => {
            if let Some(m) = messages.get_mut(&sequence) {
                m.lock = Some((lock.to_owned(), now + shared.lock_duration));
            }
        }
        _ => return error(StatusCode::METHOD_NOT_ALLOWED, "Unsupported method on a lock."),
    }
    StatusCode::OK.into_response()
}

/// Service Bus's error shape: `<Error><Code>..</Code><Detail>..</Detail></Error>`.
fn error(status: StatusCode, detail: &str) -> Response {
    let body = format!(
        "<Error><Code>{}</Code><Detail>{detail} TrackingId:{}, SystemTracker:{NAMESPACE}.servicebus.windows.net</Detail></Error>",
        status.as_u16(),
        uuid_like()
    );
    (status, [(header::CONTENT_TYPE, "application/xml; charset=utf-8")], body).into_response()
}

fn header_value(value: &str) -> HeaderValue {
    HeaderValue::from_str(value).expect("ASCII header value")
}

/// A JSON string literal in ASCII, as Service Bus returns string properties.
fn ascii_json_string(value: &str) -> String {
    let mut out = String::new();
    for c in serde_json::to_string(value).expect("string to JSON").chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// RFC 1123, as Service Bus writes dates: `Wed, 05 Dec 2012 23:24:59 GMT`.
fn rfc1123(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at);
    let weekday = at.weekday().to_string();
    let month = at.month().to_string();
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        &weekday[..3],
        at.day(),
        &month[..3],
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn uuid_like() -> String {
    let n: u128 = rand::rng().random();
    let hex = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}
