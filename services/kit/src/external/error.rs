//! The error taxonomy every provider client shares, and its gRPC mapping.

use std::sync::Arc;
use std::time::Duration;

use crate::status::{error_info, retry_info};

/// `ErrorInfo.domain` of every status produced from a [`ProviderError`].
pub const ERROR_DOMAIN: &str = "kem.external";

/// Advice given with UNAVAILABLE when the provider named no delay.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a call to an external provider failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider refused our credentials: our configuration is wrong (or the key expired).
    #[error(
        "{provider} rejected our credentials (HTTP {status}): {detail}; check the provider's API key in the configuration"
    )]
    Auth {
        /// The provider.
        provider: Arc<str>,
        /// HTTP status (or the status that carried the provider's error body).
        status: u16,
        /// The provider's explanation, quoted.
        detail: String,
    },
    /// The provider throttles us (HTTP 429 or a quota error).
    #[error("{provider} is rate limiting us (HTTP {status}, retry after {retry_after:?}): {detail}")]
    RateLimited {
        /// The provider.
        provider: Arc<str>,
        /// HTTP status.
        status: u16,
        /// From `Retry-After`, when given.
        retry_after: Option<Duration>,
        /// The provider's explanation, quoted.
        detail: String,
    },
    /// The provider refused the request's content as invalid.
    #[error("{provider} refused the request as invalid (HTTP {status}): {detail}")]
    Invalid {
        /// The provider.
        provider: Arc<str>,
        /// HTTP status.
        status: u16,
        /// The provider's explanation, quoted.
        detail: String,
    },
    /// The provider's content policy refused the input or the output.
    #[error("{provider} refused the content under its content policy (HTTP {status}): {detail}")]
    Moderated {
        /// The provider.
        provider: Arc<str>,
        /// HTTP status.
        status: u16,
        /// The provider's explanation, quoted.
        detail: String,
    },
    /// The provider failed in a way that may pass: connection refused or reset, 5xx, 408.
    #[error("{provider} failed{}: {detail}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Transient {
        /// The provider.
        provider: Arc<str>,
        /// HTTP status, `None` when no response came.
        status: Option<u16>,
        /// From `Retry-After` (e.g. on 503), when given.
        retry_after: Option<Duration>,
        /// What happened.
        detail: String,
    },
    /// An attempt (or the request's overall deadline) ran out before the provider answered.
    #[error("{provider} did not answer within {after:?}")]
    Timeout {
        /// The provider.
        provider: Arc<str>,
        /// The time the last attempt was given.
        after: Duration,
    },
    /// The provider's circuit breaker is open: the call was not made.
    #[error("{provider} is failing and its circuit breaker is open: not calling it for {retry_after:?}")]
    BreakerOpen {
        /// The provider.
        provider: Arc<str>,
        /// When the breaker lets calls through again.
        retry_after: Duration,
    },
    /// The request could not be built (a body that does not serialize, a bad header value): a
    /// defect of the provider client, nothing was sent.
    #[error("request to {provider} cannot be built: {detail}")]
    Request {
        /// The provider.
        provider: Arc<str>,
        /// What could not be built.
        detail: String,
    },
    /// The provider answered outside its contract (a redirect, an oversized or undecodable body).
    #[error("{provider} answered outside its contract (HTTP {status}): {detail}")]
    UnexpectedResponse {
        /// The provider.
        provider: Arc<str>,
        /// HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
}

impl ProviderError {
    /// The provider that failed.
    pub fn provider(&self) -> &str {
        match self {
            ProviderError::Auth { provider, .. }
            | ProviderError::RateLimited { provider, .. }
            | ProviderError::Invalid { provider, .. }
            | ProviderError::Moderated { provider, .. }
            | ProviderError::Transient { provider, .. }
            | ProviderError::Timeout { provider, .. }
            | ProviderError::BreakerOpen { provider, .. }
            | ProviderError::Request { provider, .. }
            | ProviderError::UnexpectedResponse { provider, .. } => provider,
        }
    }

