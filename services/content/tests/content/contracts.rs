//! Local contract servers of the external APIs, speaking their real wire contracts:
//! - Stability AI v2beta `POST /v2beta/stable-image/generate/core` (multipart in, PNG bytes or
//!   JSON out, `{"id","name","errors"}` error bodies, `finish-reason` header), scriptable per call;
//! - Azure Blob Storage `Put Blob` / `Get Blob` with Shared Key authorization, verified with an
//!   implementation of the signature independent of the client's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use kem_content::infra::imaging::{Raster, encode_png};
use tokio::net::TcpListener;

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind contract server");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

// ---- Stability AI -------------------------------------------------------------------------------

pub const API_KEY: &str = "sk-test-stability";

/// One generate call as the server parsed it.
#[derive(Debug, Clone)]
pub struct GenerateCall {
    /// 0-based index among all calls.
    pub n: usize,
    pub prompt: String,
    pub negative_prompt: String,
    pub aspect_ratio: String,
    pub seed: String,
    pub style_preset: String,
    pub output_format: String,
    /// How many earlier calls had the same style preset.
    pub n_for_preset: usize,
}

/// How the server answers a call.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200, raw PNG (`Accept: image/*`), `finish-reason: SUCCESS`.
    Png,
    /// 200, JSON `{"image": <base64>, "finish_reason": "SUCCESS", "seed"}`.
    Json,
    /// 200 with `finish-reason: CONTENT_FILTERED` (a blurred image).
    Filtered,
    /// An error status with the v2beta error body and extra headers.
    Error(u16, &'static str, Vec<(&'static str, String)>),
    /// Waits this long, then answers like `Png`.
    Slow(Duration),
}

type Script = dyn Fn(&GenerateCall) -> Reply + Send + Sync;
/// The server's shared state: what it saw, and how it answers.
type Shared = (Arc<Mutex<StabilityState>>, Arc<Mutex<Arc<Script>>>);

#[derive(Default)]
struct StabilityState {
    calls: Vec<GenerateCall>,
    bad_requests: Vec<String>,
}

/// The Stability AI contract server.
#[derive(Clone)]
pub struct StabilityServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<StabilityState>>,
    script: Arc<Mutex<Arc<Script>>>,
}

impl StabilityServer {
    /// A server answering every call with `Png`.
    pub async fn start() -> StabilityServer {
        let state = Arc::new(Mutex::new(StabilityState::default()));
        let script: Arc<Mutex<Arc<Script>>> = Arc::new(Mutex::new(Arc::new(|_: &GenerateCall| Reply::Png)));
        let shared = (state.clone(), script.clone());
        let router = Router::new().route("/v2beta/stable-image/generate/core", post(generate)).with_state(shared);
        StabilityServer { addr: serve(router).await, state, script }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the script.
    pub fn script(&self, script: impl Fn(&GenerateCall) -> Reply + Send + Sync + 'static) {
        *self.script.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(script);
    }

    pub fn calls(&self) -> Vec<GenerateCall> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).calls.clone()
    }

    pub fn count(&self) -> usize {
        self.calls().len()
    }

    pub fn count_preset(&self, preset: &str) -> usize {
        self.calls().iter().filter(|c| c.style_preset == preset).count()
    }

    /// Requests the server refused as malformed (should stay empty).
    pub fn bad_requests(&self) -> Vec<String> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).bad_requests.clone()
    }
}

/// A small valid PNG of the provider's output shape for `aspect` (its ratio, scaled down).
pub fn provider_png(aspect: &str, preset: &str) -> Vec<u8> {
    let (w, h) = match aspect {
        "4:5" => (64, 80),
        "16:9" => (96, 54),
        "3:2" => (72, 48),
        "9:16" => (54, 96),
        _ => (64, 64),
    };
    let colour = match preset {
        "photographic" => [230, 220, 200],
        "cinematic" => [60, 20, 80],
        _ => [250, 80, 140],
    };
    encode_png(&Raster::filled(w, h, colour)).expect("png")
}

fn parse_multipart(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, String> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .ok_or_else(|| format!("content-type {content_type:?} is not multipart/form-data with a boundary"))?;
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8 text fields".to_owned())?;
    let closing = format!("--{boundary}--\r\n");
    if !text.ends_with(&closing) {
        return Err("the body does not end with the closing boundary".to_owned());
    }
    let mut fields = HashMap::new();
    for part in text.trim_end_matches(&closing).split(&format!("--{boundary}\r\n")).skip(1) {
        let (head, value) = part.split_once("\r\n\r\n").ok_or("a part has no header/body separator")?;
        let name = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or("a part has no Content-Disposition name")?;
        let value = value.strip_suffix("\r\n").ok_or("a part does not end with CRLF")?;
        fields.insert(name.to_owned(), value.to_owned());
    }
    Ok(fields)
}

