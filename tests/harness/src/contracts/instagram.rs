//! The Instagram Graph contract server (PROVIDERS.md §4): `GET /{v}/{ig-user}/content_publishing_limit`,
//! `POST /{v}/{ig-user}/media` (form: `image_url`, `caption`, `access_token`),
//! `GET /{v}/{container}?fields=status_code,status`, `POST /{v}/{ig-user}/media_publish`
//! (`creation_id`), `GET /{v}/{media}?fields=permalink`. Errors use the Graph envelope
//! `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`: 190 for a bad token, 100 for
//! bad input, 9/2207042 past the 24 h publishing quota (counted at `media_publish`). Scriptable:
//! how containers end, and the quota. A container not published within 24 h (virtual clock) reads
//! `EXPIRED` and publishing it is 9007/2207008. Counts every request.
//!
//! Like Meta, `POST /media` FETCHES `image_url` before it creates the container: a plain HTTP GET
//! (no credentials, at most [`MAX_REDIRECTS`] redirects, a timeout). A fetch that fails or does not
//! answer 200 is Graph error 9004/2207052 ("media could not be fetched"); bytes that are not a JPEG
//! are 9004/2207005 ("unsupported image format"); more than [`MAX_IMAGE_BYTES`] is 36000/2207004
//! ("image too large"); a JPEG whose aspect ratio is outside 4:5 – 1.91:1 is 36003/2207009. Every
//! fetch is recorded ([`Fetch`]). Only plain `http://` is fetched (a test server has no public
//! certificate): an `https://` URL fails like an unreachable one. [`ImageHost`] serves a real JPEG and PNG for
//! tests that need a fetchable URL, on the edge's signed `/media/{token}` links too.
//!
//! The same base URL also serves Instagram Login and the token lifecycle (`instagram/login.rs`, §9:
//! the api.instagram.com, www.instagram.com and graph.instagram.com paths) and media insights
//! (`instagram/insights.rs`, §10). Every Graph call checks its token like Meta: issued here, unexpired on the
//! virtual clock ([`IgServer::advance`]), its account not revoked, acting on its own account
//! (another account's id is code 10) with the scope the edge needs. [`TOKEN`] is a pre-registered
//! long-lived token of [`IG_USER`] with every scope, so a test can publish without logging in.

mod image_host;
mod insights;
mod login;

pub use image_host::{ImageHost, MediaFetch, sample_feed_jpeg, sample_jpeg, sample_jpeg_sized, sample_png};
pub use insights::Insights;
pub use login::{
    APP_ID, APP_SECRET, CODE_TTL, Consent, IgAccount, LONG_TTL, REFRESH_MIN_AGE, SCOPE_BASIC, SCOPE_COMMENTS,
    SCOPE_INSIGHTS, SCOPE_MESSAGES, SCOPE_PUBLISH, SHORT_TTL, SUBCODE_APP_REMOVED, SUBCODE_EXPIRED, TokenInfo,
    TokenKind, TokenShape,
};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use kem_kit::clock::ManualClock;
use serde_json::json;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "EAAB-test-token";
pub const IG_USER: &str = "17841400000000";
pub const VERSION: &str = "v21.0";

/// What a new container does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerScript {
    /// FINISHED at once.
    Finished,
    /// IN_PROGRESS for this many status reads, then FINISHED.
    InProgress(u32),
    /// ERROR with this `status` text.
    Error(String),
}

#[derive(Debug, Clone)]
struct Container {
    /// The account that created it.
    owner: String,
    status_code: String,
    reads: u32,
    script: ContainerScript,
    /// An unpublished container turns EXPIRED 24 h after creation (virtual clock).
    expires_ms: i64,
}

/// How long an unpublished container lives.
pub const CONTAINER_TTL: Duration = Duration::from_secs(24 * 3_600);

impl Container {
    /// Applies the 24 h expiry as of `now_ms`.
    fn age(&mut self, now_ms: i64) {
        if self.status_code != "PUBLISHED" && now_ms >= self.expires_ms {
            self.status_code = "EXPIRED".into();
        }
    }
}

