//! The base of every client of an external HTTP API (NTS, Claude, Stable Diffusion, the
//! distribution channels).
//!
//! A provider client configures a [`ProviderConfig`] (timeouts, retries, backoff, its
//! [breaker](kem_mesh::breaker)) and sends its requests through a [`ProviderClient`], which:
//! - gives each attempt [`timeout`](ProviderConfig::timeout) and the whole request an overall
//!   [`deadline`](ProviderConfig::deadline);
//! - retries only calls safe to repeat (idempotent methods, requests marked
//!   [`idempotent`](ProviderRequest::idempotent), or carrying an
//!   [idempotency key](ProviderRequest::idempotency_key)) and only transient failures: connection
//!   errors, timeouts, 408, 5xx, and 429 after its `Retry-After` (seconds or HTTP-date), never past
//!   the deadline;
//! - asks the provider's circuit breaker before every attempt (open → fail fast, nothing sent);
//! - maps the outcome to [`ProviderError`] (and that to a `tonic::Status` with
//!   [`ProviderError::to_status`]), reading non-JSON error bodies safely;
//! - counts requests by outcome, attempts, retries and latency in [`ProviderCounters`].
//!
//! Every provider has a deterministic built-in local stand-in for `kem up`;
//! [`ProviderMode::select`] picks the real one only when credentials are configured, and
//! [`ProviderMode::source_label`] is what logs and API responses show (`local:<provider>`).
//!
//! TLS is rustls with the `ring` provider only; no OpenSSL, no aws-lc.

mod client;
mod config;
mod error;
mod metrics;
pub mod ncp;
mod stand_in;

pub use client::{
    Classifier, IDEMPOTENCY_KEY, ProviderClient, ProviderRequest, ProviderResponse, Verdict, default_verdict,
    error_chain, parse_retry_after, tls_client_config,
};
pub use config::{Backoff, ProviderConfig, ProviderConfigError};
pub use error::{ERROR_DOMAIN, ProviderError};
pub use metrics::{OUTCOMES, ProviderCounters};
pub use stand_in::{ALLOW_LOCAL_PROVIDERS, ProviderPolicy, StandIn, StandIns, StandInsRefused};

use crate::Secret;

/// Prefix of the source label of a built-in local provider.
pub const LOCAL_PREFIX: &str = "local:";

/// Which implementation of a provider a service uses.
// Built once per provider at startup: the size of the `Real` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum ProviderMode {
    /// The real provider, reached over HTTP with these settings and credentials.
    Real {
        /// How to reach it.
        config: ProviderConfig,
        /// Its API key (or equivalent), applied by the provider client the provider's way.
        credentials: Secret,
    },
    /// The service's built-in local stand-in (deterministic; never presented as the real one).
    Local {
        /// The provider it stands in for.
        provider: String,
    },
}

impl ProviderMode {
    /// [`Real`](Self::Real) when `credentials` are set (and not blank), otherwise
    /// [`Local`](Self::Local). Logs the choice: a local stand-in is a warning, since its results
    /// are not the provider's.
    pub fn select(config: ProviderConfig, credentials: Option<Secret>) -> Self {
        match credentials.filter(|c| !c.expose().trim().is_empty()) {
            Some(credentials) => {
                tracing::info!(provider = %config.name, base_url = %config.base_url, "using the real provider");
                ProviderMode::Real { config, credentials }
            }
            None => {
                tracing::warn!(
                    provider = %config.name,
                    source = %local_label(&config.name),
                    "no credentials configured: using the built-in LOCAL stand-in; its results are deterministic \
                     placeholders, not the provider's"
                );
                ProviderMode::Local { provider: config.name }
            }
        }
    }

    /// Whether this is the built-in stand-in.
    pub fn is_local(&self) -> bool {
        matches!(self, ProviderMode::Local { .. })
    }

    /// The provider's name.
    pub fn provider(&self) -> &str {
        match self {
            ProviderMode::Real { config, .. } => &config.name,
            ProviderMode::Local { provider } => provider,
        }
    }

    /// What logs and API responses name as the source of a result: `claude` for the real
    /// provider, `local:claude` for the stand-in.
    pub fn source_label(&self) -> String {
        match self {
            ProviderMode::Real { config, .. } => config.name.clone(),
            ProviderMode::Local { provider } => local_label(provider),
        }
    }
}

/// `local:<provider>`: the source label of a built-in stand-in.
pub fn local_label(provider: &str) -> String {
    format!("{LOCAL_PREFIX}{provider}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_select_the_real_provider_and_blank_ones_the_labelled_local_one() {
        let config = || ProviderConfig::new("claude", "https://api.anthropic.com");
        let real = ProviderMode::select(config(), Some(Secret::new("sk-ant-x")));
        assert!(!real.is_local());
        assert_eq!(real.source_label(), "claude");
        for missing in [None, Some(Secret::new("")), Some(Secret::new("  "))] {
            let local = ProviderMode::select(config(), missing);
            assert!(local.is_local());
            assert_eq!((local.provider(), local.source_label().as_str()), ("claude", "local:claude"));
        }
    }
}