    /// Whether trying again may succeed (retries also need a call that is safe to repeat).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProviderError::Transient { .. } | ProviderError::RateLimited { .. } | ProviderError::Timeout { .. }
        )
    }

    /// The delay the provider (or our breaker) asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after, .. } | ProviderError::Transient { retry_after, .. } => {
                *retry_after
            }
            ProviderError::BreakerOpen { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether the outcome counts against the provider in its circuit breaker. A refused input
    /// (invalid, moderated) is the provider doing its job, and a request we could not build never
    /// reached it; everything else means we cannot use it.
    pub fn counts_as_provider_failure(&self) -> bool {
        !matches!(self, ProviderError::Invalid { .. } | ProviderError::Moderated { .. } | ProviderError::Request { .. })
    }

    /// The metric label of this outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            ProviderError::Auth { .. } => "auth",
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Invalid { .. } => "invalid",
            ProviderError::Moderated { .. } => "moderated",
            ProviderError::Transient { .. } => "transient",
            ProviderError::Timeout { .. } => "timeout",
            ProviderError::BreakerOpen { .. } => "breaker_open",
            ProviderError::Request { .. } => "request_error",
            ProviderError::UnexpectedResponse { .. } => "unexpected_response",
        }
    }

    /// The `ErrorInfo.reason` of the status this error becomes.
    pub fn reason(&self) -> &'static str {
        match self {
            ProviderError::Auth { .. } => "PROVIDER_AUTH",
            ProviderError::RateLimited { .. } => "PROVIDER_RATE_LIMITED",
            ProviderError::Invalid { .. } => "PROVIDER_REJECTED_INPUT",
            ProviderError::Moderated { .. } => "CONTENT_MODERATED",
            ProviderError::Transient { .. } => "PROVIDER_UNAVAILABLE",
            ProviderError::Timeout { .. } => "PROVIDER_TIMEOUT",
            ProviderError::BreakerOpen { .. } => "PROVIDER_CIRCUIT_OPEN",
            ProviderError::Request { .. } => "PROVIDER_REQUEST_DEFECT",
            ProviderError::UnexpectedResponse { .. } => "PROVIDER_CONTRACT_VIOLATION",
        }
    }

    /// The gRPC status a service returns for this error, with `ErrorInfo` (domain
    /// [`ERROR_DOMAIN`], the [`reason`](Self::reason), the provider) and, for UNAVAILABLE,
    /// `RetryInfo`.
    ///
    /// - breaker open, transient, rate limited → UNAVAILABLE + retry advice: the caller can do
    ///   nothing but come back later (a provider's 429 is *our* quota, not the caller's, so not
    ///   RESOURCE_EXHAUSTED, which the edge would present as the caller's own rate limit);
    /// - timeout → DEADLINE_EXCEEDED: an upstream did not answer in time (504 at the edge), and
    ///   not UNAVAILABLE so that mesh retries do not multiply calls to an already slow provider;
    /// - invalid, moderated → INVALID_ARGUMENT: services validate input before calling, so what a
    ///   provider still refuses is about the content the caller sent;
    /// - auth, unexpected response, request defect → INTERNAL: our configuration or integration is wrong; retrying
    ///   cannot help and the caller cannot fix it.
    ///
    /// Messages name the provider but never quote credentials; provider details reach the caller
    /// only for refused input, where they help fix it.
    pub fn to_status(&self) -> tonic::Status {
        let provider = self.provider();
        let (code, message, retry) = match self {
            ProviderError::BreakerOpen { retry_after, .. } => (
                tonic::Code::Unavailable,
                format!("{provider} is currently failing; retry in {}", seconds(*retry_after)),
                Some(*retry_after),
            ),
            ProviderError::Transient { retry_after, .. } | ProviderError::RateLimited { retry_after, .. } => {
                let retry = retry_after.unwrap_or(DEFAULT_RETRY_AFTER);
                (
                    tonic::Code::Unavailable,
                    format!("{provider} is temporarily unavailable; retry in {}", seconds(retry)),
                    Some(retry),
                )
            }
            ProviderError::Timeout { after, .. } => {
                (tonic::Code::DeadlineExceeded, format!("{provider} did not answer within {after:?}"), None)
            }
            ProviderError::Invalid { detail, .. } => {
                (tonic::Code::InvalidArgument, format!("{provider} refused the request: {detail}"), None)
            }
            ProviderError::Moderated { detail, .. } => {
                (tonic::Code::InvalidArgument, format!("{provider} refused the content: {detail}"), None)
            }
            ProviderError::Auth { .. } => (
                tonic::Code::Internal,
                format!("the {provider} integration is misconfigured (credentials rejected)"),
                None,
            ),
            ProviderError::UnexpectedResponse { .. } => {
                (tonic::Code::Internal, format!("{provider} answered outside its contract"), None)
            }
            ProviderError::Request { .. } => {
                (tonic::Code::Internal, format!("the request to {provider} could not be built"), None)
            }
        };
        let mut details = vec![error_info(ERROR_DOMAIN, self.reason(), &[("provider", provider.to_owned())])];
        details.extend(retry.map(retry_info));
        kem_proto::status::with_details(code, &message, details)
    }
}

