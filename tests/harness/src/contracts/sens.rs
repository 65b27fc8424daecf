//! NAVER Cloud SENS SMS/LMS v2 (PROVIDERS.md §8), as the platform behaves:
//!
//! - every call is checked like the API Gateway does: the signature v2 recomputed over method,
//!   path and query (`401 {"error":{"errorCode":"200",…}}` when wrong or missing), the timestamp
//!   within five minutes of the server's clock, the access key and the service id (`404`/`300`);
//! - a send (`POST /sms/v2/services/{serviceId}/messages`) needs the registered `from`, 1–100
//!   messages, `to` of digits only, `type` SMS or LMS, `contentType` COMM or AD; text over the
//!   type's limit in **EUC-KR bytes** (SMS 90, LMS 2000, subject 40) is **truncated**, not
//!   refused, as the real one does, and recorded so; a text with characters EUC-KR cannot carry
//!   (emoji) is accepted and then **fails** on lookup; `202` with a `requestId`;
//! - lookups: `GET …/messages?requestId=` lists the request's messages, `GET
//!   …/messages?requestStartTime=&requestEndTime=` (`YYYY-MM-DD HH:mm:ss`, Asia/Seoul) the
//!   messages requested in that window (each with its `requestId`, so a client whose send timed
//!   out can find it before sending again), and `GET …/messages/{messageId}` one message, whose
//!   `status` moves READY → PROCESSING → COMPLETED one lookup at a time, COMPLETED with
//!   `statusName` `success` or `fail`;
//! - [`SensMode`] makes it fail like the platform can: `500`, quota `429`/`400`, or never answer.
//!
//! Every accepted message is recorded ([`SensServer::sent`]) and every call counted
//! ([`SensServer::calls`]), so tests can assert "exactly one SMS per winner".

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use kem_kit::external::ncp;
use serde_json::{Value, json};

/// Most messages one send may carry.
pub const MAX_MESSAGES: usize = 100;
/// SMS text limit in EUC-KR bytes.
pub const SMS_MAX_BYTES: usize = 90;
/// LMS text limit in EUC-KR bytes.
pub const LMS_MAX_BYTES: usize = 2000;
/// LMS subject limit in EUC-KR bytes.
pub const SUBJECT_MAX_BYTES: usize = 40;

/// The SENS account the server accepts.
#[derive(Clone, Debug)]
pub struct SensAccount {
    /// `x-ncp-iam-access-key`.
    pub access_key: String,
    /// The secret key the signature is made with.
    pub secret_key: String,
    /// The SMS service id in the path, e.g. `ncp:sms:kr:123:kem`.
    pub service_id: String,
    /// The registered calling number (`from`), digits only.
    pub from: String,
}

impl Default for SensAccount {
    /// A test account: `AK-test` / `SK-test`, service `ncp:sms:kr:1:kem`, from `0212345678`.
    fn default() -> Self {
        SensAccount {
            access_key: "AK-test".into(),
            secret_key: "SK-test".into(),
            service_id: "ncp:sms:kr:1:kem".into(),
            from: "0212345678".into(),
        }
    }
}

/// How the server answers the next calls (lookups included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SensMode {
    /// As the platform normally does.
    Normal,
    /// HTTP 500 `{"error":{"errorCode":"900",…}}`; nothing is accepted.
    Down,
    /// A send is **accepted and recorded**, and then no answer ever comes (the answer was lost:
    /// the client's timeout fires and the outcome is unknown to it). Lookups never answer either.
    Hang,
    /// HTTP 429 `{"error":{"errorCode":"400","message":"Quota Exceeded"}}`; nothing is accepted.
    Quota,
}