fn error_body(status: u16, name: &str) -> Response {
    let body = serde_json::json!({"id": "err-1234", "name": name, "errors": [format!("{name}: scripted failure")]});
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body.to_string()).into_response();
    response.headers_mut().insert("content-type", "application/json".parse().expect("header"));
    response
}

async fn generate(State((state, script)): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let refuse = |why: String| {
        state.lock().unwrap_or_else(|e| e.into_inner()).bad_requests.push(why.clone());
        why
    };
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {API_KEY}")) {
        refuse("missing or wrong bearer key".into());
        return error_body(401, "unauthorized");
    }
    let fields = match parse_multipart(&headers, &body) {
        Ok(fields) => fields,
        Err(why) => {
            refuse(why);
            return error_body(400, "bad_request");
        }
    };
    let prompt = fields.get("prompt").cloned().unwrap_or_default();
    if prompt.is_empty() || prompt.chars().count() > 10_000 {
        refuse("prompt must be 1-10,000 characters".into());
        return error_body(400, "bad_request");
    }
    let aspect = fields.get("aspect_ratio").cloned().unwrap_or_else(|| "1:1".into());
    if !["16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"].contains(&aspect.as_str()) {
        refuse(format!("aspect_ratio {aspect:?}"));
        return error_body(400, "bad_request");
    }
    let accept = headers.get("accept").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let call = {
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let preset = fields.get("style_preset").cloned().unwrap_or_default();
        let call = GenerateCall {
            n: s.calls.len(),
            prompt,
            negative_prompt: fields.get("negative_prompt").cloned().unwrap_or_default(),
            aspect_ratio: aspect.clone(),
            seed: fields.get("seed").cloned().unwrap_or_default(),
            n_for_preset: s.calls.iter().filter(|c| c.style_preset == preset).count(),
            style_preset: preset,
            output_format: fields.get("output_format").cloned().unwrap_or_else(|| "png".into()),
        };
        s.calls.push(call.clone());
        call
    };
    let reply = {
        let script = script.lock().unwrap_or_else(|e| e.into_inner()).clone();
        script(&call)
    };
    let png = provider_png(&call.aspect_ratio, &call.style_preset);
    let image = |finish: &str| {
        let mut response = (StatusCode::OK, png.clone()).into_response();
        let h = response.headers_mut();
        h.insert("content-type", "image/png".parse().expect("header"));
        h.insert("finish-reason", finish.parse().expect("header"));
        h.insert("seed", call.seed.parse().unwrap_or_else(|_| "0".parse().expect("header")));
        h.insert("x-request-id", format!("req-{}", call.n).parse().expect("header"));
        response
    };
    match reply {
        Reply::Png if accept.starts_with("image/") => image("SUCCESS"),
        Reply::Png | Reply::Json => {
            let body = serde_json::json!({"image": STANDARD.encode(&png), "finish_reason": "SUCCESS", "seed": 7});
            let mut response = (StatusCode::OK, body.to_string()).into_response();
            response.headers_mut().insert("content-type", "application/json; type=image/png".parse().expect("header"));
            response
        }
        Reply::Filtered => image("CONTENT_FILTERED"),
        Reply::Slow(delay) => {
            // The fake provider's slowness itself: the client's real HTTP timeout is what is tested.
            tokio::time::sleep(delay).await;
            image("SUCCESS")
        }
        Reply::Error(status, name, extra) => {
            let mut response = error_body(status, name);
            for (header, value) in extra {
                response.headers_mut().insert(header, value.parse().expect("header value"));
            }
            response
        }
    }
}

// ---- Azure Blob Storage -------------------------------------------------------------------------

pub const ACCOUNT: &str = "kemtest";
/// Base64 of the account key.
pub const ACCOUNT_KEY: &str = "a2VtLXRlc3Qta2V5LWZvci1henVyZS1ibG9iLXNpZ25pbmc=";
pub const CONTAINER: &str = "content-images";

#[derive(Default)]
struct AzureState {
    blobs: HashMap<String, (Vec<u8>, String)>,
    puts: usize,
    gets: usize,
    auth_failures: Vec<String>,
    busy: u32,
}

/// The Azure Blob Storage contract server (emulator-style endpoint: `http://host/<account>`).
#[derive(Clone)]
pub struct AzureServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<AzureState>>,
}

impl AzureServer {
    pub async fn start() -> AzureServer {
        let state = Arc::new(Mutex::new(AzureState::default()));
        let router = Router::new().route("/{*path}", any(blob)).with_state(state.clone());
        AzureServer { addr: serve(router).await, state }
    }

