//! The Instagram Graph contract server (PROVIDERS.md §4): `GET /{v}/{ig-user}/content_publishing_limit`,
//! `POST /{v}/{ig-user}/media` (form: `image_url`, `caption`, `access_token`),
//! `GET /{v}/{container}?fields=status_code,status`, `POST /{v}/{ig-user}/media_publish`
//! (`creation_id`), `GET /{v}/{media}?fields=permalink`. Errors use the Graph envelope
//! `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`: 190 for a bad token, 100 for
//! bad input, 9/2207042 past the 24 h publishing quota (counted at `media_publish`). Scriptable:
//! how containers end, and the quota. Counts every request.
//!
//! Like Meta, `POST /media` FETCHES `image_url` before it creates the container: a plain HTTP GET
//! (no credentials, at most [`MAX_REDIRECTS`] redirects, a timeout). A fetch that fails or does not
//! answer 200 is Graph error 9004/2207052 ("media could not be fetched"); bytes that are not a JPEG
//! are 9004/2207005 ("unsupported image format"). Every fetch is recorded ([`Fetch`]). Only plain
//! `http://` is fetched (a test server has no public certificate): an `https://` URL fails like an
//! unreachable one. [`ImageHost`] serves a real JPEG and PNG for tests that need a fetchable URL.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
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
    status_code: String,
    reads: u32,
    script: ContainerScript,
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

fn token_ok(token: Option<&String>) -> bool {
    token.map(String::as_str) == Some(TOKEN)
}

async fn read_node(
    State(state): State<Shared>,
    Path((version, node)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    enter(&state).await;
    if version != VERSION {
        return graph_error(StatusCode::BAD_REQUEST, 2635, None, "unsupported API version");
    }
    if !token_ok(query.get("access_token")) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            190,
            Some(463),
            "Error validating access token: Session has expired",
        );
    }
    let fields = query.get("fields").cloned().unwrap_or_default();
    let mut s = lock(&state);
    if let Some(container) = s.containers.get_mut(&node) {
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
    if node.starts_with("m-") && fields == "permalink" {
        return axum::Json(json!({"permalink": format!("https://www.instagram.com/p/{node}/"), "id": node}))
            .into_response();
    }
    graph_error(StatusCode::BAD_REQUEST, 100, Some(33), "Unsupported get request. Object does not exist")
}

