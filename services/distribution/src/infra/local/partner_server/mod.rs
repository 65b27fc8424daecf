//! The partner side of `partner/v1` (PROVIDERS.md §7): a small HTTP server that behaves like a KT
//! partner for 우리동네TV, 링고비즈 and 지니TV. `kem up` runs it in-process when no partner is
//! configured (deliveries are then labelled `local:kt-partner`), and the tests run it as the
//! contract server of the partner channels.
//!
//! What it implements, as the contract says:
//! - `POST /partner/v1/oauth2/token`: client credentials (`invalid_client` 401,
//!   `unsupported_grant_type` 400, RFC 6749 error bodies), and the per-store grants of
//!   [`oauth`]: `GET /partner/v1/oauth2/authorize` (PKCE S256 required, registered redirect URIs
//!   matched exactly), `authorization_code` (codes single use, 60 s), `refresh_token` (rotated,
//!   reuse revokes the grant) and `POST /partner/v1/oauth2/revoke` (RFC 7009);
//! - a store's token sees only that store's jobs (another store's are 404 `job_not_found`);
//! - `POST /partner/v1/jobs`: Bearer token (`invalid_token` 401), `Idempotency-Key` required; the
//!   same key with the same body replays the original 202 (same `job_id`), with another body it
//!   is 409 `idempotency_conflict`; the body is validated (`invalid_request` 400,
//!   `validation_failed` 422); answers 202 with `Location` and `Retry-After`;
//! - `GET /partner/v1/jobs/{job_id}` (`job_not_found` 404) and `POST /partner/v1/jobs/{job_id}:cancel`
//!   (409 once terminal);
//! - `X-Request-Id` echoed, `RateLimit-Limit/Remaining/Reset` on every answer, 10 requests per
//!   second per client (429 `rate_limited` + `Retry-After`), errors as `application/problem+json`.
//!
//! Its review is deterministic: a job moves QUEUED → IN_REVIEW → APPROVED → SCHEDULED one
//! [`PartnerServerConfig::review_step`] at a time, then LIVE from its start date and COMPLETED
//! after its end date (Korea time). A creative whose title or script contains
//! [`PartnerServerConfig::reject_marker`] is REJECTED in review. Deviation, documented: both TV
//! channels accept an `image` creative (shown as a still for `duration_sec`), since kem generates
//! images only.

pub mod oauth;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use kem_kit::Secret;
use kem_kit::clock::{Clock, SystemClock};
use kem_mesh::Shutdown;
use serde_json::{Value, json};

use crate::domain::text::rfc3339;
use crate::infra::channels::form_decode;
use crate::infra::channels::partner::{JobMetrics, JobRequest, JobStatus, Problem, Submitted};

/// Path prefix of the contract.
pub const BASE_PATH: &str = "/partner/v1";
const KST_OFFSET_MS: i64 = 9 * 3_600_000;
const DAY_MS: i64 = 86_400_000;
const REVIEW: [&str; 4] = ["QUEUED", "IN_REVIEW", "APPROVED", "SCHEDULED"];

/// How the local partner behaves.
#[derive(Debug, Clone)]
pub struct PartnerServerConfig {
    /// Accepted client credentials.
    pub clients: Vec<(String, Secret)>,
    /// Time each review step takes.
    pub review_step: Duration,
    /// `Retry-After` sent with submissions and polls (whole seconds; 0 allowed).
    pub retry_after: Duration,
    /// Lifetime of access tokens.
    pub token_ttl: Duration,
    /// Requests per second per client.
    pub rate_limit: u32,
    /// Creatives containing this text are rejected in review (empty: none are).
    pub reject_marker: String,
    /// How long idempotency keys are remembered.
    pub idempotency_ttl: Duration,
    /// Redirect URIs registered for the per-store authorization (matched exactly).
    pub redirect_uris: Vec<String>,
    /// Lifetime of an authorization code (the contract: 60 s).
    pub code_ttl: Duration,
    /// The partner's clock: token, code and review times (tests move a manual one).
    pub clock: Arc<dyn Clock>,
}

impl Default for PartnerServerConfig {
    fn default() -> Self {
        PartnerServerConfig {
            clients: Vec::new(),
            review_step: Duration::from_secs(2),
            retry_after: Duration::from_secs(2),
            token_ttl: Duration::from_secs(3_600),
            rate_limit: 10,
            reject_marker: "[reject]".to_owned(),
            idempotency_ttl: Duration::from_secs(24 * 3_600),
            redirect_uris: Vec::new(),
            code_ttl: Duration::from_secs(60),
            clock: Arc::new(SystemClock),
        }
    }
}

