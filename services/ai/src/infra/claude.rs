//! The Anthropic Claude Messages API client (PROVIDERS.md §2) on the kit's
//! [`ProviderClient`]: per-attempt timeout, retries of 429 (honouring `retry-after`), 529 and
//! 5xx within the request's budget, the provider's own circuit breaker, and counters.
//!
//! Wire contract: `POST {base}/v1/messages` with `x-api-key`, `anthropic-version: 2023-06-01`
//! (pinned: newer versions change which parameters are accepted) and a JSON body `{model,
//! max_tokens, system, messages}`. A 200 carries `content[]` blocks (the `text` ones are the
//! answer), `stop_reason` and `usage`; the `request-id` header is logged and returned. Errors
//! carry `{"type":"error","error":{"type","message"}}`:
//!
//! | status / `error.type` | reading | retried |
//! |---|---|---|
//! | 429 `rate_limit_error` | rate limited, `retry-after` honoured | yes |
//! | 429 with `error_code` `enforced_spend_limit_reached`, 402 `billing_error` | quota exhausted | no |
//! | 529 `overloaded_error`, 500 `api_error`, 504 `timeout_error`, 409 `conflict_error`, other 5xx | transient | yes |
//! | 401 `authentication_error`, 403 `permission_error` | our credentials | no |
//! | 400 `invalid_request_error`, 404 `not_found_error`, 413 `request_too_large` | our request | no |
//!
//! Unknown error types are read by status. The call has no idempotency key, but it has no side
//! effect either (a retry is a new, billed generation), so it is marked safe to repeat, as the
//! official SDKs do; results are cached by input hash so a retry after a lost response is rare.

use std::fmt;
use std::time::Duration;

use kem_kit::Secret;
use kem_kit::external::{ProviderClient, ProviderConfig, ProviderError, ProviderResponse, Verdict};
use kem_mesh::breaker::BreakerConfig;
use reqwest::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::app::ports::{Completion, LanguageModel, ModelError, ModelRequest, Speaker, StopReason, TokenUsage};
use crate::domain::output::ProviderStamp;

/// Provider name: breaker, log field, metric label and `ProviderInfo.name` of real results.
pub const PROVIDER: &str = "claude";
/// The production base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The pinned API version.
pub const API_VERSION: &str = "2023-06-01";
/// The Messages endpoint, relative to the base URL.
pub const MESSAGES_PATH: &str = "v1/messages";
/// The default model: a fast one, since the design's 10 s timeout only fits small, quick answers.
pub const DEFAULT_MODEL: &str = "claude-haiku-4-5";

/// The Claude client settings of the production design: 10 s per attempt (3 s to connect), up to
/// 3 attempts within 30 s (each call's budget shortens that to what its request or job has
/// left), backoff 500 ms → 4 s with jitter unless `retry-after` says otherwise, 4 MiB bodies, and
/// a breaker that opens when half the calls of the last minute failed (at least 5 seen) and stays
/// open 30 s.
pub fn provider_config(base_url: impl Into<String>) -> ProviderConfig {
    let mut config = ProviderConfig::new(PROVIDER, base_url);
    config.timeout = Duration::from_secs(10);
    config.connect_timeout = Duration::from_secs(3);
    config.max_attempts = 3;
    config.backoff = kem_kit::external::Backoff { initial: Duration::from_millis(500), max: Duration::from_secs(4) };
    config.deadline = Duration::from_secs(30);
    config.max_body_bytes = 4 << 20;
    config.breaker = BreakerConfig {
        failure_rate_threshold: 0.5,
        minimum_calls: 5,
        window: Duration::from_secs(60),
        window_buckets: 12,
        open_duration: Duration::from_secs(30),
        half_open_probes: 2,
    };
    config
}

/// The real model.
#[derive(Clone)]
pub struct ClaudeClient {
    client: ProviderClient,
    api_key: Secret,
    model: String,
}

impl ClaudeClient {
    /// A client over `client` (configured from [`provider_config`]), authenticating with
    /// `api_key`, asking `model`.
    pub fn new(client: ProviderClient, api_key: Secret, model: impl Into<String>) -> ClaudeClient {
        ClaudeClient { client, api_key, model: model.into() }
    }

