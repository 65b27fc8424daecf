//! NAVER Cloud SENS Biz Message (PROVIDERS.md §6, §8, §12): 친구톡 v2 and the Kakao channel list
//! (the service's sender profiles), as the platform behaves. Every call is authenticated like the
//! API Gateway does ([`super::sens::authenticate`], shared with the SMS server: timestamp within
//! five minutes, access key [`ACCESS_KEY`], signature v2 with [`SECRET`]) — a bad one is 401 with
//! the gateway's `{"error":{"errorCode","message","details"}}`; a service other than
//! [`SERVICE_ID`] is 404.
//!
//! - `GET /alimtalk/v2/services/{serviceId}/channels`: the service's sender profiles, a JSON array
//!   of `{createTime, updateTime, serviceId, channelId, channelName, channelStatus, useSmsFailover,
//!   isBlock}` from a registry the test controls (register, block, delete a channel);
//! - `POST /friendtalk/v2/services/{serviceId}/messages` with `{"plusFriendId","messages":[{"to",
//!   "content","buttons"?,…}]}` (1 to 100 messages, buttons as SENS checks them): a `plusFriendId`
//!   that is not an ACTIVE, unblocked sender profile of the service is refused (400, the
//!   gateway's error shape naming the sender); otherwise 202 `{"requestId","requestTime",
//!   "statusCode":"202","statusName":"success","messages":[{…,"requestStatusCode",…}]}` with `A000`
//!   for a friend of the channel and [`NOT_A_FRIEND`] for anyone else (the channel's friends list
//!   is the test's; unset, everyone is a friend).
//!
//! The registry starts empty. Scriptable: the next N sends fail with 500, every send hangs, sends
//! hang from the Nth on, the channel list hangs. Counts sends and channel list reads apart, and
//! keeps every accepted request as received ([`SensBizServer::state`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::sens::{authenticate, gateway_error};

/// `x-ncp-iam-access-key` the server accepts.
pub const ACCESS_KEY: &str = "AK-test";
/// The secret key the signatures are made with.
pub const SECRET: &str = "sens-secret-key";
/// The Biz Message service id in the paths.
pub const SERVICE_ID: &str = "ncp:kkobizmsg:kr:2710000:kem";
/// Per-message status of an accepted message.
pub const ACCEPTED: &str = "A000";
/// Per-message status of a recipient who is not a friend of the channel.
pub const NOT_A_FRIEND: &str = "E105";
/// Most messages one send may carry.
pub const MAX_MESSAGES: usize = 100;

/// A sender profile of the service.
#[derive(Debug, Clone)]
pub struct SenderProfile {
    pub name: String,
    /// `ACTIVE`, `DELETED`, `BLOCKED`, …
    pub status: String,
    pub blocked: bool,
    /// The channel's friends (digits, `010…`); `None`: everyone.
    pub friends: Option<BTreeSet<String>>,
}

#[derive(Debug, Default)]
pub struct SensBizState {
    /// Send requests received.
    pub calls: u64,
    /// Channel list requests received.
    pub list_calls: u64,
    /// Send requests answered 202, as received.
    pub accepted: Vec<Value>,
    pub fail_next: u32,
    pub hang: bool,
    /// Sends from this one on (1-based count of sends) hang.
    pub hang_from: Option<u64>,
    /// The channel list hangs.
    pub hang_list: bool,
    /// Sender profiles by channel id.
    pub channels: BTreeMap<String, SenderProfile>,
}

/// A running SENS Biz Message contract server on a loopback port; stops when dropped.
pub struct SensBizServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<SensBizState>>,
    task: JoinHandle<()>,
}

type Shared = Arc<Mutex<SensBizState>>;

fn lock(state: &Shared) -> MutexGuard<'_, SensBizState> {
    // A test that panicked while holding the lock has already failed; the state is still readable.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// 친구톡 buttons as SENS checks them: optional, at most five, each with a type and a name of
