//! A Claude Messages API contract server (PROVIDERS.md §2) on 127.0.0.1: `POST /v1/messages`
//! with the real headers (`x-api-key`, `anthropic-version`, `content-type`), request body checks,
//! the success shape (`content[]`, `stop_reason`, `usage`, `request-id`, rate-limit headers) and
//! the error envelope `{"type":"error","error":{"type","message"},"request_id"}`. Replies are
//! scripted per task (trend analysis or recommendations, told apart by the system prompt's first
//! line) and every call is recorded, so tests count what reached the provider.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use kem_ai::domain::prompt::{RECOMMENDATIONS_TASK, TRENDS_TASK};
use serde_json::{Value, json};

/// The key the server accepts.
pub const API_KEY: &str = "sk-ant-test-0123456789";
/// The version the server requires.
pub const VERSION: &str = "2023-06-01";

/// Which task a call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Trend analysis.
    Trends,
    /// Three recommendations.
    Recommendations,
}

/// How the server answers one call.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with a valid answer for the request.
    Valid,
    /// 200 with this text as the answer.
    Text(String),
    /// 429 `rate_limit_error` with `retry-after`.
    RateLimited { retry_after_secs: u64 },
    /// 429 with `error.details.error_code` `enforced_spend_limit_reached`.
    SpendLimit,
    /// 529 `overloaded_error`.
    Overloaded,
    /// 500 `api_error`.
    ServerError,
    /// A valid answer after this long (past the client's timeout).
    Hang(Duration),
    /// 401 `authentication_error`.
    Unauthorized,
}

/// One call that reached the server.
#[derive(Debug, Clone)]
pub struct Call {
    /// The task.
    pub kind: Kind,
    /// When it arrived.
    pub at: Instant,
    /// The request body.
    pub body: Value,
}

#[derive(Default)]
struct Script {
    queued: HashMap<Kind, VecDeque<Reply>>,
    always: HashMap<Kind, Reply>,
    calls: Vec<Call>,
    served: u64,
}

/// The running server; stops when dropped.
pub struct ClaudeServer {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl ClaudeServer {
    /// Starts on a free loopback port, answering every call validly until scripted otherwise.
    pub async fn start() -> ClaudeServer {
        let script = Arc::new(Mutex::new(Script::default()));
        let router = Router::new().route("/v1/messages", post(messages)).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the Claude contract server");
        let addr = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("the Claude contract server serves");
        });
        ClaudeServer { addr, script, task }
    }

    /// The base URL to configure (`KEM_CLAUDE_BASE_URL`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next calls of `kind` get `replies`, in order.
    pub fn then(&self, kind: Kind, replies: impl IntoIterator<Item = Reply>) {
        self.lock().queued.entry(kind).or_default().extend(replies);
    }

    /// Calls of `kind` get `reply` once the queued replies are used up.
    pub fn always(&self, kind: Kind, reply: Reply) {
        self.lock().always.insert(kind, reply);
    }

    /// The calls of `kind` so far.
    pub fn calls(&self, kind: Kind) -> Vec<Call> {
        self.lock().calls.iter().filter(|c| c.kind == kind).cloned().collect()
    }

    /// How many calls of `kind` arrived.
    pub fn count(&self, kind: Kind) -> usize {
        self.calls(kind).len()
    }

    /// How many calls arrived in all.
    pub fn total(&self) -> usize {
        self.lock().calls.len()
    }
}

impl Drop for ClaudeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn error(status: StatusCode, kind: &str, message: &str, request_id: &str) -> Response {
    error_body(status, json!({"type": kind, "message": message}), request_id)
}

fn error_body(status: StatusCode, error: Value, request_id: &str) -> Response {
    let body = json!({"type": "error", "error": error, "request_id": request_id});
    (status, [("content-type", "application/json"), ("request-id", request_id)], body.to_string()).into_response()
}

async fn messages(State(script): State<Arc<Mutex<Script>>>, headers: HeaderMap, body: Bytes) -> Response {
    let request_id = {
        let mut script = script.lock().unwrap_or_else(|e| e.into_inner());
        script.served += 1;
        format!("req_{:04}", script.served)
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if header("x-api-key").as_deref() != Some(API_KEY) {
        return error(StatusCode::UNAUTHORIZED, "authentication_error", "invalid x-api-key", &request_id);
    }
    if header("anthropic-version").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
            &request_id,
        );
    }
    if !header("content-type").is_some_and(|c| c.starts_with("application/json")) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "content-type must be application/json",
            &request_id,
        );
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            return error(StatusCode::BAD_REQUEST, "invalid_request_error", &format!("invalid JSON: {e}"), &request_id);
        }
    };
    if let Err(problem) = check_request(&request) {
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", &problem, &request_id);
    }
    let system = request["system"].as_str().unwrap_or_default();
    let kind = if system.starts_with(TRENDS_TASK) {
        Kind::Trends
    } else if system.starts_with(RECOMMENDATIONS_TASK) {
        Kind::Recommendations
    } else {
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", "unknown task", &request_id);
    };
    let reply = {
        let mut script = script.lock().unwrap_or_else(|e| e.into_inner());
        script.calls.push(Call { kind, at: Instant::now(), body: request.clone() });
        let queued = script.queued.get_mut(&kind).and_then(VecDeque::pop_front);
        queued.or_else(|| script.always.get(&kind).cloned()).unwrap_or(Reply::Valid)
    };
    match reply {
        Reply::Valid => success(&request, &valid_answer(&request, kind), &request_id),
        Reply::Text(text) => success(&request, &text, &request_id),
        Reply::Hang(delay) => {
            // The fake provider's slowness itself: the client's real HTTP timeout is what is tested.
            tokio::time::sleep(delay).await;
            success(&request, &valid_answer(&request, kind), &request_id)
        }
        Reply::RateLimited { retry_after_secs } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
                &request_id,
            );
            let headers = response.headers_mut();
            headers.insert("retry-after", retry_after_secs.to_string().parse().expect("header"));
            headers.insert("anthropic-ratelimit-requests-remaining", "0".parse().expect("header"));
            response
        }
        Reply::SpendLimit => error_body(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"type": "rate_limit_error", "message": "You have reached your specified workspace API usage limits",
                   "details": {"error_code": "enforced_spend_limit_reached"}}),
            &request_id,
        ),
        Reply::Overloaded => {
            error(StatusCode::from_u16(529).expect("529"), "overloaded_error", "Overloaded", &request_id)
        }
        Reply::ServerError => {
            error(StatusCode::INTERNAL_SERVER_ERROR, "api_error", "Internal server error", &request_id)
        }
        Reply::Unauthorized => {
            error(StatusCode::UNAUTHORIZED, "authentication_error", "invalid x-api-key", &request_id)
        }
    }
}

