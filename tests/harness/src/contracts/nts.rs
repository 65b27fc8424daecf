//! The NTS business-status API (data.go.kr / odcloud `nts-businessman/v1/status`), PROVIDERS.md §1:
//! both error layers (the NTS `status_code` body and the Data-Infuser gateway `code`/`msg` body),
//! unknown numbers answered inside `data[]`, the 100-number limit and a configurable quota.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};

/// The path of the status endpoint under the server's base URL.
pub const STATUS_PATH: &str = "/api/nts-businessman/v1/status";

/// How the server behaves for the next requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NtsMode {
    /// Answers per number.
    Normal,
    /// HTTP 500 with `{"status_code":"INTERNAL_ERROR"}`.
    Down,
    /// Never answers (the client's timeout must fire).
    Hang,
    /// Gateway quota error `-10` (HTTP 400).
    QuotaExceeded,
}

struct Inner {
    key: String,
    statuses: Mutex<HashMap<String, &'static str>>,
    mode: Mutex<NtsMode>,
    calls: AtomicU64,
}

/// A running NTS contract server; stops when dropped.
pub struct NtsServer {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl NtsServer {
    /// Starts on a free loopback port, accepting `service_key`.
    pub async fn start(service_key: &str) -> NtsServer {
        let inner = Arc::new(Inner {
            key: service_key.to_owned(),
            statuses: Mutex::default(),
            mode: Mutex::new(NtsMode::Normal),
            calls: AtomicU64::new(0),
        });
        let app = Router::new().route(STATUS_PATH, post(status)).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind the NTS contract server: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("no local address: {e}"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        NtsServer { addr, inner, task }
    }

    /// `http://127.0.0.1:<port>/api` — the equivalent of `https://api.odcloud.kr/api`.
    pub fn base_url(&self) -> String {
        format!("http://{}/api", self.addr)
    }

    /// Makes `b_no` a registered business with NTS status code `code` (`01`, `02`, `03`).
    pub fn set_status(&self, b_no: &str, code: &'static str) {
        self.inner.statuses.lock().unwrap_or_else(|p| p.into_inner()).insert(b_no.to_owned(), code);
    }

    /// Switches the server's behaviour.
    pub fn set_mode(&self, mode: NtsMode) {
        *self.inner.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    /// Requests received so far (including failed ones).
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::SeqCst)
    }
}

impl Drop for NtsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn gateway_error(status: StatusCode, code: i64, msg: &str) -> Response {
    (status, Json(json!({ "code": code, "msg": msg }))).into_response()
}

async fn status(
    State(inner): State<Arc<Inner>>,
    Query(query): Query<HashMap<String, String>>,
    body: String,
) -> Response {
    inner.calls.fetch_add(1, Ordering::SeqCst);
    match query.get("serviceKey") {
        Some(key) if *key == inner.key => {}
        Some(_) => return gateway_error(StatusCode::UNAUTHORIZED, -4, "등록되지 않은 인증키 입니다."),
        None => return gateway_error(StatusCode::UNAUTHORIZED, -401, "인증키가 유효하지 않습니다."),
    }
    let mode = *inner.mode.lock().unwrap_or_else(|p| p.into_inner());
    match mode {
        NtsMode::Normal => {}
        NtsMode::Down => {
            return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"status_code": "INTERNAL_ERROR"}))).into_response();
        }
        NtsMode::Hang => {
            // Never answers: the handler is dropped with the connection once the client gives up.
            std::future::pending::<()>().await;
        }
        NtsMode::QuotaExceeded => {
            return gateway_error(StatusCode::BAD_REQUEST, -10, "일일 트래픽 한도를 초과했습니다.");
        }
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"status_code": "BAD_JSON_REQUEST"}))).into_response();
    };
    let Some(numbers) = request.get("b_no").and_then(Value::as_array) else {
        return (StatusCode::LENGTH_REQUIRED, Json(json!({"status_code": "REQUEST_DATA_MALFORMED"}))).into_response();
    };
    if numbers.len() > 100 {
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(json!({"status_code": "TOO_LARGE_REQUEST"}))).into_response();
    }
    let statuses = inner.statuses.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut matched = 0;
    let data: Vec<Value> = numbers
        .iter()
        .map(|n| {
            let b_no = n.as_str().unwrap_or_default();
            match statuses.get(b_no) {
                Some(code) => {
                    matched += 1;
                    let (text, end_dt) = match *code {
                        "01" => ("계속사업자", ""),
                        "02" => ("휴업자", ""),
                        _ => ("폐업자", "20240131"),
                    };
                    json!({"b_no": b_no, "b_stt": text, "b_stt_cd": code, "tax_type": "부가가치세 일반과세자",
                           "tax_type_cd": "01", "end_dt": end_dt, "utcc_yn": "N", "tax_type_change_dt": "",
                           "invoice_apply_dt": "", "rbf_tax_type": "해당없음", "rbf_tax_type_cd": "99"})
                }
                None => json!({"b_no": b_no, "b_stt": "", "b_stt_cd": "",
                               "tax_type": "국세청에 등록되지 않은 사업자등록번호입니다.", "tax_type_cd": "",
                               "end_dt": "", "utcc_yn": "", "tax_type_change_dt": "", "invoice_apply_dt": "",
                               "rbf_tax_type": "", "rbf_tax_type_cd": ""}),
            }
        })
        .collect();
    Json(json!({"status_code": "OK", "request_cnt": numbers.len(), "match_cnt": matched, "data": data})).into_response()
}