/// One accepted message, as SENS will deliver it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentSms {
    /// The send's request id.
    pub request_id: String,
    /// The message id lookups use.
    pub message_id: String,
    /// Recipient, digits only.
    pub to: String,
    /// `SMS` or `LMS`.
    pub kind: String,
    /// `COMM` or `AD`.
    pub content_type: String,
    /// LMS subject (after truncation), if any.
    pub subject: Option<String>,
    /// The text as delivered (after truncation).
    pub content: String,
    /// Whether the text (or subject) was cut to the type's EUC-KR limit.
    pub truncated: bool,
    /// Whether every character is one EUC-KR carries (if not, the message fails on lookup).
    pub encodable: bool,
    /// When it was requested (epoch ms).
    pub requested_at_ms: i64,
}

struct Stored {
    sms: SentSms,
    lookups: u32,
}

struct Inner {
    account: SensAccount,
    mode: Mutex<SensMode>,
    messages: Mutex<Vec<Stored>>,
    undeliverable: Mutex<Vec<String>>,
    calls: AtomicU64,
    sends: AtomicU64,
    next_id: AtomicU64,
}

/// A running SENS contract server on a loopback port; stops when dropped.
pub struct SensServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl SensServer {
    /// Starts on a free loopback port for `account`.
    pub async fn start(account: SensAccount) -> SensServer {
        let inner = Arc::new(Inner {
            account,
            mode: Mutex::new(SensMode::Normal),
            messages: Mutex::default(),
            undeliverable: Mutex::default(),
            calls: AtomicU64::new(0),
            sends: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        });
        let app = Router::new()
            .route("/sms/v2/services/{service_id}/messages", get(list).post(send))
            .route("/sms/v2/services/{service_id}/messages/{message_id}", get(message))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind the SENS contract server: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("no local address: {e}"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SensServer { addr, inner, task }
    }

    /// `http://127.0.0.1:<port>` — the equivalent of `https://sens.apigw.ntruss.com`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The account it accepts.
    pub fn account(&self) -> &SensAccount {
        &self.inner.account
    }

    /// Switches the server's behaviour.
    pub fn set_mode(&self, mode: SensMode) {
        *self.inner.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    /// Messages to `to` (digits only) are accepted and then fail on lookup, as for a number that
    /// is not in service.
    pub fn set_undeliverable(&self, to: &str) {
        self.inner.undeliverable.lock().unwrap_or_else(|p| p.into_inner()).push(to.to_owned());
    }

    /// Every accepted message, in the order accepted.
    pub fn sent(&self) -> Vec<SentSms> {
        self.inner.messages.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|m| m.sms.clone()).collect()
    }

    /// The accepted messages to `to` (digits only, e.g. `01012345678`).
    pub fn sent_to(&self, to: &str) -> Vec<SentSms> {
        self.sent().into_iter().filter(|m| m.to == to).collect()
    }

    /// Requests received so far, of every kind, failed ones included.
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::SeqCst)
    }

    /// Send requests (`POST`) received so far, failed ones included.
    pub fn send_calls(&self) -> u64 {
        self.inner.sends.load(Ordering::SeqCst)
    }
}

impl Drop for SensServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn gateway_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"errorCode": code, "message": message, "details": message}}))).into_response()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

/// `YYYY-MM-DD HH:mm:ss` in Asia/Seoul (UTC+9, no daylight saving), SENS's time format.
pub fn kst(ms: i64) -> String {
    let seconds = ms.div_euclid(1000) + 9 * 3600;
    match time::OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => String::new(),
    }
}

/// Epoch ms of a `YYYY-MM-DD HH:mm:ss` Asia/Seoul time.
fn parse_kst(text: &str) -> Option<i64> {
    let (date, clock) = text.trim().split_once(' ')?;
    let mut d = date.split('-').map(str::parse::<i64>);
    let mut c = clock.split(':').map(str::parse::<u8>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (h, mi, s) = (c.next()?.ok()?, c.next()?.ok()?, c.next()?.ok()?);
    let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(day).ok()?).ok()?;
    let at = date.with_hms(h, mi, s).ok()?.assume_offset(time::UtcOffset::from_hms(9, 0, 0).ok()?);
    Some(at.unix_timestamp() * 1000)
}