/// 1-14 characters; a web link (`WL`) needs an absolute http(s) `linkMobile` (`linkPc` optional,
/// the same form).
fn buttons_valid(buttons: &Value) -> bool {
    let web = |v: &Value| v.as_str().is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"));
    match buttons {
        Value::Null => true,
        Value::Array(list) => {
            list.len() <= 5
                && list.iter().all(|b| {
                    let named = b["name"].as_str().is_some_and(|n| !n.is_empty() && n.chars().count() <= 14);
                    let linked = match b["type"].as_str() {
                        Some("WL") => web(&b["linkMobile"]) && (b["linkPc"].is_null() || web(&b["linkPc"])),
                        Some(_) => true,
                        None => false,
                    };
                    named && linked
                })
        }
        _ => false,
    }
}

/// The gateway's checks of a request: authentication, then the service id.
fn gate(method: &Method, uri: &Uri, headers: &HeaderMap, service: &str) -> Option<Response> {
    if let Some(refused) = authenticate(method, uri, headers, ACCESS_KEY, SECRET) {
        return Some(refused);
    }
    (service != SERVICE_ID).then(|| gateway_error(StatusCode::NOT_FOUND, "404", "Not Found Exception"))
}

async fn channels(
    State(state): State<Shared>,
    Path(service): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let hang = {
        let mut s = lock(&state);
        s.list_calls += 1;
        s.hang_list
    };
    if hang {
        std::future::pending::<()>().await;
    }
    if let Some(refused) = gate(&method, &uri, &headers, &service) {
        return refused;
    }
    let s = lock(&state);
    let list: Vec<Value> = s
        .channels
        .iter()
        .map(|(id, c)| {
            json!({"createTime": "2025-10-01T09:00:00.000", "updateTime": "2025-10-02T09:00:00.000",
                   "serviceId": SERVICE_ID, "channelId": id, "channelName": c.name, "channelStatus": c.status,
                   "useSmsFailover": false, "isBlock": c.blocked})
        })
        .collect();
    (StatusCode::OK, axum::Json(Value::Array(list))).into_response()
}

async fn send(
    State(state): State<Shared>,
    Path(service): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (hang, fail) = {
        let mut s = lock(&state);
        s.calls += 1;
        let fail = s.fail_next > 0;
        if fail {
            s.fail_next -= 1;
        }
        (s.hang || s.hang_from.is_some_and(|n| s.calls >= n), fail)
    };
    if hang {
        // SENS never answers: the client's own deadline is what is tested.
        std::future::pending::<()>().await;
    }
    if let Some(refused) = gate(&method, &uri, &headers, &service) {
        return refused;
    }
    if fail {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"status": 500, "errorMessage": "Internal Server Error"})),
        )
            .into_response();
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, axum::Json(json!({"status": 400, "errorMessage": "Bad Request"})))
            .into_response();
    };
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let sender = request["plusFriendId"].as_str().unwrap_or_default().to_owned();
    let friends = {
        let s = lock(&state);
        match s.channels.get(&sender) {
            Some(c) if c.status == "ACTIVE" && !c.blocked => c.friends.clone(),
            _ => {
                return gateway_error(
                    StatusCode::BAD_REQUEST,
                    "400",
                    &format!("plusFriendId {sender:?} is not an active sender (channel) of this service"),
                );
            }
        }
    };
    let valid = !messages.is_empty()
        && messages.len() <= MAX_MESSAGES
        && messages.iter().all(|m| {
            m["to"].as_str().is_some_and(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()))
                && m["content"].as_str().is_some_and(|c| !c.is_empty() && c.chars().count() <= 1_000)
                && buttons_valid(&m["buttons"])
        });
    if !valid {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"status": 400, "errorMessage": "Bad Request: invalid messages"})),
        )
            .into_response();
    }
    let mut s = lock(&state);
    s.accepted.push(request.clone());
    let n = s.accepted.len();
    let results: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let friend = friends.as_ref().is_none_or(|f| f.contains(m["to"].as_str().unwrap_or_default()));
            let (code, name, desc) =
                if friend { (ACCEPTED, "success", "성공") } else { (NOT_A_FRIEND, "fail", "친구가 아닌 사용자") };
            json!({"messageId": format!("msg-{n}-{i}"), "countryCode": "82", "to": m["to"], "content": m["content"],
                   "requestStatusCode": code, "requestStatusName": name, "requestStatusDesc": desc, "useSmsFailover": false})
        })
        .collect();
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"requestId": format!("RSENS-{n}"), "requestTime": "2025-11-01T12:00:00.000",
                          "statusCode": "202", "statusName": "success", "messages": results})),
    )
        .into_response()
}