/// Redirects the crawler follows. Meta documents no number; "a few", as crawlers do.
pub const MAX_REDIRECTS: usize = 3;
/// Largest image fetched: Meta's error table gives 8 MiB (code 36000/2207004).
pub const MAX_IMAGE_BYTES: usize = 8 * 1024 * 1024;
/// How long a fetch may take by default (Meta's own limit is undocumented; 2207003 is its timeout).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One fetch of an `image_url`, as Meta's crawler made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// The URL the media request named (before redirects).
    pub url: String,
    /// The final response's status; `None` when none came (refused, timed out, not `http://`,
    /// too many redirects).
    pub status: Option<u16>,
    /// The final response's `Content-Type` ("" when absent).
    pub content_type: String,
    /// Bytes received.
    pub size: usize,
    /// Whether the bytes start with the JPEG signature `FF D8 FF`.
    pub jpeg: bool,
    /// Width × height read from the JPEG's frame header (`None`: not a JPEG or no frame found).
    pub dimensions: Option<(u32, u32)>,
    /// The body was longer than [`MAX_IMAGE_BYTES`].
    pub too_large: bool,
    /// Why the fetch failed, when it did.
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct IgState {
    pub containers_created: u64,
    pub publishes: u64,
    pub calls: u64,
    pub captions: Vec<String>,
    pub image_urls: Vec<String>,
    containers: HashMap<String, Container>,
    script: Option<ContainerScript>,
    pub quota_total: i64,
    pub quota_usage: i64,
    /// Every `image_url` fetch, in order.
    pub fetches: Vec<Fetch>,
    fetch_timeout: Option<Duration>,
    /// The virtual clock every expiry reads.
    clock: ManualClock,
    login: login::Login,
    insights: insights::InsightsState,
    /// Published media id → the account that owns it.
    media: HashMap<String, String>,
}

pub struct IgServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<IgState>>,
    task: JoinHandle<()>,
}

type Shared = Arc<Mutex<IgState>>;

fn graph_error(status: StatusCode, code: i64, subcode: Option<i64>, message: &str) -> Response {
    let mut error = json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"});
    if let Some(sub) = subcode {
        error["error_subcode"] = json!(sub);
    }
    (status, axum::Json(json!({ "error": error }))).into_response()
}

fn lock(state: &Shared) -> MutexGuard<'_, IgState> {
    state.lock().expect("instagram state")
}

/// Counts the call.
async fn enter(state: &Shared) {
    lock(state).calls += 1;
}