/// The API Gateway's authentication of a signed request, shared by every NAVER Cloud contract
/// server (SMS here, Biz Message in [`super::sens_biz`]): the timestamp within five minutes of
/// this server's clock, the access key, and the signature v2 recomputed over method, path and
/// query with `secret_key`. The 401 refusal, if any.
pub(crate) fn authenticate(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    access_key: &str,
    secret_key: &str,
) -> Option<Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (timestamp, given_key, signature) =
        (header(ncp::TIMESTAMP_HEADER), header(ncp::ACCESS_KEY_HEADER), header(ncp::SIGNATURE_HEADER));
    let unauthorized = |why: &str| Some(gateway_error(StatusCode::UNAUTHORIZED, "200", why));
    let Ok(timestamp_ms) = timestamp.parse::<i64>() else {
        return unauthorized("Authentication Failed: missing or malformed x-ncp-apigw-timestamp");
    };
    if (now_ms() - timestamp_ms).abs() > ncp::MAX_SKEW_MS {
        return unauthorized("Authentication Failed: the timestamp is more than 5 minutes off");
    }
    if given_key != access_key {
        return unauthorized("Authentication Failed: unknown access key");
    }
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or_else(|| uri.path());
    let expected = ncp::signature(secret_key, method.as_str(), path_and_query, timestamp_ms, access_key);
    if signature != expected {
        return unauthorized("Authentication Failed: signature mismatch");
    }
    None
}

/// The gateway's checks: signature, timestamp, access key, service id; then the mode.
async fn gate(inner: &Inner, method: &Method, uri: &Uri, headers: &HeaderMap, service_id: &str) -> Option<Response> {
    inner.calls.fetch_add(1, Ordering::SeqCst);
    if let Some(refused) = authenticate(method, uri, headers, &inner.account.access_key, &inner.account.secret_key) {
        return Some(refused);
    }
    if service_id != inner.account.service_id {
        return Some(gateway_error(StatusCode::NOT_FOUND, "300", "Not Found Exception: unknown service id"));
    }
    match *inner.mode.lock().unwrap_or_else(|p| p.into_inner()) {
        SensMode::Normal | SensMode::Hang => None,
        SensMode::Down => Some(gateway_error(StatusCode::INTERNAL_SERVER_ERROR, "900", "Unexpected Error")),
        SensMode::Quota => Some(gateway_error(StatusCode::TOO_MANY_REQUESTS, "400", "Quota Exceeded")),
    }
}

fn hanging(inner: &Inner) -> bool {
    *inner.mode.lock().unwrap_or_else(|p| p.into_inner()) == SensMode::Hang
}

/// `text` cut to at most `limit` EUC-KR bytes at a character boundary; whether it was cut; whether
/// every character of the whole text is one EUC-KR carries (one that is not counts as the two
/// bytes of a replacement).
fn fit(text: &str, limit: usize) -> (String, bool, bool) {
    let encodable = text.chars().all(euc_kr_has);
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let mut buf = [0u8; 4];
        let (bytes, _, errors) = encoding_rs::EUC_KR.encode(c.encode_utf8(&mut buf));
        let n = if errors { 2 } else { bytes.len() };
        if used + n > limit {
            return (out, true, encodable);
        }
        used += n;
        out.push(c);
    }
    (out, false, encodable)
}

fn euc_kr_has(c: char) -> bool {
    let mut buf = [0u8; 4];
    !encoding_rs::EUC_KR.encode(c.encode_utf8(&mut buf)).2
}

fn bad_request(message: &str) -> Response {
    gateway_error(StatusCode::BAD_REQUEST, "100", message)
}

