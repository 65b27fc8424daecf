//! The HTTP client every provider client is built on: timeouts, safe retries, the breaker,
//! error classification and per-provider counters.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use kem_mesh::breaker::CircuitBreaker;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::config::{ProviderConfig, ProviderConfigError};
use super::error::ProviderError;
use super::metrics::ProviderCounters;

/// The header carrying an idempotency key (the de-facto standard name; Stripe, Kakao, and the
/// partner contract of PROVIDERS.md §7 use it).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// How much of a provider's error body is quoted in an error.
const QUOTED_DETAIL_LEN: usize = 300;

/// The client of one external provider. Cheap to clone; clones share the connection pool, the
/// breaker and the counters.
#[derive(Clone)]
pub struct ProviderClient {
    inner: Arc<Inner>,
}

struct Inner {
    name: Arc<str>,
    config: ProviderConfig,
    base: Url,
    http: reqwest::Client,
    breaker: CircuitBreaker,
    counters: ProviderCounters,
}

impl ProviderClient {
    /// Validates `config` and builds the client (rustls with the ring provider; no request is
    /// sent yet).
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderConfigError> {
        let provider = config.name.clone();
        let value = |field: &'static str, reason: &str| ProviderConfigError::Value {
            provider: provider.clone(),
            field,
            reason: reason.to_owned(),
        };
        if config.name.is_empty() {
            return Err(value("name", "must not be empty"));
        }
        if config.max_attempts == 0 {
            return Err(value("max_attempts", "must be at least 1 (1 disables retries)"));
        }
        if config.timeout.is_zero() || config.connect_timeout.is_zero() || config.deadline.is_zero() {
            return Err(value("timeout", "timeout, connect_timeout and deadline must be positive"));
        }
        let base = base_url(&config)?;
        let breaker = CircuitBreaker::new(config.name.as_str(), config.breaker.clone())
            .map_err(|source| ProviderConfigError::Breaker { provider: provider.clone(), source })?;
        let client_error = |reason: String| ProviderConfigError::Client { provider: provider.clone(), reason };
        let tls = tls_client_config(config.root_ca_pem.as_deref()).map_err(client_error)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.connect_timeout)
            // Providers answer in place; a redirect means the contract changed, and following one
            // could resend credentials elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("kem/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| client_error(error_chain(&e)))?;
        Ok(ProviderClient {
            inner: Arc::new(Inner {
                name: config.name.as_str().into(),
                config,
                base,
                http,
                breaker,
                counters: ProviderCounters::default(),
            }),
        })
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }

    /// Its circuit breaker (state and counters for metrics).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.inner.breaker
    }

    /// Its request counters.
    pub fn counters(&self) -> &ProviderCounters {
        &self.inner.counters
    }

    /// A request to `path`, relative to the base URL. Retried only if `method` is idempotent
    /// (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) unless marked otherwise.
    pub fn request(&self, method: Method, path: &str) -> ProviderRequest<'_> {
        ProviderRequest {
            client: self,
            repeatable: method.is_idempotent(),
            method,
            path: path.trim_start_matches('/').to_owned(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
            deadline: None,
            classify: None,
            encode_error: None,
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> ProviderRequest<'_> {
        self.request(Method::GET, path)
    }

    /// `POST path` (not retried unless [`idempotent`](ProviderRequest::idempotent) or given an
    /// [idempotency key](ProviderRequest::idempotency_key)).
    pub fn post(&self, path: &str) -> ProviderRequest<'_> {
        self.request(Method::POST, path)
    }
}

impl fmt::Debug for ProviderClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderClient")
            .field("name", &self.inner.name)
            .field("base_url", &self.inner.base.as_str())
            .field("breaker", &self.inner.breaker.state())
            .finish()
    }
}

/// What a provider's answer means. The default reading follows HTTP status codes
/// ([`default_verdict`]); a provider client overrides it with
/// [`ProviderRequest::classify`] where the provider says more in its body (NTS reports some
/// errors inside HTTP 200; an image API reports moderation in a 400 body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The call did what was asked.
    Success,
    /// Our credentials were refused; the text says how.
    Auth(String),
    /// We are throttled.
    RateLimited {
        /// The delay asked for, if any.
        retry_after: Option<Duration>,
        /// The provider's explanation.
        detail: String,
    },
    /// The request's content was refused.
    Invalid(String),
    /// The content policy refused the input or output.
    Moderated(String),
    /// A failure that may pass.
    Transient {
        /// The delay asked for, if any.
        retry_after: Option<Duration>,
        /// The provider's explanation.
        detail: String,
    },
    /// An answer outside the contract.
    Unexpected(String),
}

/// A provider-specific reading of a response; `None` falls back to [`default_verdict`].
pub type Classifier<'a> = Box<dyn Fn(&ProviderResponse) -> Option<Verdict> + Send + Sync + 'a>;