/// The request body rules of the Messages API that matter here.
fn check_request(request: &Value) -> Result<(), String> {
    if request["model"].as_str().is_none_or(str::is_empty) {
        return Err("model: field required".into());
    }
    if request["max_tokens"].as_u64().is_none_or(|n| n == 0) {
        return Err("max_tokens: a positive integer is required".into());
    }
    if !(request["system"].is_null() || request["system"].is_string() || request["system"].is_array()) {
        return Err("system: must be a string or an array of text blocks".into());
    }
    let messages = request["messages"].as_array().ok_or("messages: field required")?;
    if messages.is_empty() {
        return Err("messages: at least one message is required".into());
    }
    for (i, message) in messages.iter().enumerate() {
        let expected = if i % 2 == 0 { "user" } else { "assistant" };
        if message["role"].as_str() != Some(expected) {
            return Err(format!("messages.{i}.role: roles must alternate, starting with user"));
        }
        let content_ok = message["content"].as_str().is_some_and(|c| !c.trim().is_empty())
            || message["content"].as_array().is_some_and(|a| !a.is_empty());
        if !content_ok {
            return Err(format!("messages.{i}.content: text content blocks must be non-empty"));
        }
    }
    Ok(())
}

fn success(request: &Value, text: &str, request_id: &str) -> Response {
    let input_tokens = request.to_string().len() / 4;
    let body = json!({
        "id": format!("msg_{request_id}"),
        "type": "message",
        "role": "assistant",
        "model": request["model"],
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": input_tokens, "output_tokens": text.len() / 4 + 1}
    });
    let headers = [
        ("content-type", "application/json"),
        ("request-id", request_id),
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "49"),
        ("anthropic-ratelimit-requests-reset", "2030-01-01T00:00:00Z"),
    ];
    (StatusCode::OK, headers, body.to_string()).into_response()
}

/// The inputs object of the user message (after its first line).
fn inputs(request: &Value) -> Value {
    let text = request["messages"][0]["content"].as_str().unwrap_or_default();
    text.split_once('\n').and_then(|(_, json)| serde_json::from_str(json).ok()).unwrap_or(Value::Null)
}

/// A valid answer for the request, as a diligent model would write it.
fn valid_answer(request: &Value, kind: Kind) -> String {
    match kind {
        Kind::Trends => json!({
            "seasonality": "연말 모임 수요가 늘어나는 시기예요.",
            "popular_event_types": ["SNS 인증샷 이벤트", "스탬프 적립"],
            "best_days": ["FRIDAY", "SATURDAY"],
            "best_hours": [12, 18],
            "suggested_prize_range_krw": {"min": 5000, "max": 30000},
            "summary": "연말을 맞아 인증샷 이벤트 반응이 좋아요."
        })
        .to_string(),
        Kind::Recommendations => {
            let inputs = inputs(request);
            let channels: Vec<String> = inputs["available_channels"]
                .as_array()
                .map(|a| a.iter().filter_map(|c| c.as_str().map(str::to_owned)).take(2).collect())
                .unwrap_or_default();
            let budget = inputs["budget_krw"].as_i64();
            let (unit, winners) = match budget {
                Some(b) if b < 4_500 => (b, 1),
                Some(b) => (4_500, (b / 4_500).min(10)),
                None => (4_500, 10),
            };
            let recommendations: Vec<Value> = (1..=3)
                .map(|i| {
                    let copies: Vec<Value> = channels
                        .iter()
                        .map(|c| {
                            let hashtags = if c == "INSTAGRAM" || c == "NAVER_BLOG" { json!(["이벤트"]) } else { json!([]) };
                            json!({"channel": c, "text": format!("이벤트 {i} 안내입니다."), "hashtags": hashtags})
                        })
                        .collect();
                    json!({
                        "title": format!("테스트 이벤트 {i}"),
                        "concept": "손님이 사진을 올리면 추첨해요.",
                        "participation_method": if i == 2 { "FIRST_COME" } else { "DRAW" },
                        "participation_mechanic": "매장 사진을 올리고 응모해요.",
                        "prize": {"name": "아메리카노 1잔", "description": "", "winner_count": winners, "unit_value_krw": unit},
                        "expected_participants": 100 * i,
                        "recommended_channels": channels,
                        "channel_copies": copies
                    })
                })
                .collect();
            json!({ "recommendations": recommendations }).to_string()
        }
    }
}