async fn send(
    State(inner): State<Arc<Inner>>,
    Path(service_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    inner.sends.fetch_add(1, Ordering::SeqCst);
    if let Some(refused) = gate(&inner, &method, &uri, &headers, &service_id).await {
        return refused;
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return bad_request("Bad Request Exception: the body is not JSON");
    };
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let kind = text(&request, "type").unwrap_or_default().to_ascii_uppercase();
    let limit = match kind.as_str() {
        "SMS" => SMS_MAX_BYTES,
        "LMS" => LMS_MAX_BYTES,
        "MMS" => return bad_request("Bad Request Exception: MMS needs files, which this server does not take"),
        _ => return bad_request("Bad Request Exception: type must be SMS, LMS or MMS"),
    };
    let content_type = text(&request, "contentType").unwrap_or_else(|| "COMM".into());
    if !matches!(content_type.as_str(), "COMM" | "AD") {
        return bad_request("Bad Request Exception: contentType must be COMM or AD");
    }
    if text(&request, "from").as_deref() != Some(inner.account.from.as_str()) {
        return bad_request("Bad Request Exception: from is not a registered calling number");
    }
    let Some(default_content) = text(&request, "content") else {
        return bad_request("Bad Request Exception: content is required");
    };
    let messages = request.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    if messages.is_empty() || messages.len() > MAX_MESSAGES {
        return bad_request("Bad Request Exception: messages must hold 1 to 100 messages");
    }
    for m in &messages {
        let to = text(m, "to").unwrap_or_default();
        if to.is_empty() || !to.bytes().all(|b| b.is_ascii_digit()) {
            return bad_request("Bad Request Exception: to must be digits only");
        }
    }
    let default_subject = text(&request, "subject");
    let id = inner.next_id.fetch_add(1, Ordering::SeqCst);
    let request_id = format!("RSSA-{id:08}");
    let requested_at_ms = now_ms();
    let mut stored = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let (content, cut, encodable) = fit(&text(m, "content").unwrap_or_else(|| default_content.clone()), limit);
        let subject = if kind == "LMS" { text(m, "subject").or_else(|| default_subject.clone()) } else { None };
        let (subject, subject_cut, subject_ok) = match subject {
            Some(s) => {
                let (s, cut, ok) = fit(&s, SUBJECT_MAX_BYTES);
                (Some(s), cut, ok)
            }
            None => (None, false, true),
        };
        stored.push(Stored {
            sms: SentSms {
                request_id: request_id.clone(),
                message_id: format!("{request_id}-{i}"),
                to: text(m, "to").unwrap_or_default(),
                kind: kind.clone(),
                content_type: content_type.clone(),
                subject,
                content,
                truncated: cut || subject_cut,
                encodable: encodable && subject_ok,
                requested_at_ms,
            },
            lookups: 0,
        });
    }
    inner.messages.lock().unwrap_or_else(|p| p.into_inner()).extend(stored);
    if hanging(&inner) {
        // Accepted, and the answer never comes: the handler is dropped with the connection.
        std::future::pending::<()>().await;
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({"requestId": request_id, "requestTime": kst(requested_at_ms), "statusCode": "202",
                    "statusName": "success"})),
    )
        .into_response()
}

fn listed(m: &SentSms) -> Value {
    json!({"requestId": m.request_id, "messageId": m.message_id, "requestTime": kst(m.requested_at_ms),
           "contentType": m.content_type, "countryCode": "82", "from": "", "to": m.to})
}