/// One request being built; nothing is sent before [`send`](Self::send).
#[must_use = "a request does nothing until sent"]
pub struct ProviderRequest<'a> {
    client: &'a ProviderClient,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Option<Bytes>,
    repeatable: bool,
    deadline: Option<Duration>,
    classify: Option<Classifier<'a>>,
    encode_error: Option<String>,
}

impl<'a> ProviderRequest<'a> {
    /// Adds a query parameter (percent-encoded here; never logged, so it may carry a key).
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a header. Mark credentials with [`HeaderValue::set_sensitive`].
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => {
                self.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                self.body = Some(bytes.into());
            }
            Err(e) => self.encode_error = Some(format!("the JSON request body cannot be encoded: {e}")),
        }
        self
    }

    /// A body of the given content type.
    pub fn body(mut self, body: impl Into<Bytes>, content_type: HeaderValue) -> Self {
        self.headers.insert(header::CONTENT_TYPE, content_type);
        self.body = Some(body.into());
        self
    }

    /// Declares the call safe to repeat (e.g. NTS's read-only status lookup, which is a POST).
    pub fn idempotent(mut self) -> Self {
        self.repeatable = true;
        self
    }

    /// Sends `Idempotency-Key: key` (the same on every attempt), which makes retrying safe.
    pub fn idempotency_key(mut self, key: &str) -> Self {
        match HeaderValue::from_str(key) {
            Ok(value) => {
                self.headers.insert(HeaderName::from_static(IDEMPOTENCY_KEY), value);
                self.repeatable = true;
            }
            Err(_) => self.encode_error = Some(format!("idempotency key {key:?} is not a valid header value")),
        }
        self
    }

    /// Shortens the overall budget of this request (e.g. to what is left of the inbound call's
    /// deadline); it never exceeds the provider's configured deadline.
    pub fn deadline(mut self, budget: Duration) -> Self {
        self.deadline = Some(budget);
        self
    }

    /// Reads responses the provider's way first (see [`Verdict`]).
    pub fn classify(mut self, classifier: impl Fn(&ProviderResponse) -> Option<Verdict> + Send + Sync + 'a) -> Self {
        self.classify = Some(Box::new(classifier));
        self
    }

    /// Sends the request: through the breaker, with a timeout per attempt, retrying transient
    /// failures when the call is safe to repeat, within the overall deadline.
    pub async fn send(self) -> Result<ProviderResponse, ProviderError> {
        let inner = &self.client.inner;
        let started = Instant::now();
        let result = self.attempts(started).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        inner.counters.record(outcome, started.elapsed());
        if let Err(error) = &result {
            let (method, path) = (self.method.as_str(), self.path.as_str());
            match error {
                ProviderError::Invalid { .. } | ProviderError::Moderated { .. } => {
                    tracing::info!(provider = %inner.name, method, path, %error, "provider refused the request");
                }
                ProviderError::BreakerOpen { .. } => {
                    tracing::debug!(provider = %inner.name, method, path, %error, "provider call not made");
                }
                _ => tracing::warn!(provider = %inner.name, method, path, %error, "provider call failed"),
            }
        }
        result
    }

    /// Like [`send`](Self::send), then decodes the (successful) body as JSON.
    pub async fn send_json<T: DeserializeOwned>(self) -> Result<T, ProviderError> {
        self.send().await?.json()
    }

    async fn attempts(&self, started: Instant) -> Result<ProviderResponse, ProviderError> {
        let inner = &self.client.inner;
        let config = &inner.config;
        if let Some(reason) = &self.encode_error {
            return Err(ProviderError::Request { provider: inner.name.clone(), detail: reason.clone() });
        }
        let url = self.url();
        let budget = self.deadline.map_or(config.deadline, |d| d.min(config.deadline));
        let deadline = started + budget;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let permit = inner.breaker.acquire().map_err(|open| ProviderError::BreakerOpen {
                provider: inner.name.clone(),
                retry_after: open.retry_after,
            })?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                drop(permit); // not an outcome of the provider
                return Err(ProviderError::Timeout { provider: inner.name.clone(), after: budget });
            }
            ProviderCounters::bump(&inner.counters.attempts);
            let allowed = config.timeout.min(remaining);
            let outcome = match tokio::time::timeout(allowed, self.attempt(&url, attempt)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ProviderError::Timeout { provider: inner.name.clone(), after: allowed }),
            };
            let error = match outcome {
                Ok(response) => {
                    permit.success();
                    return Ok(response);
                }
                Err(error) if error.counts_as_provider_failure() => {
                    permit.failure();
                    error
                }
                Err(error) => {
                    permit.success();
                    return Err(error);
                }
            };
            if !self.repeatable || !error.is_transient() || attempt >= config.max_attempts {
                return Err(error);
            }
            let wait = error.retry_after().unwrap_or_else(|| config.backoff.delay(attempt));
            if Instant::now() + wait >= deadline {
                return Err(error);
            }
            ProviderCounters::bump(&inner.counters.retries);
            tracing::debug!(provider = %inner.name, path = self.path, attempt, ?wait, %error, "retrying provider call");
            tokio::time::sleep(wait).await;
        }
    }

    fn url(&self) -> Url {
        let base = self.client.inner.base.as_str().trim_end_matches('/');
        let joined = if self.path.is_empty() { base.to_owned() } else { format!("{base}/{}", self.path) };
        // The base was validated and a path cannot make it unparsable; keep the base if it does.
        let mut url = Url::parse(&joined).unwrap_or_else(|_| self.client.inner.base.clone());
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        url
    }

    async fn attempt(&self, url: &Url, attempt: u32) -> Result<ProviderResponse, ProviderError> {
        let inner = &self.client.inner;
        let mut request = inner.http.request(self.method.clone(), url.clone()).headers(self.headers.clone());
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        let mut response = request.send().await.map_err(|e| transport_error(inner, e))?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let max = inner.config.max_body_bytes;
        let too_large = |size: u64| ProviderError::UnexpectedResponse {
            provider: inner.name.clone(),
            status: status.as_u16(),
            detail: format!("response body of {size} bytes exceeds the {max}-byte limit"),
        };
        if let Some(length) = response.content_length()
            && length > max as u64
        {
            return Err(too_large(length));
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(inner, e))? {
            if body.len() + chunk.len() > max {
                return Err(too_large((body.len() + chunk.len()) as u64));
            }
            body.extend_from_slice(&chunk);
        }
        let response = ProviderResponse { provider: inner.name.clone(), status, headers, body: body.freeze(), attempt };
        let verdict = self
            .classify
            .as_ref()
            .and_then(|classify| classify(&response))
            .unwrap_or_else(|| default_verdict(&response));
        let provider = inner.name.clone();
        let status = status.as_u16();
        match verdict {
            Verdict::Success => Ok(response),
            Verdict::Auth(detail) => Err(ProviderError::Auth { provider, status, detail }),
            Verdict::RateLimited { retry_after, detail } => {
                Err(ProviderError::RateLimited { provider, status, retry_after, detail })
            }
            Verdict::Invalid(detail) => Err(ProviderError::Invalid { provider, status, detail }),
            Verdict::Moderated(detail) => Err(ProviderError::Moderated { provider, status, detail }),
            Verdict::Transient { retry_after, detail } => {
                Err(ProviderError::Transient { provider, status: Some(status), retry_after, detail })
            }
            Verdict::Unexpected(detail) => Err(ProviderError::UnexpectedResponse { provider, status, detail }),
        }
    }
}

