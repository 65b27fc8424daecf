//! The NTS contract server: a local HTTP server speaking the business status API of
//! PROVIDERS.md §1 — `POST /api/nts-businessman/v1/status?serviceKey=…&returnType=JSON` with
//! `{"b_no": [...]}` — including both error layers (NTS `{"status_code"}` and the data.go.kr
//! gateway's `{"code","msg"}`), unknown numbers answered inside `data[]`, and scripted outages
//! (500, an HTML 502, a hang, an auth error delivered with HTTP 200, the daily quota). It counts
//! every request that reaches it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kem_kit::Secret;
use kem_kit::external::{Backoff, ProviderConfig, ProviderMode};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// What NTS knows about a number.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    /// `b_stt_cd` 01 / 02 / 03.
    Status(&'static str),
    /// Not registered (also the answer for any number not configured).
    Unregistered,
}

/// How the server misbehaves (for every request) until told otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Answers per the contract.
    None,
    /// HTTP 500 `{"status_code":"INTERNAL_ERROR"}`.
    InternalError,
    /// HTTP 502 with an HTML page (a proxy in front of the API).
    BadGateway,
    /// Never answers.
    Hang,
    /// HTTP 200 `{"code":-4,"msg":"등록되지 않은 인증키"}` (gateway layer, unregistered key).
    GatewayAuth,
    /// HTTP 400 `{"code":-10,"msg":"트래픽 초과"}` (daily quota).
    Quota,
}

struct NtsState {
    key: String,
    answers: HashMap<String, Answer>,
    outage: Outage,
    calls: u64,
}

/// The running contract server.
pub struct NtsServer {
    addr: SocketAddr,
    state: Arc<Mutex<NtsState>>,
    task: JoinHandle<()>,
}

/// The service key the server expects (with the characters portal keys contain).
pub const SERVICE_KEY: &str = "test+Key/with==";

impl NtsServer {
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> NtsServer {
        let state = Arc::new(Mutex::new(NtsState {
            key: SERVICE_KEY.to_owned(),
            answers: HashMap::new(),
            outage: Outage::None,
            calls: 0,
        }));
        let router = Router::new().route("/api/nts-businessman/v1/status", post(status)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the NTS contract server");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("NTS contract server serves");
        });
        NtsServer { addr, state, task }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, NtsState> {
        self.state.lock().expect("NTS state")
    }

    /// Sets what NTS answers for `number` (10 digits).
    pub fn answer(&self, number: &str, answer: Answer) -> &Self {
        self.lock().answers.insert(number.replace('-', ""), answer);
        self
    }

    /// Starts (or ends, with [`Outage::None`]) an outage.
    pub fn outage(&self, outage: Outage) {
        self.lock().outage = outage;
    }

    /// Requests that reached the server.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// How a real client reaches this server: quick retries, a 1 s attempt timeout, and the
    /// production breaker unless `tune` changes it.
    pub fn mode(&self, tune: impl FnOnce(&mut ProviderConfig)) -> ProviderMode {
        let mut config = kem_user::infra::nts::provider_config(format!("http://{}/api", self.addr));
        config.timeout = Duration::from_secs(1);
        config.connect_timeout = Duration::from_millis(500);
        config.deadline = Duration::from_secs(3);
        config.backoff = Backoff { initial: Duration::from_millis(5), max: Duration::from_millis(20) };
        tune(&mut config);
        ProviderMode::Real { config, credentials: Secret::new(SERVICE_KEY) }
    }
}

impl Drop for NtsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn status(
    State(state): State<Arc<Mutex<NtsState>>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (key, outage, answers) = {
        let mut s = state.lock().expect("NTS state");
        s.calls += 1;
        (s.key.clone(), s.outage, s.answers.clone())
    };
    // Gateway layer first: the key (the client must URL-encode it; axum decodes it here).
    if query.get("serviceKey") != Some(&key) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"code": -401, "msg": "유효하지 않은 인증키 입니다. (invalid or missing serviceKey)"}),
        );
    }
    match outage {
        Outage::None => {}
        Outage::InternalError => {
            return json_response(StatusCode::INTERNAL_SERVER_ERROR, json!({"status_code": "INTERNAL_ERROR"}));
        }
        Outage::BadGateway => {
            return (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body>502 Bad Gateway</body></html>",
            )
                .into_response();
        }
        Outage::Hang => {
            // NTS never answers: the client's own timeout is what is tested.
            std::future::pending::<()>().await;
        }
        Outage::GatewayAuth => {
            return json_response(StatusCode::OK, json!({"code": -4, "msg": "등록되지 않은 인증키 입니다."}));
        }
        Outage::Quota => {
            return json_response(
                StatusCode::BAD_REQUEST,
                json!({"code": -10, "msg": "일일 트래픽을 초과하였습니다."}),
            );
        }
    }
    if query.get("returnType").map(String::as_str) != Some("JSON") {
        return json_response(StatusCode::BAD_REQUEST, json!({"code": -2, "msg": "returnType 파라미터 오류"}));
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let Some(request) = serde_json::from_slice::<Value>(&body).ok().filter(|_| is_json) else {
        return json_response(StatusCode::BAD_REQUEST, json!({"status_code": "BAD_JSON_REQUEST"}));
    };
    let Some(numbers) = request.get("b_no").and_then(Value::as_array) else {
        return json_response(StatusCode::LENGTH_REQUIRED, json!({"status_code": "REQUEST_DATA_MALFORMED"}));
    };
    if numbers.len() > 100 {
        return json_response(StatusCode::PAYLOAD_TOO_LARGE, json!({"status_code": "TOO_LARGE_REQUEST"}));
    }
    let mut matched = 0;
    let data: Vec<Value> = numbers
        .iter()
        .map(|n| {
            let b_no = n.as_str().unwrap_or_default();
            match answers.get(b_no).copied().unwrap_or(Answer::Unregistered) {
                Answer::Status(code) => {
                    matched += 1;
                    let text = match code {
                        "01" => "계속사업자",
                        "02" => "휴업자",
                        _ => "폐업자",
                    };
                    let end_dt = if code == "03" { "20230615" } else { "" };
                    json!({"b_no": b_no, "b_stt": text, "b_stt_cd": code, "tax_type": "부가가치세 간이과세자",
                           "tax_type_cd": "02", "end_dt": end_dt, "utcc_yn": "N", "tax_type_change_dt": "",
                           "invoice_apply_dt": "", "rbf_tax_type": "해당없음", "rbf_tax_type_cd": "99"})
                }
                Answer::Unregistered => json!({"b_no": b_no, "b_stt": "", "b_stt_cd": "",
                    "tax_type": "국세청에 등록되지 않은 사업자등록번호입니다.", "tax_type_cd": "", "end_dt": "",
                    "utcc_yn": "", "tax_type_change_dt": "", "invoice_apply_dt": "", "rbf_tax_type": "",
                    "rbf_tax_type_cd": ""}),
            }
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({"status_code": "OK", "request_cnt": numbers.len(), "match_cnt": matched, "data": data}),
    )
}