async fn read_node(
    State(state): State<Shared>,
    Path((version, node)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    enter(&state).await;
    if version != VERSION {
        return graph_error(StatusCode::BAD_REQUEST, 2635, None, "unsupported API version");
    }
    let mut s = lock(&state);
    if node == "me" {
        return login::me(&s, &query, &headers);
    }
    let caller = match login::check_token(&s, login::token_of(&query, &headers)) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    let fields = query.get("fields").cloned().unwrap_or_default();
    let owner = s.containers.get(&node).map(|c| c.owner.clone()).or_else(|| s.media.get(&node).cloned());
    if owner.is_some_and(|owner| owner != caller.user_id) {
        return login::permission_error().into_response();
    }
    let now_ms = kem_kit::clock::Clock::now_ms(&s.clock);
    if let Some(container) = s.containers.get_mut(&node) {
        container.age(now_ms);
        if fields != "status_code,status" {
            return graph_error(StatusCode::BAD_REQUEST, 100, None, "(#100) Tried accessing nonexisting field");
        }
        container.reads += 1;
        if container.status_code == "IN_PROGRESS"
            && let ContainerScript::InProgress(n) = container.script
            && container.reads > n
        {
            container.status_code = "FINISHED".into();
        }
        let status = match (&container.script, container.status_code.as_str()) {
            (ContainerScript::Error(text), "ERROR") => text.clone(),
            (_, code) => format!("{code}: ok"),
        };
        return axum::Json(json!({"status_code": container.status_code, "status": status, "id": node})).into_response();
    }
    if s.media.contains_key(&node) && fields == "permalink" {
        return axum::Json(json!({"permalink": format!("https://www.instagram.com/p/{node}/"), "id": node}))
            .into_response();
    }
    graph_error(StatusCode::BAD_REQUEST, 100, Some(33), "Unsupported get request. Object does not exist")
}

async fn read_edge(
    State(state): State<Shared>,
    Path((version, node, edge)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    enter(&state).await;
    if version != VERSION || !matches!(edge.as_str(), "content_publishing_limit" | "insights") {
        return graph_error(StatusCode::BAD_REQUEST, 100, Some(33), "Unsupported get request");
    }
    let mut s = lock(&state);
    let caller = match login::check_token(&s, login::token_of(&query, &headers)) {
        Ok(caller) => caller,
        Err(refusal) => return refusal.into_response(),
    };
    if edge == "insights" {
        return insights::read(&mut s, &caller, &node, &query);
    }
    if let Err(refusal) = login::check_owner(&s, &caller, &node, SCOPE_PUBLISH) {
        return refusal.into_response();
    }
    axum::Json(json!({"data": [{"quota_usage": s.quota_usage, "config": {"quota_total": s.quota_total, "quota_duration": 86400}}]}))
        .into_response()
}

async fn write_edge(
    State(state): State<Shared>,
    Path((version, node, edge)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    enter(&state).await;
    // Decoded with an independent form parser, not the client's own encoder's twin.
    let mut form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    form.extend(query);
    if version != VERSION {
        return graph_error(StatusCode::BAD_REQUEST, 100, Some(33), "Unsupported post request");
    }
    let caller = {
        let s = lock(&state);
        let caller = match login::check_token(&s, login::token_of(&form, &headers)) {
            Ok(caller) => caller,
            Err(refusal) => return refusal.into_response(),
        };
        if let Err(refusal) = login::check_owner(&s, &caller, &node, SCOPE_PUBLISH) {
            return refusal.into_response();
        }
        caller
    };
    if edge == "media" {
        return create_container(&state, &form, &caller.user_id).await;
    }
    let mut s = lock(&state);
    match edge.as_str() {
        "media_publish" => {
            let creation = form.get("creation_id").cloned().unwrap_or_default();
            let now_ms = kem_kit::clock::Clock::now_ms(&s.clock);
            let finished = s.containers.get_mut(&creation).filter(|c| c.owner == caller.user_id).map(|c| {
                c.age(now_ms);
                c.status_code.clone()
            });
            match finished.as_deref() {
                Some("FINISHED") => {}
                Some("EXPIRED") => {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        9_007,
                        Some(2_207_008),
                        "The media container expired: it was not published within 24 hours",
                    );
                }
                Some(_) => {
                    return graph_error(
                        StatusCode::BAD_REQUEST,
                        9_007,
                        Some(2_207_027),
                        "Media is not ready for publishing",
                    );
                }
                None => return graph_error(StatusCode::BAD_REQUEST, 100, None, "(#100) creation_id is invalid"),
            }
            if s.quota_usage >= s.quota_total {
                return graph_error(StatusCode::BAD_REQUEST, 9, Some(2_207_042), "Application request limit reached");
            }
            s.quota_usage += 1;
            s.publishes += 1;
            if let Some(c) = s.containers.get_mut(&creation) {
                c.status_code = "PUBLISHED".into();
            }
            let id = s.new_media(&caller.user_id);
            axum::Json(json!({ "id": id })).into_response()
        }
        _ => graph_error(StatusCode::BAD_REQUEST, 100, Some(33), "Unsupported post request"),
    }
}

/// `POST /{ig-user}/media`: checks the form, fetches `image_url` like Meta, creates a container.
async fn create_container(state: &Shared, form: &HashMap<String, String>, owner: &str) -> Response {
    let image = form.get("image_url").cloned().unwrap_or_default();
    let caption = form.get("caption").cloned().unwrap_or_default();
    if !(image.starts_with("https://") || image.starts_with("http://")) {
        return graph_error(StatusCode::BAD_REQUEST, 100, None, "(#100) The parameter image_url is required");
    }
    if caption.chars().count() > 2_200 || caption.matches('#').count() > 30 {
        return graph_error(StatusCode::BAD_REQUEST, 100, Some(2_207_028), "caption too long");
    }
    // Fetched before the state is locked: the lock is never held across an await.
    let timeout = lock(state).fetch_timeout.unwrap_or(FETCH_TIMEOUT);
    let fetch = crawl(&image, timeout).await;
    // Subcodes are Meta's (its error-code table). The top-level code of 2207005 is unconfirmed:
    // 9004 ("media type not accepted") is assumed, as for 2207052; a client must classify on the
    // subcode.
    let verdict = match (fetch.status, fetch.jpeg, fetch.dimensions) {
        _ if fetch.too_large => Some((36_000, 2_207_004, "The image is too large (at most 8 MB).")),
        (Some(200), true, Some((w, h))) if !aspect_ok(w, h) => {
            Some((36_003, 2_207_009, "The submitted image with aspect ratio is not supported (4:5 to 1.91:1)."))
        }
        (Some(200), true, Some(_)) => None,
        (Some(200), true, None) => Some((9_004, 2_207_005, "The image could not be read as a JPEG.")),
        (Some(200), false, _) => Some((9_004, 2_207_005, "The image format is not supported. Only JPEG is supported.")),
        _ => Some((9_004, 2_207_052, "Media could not be fetched from the URI")),
    };
    let mut s = lock(state);
    s.fetches.push(fetch);
    if let Some((code, subcode, message)) = verdict {
        return graph_error(StatusCode::BAD_REQUEST, code, Some(subcode), message);
    }
    s.containers_created += 1;
    let id = format!("c-{}", s.containers_created);
    let expires_ms = kem_kit::clock::Clock::now_ms(&s.clock).saturating_add(login::ms(CONTAINER_TTL));
    let script = s.script.clone().unwrap_or(ContainerScript::Finished);
    let status_code = match script {
        ContainerScript::Finished => "FINISHED",
        ContainerScript::InProgress(_) => "IN_PROGRESS",
        ContainerScript::Error(_) => "ERROR",
    };
    s.containers.insert(
        id.clone(),
        Container { owner: owner.to_owned(), status_code: status_code.into(), reads: 0, script, expires_ms },
    );
    s.captions.push(caption);
    s.image_urls.push(image);
    axum::Json(json!({ "id": id })).into_response()
}

/// GETs `url` as Meta's crawler does: no credentials, at most [`MAX_REDIRECTS`] redirects,
/// [`MAX_IMAGE_BYTES`], everything within `timeout`.
async fn crawl(url: &str, timeout: Duration) -> Fetch {
    let mut fetch = Fetch {
        url: url.to_owned(),
        status: None,
        content_type: String::new(),
        size: 0,
        jpeg: false,
        dimensions: None,
        too_large: false,
        error: None,
    };
    match tokio::time::timeout(timeout, follow(url)).await {
        Ok(Ok((status, content_type, body))) => {
            fetch.status = Some(status);
            fetch.content_type = content_type;
            fetch.size = body.len();
            fetch.jpeg = body.starts_with(&[0xFF, 0xD8, 0xFF]);
            fetch.dimensions = jpeg_dimensions(&body);
        }
        Ok(Err(FetchError::TooLarge(status))) => {
            fetch.status = Some(status);
            fetch.too_large = true;
            fetch.error = Some(format!("more than {MAX_IMAGE_BYTES} bytes"));
        }
        Ok(Err(FetchError::Failed(error))) => fetch.error = Some(error),
        Err(_) => fetch.error = Some(format!("timed out after {timeout:?}")),
    }
    fetch
}

/// Instagram's feed accepts aspect ratios from 4:5 (portrait) to 1.91:1 (landscape).
fn aspect_ok(width: u32, height: u32) -> bool {
    let (w, h) = (u64::from(width), u64::from(height));
    // 4:5 <= w/h <= 1.91:1, in integers: 4h <= 5w and 100w <= 191h.
    h > 0 && 4 * h <= 5 * w && 100 * w <= 191 * h
}

/// Width and height from the first start-of-frame segment (SOF0–SOF15 but DHT/JPG/DAC).
fn jpeg_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut i = 2;
    while i + 3 < bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
            i += 2;
            continue;
        }
        let length = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let frame = bytes.get(i + 5..i + 9)?;
            let height = u32::from(u16::from_be_bytes([frame[0], frame[1]]));
            let width = u32::from(u16::from_be_bytes([frame[2], frame[3]]));
            return Some((width, height));
        }
        if marker == 0xDA || length < 2 {
            return None;
        }
        i += 2 + length;
    }
    None
}

