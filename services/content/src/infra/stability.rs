//! Stability AI's image API, v2beta `POST /v2beta/stable-image/generate/core` (PROVIDERS.md §3a),
//! over the kit's provider client: 5 s per attempt (DESIGN; configurable — real generations often
//! take longer), retries of 429/5xx/timeouts within the image's budget honouring `Retry-After`
//! (60 s when absent, as the provider's lock-out asks), and its own circuit breaker.
//!
//! Request: `multipart/form-data` with `prompt`, `negative_prompt`, `aspect_ratio`, `seed`,
//! `style_preset` and `output_format=png`; `Authorization: Bearer <key>`, `Accept: image/*` (raw
//! bytes; a JSON answer `{"image": <base64>, "finish_reason", "seed"}` is read too).
//!
//! Answers: 200 with `finish-reason: SUCCESS` is an image; `finish-reason: CONTENT_FILTERED` is a
//! (blurred) image refused by moderation; errors are `{"id", "name", "errors": [..]}`: 400, 413,
//! 422 invalid · 401 bad key · 402 out of credits · 403 `content_moderation` (or a forbidden key) ·
//! 429 rate limited · 5xx transient. Generation is not idempotent: a retry may bill twice, which
//! the provider's own guidance accepts for 429/5xx/timeouts; the seed is fixed per prompt so a
//! retried or repeated generation reproduces the same image.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use kem_kit::Secret;
use kem_kit::external::{ProviderClient, ProviderConfig, ProviderError, ProviderResponse, Verdict};
use kem_mesh::breaker::BreakerConfig;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderName, HeaderValue};
use serde::Deserialize;

use crate::app::Generated;
use crate::app::ports::{GeneratorLabel, ImageGenerator, RenderRequest};
use crate::domain::failure::{Failure, FailureKind};
use crate::domain::values::ProviderKind;
use crate::infra::imaging::png_dimensions;

/// Provider name: breaker, log field, metric label and `ProviderInfo.name`.
pub const PROVIDER: &str = "stability-ai";
/// The production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.stability.ai";
/// The generate endpoint, relative to the base URL.
pub const GENERATE_PATH: &str = "v2beta/stable-image/generate/core";
/// `ProviderInfo.model` of its images.
pub const MODEL: &str = "stable-image-core";
/// Wait after a 429 without `Retry-After` (the provider locks a key out for 60 s).
pub const RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(60);

/// The client settings of the production design: 5 s per attempt, 3 attempts within 30 s, and a
/// breaker that opens when half of the calls of the last minute failed (at least 5 seen), open
/// for 30 s, one probe.
pub fn provider_config(base_url: impl Into<String>) -> ProviderConfig {
    let mut config = ProviderConfig::new(PROVIDER, base_url);
    config.timeout = Duration::from_secs(5);
    config.connect_timeout = Duration::from_secs(3);
    config.max_attempts = 3;
    config.deadline = Duration::from_secs(30);
    // A core image is 1-3 MB as PNG; base64 in JSON adds a third.
    config.max_body_bytes = 16 << 20;
    config.breaker = BreakerConfig {
        failure_rate_threshold: 0.5,
        minimum_calls: 5,
        window: Duration::from_secs(60),
        window_buckets: 12,
        open_duration: Duration::from_secs(30),
        half_open_probes: 1,
    };
    config
}

/// Error body of the v2beta API.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    errors: Vec<String>,
}

/// JSON success body (`Accept: application/json`).
#[derive(Debug, Deserialize)]
struct JsonImage {
    image: String,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    seed: Option<i64>,
}

fn error_body(response: &ProviderResponse) -> (String, String) {
    match serde_json::from_slice::<ErrorBody>(response.body()) {
        Ok(body) if !body.name.is_empty() || !body.errors.is_empty() => {
            let detail = if body.errors.is_empty() { body.name.clone() } else { body.errors.join("; ") };
            (body.name, detail)
        }
        _ => (String::new(), response.detail()),
    }
}