    /// The underlying provider client (breaker state and counters for metrics).
    pub fn provider(&self) -> &ProviderClient {
        &self.client
    }

    fn headers(&self) -> Result<[(HeaderName, HeaderValue); 2], ModelError> {
        let mut key = HeaderValue::from_str(self.api_key.expose().trim()).map_err(|_| ModelError::Misconfigured {
            provider: PROVIDER.to_owned(),
            detail: "the API key is not a valid header value; check KEM_CLAUDE_API_KEY".to_owned(),
        })?;
        key.set_sensitive(true);
        Ok([
            (HeaderName::from_static("x-api-key"), key),
            (HeaderName::from_static("anthropic-version"), HeaderValue::from_static(API_VERSION)),
        ])
    }
}

impl fmt::Debug for ClaudeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaudeClient")
            .field("client", &self.client)
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .finish()
    }
}

#[async_trait::async_trait]
impl LanguageModel for ClaudeClient {
    fn source(&self) -> ProviderStamp {
        ProviderStamp { local: false, name: PROVIDER.to_owned(), model: self.model.clone(), request_id: String::new() }
    }

    async fn complete(&self, request: &ModelRequest, budget: Duration) -> Result<Completion, ModelError> {
        let body = MessagesRequest {
            model: &self.model,
            max_tokens: request.max_tokens,
            system: &request.system,
            messages: request
                .turns
                .iter()
                .map(|turn| WireMessage {
                    role: match turn.speaker {
                        Speaker::User => "user",
                        Speaker::Assistant => "assistant",
                    },
                    content: &turn.text,
                })
                .collect(),
        };
        let [key, version] = self.headers()?;
        let response = self
            .client
            .post(MESSAGES_PATH)
            .header(key.0, key.1)
            .header(version.0, version.1)
            .json(&body)
            .idempotent()
            .deadline(budget)
            .classify(classify)
            .send()
            .await
            .map_err(model_error)?;
        let request_id = header(&response, "request-id");
        let message: MessagesResponse = response.json().map_err(model_error)?;
        if message.kind.as_deref().is_some_and(|kind| kind != "message") {
            return Err(ModelError::Misconfigured {
                provider: PROVIDER.to_owned(),
                detail: format!("a 200 answer of type {:?} instead of \"message\"", message.kind),
            });
        }
        let text: String =
            message.content.iter().filter(|block| block.kind == "text").filter_map(|b| b.text.as_deref()).collect();
        let usage = message.usage.unwrap_or_default();
        let stop_reason = match message.stop_reason.as_deref() {
            Some("end_turn") | None => StopReason::EndTurn,
            Some("max_tokens") => StopReason::MaxTokens,
            Some("stop_sequence") => StopReason::StopSequence,
            Some("refusal") => StopReason::Refusal,
            Some(other) => StopReason::Other(other.to_owned()),
        };
        tracing::debug!(provider = PROVIDER, task = request.task.name(), %request_id, model = %message.model,
            input_tokens = usage.input_tokens, output_tokens = usage.output_tokens, ?stop_reason, attempt = response.attempt(),
            "Claude answered");
        Ok(Completion {
            text,
            stop_reason,
            usage: TokenUsage {
                input: usage.input_tokens,
                output: usage.output_tokens,
                cache_read: usage.cache_read_input_tokens.unwrap_or(0),
                cache_write: usage.cache_creation_input_tokens.unwrap_or(0),
            },
            request_id,
            model: if message.model.is_empty() { self.model.clone() } else { message.model },
        })
    }
}