async fn list(
    State(inner): State<Arc<Inner>>,
    Path(service_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = gate(&inner, &method, &uri, &headers, &service_id).await {
        return refused;
    }
    if hanging(&inner) {
        std::future::pending::<()>().await;
    }
    let messages = inner.messages.lock().unwrap_or_else(|p| p.into_inner());
    let found: Vec<Value> = if let Some(request_id) = query.get("requestId") {
        let found: Vec<Value> =
            messages.iter().filter(|m| &m.sms.request_id == request_id).map(|m| listed(&m.sms)).collect();
        if found.is_empty() {
            return gateway_error(StatusCode::NOT_FOUND, "300", "Not Found Exception: no such requestId");
        }
        found
    } else {
        let window = query
            .get("requestStartTime")
            .and_then(|s| parse_kst(s))
            .zip(query.get("requestEndTime").and_then(|s| parse_kst(s)));
        let Some((start, end)) = window else {
            return bad_request(
                "Bad Request Exception: requestId, or requestStartTime and requestEndTime (YYYY-MM-DD HH:mm:ss) are required",
            );
        };
        if end < start || end - start > 30 * 24 * 3_600_000 {
            return bad_request("Bad Request Exception: the request time window must be at most 30 days");
        }
        // Times are to the second, both ends inclusive.
        messages
            .iter()
            .filter(|m| {
                let at = m.sms.requested_at_ms.div_euclid(1000) * 1000;
                at >= start && at <= end
            })
            .map(|m| listed(&m.sms))
            .collect()
    };
    let request_id = query.get("requestId").cloned().unwrap_or_default();
    Json(json!({"requestId": request_id, "statusCode": "202", "statusName": "success", "pageIndex": 0,
                "pageSize": found.len(), "itemCount": found.len(), "hasMore": false, "messages": found}))
    .into_response()
}

async fn message(
    State(inner): State<Arc<Inner>>,
    Path((service_id, message_id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = gate(&inner, &method, &uri, &headers, &service_id).await {
        return refused;
    }
    if hanging(&inner) {
        std::future::pending::<()>().await;
    }
    let undeliverable = inner.undeliverable.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut messages = inner.messages.lock().unwrap_or_else(|p| p.into_inner());
    let Some(stored) = messages.iter_mut().find(|m| m.sms.message_id == message_id) else {
        return gateway_error(StatusCode::NOT_FOUND, "300", "Not Found Exception: no such messageId");
    };
    stored.lookups += 1;
    let m = &stored.sms;
    let (status, status_code, status_name, status_message) = match stored.lookups {
        1 => ("READY", "", "", ""),
        2 => ("PROCESSING", "", "", ""),
        _ if !m.encodable => ("COMPLETED", "3019", "fail", "지원하지 않는 문자가 포함되어 발송 실패"),
        _ if undeliverable.contains(&m.to) => ("COMPLETED", "3015", "fail", "결번 또는 서비스 정지 번호"),
        _ => ("COMPLETED", "0", "success", "성공"),
    };
    let complete_time = if status == "COMPLETED" { kst(now_ms()) } else { String::new() };
    Json(json!({"statusCode": "202", "statusName": "success", "messages": [{
        "requestTime": kst(m.requested_at_ms), "contentType": m.content_type, "content": m.content,
        "subject": m.subject, "countryCode": "82", "from": inner.account.from, "to": m.to, "status": status,
        "statusCode": status_code, "statusName": status_name, "statusMessage": status_message,
        "completeTime": complete_time, "telcoCode": "SKT"}]}))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_cut_in_euc_kr_bytes_and_unencodable_characters_noticed() {
        let (text, cut, ok) = fit(&"가".repeat(46), SMS_MAX_BYTES);
        assert_eq!((text.chars().count(), cut, ok), (45, true, true), "45 Hangul syllables are 90 bytes");
        let (text, cut, ok) = fit("abc", SMS_MAX_BYTES);
        assert_eq!((text.as_str(), cut, ok), ("abc", false, true));
        let (_, cut, ok) = fit("당첨 🎉", SMS_MAX_BYTES);
        assert_eq!((cut, ok), (false, false), "emoji are not EUC-KR");
    }

    #[test]
    fn seoul_times_round_trip() {
        let ms = 1_765_000_000_000;
        assert_eq!(parse_kst(&kst(ms)), Some(ms));
        assert_eq!(kst(0), "1970-01-01 09:00:00");
    }
}