/// A provider's answer, body read in full.
#[derive(Clone)]
pub struct ProviderResponse {
    provider: Arc<str>,
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    attempt: u32,
}

impl ProviderResponse {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Which attempt produced it (1 = no retry was needed).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The body as text, invalid UTF-8 replaced.
    pub fn text_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body decoded as JSON; a body that does not match `T` is an
    /// [`UnexpectedResponse`](ProviderError::UnexpectedResponse).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| ProviderError::UnexpectedResponse {
            provider: self.provider.clone(),
            status: self.status.as_u16(),
            detail: format!("body does not match the expected JSON ({e}): {}", quote(&self.body)),
        })
    }

    /// The provider's explanation in the body: a JSON `message`-like field if there is one,
    /// otherwise the text itself, whitespace-collapsed and truncated (bodies may be HTML pages).
    pub fn detail(&self) -> String {
        quote(&self.body)
    }

    /// `Retry-After` as a delay: delta-seconds or an HTTP-date (a past date is zero).
    pub fn retry_after(&self) -> Option<Duration> {
        parse_retry_after(self.headers.get(header::RETRY_AFTER)?.to_str().ok()?, SystemTime::now())
    }
}

impl fmt::Debug for ProviderResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderResponse")
            .field("provider", &self.provider)
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// The reading of a response by its status code alone:
/// 2xx success; 401/403 auth; 429 rate limited; 408 and 5xx transient (with `Retry-After`);
/// 3xx unexpected (redirects are not followed); other 4xx invalid.
pub fn default_verdict(response: &ProviderResponse) -> Verdict {
    let status = response.status;
    if status.is_success() {
        return Verdict::Success;
    }
    let detail = response.detail();
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Verdict::Auth(detail),
        StatusCode::TOO_MANY_REQUESTS => Verdict::RateLimited { retry_after: response.retry_after(), detail },
        StatusCode::REQUEST_TIMEOUT => Verdict::Transient { retry_after: None, detail },
        s if s.is_server_error() => Verdict::Transient { retry_after: response.retry_after(), detail },
        s if s.is_client_error() => Verdict::Invalid(detail),
        _ => Verdict::Unexpected(format!("HTTP {status} is not part of the contract: {detail}")),
    }
}