async fn read_edge(
    State(state): State<Shared>,
    Path((version, node, edge)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    enter(&state).await;
    if version != VERSION || node != IG_USER || edge != "content_publishing_limit" {
        return graph_error(StatusCode::BAD_REQUEST, 100, Some(33), "Unsupported get request");
    }
    if !token_ok(query.get("access_token")) {
        return graph_error(StatusCode::BAD_REQUEST, 190, Some(460), "Error validating access token");
    }
    let s = lock(&state);
    axum::Json(json!({"data": [{"quota_usage": s.quota_usage, "config": {"quota_total": s.quota_total, "quota_duration": 86400}}]}))
        .into_response()
}

async fn write_edge(
    State(state): State<Shared>,
    Path((version, node, edge)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    enter(&state).await;
    // Decoded with an independent form parser, not the client's own encoder's twin.
    let mut form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    form.extend(query);
    if version != VERSION || node != IG_USER {
        return graph_error(StatusCode::BAD_REQUEST, 100, Some(33), "Unsupported post request");
    }
    if !token_ok(form.get("access_token")) {
        return graph_error(StatusCode::BAD_REQUEST, 190, Some(460), "Error validating access token");
    }
    if edge == "media" {
        return create_container(&state, &form).await;
    }
    let mut s = lock(&state);
    match edge.as_str() {
        "media_publish" => {
            let creation = form.get("creation_id").cloned().unwrap_or_default();
            let finished = s.containers.get(&creation).map(|c| c.status_code.clone());
            match finished.as_deref() {
                Some("FINISHED") => {}
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
            axum::Json(json!({ "id": format!("m-{}", s.publishes) })).into_response()
        }
        _ => graph_error(StatusCode::BAD_REQUEST, 100, Some(33), "Unsupported post request"),
    }
}

/// `POST /{ig-user}/media`: checks the form, fetches `image_url` like Meta, creates a container.
async fn create_container(state: &Shared, form: &HashMap<String, String>) -> Response {
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
    let verdict = match (fetch.status, fetch.jpeg) {
        (Some(200), true) => None,
        (Some(200), false) => Some((2_207_005, "The image format is not supported. Only JPEG is supported.")),
        _ => Some((2_207_052, "Media could not be fetched from the URI")),
    };
    let mut s = lock(state);
    s.fetches.push(fetch);
    if let Some((subcode, message)) = verdict {
        // 2207052 and 2207005 are Meta's subcodes (its error-code table; 2207009 is the aspect
        // ratio one). The top-level code of 2207005 is unconfirmed: 9004 ("media type not
        // accepted") is assumed for both; a client must classify on the subcode.
        return graph_error(StatusCode::BAD_REQUEST, 9_004, Some(subcode), message);
    }
    s.containers_created += 1;
    let id = format!("c-{}", s.containers_created);
    let script = s.script.clone().unwrap_or(ContainerScript::Finished);
    let status_code = match script {
        ContainerScript::Finished => "FINISHED",
        ContainerScript::InProgress(_) => "IN_PROGRESS",
        ContainerScript::Error(_) => "ERROR",
    };
    s.containers.insert(id.clone(), Container { status_code: status_code.into(), reads: 0, script });
    s.captions.push(caption);
    s.image_urls.push(image);
    axum::Json(json!({ "id": id })).into_response()
}

/// GETs `url` as Meta's crawler does: no credentials, at most [`MAX_REDIRECTS`] redirects,
/// [`MAX_IMAGE_BYTES`], everything within `timeout`.
async fn crawl(url: &str, timeout: Duration) -> Fetch {
    let mut fetch =
        Fetch { url: url.to_owned(), status: None, content_type: String::new(), size: 0, jpeg: false, error: None };
    match tokio::time::timeout(timeout, follow(url)).await {
        Ok(Ok((status, content_type, body))) => {
            fetch.status = Some(status);
            fetch.content_type = content_type;
            fetch.size = body.len();
            fetch.jpeg = body.starts_with(&[0xFF, 0xD8, 0xFF]);
        }
        Ok(Err(error)) => fetch.error = Some(error),
        Err(_) => fetch.error = Some(format!("timed out after {timeout:?}")),
    }
    fetch
}

async fn follow(url: &str) -> Result<(u16, String, Bytes), String> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut current = url.to_owned();
    for _ in 0..=MAX_REDIRECTS {
        let uri: http::Uri = current.parse().map_err(|e| format!("bad URI {current}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("{current}: only http:// is fetched by the contract server"));
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
        let body = Limited::new(response.into_body(), MAX_IMAGE_BYTES)
            .collect()
            .await
            .map_err(|e| format!("body of {current}: {e}"))?
            .to_bytes();
        return Ok((status.as_u16(), content_type, body));
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

impl IgServer {
    pub async fn start() -> IgServer {
        let state: Shared = Arc::new(Mutex::new(IgState { quota_total: 100, ..IgState::default() }));
        let router = Router::new()
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

/// A stand-in for the platform's public image route (`GET /api/v1/public/images/{id}`): a real
/// JPEG with `?format=IMAGE_FORMAT_JPEG`, the stored PNG otherwise, as the content service answers.
/// `GET /hop/{n}` redirects `n` times before landing on the JPEG. Point a distribution's public
/// base URL at [`ImageHost::base_url`] so Instagram's fetch of the image succeeds for real.
pub struct ImageHost {
    pub addr: SocketAddr,
    state: Arc<HostState>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct HostState {
    requests: Mutex<Vec<String>>,
    /// Serve the stored PNG whatever `format` asks (an edge without JPEG conversion).
    stored_only: std::sync::atomic::AtomicBool,
}

/// A 4×4 JPEG (quality 90), made with the encoder the content service uses.
pub fn sample_jpeg() -> Vec<u8> {
    let pixels: Vec<u8> = (0..16u8).flat_map(|i| [i * 16, 128, 255 - i * 16]).collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&pixels, 4, 4, jpeg_encoder::ColorType::Rgb)
        .expect("encode a sample JPEG");
    out
}

/// A 4×4 RGB PNG.
pub fn sample_png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 4, 4);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("PNG header");
        writer.write_image_data(&[200; 48]).expect("PNG data");
    }
    out
}

async fn host_image(
    State(state): State<Arc<HostState>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    state.requests.lock().expect("image host").push(id);
    let stored_only = state.stored_only.load(std::sync::atomic::Ordering::SeqCst);
    match query.get("format").map(String::as_str).filter(|_| !stored_only) {
        Some("IMAGE_FORMAT_JPEG") => ([(http::header::CONTENT_TYPE, "image/jpeg")], sample_jpeg()).into_response(),
        None | Some("IMAGE_FORMAT_UNSPECIFIED" | "IMAGE_FORMAT_STORED") => {
            ([(http::header::CONTENT_TYPE, "image/png")], sample_png()).into_response()
        }
        Some(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn hop(Path(n): Path<u32>) -> Response {
    let next = match n {
        0 => "/api/v1/public/images/hop?format=IMAGE_FORMAT_JPEG".to_owned(),
        n => format!("/hop/{}", n - 1),
    };
    (StatusCode::FOUND, [(http::header::LOCATION, next)]).into_response()
}

impl ImageHost {
    pub async fn start() -> ImageHost {
        let state = Arc::new(HostState::default());
        let router = Router::new()
            .route("/api/v1/public/images/{id}", get(host_image))
            .route("/hop/{n}", get(hop))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind image host");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("image host serves");
        });
        ImageHost { addr, state, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The image ids requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().expect("image host").clone()
    }

    /// From now on serve the stored PNG whatever `format` asks, as an edge without JPEG
    /// conversion would.
    pub fn serve_stored_only(&self) {
        self.state.stored_only.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for ImageHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// POSTs a media container for `image_url`; the Graph answer.
    async fn create(ig: &IgServer, image_url: &str) -> serde_json::Value {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("image_url", image_url)
            .append_pair("caption", "hi")
            .append_pair("access_token", TOKEN)
            .finish();
        let client: Client<_, String> = Client::builder(TokioExecutor::new()).build_http();
        let request = http::Request::post(format!("{}/{VERSION}/{IG_USER}/media", ig.base_url()))
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .expect("request");
        let response = client.request(request).await.expect("graph answers");
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice(&bytes).expect("json")
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

        let fetches = ig.fetches();
        assert_eq!(fetches.len(), 7);
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