enum FetchError {
    /// The body passed [`MAX_IMAGE_BYTES`] (the final status).
    TooLarge(u16),
    Failed(String),
}

impl From<String> for FetchError {
    fn from(error: String) -> FetchError {
        FetchError::Failed(error)
    }
}

async fn follow(url: &str) -> Result<(u16, String, Bytes), FetchError> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut current = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let uri: http::Uri = current.parse().map_err(|e| format!("bad URI {current}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{current}: only http:// is fetched by the contract server").into());
        }
        let request = http::Request::get(uri.clone())
            .header(http::header::USER_AGENT, "facebookexternalhit/1.1")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let response = client.request(request).await.map_err(|e| format!("GET {current}: {e}"))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| format!("{status} without a Location"))?;
            current = if location.starts_with('/') {
                format!("http://{}{location}", uri.authority().map(|a| a.as_str()).unwrap_or_default())
            } else {
                location.to_owned()
            };
            continue;
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = match Limited::new(response.into_body(), MAX_IMAGE_BYTES).collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Err(FetchError::TooLarge(status.as_u16()));
            }
            Err(e) => return Err(FetchError::Failed(format!("body of {current}: {e}"))),
        };
        return Ok((status.as_u16(), content_type, body));
    }
    Err(FetchError::Failed(format!("more than {MAX_REDIRECTS} redirects")))
}

