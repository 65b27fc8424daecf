//! The NAVER Cloud SENS contract server (친구톡 v2): `POST /friendtalk/v2/services/{serviceId}/messages`
//! with the API Gateway headers `x-ncp-apigw-timestamp` (within 5 minutes), `x-ncp-iam-access-key`
//! and `x-ncp-apigw-signature-v2` (HMAC-SHA256 of `"POST <path>\n<timestamp>\n<access key>"`,
//! Base64) — a bad signature is 401 with the gateway's `{"error":{"errorCode","message","details"}}`
//! — and the JSON body `{"plusFriendId","messages":[{"to","content","buttons"?,…}]}` (buttons as
//! SENS checks them); answers 202
//! `{"requestId","requestTime","statusCode":"202","statusName":"success","messages":[{…,"requestStatusCode":"A000"}]}`.
//! Scriptable: the next N requests fail with 500, or every request hangs. Counts requests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

pub const ACCESS_KEY: &str = "AK-test";
pub const SECRET: &str = "sens-secret-key";
pub const SERVICE_ID: &str = "ncp:kkobizmsg:kr:2710000:kem";
pub const PLUS_FRIEND: &str = "@kem-test";

#[derive(Debug, Default)]
pub struct SensState {
    pub calls: u64,
    pub accepted: Vec<Value>,
    pub fail_next: u32,
    pub hang: bool,
}

pub struct SensServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<SensState>>,
    task: JoinHandle<()>,
}

type Shared = Arc<Mutex<SensState>>;

fn gateway_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"errorCode": code, "message": message, "details": message}}))).into_response()
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

async fn send(State(state): State<Shared>, Path(service): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let (hang, fail) = {
        let mut s = state.lock().expect("sens");
        s.calls += 1;
        let fail = s.fail_next > 0;
        if fail {
            s.fail_next -= 1;
        }
        (s.hang, fail)
    };
    if hang {
        // SENS never answers: the client's own deadline is what is tested.
        std::future::pending::<()>().await;
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let timestamp = header("x-ncp-apigw-timestamp");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let Ok(ts) = timestamp.parse::<i64>() else {
        return gateway_error(StatusCode::UNAUTHORIZED, "210", "Timestamp is required");
    };
    if (now - ts).abs() > 300_000 {
        return gateway_error(StatusCode::UNAUTHORIZED, "220", "Timestamp is out of range");
    }
    let path = format!("/friendtalk/v2/services/{service}/messages");
    let expected = kem_distribution::infra::channels::kakao::signature(SECRET, "POST", &path, ts, ACCESS_KEY);
    if header("x-ncp-iam-access-key") != ACCESS_KEY || header("x-ncp-apigw-signature-v2") != expected {
        return gateway_error(StatusCode::UNAUTHORIZED, "200", "Authentication Failed");
    }
    if service != SERVICE_ID {
        return gateway_error(StatusCode::NOT_FOUND, "404", "Not Found Exception");
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
    let valid = request["plusFriendId"] == PLUS_FRIEND
        && !messages.is_empty()
        && messages.len() <= 100
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
    let mut s = state.lock().expect("sens");
    s.accepted.push(request.clone());
    let n = s.accepted.len();
    let results: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({"messageId": format!("msg-{n}-{i}"), "countryCode": "82", "to": m["to"], "content": m["content"],
                   "requestStatusCode": "A000", "requestStatusName": "success", "requestStatusDesc": "성공", "useSmsFailover": false})
        })
        .collect();
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"requestId": format!("RSENS-{n}"), "requestTime": "2025-11-01T12:00:00.000",
                          "statusCode": "202", "statusName": "success", "messages": results})),
    )
        .into_response()
}

impl SensServer {
    pub async fn start() -> SensServer {
        let state: Shared = Arc::default();
        let router =
            Router::new().route("/friendtalk/v2/services/{service}/messages", post(send)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind sens");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("sens serves");
        });
        SensServer { addr, state, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> MutexGuard<'_, SensState> {
        self.state.lock().expect("sens")
    }

    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    /// Messages accepted (sent).
    pub fn sent(&self) -> usize {
        self.state().accepted.len()
    }

    pub fn fail_next(&self, n: u32) {
        self.state().fail_next = n;
    }

    pub fn hang(&self, hang: bool) {
        self.state().hang = hang;
    }
}

impl Drop for SensServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