    /// The endpoint to configure (`http://127.0.0.1:<port>/<account>`).
    pub fn endpoint(&self) -> String {
        format!("http://{}/{ACCOUNT}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AzureState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn puts(&self) -> usize {
        self.lock().puts
    }

    pub fn gets(&self) -> usize {
        self.lock().gets
    }

    pub fn blob_count(&self) -> usize {
        self.lock().blobs.len()
    }

    pub fn auth_failures(&self) -> Vec<String> {
        self.lock().auth_failures.clone()
    }

    /// The next `n` requests answer 503 ServerBusy.
    pub fn busy(&self, n: u32) {
        self.lock().busy = n;
    }

    /// Overwrites a stored blob's bytes (corruption).
    pub fn corrupt_all(&self) {
        for (bytes, _) in self.lock().blobs.values_mut() {
            bytes.push(0);
        }
    }
}

fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}\nRequestId:r-1\nTime:2025-01-01T00:00:00.0000000Z</Message></Error>"
    );
    let mut response = (status, body).into_response();
    response.headers_mut().insert("content-type", "application/xml".parse().expect("header"));
    response.headers_mut().insert("x-ms-error-code", code.parse().expect("header"));
    response
}

/// The Shared Key string-to-sign, written from the REST reference independently of the client.
fn expected_signature(method: &Method, uri: &Uri, headers: &HeaderMap) -> String {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let length = h("content-length");
    let length = if length == "0" { String::new() } else { length };
    let mut ms: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-ms-"))
        .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().trim().to_owned()))
        .collect();
    ms.sort();
    let canonical_headers: String = ms.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let string_to_sign = [
        method.as_str().to_owned(),
        h("content-encoding"),
        h("content-language"),
        length,
        h("content-md5"),
        h("content-type"),
        h("date"),
        h("if-modified-since"),
        h("if-match"),
        h("if-none-match"),
        h("if-unmodified-since"),
        h("range"),
    ]
    .join("\n")
        + "\n"
        + &canonical_headers
        + &format!("/{ACCOUNT}{}", uri.path());
    let key = STANDARD.decode(ACCOUNT_KEY).expect("key");
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key), string_to_sign.as_bytes());
    STANDARD.encode(tag.as_ref())
}

async fn blob(
    State(state): State<Arc<Mutex<AzureState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    if s.busy > 0 {
        s.busy -= 1;
        return storage_error(StatusCode::SERVICE_UNAVAILABLE, "ServerBusy", "The server is busy.");
    }
    // Authentication: version, a fresh date, and the signature.
    let fresh = httpdate::parse_http_date(&h("x-ms-date")).ok().is_some_and(|date| {
        let now = SystemTime::now();
        let skew = now.duration_since(date).or_else(|_| date.duration_since(now)).unwrap_or(Duration::MAX);
        skew < Duration::from_secs(15 * 60)
    });
    let expected = format!("SharedKey {ACCOUNT}:{}", expected_signature(&method, &uri, &headers));
    if h("x-ms-version").is_empty() || !fresh || h("authorization") != expected {
        let why = format!(
            "{method} {}: version {:?}, fresh date {fresh}, authorization {:?}",
            uri.path(),
            h("x-ms-version"),
            h("authorization")
        );
        s.auth_failures.push(why);
        return storage_error(
            StatusCode::FORBIDDEN,
            "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
        );
    }
    let Some(name) = uri.path().strip_prefix(&format!("/{ACCOUNT}/{CONTAINER}/")).map(str::to_owned) else {
        return storage_error(StatusCode::NOT_FOUND, "ContainerNotFound", "The specified container does not exist.");
    };
    match method {
        Method::PUT => {
            s.puts += 1;
            if h("x-ms-blob-type") != "BlockBlob" {
                return storage_error(StatusCode::BAD_REQUEST, "MissingRequiredHeader", "x-ms-blob-type is required.");
            }
            if h("if-none-match") == "*" && s.blobs.contains_key(&name) {
                return storage_error(StatusCode::CONFLICT, "BlobAlreadyExists", "The specified blob already exists.");
            }
            s.blobs.insert(name, (body.to_vec(), h("content-type")));
            let mut response = StatusCode::CREATED.into_response();
            response.headers_mut().insert("etag", "\"0x8D0\"".parse().expect("header"));
            response
        }
        Method::GET => {
            s.gets += 1;
            match s.blobs.get(&name) {
                Some((bytes, content_type)) => {
                    let mut response = (StatusCode::OK, bytes.clone()).into_response();
                    if let Ok(value) = content_type.parse() {
                        response.headers_mut().insert("content-type", value);
                    }
                    response.headers_mut().insert("x-ms-blob-type", "BlockBlob".parse().expect("header"));
                    response
                }
                None => storage_error(StatusCode::NOT_FOUND, "BlobNotFound", "The specified blob does not exist."),
            }
        }
        _ => storage_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UnsupportedHttpVerb",
            "The resource doesn't support the specified HTTP verb.",
        ),
    }
}