fn header_text<'a>(response: &'a ProviderResponse, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Reads a v2beta answer (see the module docs).
pub fn classify(response: &ProviderResponse) -> Option<Verdict> {
    let status = response.status();
    if status.is_success() {
        let finish = header_text(response, "finish-reason")
            .map(str::to_owned)
            .or_else(|| serde_json::from_slice::<JsonImage>(response.body()).ok().and_then(|j| j.finish_reason));
        return Some(match finish.as_deref() {
            Some("CONTENT_FILTERED") => Verdict::Moderated(
                "the generated image was filtered by the provider's moderation (finish-reason CONTENT_FILTERED)"
                    .to_owned(),
            ),
            Some("SUCCESS") | None => Verdict::Success,
            Some(other) => Verdict::Unexpected(format!("unknown finish-reason {other:?}")),
        });
    }
    let (name, detail) = error_body(response);
    let labelled = if name.is_empty() { detail.clone() } else { format!("{name}: {detail}") };
    Some(match status {
        StatusCode::UNAUTHORIZED => Verdict::Auth(labelled),
        StatusCode::PAYMENT_REQUIRED => Verdict::Auth(format!("the account is out of credits ({labelled})")),
        StatusCode::FORBIDDEN if name == "content_moderation" => Verdict::Moderated(detail),
        StatusCode::FORBIDDEN => Verdict::Auth(labelled),
        StatusCode::TOO_MANY_REQUESTS => Verdict::RateLimited {
            retry_after: Some(response.retry_after().unwrap_or(RATE_LIMIT_BACKOFF)),
            detail: labelled,
        },
        StatusCode::REQUEST_TIMEOUT => Verdict::Transient { retry_after: response.retry_after(), detail: labelled },
        s if s.is_server_error() => Verdict::Transient { retry_after: response.retry_after(), detail: labelled },
        s if s.is_client_error() => Verdict::Invalid(labelled),
        _ => Verdict::Unexpected(format!("HTTP {status} is not part of the contract: {labelled}")),
    })
}

fn millis(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The failure of a provider error, in the content service's terms.
pub fn failure(error: &ProviderError) -> Failure {
    let (kind, message) = match error {
        ProviderError::Moderated { detail, .. } => {
            (FailureKind::Moderated, format!("Stability AI's moderation refused this image: {detail}"))
        }
        ProviderError::RateLimited { .. } => {
            (FailureKind::RateLimited, "Stability AI is rate limiting image generation; try again later".to_owned())
        }
        ProviderError::Transient { .. } => {
            (FailureKind::Unavailable, "Stability AI is temporarily unavailable; try again later".to_owned())
        }
        ProviderError::BreakerOpen { .. } => (
            FailureKind::CircuitOpen,
            "Stability AI is failing; image generation is paused for a moment, try again later".to_owned(),
        ),
        ProviderError::Timeout { after, .. } => {
            (FailureKind::Timeout, format!("Stability AI did not answer within {after:?}"))
        }
        ProviderError::Invalid { detail, .. } => {
            (FailureKind::Rejected, format!("Stability AI refused the request: {detail}"))
        }
        ProviderError::Auth { .. } => (
            FailureKind::Misconfigured,
            "the image provider integration is misconfigured (credentials or account refused)".to_owned(),
        ),
        ProviderError::UnexpectedResponse { .. } => {
            (FailureKind::ProviderContract, "Stability AI answered outside its contract".to_owned())
        }
        ProviderError::Request { .. } => {
            (FailureKind::Internal, "the request to Stability AI could not be built".to_owned())
        }
    };
    Failure::new(kind, message).with_provider(PROVIDER).with_retry_after_ms(millis(error.retry_after()))
}

/// A `multipart/form-data` body of text fields, and its content type.
pub fn multipart(fields: &[(&str, String)]) -> (Vec<u8>, String) {
    let boundary = loop {
        let candidate = format!("kem-{:032x}", rand::random::<u128>());
        if fields.iter().all(|(_, v)| !v.contains(&candidate)) {
            break candidate;
        }
    };
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes());
        body.extend_from_slice(value.as_bytes());
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

/// The real Stability AI client.
#[derive(Clone)]
pub struct StabilityClient {
    client: ProviderClient,
    api_key: Secret,
}

impl std::fmt::Debug for StabilityClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StabilityClient").field("client", &self.client).finish_non_exhaustive()
    }
}

impl StabilityClient {
    /// A client over `client` with `api_key`.
    pub fn new(client: ProviderClient, api_key: Secret) -> StabilityClient {
        StabilityClient { client, api_key }
    }

    /// The provider client (breaker state and counters for metrics).
    pub fn provider(&self) -> &ProviderClient {
        &self.client
    }

    fn contract(&self, detail: String) -> Failure {
        failure(&ProviderError::UnexpectedResponse { provider: PROVIDER.into(), status: 200, detail })
    }