#[derive(Debug, Clone)]
struct StoredJob {
    status: JobStatus,
    request: JobRequest,
    created_ms: i64,
    canceled: bool,
    client: String,
    /// The store whose token submitted it (`None`: the platform's client credentials).
    store: Option<String>,
}

#[derive(Debug, Clone)]
struct Remembered {
    body: Value,
    submitted: Submitted,
    at_ms: i64,
}

/// Who an access token speaks for.
#[derive(Debug, Clone)]
struct Issued {
    client: String,
    /// The grant of a store's token (its store id is the grant's).
    grant: Option<u64>,
    expires_ms: i64,
}

#[derive(Debug, Default)]
struct Books {
    tokens: HashMap<String, Issued>,
    oauth: oauth::Grants,
    jobs: HashMap<String, StoredJob>,
    keys: HashMap<(String, String), Remembered>,
    windows: HashMap<String, (i64, u32)>,
    submissions: u64,
}

/// The server's state (shared by its handlers).
#[derive(Debug)]
pub struct PartnerState {
    config: PartnerServerConfig,
    books: Mutex<Books>,
}

impl PartnerState {
    /// A partner with `config` and no jobs.
    pub fn new(config: PartnerServerConfig) -> Arc<PartnerState> {
        Arc::new(PartnerState { config, books: Mutex::new(Books::default()) })
    }

    fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> i64 {
        self.config.clock.now_ms()
    }

    /// Jobs created (replays excluded).
    pub fn jobs_created(&self) -> usize {
        self.books().jobs.len()
    }

    /// Accepted `POST /jobs` calls, replays included.
    pub fn submissions(&self) -> u64 {
        self.books().submissions
    }

    /// The current status of every job, by job id.
    pub fn job_statuses(&self) -> Vec<JobStatus> {
        let now = self.now();
        let books = self.books();
        books.jobs.values().map(|job| self.status_at(job, now)).collect()
    }

    fn status_at(&self, job: &StoredJob, now: i64) -> JobStatus {
        let mut status = job.status.clone();
        let step = i64::try_from(self.config.review_step.as_millis()).unwrap_or(i64::MAX).max(1);
        let elapsed = now.saturating_sub(job.created_ms);
        let index = usize::try_from(elapsed / step).unwrap_or(usize::MAX);
        let live_from = day_start_ms(&job.request.schedule.start_date);
        let live_until = day_start_ms(&job.request.schedule.end_date).map(|d| d + DAY_MS);
        let rejected = !self.config.reject_marker.is_empty() && {
            let c = &job.request.creative;
            [c.title.as_deref(), c.tts_text.as_deref()].iter().flatten().any(|t| t.contains(&self.config.reject_marker))
        };
        let (word, at) = if job.canceled {
            ("CANCELED", job.status.updated_at.clone())
        } else if rejected && index >= 2 {
            status.reason_code = Some("creative_policy".to_owned());
            status.reason_message = Some("the creative does not meet the broadcast advertising guidelines".to_owned());
            ("REJECTED", rfc3339(job.created_ms + 2 * step))
        } else if index < REVIEW.len() - 1 {
            (REVIEW[index], rfc3339(job.created_ms + i64::try_from(index).unwrap_or(0) * step))
        } else {
            let scheduled = job.created_ms + 3 * step;
            match (live_from, live_until) {
                (_, Some(until)) if now >= until && until > scheduled => ("COMPLETED", rfc3339(until)),
                (Some(from), _) if now >= from => ("LIVE", rfc3339(from.max(scheduled))),
                _ => ("SCHEDULED", rfc3339(scheduled)),
            }
        };
        if let (Some(from), "LIVE" | "COMPLETED") = (live_from, word) {
            status.metrics = Some(aired_metrics(&job.request.channel, from, live_until, now));
        }
        if matches!(word, "SCHEDULED" | "LIVE" | "COMPLETED") {
            status.live_from = live_from.map(rfc3339);
            status.live_until = live_until.map(rfc3339);
            status.partner_ref = Some(format!("KT-{}", &job.status.job_id[3..].to_uppercase()));
        }
        status.status = word.to_owned();
        status.updated_at = at;
        status
    }
}