fn header(response: &ProviderResponse, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[derive(Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    system: &'a str,
    messages: Vec<WireMessage<'a>>,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

/// A successful answer. Unknown fields are ignored: the API adds fields over time.
#[derive(Deserialize)]
struct MessagesResponse {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    model: String,
    content: Vec<ContentBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

/// `{"type":"error","error":{"type":…,"message":…},"request_id":…}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
    #[serde(default)]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<serde_json::Value>,
}

/// Reads an error answer the way the table in the module documentation says.
fn classify(response: &ProviderResponse) -> Option<Verdict> {
    let status = response.status().as_u16();
    if response.status().is_success() {
        return None;
    }
    let body: Option<ErrorBody> = serde_json::from_slice(response.body()).ok();
    let (kind, message, error_code, request_id) = match &body {
        Some(body) => (
            body.error.kind.as_str(),
            body.error.message.clone(),
            body.error.details.as_ref().and_then(|d| d.get("error_code")).and_then(|c| c.as_str()).map(str::to_owned),
            body.request_id.clone().unwrap_or_else(|| header(response, "request-id")),
        ),
        None => ("", response.detail(), None, header(response, "request-id")),
    };
    let detail = match (kind, request_id.is_empty()) {
        ("", _) => format!("HTTP {status}: {message}"),
        (kind, true) => format!("{kind}: {message}"),
        (kind, false) => format!("{kind}: {message} (request {request_id})"),
    };
    let retry_after = response.retry_after();
    Some(match (status, kind) {
        (429, _) if error_code.as_deref() == Some("enforced_spend_limit_reached") => {
            Verdict::Invalid(format!("spend limit reached: {detail}"))
        }
        (402, _) | (_, "billing_error") => Verdict::Invalid(format!("billing: {detail}")),
        (429, _) | (_, "rate_limit_error") => Verdict::RateLimited { retry_after, detail },
        (401 | 403, _) | (_, "authentication_error" | "permission_error") => Verdict::Auth(detail),
        (_, "overloaded_error" | "api_error" | "timeout_error" | "conflict_error") | (409 | 529, _) => {
            Verdict::Transient { retry_after, detail }
        }
        (_, "invalid_request_error" | "not_found_error" | "request_too_large") => Verdict::Invalid(detail),
        _ => return None,
    })
}

/// The kit's error taxonomy read as the model port's.
fn model_error(error: ProviderError) -> ModelError {
    let provider = error.provider().to_owned();
    match error {
        ProviderError::Transient { detail, retry_after, .. } => {
            ModelError::Unavailable { provider, detail, retry_after, circuit_open: false }
        }
        ProviderError::BreakerOpen { retry_after, .. } => ModelError::Unavailable {
            provider,
            detail: format!("its circuit breaker is open after repeated failures; not calling it for {retry_after:?}"),
            retry_after: Some(retry_after),
            circuit_open: true,
        },
        ProviderError::RateLimited { detail, retry_after, .. } => {
            ModelError::RateLimited { provider, detail, retry_after }
        }
        ProviderError::Invalid { status: 402 | 429, detail, .. } => ModelError::QuotaExhausted { provider, detail },
        ProviderError::Timeout { after, .. } => ModelError::Timeout { provider, after },
        ProviderError::Moderated { detail, .. } => ModelError::Refused { provider, detail },
        error @ (ProviderError::Auth { .. }
        | ProviderError::Invalid { .. }
        | ProviderError::Request { .. }
        | ProviderError::UnexpectedResponse { .. }) => {
            ModelError::Misconfigured { provider, detail: error.to_string() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_production_settings_are_valid() {
        let config = provider_config(DEFAULT_BASE_URL);
        assert_eq!(config.timeout, Duration::from_secs(10));
        assert!(config.breaker.validate().is_ok());
        assert!(ProviderClient::new(config).is_ok());
    }

    #[test]
    fn provider_errors_map_to_model_errors() {
        let p = || std::sync::Arc::<str>::from(PROVIDER);
        let quota = model_error(ProviderError::Invalid { provider: p(), status: 429, detail: "spend".into() });
        assert!(matches!(quota, ModelError::QuotaExhausted { .. }));
        let invalid = model_error(ProviderError::Invalid { provider: p(), status: 400, detail: "bad".into() });
        assert!(matches!(invalid, ModelError::Misconfigured { .. }));
        let auth = model_error(ProviderError::Auth { provider: p(), status: 401, detail: "key".into() });
        assert!(
            matches!(&auth, ModelError::Misconfigured { detail, .. } if detail.contains("rejected our credentials"))
        );
        let open = model_error(ProviderError::BreakerOpen { provider: p(), retry_after: Duration::from_secs(3) });
        assert!(matches!(open, ModelError::Unavailable { circuit_open: true, .. }));
        assert!(open.is_transient());
    }
}