impl SensBizServer {
    /// Starts on a free loopback port, no channel registered.
    pub async fn start() -> SensBizServer {
        let state: Shared = Arc::default();
        let router = Router::new()
            .route("/friendtalk/v2/services/{service}/messages", post(send))
            .route("/alimtalk/v2/services/{service}/channels", get(channels))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind the SENS Biz Message contract server: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("no local address: {e}"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        SensBizServer { addr, state, task }
    }

    /// Registers (or re-activates) the sender profile `id`, everyone its friend.
    pub fn register(&self, id: &str, name: &str) {
        let profile = SenderProfile { name: name.to_owned(), status: "ACTIVE".into(), blocked: false, friends: None };
        self.state().channels.insert(id.to_owned(), profile);
    }

    /// Blocks (or unblocks) the sender profile `id`.
    pub fn block(&self, id: &str, blocked: bool) {
        if let Some(c) = self.state().channels.get_mut(id) {
            c.blocked = blocked;
        }
    }

    /// Sets the status of the sender profile `id` (e.g. `DELETED`).
    pub fn set_status(&self, id: &str, status: &str) {
        if let Some(c) = self.state().channels.get_mut(id) {
            c.status = status.to_owned();
        }
    }

    /// Removes the sender profile `id` from the list.
    pub fn unregister(&self, id: &str) {
        self.state().channels.remove(id);
    }

    /// The friends of channel `id` (only they get `A000`).
    pub fn set_friends(&self, id: &str, friends: &[String]) {
        if let Some(c) = self.state().channels.get_mut(id) {
            c.friends = Some(friends.iter().cloned().collect());
        }
    }

    /// Sends from the `n`th (1-based) on hang.
    pub fn hang_from(&self, n: Option<u64>) {
        self.state().hang_from = n;
    }

    /// Every recipient of the accepted requests, in order (repeats included).
    pub fn recipients(&self) -> Vec<String> {
        let s = self.state();
        s.accepted
            .iter()
            .flat_map(|r| r["messages"].as_array().cloned().unwrap_or_default())
            .filter_map(|m| m["to"].as_str().map(str::to_owned))
            .collect()
    }

    /// The `plusFriendId` of every accepted request.
    pub fn senders(&self) -> Vec<String> {
        self.state().accepted.iter().map(|r| r["plusFriendId"].as_str().unwrap_or_default().to_owned()).collect()
    }

    /// How many SENS channel list reads were made.
    pub fn list_calls(&self) -> u64 {
        self.state().list_calls
    }

    /// `http://127.0.0.1:<port>` — the equivalent of `https://sens.apigw.ntruss.com`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> MutexGuard<'_, SensBizState> {
        lock(&self.state)
    }

    /// Send requests received (channel list reads are counted apart).
    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    /// Send requests accepted.
    pub fn sent(&self) -> usize {
        self.state().accepted.len()
    }

    /// The next `n` sends fail with 500 (nothing sent).
    pub fn fail_next(&self, n: u32) {
        self.state().fail_next = n;
    }

    /// Every send hangs (or no longer does).
    pub fn hang(&self, hang: bool) {
        self.state().hang = hang;
    }
}

impl Drop for SensBizServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