/// Spots a TV channel airs per minute live, and the share of them that reaches a new household
/// (a deterministic audience, so tests can tell exactly what analytics must show).
const TV_SPOTS_PER_MINUTE: i64 = 4;
/// Callers a 링고비즈 greeting plays to per minute live.
const RINGO_PLAYS_PER_MINUTE: i64 = 1;

/// The `metrics` of a campaign that went live at `from` (and ends at `until`), as of `now`: the
/// minutes aired times the channel's rate; TV reach is three in five impressions, 링고비즈 has
/// none (a phone line cannot tell households).
fn aired_metrics(channel: &str, from: i64, until: Option<i64>, now: i64) -> JobMetrics {
    let end = until.map_or(now, |u| u.min(now));
    let minutes = end.saturating_sub(from).max(0) / 60_000;
    let (impressions, reach) = if channel == "RINGOBIZ" {
        (minutes.saturating_mul(RINGO_PLAYS_PER_MINUTE), None)
    } else {
        let impressions = minutes.saturating_mul(TV_SPOTS_PER_MINUTE);
        (impressions, Some(impressions / 5 * 3))
    };
    JobMetrics { impressions, reach, measured_at: rfc3339(end) }
}

/// `YYYY-MM-DD` (Korea time) → its first instant (ms).
fn day_start_ms(date: &str) -> Option<i64> {
    let mut parts = date.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * DAY_MS - KST_OFFSET_MS)
}

/// The routes of the contract over `state`.
pub fn router(state: Arc<PartnerState>) -> Router {
    Router::new()
        .route(&format!("{BASE_PATH}/oauth2/token"), post(token))
        .route(&format!("{BASE_PATH}/oauth2/authorize"), get(oauth::authorize))
        .route(&format!("{BASE_PATH}/oauth2/revoke"), post(oauth::revoke))
        .route(&format!("{BASE_PATH}/jobs"), post(submit))
        .route(&format!("{BASE_PATH}/jobs/{{job}}"), get(job).post(cancel))
        .with_state(state)
}

/// A running local partner.
#[derive(Debug)]
pub struct PartnerServer {
    addr: SocketAddr,
    state: Arc<PartnerState>,
}