    fn read(&self, response: &ProviderResponse) -> Result<Generated, Failure> {
        let content_type = header_text(response, "content-type").unwrap_or_default().to_ascii_lowercase();
        let request_id = header_text(response, "x-request-id").unwrap_or_default().to_owned();
        let (bytes, seed) = if content_type.starts_with("application/json") {
            let body: JsonImage = serde_json::from_slice(response.body())
                .map_err(|e| self.contract(format!("the JSON image body does not decode: {e}")))?;
            let bytes = STANDARD
                .decode(body.image.trim())
                .map_err(|e| self.contract(format!("the image is not valid Base64: {e}")))?;
            (Bytes::from(bytes), body.seed.unwrap_or(0))
        } else {
            let seed = header_text(response, "seed").and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            (response.body().clone(), seed)
        };
        let (width, height) = png_dimensions(&bytes)
            .ok_or_else(|| self.contract(format!("the image is not a PNG (content-type {content_type:?})")))?;
        Ok(Generated { bytes, content_type: "image/png".to_owned(), width, height, seed, request_id })
    }
}

#[async_trait::async_trait]
impl ImageGenerator for StabilityClient {
    fn label(&self) -> GeneratorLabel {
        GeneratorLabel { kind: ProviderKind::External, name: PROVIDER.to_owned(), model: MODEL.to_owned() }
    }

    fn renders_exact_size(&self) -> bool {
        false
    }

    async fn generate(&self, request: &RenderRequest, budget: Duration) -> Result<Generated, Failure> {
        let (body, content_type) = multipart(&[
            ("prompt", request.prompt.text.clone()),
            ("negative_prompt", request.prompt.negative.clone()),
            ("aspect_ratio", request.aspect_ratio.clone()),
            ("seed", request.seed.to_string()),
            ("style_preset", request.prompt.style_preset.clone()),
            ("output_format", "png".to_owned()),
        ]);
        let content_type = HeaderValue::from_str(&content_type)
            .map_err(|_| Failure::new(FailureKind::Internal, "the multipart boundary is not a valid header"))?;
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", self.api_key.expose())).map_err(|_| {
            Failure::new(FailureKind::Misconfigured, "the Stability AI API key is not a valid header value")
                .with_provider(PROVIDER)
        })?;
        authorization.set_sensitive(true);
        let response = self
            .client
            .post(GENERATE_PATH)
            .header(AUTHORIZATION, authorization)
            .header(ACCEPT, HeaderValue::from_static("image/*"))
            .header(HeaderName::from_static("stability-client-id"), HeaderValue::from_static("kem"))
            .header(
                HeaderName::from_static("stability-client-version"),
                HeaderValue::from_static(env!("CARGO_PKG_VERSION")),
            )
            .body(body, content_type)
            // Safe to repeat per the provider's guidance (see the module docs).
            .idempotent()
            .deadline(budget)
            .classify(classify)
            .send()
            .await
            .map_err(|e| failure(&e))?;
        self.read(&response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_frame_every_field() {
        let (body, content_type) = multipart(&[("prompt", "a cafe".into()), ("seed", "42".into())]);
        let boundary = content_type.strip_prefix("multipart/form-data; boundary=").expect("boundary");
        let text = String::from_utf8(body).expect("utf-8");
        assert!(text.starts_with(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\na cafe\r\n"
        )));
        assert!(text.contains("name=\"seed\"\r\n\r\n42\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }

    #[test]
    fn provider_errors_become_contract_failures() {
        let provider: std::sync::Arc<str> = PROVIDER.into();
        let moderated =
            failure(&ProviderError::Moderated { provider: provider.clone(), status: 403, detail: "x".into() });
        assert_eq!(moderated.kind, FailureKind::Moderated);
        let limited = failure(&ProviderError::RateLimited {
            provider: provider.clone(),
            status: 429,
            retry_after: Some(Duration::from_secs(60)),
            detail: "x".into(),
        });
        assert_eq!((limited.kind, limited.retry_after_ms), (FailureKind::RateLimited, Some(60_000)));
        let auth = failure(&ProviderError::Auth { provider, status: 401, detail: "sk-secret".into() });
        assert_eq!(auth.kind, FailureKind::Misconfigured);
        assert!(!auth.message.contains("sk-secret"));
        assert!(provider_config(DEFAULT_BASE_URL).breaker.validate().is_ok());
    }
}