impl IgState {
    /// A new media id owned by `owner` (`m-1`, `m-2`, … across published and seeded media).
    fn new_media(&mut self, owner: &str) -> String {
        let id = format!("m-{}", self.media.len() + 1);
        self.media.insert(id.clone(), owner.to_owned());
        id
    }
}

impl IgServer {
    /// A server on its own virtual clock, starting at the current time.
    pub async fn start() -> IgServer {
        IgServer::start_with_clock(ManualClock::starting_now()).await
    }

    /// A server whose expiries read `clock` — pass a clone of the services' `ManualClock` so one
    /// `advance` moves the platform and kem together.
    pub async fn start_with_clock(clock: ManualClock) -> IgServer {
        use kem_kit::clock::Clock;
        let login = login::Login::seeded(clock.now_ms());
        let state: Shared = Arc::new(Mutex::new(IgState { quota_total: 100, clock, login, ..IgState::default() }));
        let router = Router::new()
            .route("/oauth/authorize", get(login::authorize))
            .route("/oauth/access_token", post(login::access_token))
            .route("/access_token", get(login::exchange))
            .route("/refresh_access_token", get(login::refresh))
            .route("/me", get(login::me_unversioned))
            .route("/{version}/{node}", get(read_node))
            .route("/{version}/{node}/{edge}", get(read_edge).post(write_edge))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind instagram");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("instagram serves");
        });
        IgServer { addr, state, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> MutexGuard<'_, IgState> {
        lock(&self.state)
    }

    /// How the next containers end.
    pub fn script(&self, script: ContainerScript) {
        self.state().script = Some(script);
    }

    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    /// The virtual clock (a clone: advancing it advances the server).
    pub fn clock(&self) -> ManualClock {
        self.state().clock.clone()
    }

    /// Moves the virtual clock forward.
    pub fn advance(&self, by: Duration) {
        self.state().clock.advance(by);
    }

    /// A published media of `account` (as if posted outside kem), for insights tests; its id.
    pub fn seed_media(&self, account: &IgAccount) -> String {
        self.state().new_media(&account.user_id)
    }

    /// How long an `image_url` fetch may take (default [`FETCH_TIMEOUT`]).
    pub fn fetch_timeout(&self, timeout: Duration) {
        self.state().fetch_timeout = Some(timeout);
    }

    /// Every `image_url` fetch so far.
    pub fn fetches(&self) -> Vec<Fetch> {
        self.state().fetches.clone()
    }

    pub fn publishes(&self) -> u64 {
        self.state().publishes
    }

    /// Quota of the 24 h window.
    pub fn quota(&self, used: i64, total: i64) {
        let mut s = self.state();
        s.quota_usage = used;
        s.quota_total = total;
    }
}

impl Drop for IgServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A plain HTTP client for the contract servers' own tests (no redirects followed, any status).
#[cfg(test)]
pub(crate) mod testing {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    use axum::body::Bytes;