/// Delta-seconds or an HTTP-date, relative to `now`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A short, single-line rendering of an error body.
fn quote(body: &[u8]) -> String {
    if body.is_empty() {
        return "(empty body)".to_owned();
    }
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) => ["/error/message", "/message", "/msg", "/error", "/detail", "/status_code"]
            .iter()
            .find_map(|pointer| json.pointer(pointer).and_then(|v| v.as_str()).map(str::to_owned))
            .unwrap_or_else(|| json.to_string()),
        Err(_) => String::from_utf8_lossy(body).split_whitespace().collect::<Vec<_>>().join(" "),
    };
    if text.chars().count() > QUOTED_DETAIL_LEN {
        let cut: String = text.chars().take(QUOTED_DETAIL_LEN).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// A transport failure (no response, or the body broke off). The URL is left out: its query may
/// carry a key.
fn transport_error(inner: &Inner, error: reqwest::Error) -> ProviderError {
    let error = error.without_url();
    let provider = inner.name.clone();
    let host = inner.base.host_str().unwrap_or_default();
    if error.is_timeout() && !error.is_connect() {
        return ProviderError::Timeout { provider, after: inner.config.timeout };
    }
    let detail = if error.is_connect() {
        format!("cannot connect to {host}: {}", error_chain(&error))
    } else {
        format!("the exchange with {host} failed: {}", error_chain(&error))
    };
    ProviderError::Transient { provider, status: None, retry_after: None, detail }
}

pub use kem_mesh::report::error_chain;

fn base_url(config: &ProviderConfig) -> Result<Url, ProviderConfigError> {
    let fail = |reason: &str| ProviderConfigError::BaseUrl {
        provider: config.name.clone(),
        url: config.base_url.clone(),
        reason: reason.to_owned(),
    };
    let url = Url::parse(&config.base_url).map_err(|e| fail(&e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(fail("the scheme must be https (or http for a local contract server)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(fail("it has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(fail("it must not carry a query or fragment; add parameters per request"));
    }
    Ok(url)
}

/// The TLS configuration of an HTTPS client of an external service: rustls with the mesh's one
/// crypto provider (ring), trusting `root_ca_pem` when given, the platform's roots otherwise, with
/// ALPN h2 + http/1.1 (reqwest leaves ALPN to a preconfigured config). Build a `reqwest` client on
/// it with `tls_backend_preconfigured`.
pub fn tls_client_config(root_ca_pem: Option<&str>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let provider = kem_mesh::tls::provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut config = match root_ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| format!("CA bundle: bad PEM: {e}"))?;
                roots.add(cert).map_err(|e| format!("CA bundle: {e}"))?;
            }
            if roots.is_empty() {
                return Err("the CA bundle holds no CERTIFICATE block".to_owned());
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            let verifier =
                rustls_platform_verifier::Verifier::new(provider).map_err(|e| format!("platform trust store: {e}"))?;
            builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("date");
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(Duration::ZERO), "past date");
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn details_prefer_json_messages_and_tame_html() {
        assert_eq!(quote(br#"{"error":{"type":"x","message":"overloaded"}}"#), "overloaded");
        assert_eq!(quote(r#"{"code":-4,"msg":"등록되지 않은 인증키"}"#.as_bytes()), "등록되지 않은 인증키");
        assert_eq!(quote(br#"{"status_code":"BAD_JSON_REQUEST"}"#), "BAD_JSON_REQUEST");
        assert_eq!(
            quote(b"<html>\n  <body>502 Bad Gateway</body>\n</html>"),
            "<html> <body>502 Bad Gateway</body> </html>"
        );
        assert_eq!(quote(b""), "(empty body)");
        assert!(quote("é".repeat(1_000).as_bytes()).chars().count() <= QUOTED_DETAIL_LEN + 1);
        assert!(quote(&[0xff, 0xfe, b'a']).ends_with('a'), "invalid UTF-8 is replaced, not an error");
    }

    #[test]
    fn tls_uses_platform_roots_or_exactly_the_given_bundle() {
        let platform = tls_client_config(None).expect("platform roots");
        assert_eq!(platform.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        let error = tls_client_config(Some("no certificate here")).expect_err("empty bundle");
        assert!(error.contains("no CERTIFICATE"), "{error}");
    }

    #[test]
    fn base_urls_are_validated() {
        let config = |url: &str| ProviderConfig::new("p", url);
        assert!(base_url(&config("https://api.odcloud.kr/api")).is_ok());
        for bad in ["ftp://x", "not a url", "https://h/?serviceKey=1"] {
            assert!(base_url(&config(bad)).is_err(), "{bad}");
        }
    }
}