impl From<ProviderError> for tonic::Status {
    fn from(error: ProviderError) -> Self {
        error.to_status()
    }
}

/// Whole seconds, rounded up, for messages ("retry in 3 s").
fn seconds(d: Duration) -> String {
    let whole = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    format!("{} s", whole.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<str> {
        Arc::from("nts")
    }

    #[test]
    fn each_error_maps_to_its_code_with_error_info_and_retry_advice() {
        let cases = [
            (
                ProviderError::BreakerOpen { provider: provider(), retry_after: Duration::from_millis(2_500) },
                tonic::Code::Unavailable,
                Some(2),
            ),
            (
                ProviderError::Transient {
                    provider: provider(),
                    status: Some(503),
                    retry_after: None,
                    detail: "x".into(),
                },
                tonic::Code::Unavailable,
                Some(1),
            ),
            (
                ProviderError::RateLimited {
                    provider: provider(),
                    status: 429,
                    retry_after: Some(Duration::from_secs(7)),
                    detail: "quota".into(),
                },
                tonic::Code::Unavailable,
                Some(7),
            ),
            (
                ProviderError::Timeout { provider: provider(), after: Duration::from_secs(5) },
                tonic::Code::DeadlineExceeded,
                None,
            ),
            (
                ProviderError::Invalid { provider: provider(), status: 400, detail: "BAD_JSON_REQUEST".into() },
                tonic::Code::InvalidArgument,
                None,
            ),
            (
                ProviderError::Moderated { provider: provider(), status: 400, detail: "nsfw".into() },
                tonic::Code::InvalidArgument,
                None,
            ),
            (
                ProviderError::Auth { provider: provider(), status: 401, detail: "key".into() },
                tonic::Code::Internal,
                None,
            ),
            (
                ProviderError::UnexpectedResponse { provider: provider(), status: 302, detail: "redirect".into() },
                tonic::Code::Internal,
                None,
            ),
            (ProviderError::Request { provider: provider(), detail: "bad header".into() }, tonic::Code::Internal, None),
        ];
        for (error, code, retry_seconds) in cases {
            let status = error.to_status();
            assert_eq!(status.code(), code, "{error}");
            let info = kem_proto::status::error_info_of(&status).expect("ErrorInfo attached");
            assert_eq!((info.domain.as_str(), info.reason.as_str()), (ERROR_DOMAIN, error.reason()));
            assert_eq!(info.metadata.get("provider").map(String::as_str), Some("nts"));
            assert_eq!(crate::status::retry_delay(&status).map(|d| d.as_secs()), retry_seconds, "{error}");
            assert!(crate::external::OUTCOMES.contains(&error.outcome()), "{} is exported", error.outcome());
        }
    }

    #[test]
    fn auth_status_does_not_leak_provider_details() {
        let error = ProviderError::Auth { provider: provider(), status: 401, detail: "key sk-123 invalid".into() };
        assert!(!error.to_status().message().contains("sk-123"));
        assert!(error.to_string().contains("check the provider's API key"), "{error}");
    }
}