    /// One request; the status, headers and body.
    pub async fn request(
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> (u16, http::HeaderMap, Bytes) {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response =
            client.request(request.body(Full::new(Bytes::from(body))).expect("request")).await.expect("answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        (status, headers, body)
    }

    pub async fn get_raw(url: &str) -> (u16, http::HeaderMap, Bytes) {
        request(http::Method::GET, url, &[], String::new()).await
    }

    fn json(body: &Bytes) -> serde_json::Value {
        serde_json::from_slice(body).unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into()))
    }

    pub async fn get_json(url: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = get_raw(url).await;
        (status, json(&body))
    }

    pub async fn post_form(url: &str, pairs: &[(&str, &str)]) -> (u16, serde_json::Value) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        let (status, _, body) = request(http::Method::POST, url, &headers, body).await;
        (status, json(&body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// POSTs a media container for `image_url`; the Graph answer.
    async fn create(ig: &IgServer, image_url: &str) -> serde_json::Value {
        create_as(ig, IG_USER, TOKEN, image_url).await
    }

    async fn create_as(ig: &IgServer, node: &str, token: &str, image_url: &str) -> serde_json::Value {
        let pairs = [("image_url", image_url), ("caption", "hi"), ("access_token", token)];
        testing::post_form(&format!("{}/{VERSION}/{node}/media", ig.base_url()), &pairs).await.1
    }

    async fn publish_as(ig: &IgServer, node: &str, token: &str, creation: &str) -> serde_json::Value {
        let pairs = [("creation_id", creation), ("access_token", token)];
        testing::post_form(&format!("{}/{VERSION}/{node}/media_publish", ig.base_url()), &pairs).await.1
    }

    #[test]
    fn aspect_range_and_jpeg_frame() {
        assert!(aspect_ok(1080, 1080) && aspect_ok(1080, 1350) && aspect_ok(1910, 1000));
        assert!(!aspect_ok(1080, 1351) && !aspect_ok(1911, 1000) && !aspect_ok(10, 0));
        assert_eq!(jpeg_dimensions(&sample_jpeg_sized(33, 17)), Some((33, 17)));
        assert_eq!(jpeg_dimensions(&sample_png()), None);
        assert_eq!(jpeg_dimensions(&[0xFF, 0xD8, 0xFF, 0xC0, 0x00]), None, "truncated");
        assert_eq!(jpeg_dimensions(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00, 0xFF]), None, "a zero-length segment");
    }

    #[tokio::test]
    async fn publishing_checks_the_token_like_meta() {
        let ig = IgServer::start().await;
        let host = ImageHost::start().await;
        let image = format!("{}/api/v1/public/images/a?format=IMAGE_FORMAT_JPEG", host.base_url());
        let shop = ig.add_account("shop_two");
        let theirs = ig.issue_long_lived(&shop, &[SCOPE_BASIC, SCOPE_PUBLISH]);

        let foreign = create_as(&ig, IG_USER, &theirs, &image).await;
        assert_eq!(foreign["error"]["code"], 10, "another account's id: {foreign}");
        let nobody = create_as(&ig, "17841499999999", &theirs, &image).await;
        assert_eq!((nobody["error"]["code"].as_i64(), subcode(&nobody)), (Some(100), Some(33)));
        let container = create_as(&ig, &shop.user_id, &theirs, &image).await;
        let container = container["id"].as_str().expect("a container").to_owned();
        let stolen = publish_as(&ig, IG_USER, TOKEN, &container).await;
        assert_eq!(stolen["error"]["code"], 100, "another account's container is not ours: {stolen}");
        let published = publish_as(&ig, "me", &theirs, &container).await;
        let media = published["id"].as_str().expect("published").to_owned();
        assert_eq!(ig.state().media.get(&media), Some(&shop.user_id));
        let (status, permalink) =
            testing::get_json(&format!("{}/{VERSION}/{media}?fields=permalink&access_token={TOKEN}", ig.base_url()))
                .await;
        assert_eq!((status, permalink["error"]["code"].as_i64()), (400, Some(10)), "{permalink}");

        let read_only = ig.issue_long_lived(&shop, &[SCOPE_BASIC]);
        assert_eq!(create_as(&ig, "me", &read_only, &image).await["error"]["code"], 10, "no publish scope");
        ig.revoke(&shop);
        let revoked = create_as(&ig, &shop.user_id, &theirs, &image).await;
        assert_eq!((revoked["error"]["code"].as_i64(), subcode(&revoked)), (Some(190), Some(SUBCODE_APP_REMOVED)));
        assert_eq!(create_as(&ig, IG_USER, "", &image).await["error"]["code"], 190, "no token");
        assert_eq!(create_as(&ig, IG_USER, &"A".repeat(10_000), &image).await["error"]["code"], 190);

        let unpublished = create(&ig, &image).await;
        let unpublished = unpublished["id"].as_str().expect("the pre-registered token works").to_owned();
        ig.advance(CONTAINER_TTL);
        let status_url =
            format!("{}/{VERSION}/{unpublished}?fields=status_code,status&access_token={TOKEN}", ig.base_url());
        assert_eq!(testing::get_json(&status_url).await.1["status_code"], "EXPIRED", "24 h unpublished");
        let late = publish_as(&ig, IG_USER, TOKEN, &unpublished).await;
        assert_eq!(subcode(&late), Some(2_207_008), "{late}");
        ig.advance(LONG_TTL - CONTAINER_TTL);
        let expired = create(&ig, &image).await;
        assert_eq!((expired["error"]["code"].as_i64(), subcode(&expired)), (Some(190), Some(SUBCODE_EXPIRED)));
        assert_eq!(ig.fetches().len(), 2, "a refused token fetches nothing");
    }

    fn subcode(answer: &serde_json::Value) -> Option<i64> {
        answer["error"]["error_subcode"].as_i64()
    }

    #[tokio::test]
    async fn the_media_edge_fetches_the_image_like_meta() {
        let ig = IgServer::start().await;
        let host = ImageHost::start().await;
        let base = host.base_url();

        let ok = create(&ig, &format!("{base}/api/v1/public/images/a?format=IMAGE_FORMAT_JPEG")).await;
        assert_eq!(ok["id"], "c-1", "{ok}");
        let png = create(&ig, &format!("{base}/api/v1/public/images/a")).await;
        assert_eq!((png["error"]["code"].as_i64(), subcode(&png)), (Some(9_004), Some(2_207_005)), "{png}");
        let missing = create(&ig, &format!("{base}/nothing-here")).await;
        assert_eq!(subcode(&missing), Some(2_207_052), "a 404 is not fetched: {missing}");
        let refused = create(&ig, "http://127.0.0.1:1/x.jpg").await;
        assert_eq!(subcode(&refused), Some(2_207_052), "{refused}");
        let tls = create(&ig, "https://kem.example/x.jpg").await;
        assert_eq!(subcode(&tls), Some(2_207_052), "{tls}");
        let redirected = create(&ig, &format!("{base}/hop/{}", MAX_REDIRECTS - 1)).await;
        assert_eq!(redirected["id"], "c-2", "{MAX_REDIRECTS} redirects are followed: {redirected}");
        let looped = create(&ig, &format!("{base}/hop/{}", MAX_REDIRECTS + 1)).await;
        assert_eq!(subcode(&looped), Some(2_207_052), "{looped}");

        let wide = create(&ig, &format!("{base}/wide.jpg")).await;
        assert_eq!((wide["error"]["code"].as_i64(), subcode(&wide)), (Some(36_003), Some(2_207_009)), "{wide}");
        let huge = create(&ig, &format!("{base}/huge.jpg")).await;
        assert_eq!((huge["error"]["code"].as_i64(), subcode(&huge)), (Some(36_000), Some(2_207_004)), "{huge}");

        let fetches = ig.fetches();
        assert_eq!(fetches.len(), 9);
        assert_eq!(fetches[0].dimensions, Some((4, 4)));
        assert_eq!(fetches[7].dimensions, Some((40, 10)));
        assert!(fetches[8].too_large, "{:?}", fetches[8].error);
        assert_eq!(
            (fetches[0].status, fetches[0].content_type.as_str(), fetches[0].jpeg),
            (Some(200), "image/jpeg", true)
        );
        assert_eq!(fetches[0].size, sample_jpeg().len());
        assert_eq!((fetches[1].content_type.as_str(), fetches[1].jpeg), ("image/png", false));
        assert_eq!(fetches[2].status, Some(404));
        assert!(fetches[3].status.is_none() && fetches[3].error.is_some(), "{:?}", fetches[3]);
        assert_eq!(ig.state().containers_created, 2, "a failed fetch creates no container");
    }
}