impl PartnerServer {
    /// Serves `config` on a free port of 127.0.0.1 until `shutdown`.
    pub async fn start(config: PartnerServerConfig, shutdown: Shutdown) -> std::io::Result<PartnerServer> {
        let state = PartnerState::new(config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = router(state.clone());
        tokio::spawn(async move {
            let stop = async move { shutdown.wait().await };
            if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
                tracing::warn!(%error, "the local partner server stopped");
            }
        });
        tracing::info!(%addr, "LOCAL KT partner server (partner/v1) started: campaigns are demo data, nothing airs");
        Ok(PartnerServer { addr, state })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>/partner/v1`, the base URL of a client.
    pub fn base_url(&self) -> String {
        format!("http://{}{BASE_PATH}", self.addr)
    }

    /// Its state (jobs, counters).
    pub fn state(&self) -> &Arc<PartnerState> {
        &self.state
    }
}

/// Common headers: the echoed request id and the rate-limit window.
fn decorate(mut response: Response, request_id: &str, remaining: Option<(u32, u32)>) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), value);
    }
    if let Some((limit, left)) = remaining {
        headers.insert(HeaderName::from_static("ratelimit-limit"), HeaderValue::from(limit));
        headers.insert(HeaderName::from_static("ratelimit-remaining"), HeaderValue::from(left));
        headers.insert(HeaderName::from_static("ratelimit-reset"), HeaderValue::from_static("1"));
    }
    response
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map_or_else(|| format!("pr-{:016x}", rand::random::<u64>()), str::to_owned)
}

fn problem(status: StatusCode, code: &str, detail: impl Into<String>, request_id: &str) -> Response {
    let body = Problem {
        kind: format!("https://partner.example/problems/{code}"),
        title: status.canonical_reason().unwrap_or("error").to_owned(),
        status: status.as_u16(),
        detail: detail.into(),
        code: code.to_owned(),
        request_id: request_id.to_owned(),
    };
    let mut response = (status, serde_json::to_vec(&body).unwrap_or_default()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut response = (status, serde_json::to_vec(body).unwrap_or_default()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn token(State(state): State<Arc<PartnerState>>, headers: HeaderMap, body: Bytes) -> Response {
    let rid = request_id(&headers);
    let form: HashMap<String, String> = form_decode(&String::from_utf8_lossy(&body)).into_iter().collect();
    let error = |status: StatusCode, error: &str, description: &str| {
        decorate(json_response(status, &json!({"error": error, "error_description": description})), &rid, None)
    };
    let grant_type = form.get("grant_type").map(String::as_str).unwrap_or_default();
    if !matches!(grant_type, "client_credentials" | "authorization_code" | "refresh_token") {
        return error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials, authorization_code or refresh_token",
        );
    }
    let Some(id) = state.client_of(&form) else {
        return error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong secret");
    };
    match grant_type {
        "authorization_code" => return decorate(oauth::exchange(&state, &id, &form), &rid, None),
        "refresh_token" => return decorate(oauth::refresh(&state, &id, &form), &rid, None),
        _ => {}
    }
    let (token, ttl) = state.issue(&id, None);
    let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl.as_secs(), "scope": "ads.write ads.read"});
    decorate(json_response(StatusCode::OK, &body), &rid, None)
}

impl PartnerState {
    /// The client a token request authenticates as (`client_id` + `client_secret`), if known.
    fn client_of(&self, form: &HashMap<String, String>) -> Option<String> {
        let (id, secret) = (form.get("client_id")?, form.get("client_secret")?);
        self.config.clients.iter().any(|(cid, s)| cid == id && s.expose() == secret).then(|| id.clone())
    }

    /// A new access token of `client` (for the store of `grant`, when given) and its lifetime.
    fn issue(&self, client: &str, grant: Option<u64>) -> (String, Duration) {
        let token = format!("pt-{:032x}", rand::random::<u128>());
        let ttl = self.config.token_ttl;
        let now = self.now();
        let expires_ms = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2));
        let mut books = self.books();
        // Expired tokens are never accepted again: forgetting them keeps the books small.
        books.tokens.retain(|_, t| t.expires_ms > now);
        books.tokens.insert(token.clone(), Issued { client: client.to_owned(), grant, expires_ms });
        (token, ttl)
    }
}

/// Who a Bearer token speaks for: the client and, for a store's token, the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Caller {
    client: String,
    store: Option<String>,
}

/// The caller behind the Bearer token, and its rate-limit window; or the problem to answer.
fn authorize(state: &PartnerState, headers: &HeaderMap, rid: &str) -> Result<(Caller, (u32, u32)), Box<Response>> {
    let now = state.now();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let mut books = state.books();
    let issued = books.tokens.get(token).filter(|t| t.expires_ms > now).cloned();
    let caller = issued.and_then(|t| match t.grant {
        None => Some(Caller { client: t.client, store: None }),
        Some(grant) => books.oauth.live_store(grant).map(|store| Caller { client: t.client, store: Some(store) }),
    });
    let caller = match caller {
        Some(caller) => caller,
        None => {
            drop(books);
            let response = problem(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the access token is missing, unknown or expired",
                rid,
            );
            return Err(Box::new(decorate(response, rid, None)));
        }
    };
    let limit = state.config.rate_limit.max(1);
    let window = books.windows.entry(caller.client.clone()).or_insert((now, 0));
    if now - window.0 >= 1_000 {
        *window = (now, 0);
    }
    if window.1 >= limit {
        drop(books);
        let mut response = problem(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("more than {limit} requests per second"),
            rid,
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Err(Box::new(decorate(response, rid, Some((limit, 0)))));
    }
    window.1 += 1;
    let left = limit - window.1;
    Ok((caller, (limit, left)))
}

fn retry_after(state: &PartnerState, mut response: Response) -> Response {
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(state.config.retry_after.as_secs()));
    response
}

/// Contract checks of a submission; `Err` is the `validation_failed` detail.
fn validate(request: &JobRequest) -> Result<(), String> {
    let c = &request.creative;
    let media = c.media_type.as_str();
    if !matches!(media, "video" | "image" | "audio" | "tts") {
        return Err(format!("creative.media_type {media:?} must be video, image, audio or tts"));
    }
    if matches!(media, "video" | "image" | "audio")
        && !c.asset_url.as_deref().is_some_and(|u| u.starts_with("https://") || u.starts_with("http://"))
    {
        return Err(format!("creative.asset_url is required for {media} creatives"));
    }
    if media == "tts" && c.tts_text.as_deref().is_none_or(|t| t.trim().is_empty()) {
        return Err("creative.tts_text is required for tts creatives".to_owned());
    }
    match request.channel.as_str() {
        "RINGOBIZ" => {
            if !matches!(media, "audio" | "tts") {
                return Err("RINGOBIZ plays audio: media_type must be audio or tts".to_owned());
            }
            if request.advertiser.phone.len() < 9 || !request.advertiser.phone.chars().all(|c| c.is_ascii_digit()) {
                return Err("RINGOBIZ needs advertiser.phone (digits)".to_owned());
            }
        }
        "URIDONGNE_TV" | "GENIE_TV" => {
            if !matches!(media, "video" | "image") {
                return Err(format!("{} airs pictures: media_type must be video or image", request.channel));
            }
        }
        other => return Err(format!("channel {other:?} must be URIDONGNE_TV, RINGOBIZ or GENIE_TV")),
    }
    if request.external_ref.trim().is_empty() {
        return Err("external_ref is required".to_owned());
    }
    let reg = &request.advertiser.business_reg_no;
    if reg.len() != 10 || !reg.chars().all(|c| c.is_ascii_digit()) {
        return Err("advertiser.business_reg_no must be 10 digits".to_owned());
    }
    if request.advertiser.name.trim().is_empty() {
        return Err("advertiser.name is required".to_owned());
    }
    let (Some(start), Some(end)) =
        (day_start_ms(&request.schedule.start_date), day_start_ms(&request.schedule.end_date))
    else {
        return Err("schedule.start_date and schedule.end_date must be YYYY-MM-DD".to_owned());
    };
    if end < start {
        return Err("schedule.end_date is before schedule.start_date".to_owned());
    }
    Ok(())
}

async fn submit(State(state): State<Arc<PartnerState>>, headers: HeaderMap, body: Bytes) -> Response {
    let rid = request_id(&headers);
    let (client, window) = match authorize(&state, &headers, &rid) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let reply = |response: Response| decorate(response, &rid, Some(window));
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).filter(|k| !k.trim().is_empty())
    else {
        return reply(problem(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the Idempotency-Key header is required",
            &rid,
        ));
    };
    let Ok(raw) = serde_json::from_slice::<Value>(&body) else {
        return reply(problem(StatusCode::BAD_REQUEST, "invalid_request", "the body is not JSON", &rid));
    };
    let request: JobRequest = match serde_json::from_value(raw.clone()) {
        Ok(request) => request,
        Err(e) => {
            return reply(problem(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the body does not match the contract: {e}"),
                &rid,
            ));
        }
    };
    let now = state.now();
    let ttl = i64::try_from(state.config.idempotency_ttl.as_millis()).unwrap_or(i64::MAX);
    let mut books = state.books();
    books.keys.retain(|_, r| now - r.at_ms < ttl);
    // Keys are per caller: one store's key never replays another store's campaign.
    let scope = format!("{}\0{}", client.client, client.store.as_deref().unwrap_or_default());
    if let Some(seen) = books.keys.get(&(scope.clone(), key.to_owned())) {
        if seen.body != raw {
            drop(books);
            return reply(problem(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                "this Idempotency-Key was used with a different body",
                &rid,
            ));
        }
        let submitted = seen.submitted.clone();
        books.submissions += 1;
        drop(books);
        return reply(accepted(&state, &submitted));
    }
    if let Err(detail) = validate(&request) {
        drop(books);
        return reply(problem(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail, &rid));
    }
    let job_id = format!("pj-{:016x}", rand::random::<u64>());
    let submitted = Submitted {
        job_id: job_id.clone(),
        status: "QUEUED".to_owned(),
        status_url: format!("{BASE_PATH}/jobs/{job_id}"),
        created_at: rfc3339(now),
    };
    let status = JobStatus {
        job_id: job_id.clone(),
        external_ref: request.external_ref.clone(),
        channel: request.channel.clone(),
        status: "QUEUED".to_owned(),
        reason_code: None,
        reason_message: None,
        partner_ref: None,
        updated_at: rfc3339(now),
        live_from: None,
        live_until: None,
        metrics: None,
    };
    books.jobs.insert(
        job_id,
        StoredJob { status, request, created_ms: now, canceled: false, client: client.client, store: client.store },
    );
    books.keys.insert((scope, key.to_owned()), Remembered { body: raw, submitted: submitted.clone(), at_ms: now });
    books.submissions += 1;
    drop(books);
    reply(accepted(&state, &submitted))
}

fn accepted(state: &PartnerState, submitted: &Submitted) -> Response {
    let mut response = json_response(StatusCode::ACCEPTED, submitted);
    if let Ok(location) = HeaderValue::from_str(&submitted.status_url) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    retry_after(state, response)
}

async fn job(State(state): State<Arc<PartnerState>>, Path(job_id): Path<String>, headers: HeaderMap) -> Response {
    let rid = request_id(&headers);
    let (client, window) = match authorize(&state, &headers, &rid) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let now = state.now();
    let found =
        state.books().jobs.get(&job_id).filter(|j| j.client == client.client && j.store == client.store).cloned();
    let response = match found {
        Some(job) => {
            let status = state.status_at(&job, now);
            let terminal = matches!(status.status.as_str(), "REJECTED" | "FAILED" | "CANCELED" | "COMPLETED");
            let response = json_response(StatusCode::OK, &status);
            if terminal { response } else { retry_after(&state, response) }
        }
        None => problem(StatusCode::NOT_FOUND, "job_not_found", format!("no job {job_id}"), &rid),
    };
    decorate(response, &rid, Some(window))
}

async fn cancel(State(state): State<Arc<PartnerState>>, Path(target): Path<String>, headers: HeaderMap) -> Response {
    let rid = request_id(&headers);
    let (client, window) = match authorize(&state, &headers, &rid) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let Some(job_id) = target.strip_suffix(":cancel") else {
        return decorate(
            problem(StatusCode::NOT_FOUND, "not_found", "POST is only defined for /jobs/{job_id}:cancel", &rid),
            &rid,
            Some(window),
        );
    };
    let now = state.now();
    let mut books = state.books();
    let current = books
        .jobs
        .get(job_id)
        .filter(|j| j.client == client.client && j.store == client.store)
        .map(|j| state.status_at(j, now));
    let response = match current {
        None => problem(StatusCode::NOT_FOUND, "job_not_found", format!("no job {job_id}"), &rid),
        Some(status) if matches!(status.status.as_str(), "REJECTED" | "FAILED" | "CANCELED" | "COMPLETED") => {
            problem(StatusCode::CONFLICT, "job_terminal", format!("job {job_id} is already {}", status.status), &rid)
        }
        Some(_) => match books.jobs.get_mut(job_id) {
            Some(job) => {
                job.canceled = true;
                job.status.updated_at = rfc3339(now);
                let status = state.status_at(job, now);
                json_response(StatusCode::ACCEPTED, &status)
            }
            None => problem(StatusCode::NOT_FOUND, "job_not_found", format!("no job {job_id}"), &rid),
        },
    };
    drop(books);
    decorate(response, &rid, Some(window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_dates_start_at_midnight_kst() {
        // 2025-11-01T00:00:00+09:00
        assert_eq!(day_start_ms("2025-11-01"), Some(1_761_922_800_000));
        assert_eq!(day_start_ms("2024-02-29").map(crate::domain::text::kst_date).as_deref(), Some("2024-02-29"));
        assert_eq!(day_start_ms("2025-13-01"), None);
        assert_eq!(day_start_ms("soon"), None);
    }

    #[test]
    fn aired_campaigns_count_per_minute_until_their_end() {
        let from = 1_800_000_000_000;
        let tv = aired_metrics("GENIE_TV", from, Some(from + 60 * 60_000), from + 10 * 60_000 + 59_999);
        assert_eq!((tv.impressions, tv.reach), (40, Some(24)), "ten whole minutes, three in five households");
        let ended = aired_metrics("URIDONGNE_TV", from, Some(from + 60 * 60_000), from + 5 * 3_600_000);
        assert_eq!(ended.impressions, 240, "nothing counts after the end");
        assert_eq!(ended.measured_at, rfc3339(from + 60 * 60_000));
        let ringo = aired_metrics("RINGOBIZ", from, None, from + 30 * 60_000);
        assert_eq!((ringo.impressions, ringo.reach), (30, None), "a phone line tells no households");
        assert_eq!(aired_metrics("GENIE_TV", from, None, from - 1).impressions, 0, "never negative");
    }
}
