//! Per-provider settings: where it is, how long to wait, how often to retry, when to stop calling.

use std::time::Duration;

use kem_mesh::breaker::BreakerConfig;

/// How to call one external provider. Timeouts belong here; failure thresholds to
/// [`breaker`](Self::breaker).
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Short stable name (`nts`, `claude`, `stable-diffusion`, `instagram`, …): breaker name,
    /// log field and metric label.
    pub name: String,
    /// Base URL request paths are joined to, e.g. `https://api.odcloud.kr/api`.
    pub base_url: String,
    /// Deadline of one attempt: connecting, sending and reading the whole response.
    pub timeout: Duration,
    /// Deadline for establishing a connection (TCP + TLS).
    pub connect_timeout: Duration,
    /// Attempts per request, the first included (1 disables retries).
    pub max_attempts: u32,
    /// Delays between attempts when the provider gives no `Retry-After`.
    pub backoff: Backoff,
    /// Overall budget of one request, all attempts and waits included; a request may shorten it.
    pub deadline: Duration,
    /// Largest response body accepted (a provider answering more is treated as misbehaving).
    pub max_body_bytes: usize,
    /// PEM of the CA to trust instead of the platform's roots (a contract-test server over HTTPS).
    pub root_ca_pem: Option<String>,
    /// When to stop calling the provider for a while.
    pub breaker: BreakerConfig,
}

impl ProviderConfig {
    /// Defaults: 10 s per attempt, 3 s connect, 3 attempts, 100 ms → 2 s backoff, 30 s overall,
    /// 32 MiB bodies, platform roots, default breaker.
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        ProviderConfig {
            name: name.into(),
            base_url: base_url.into(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_attempts: 3,
            backoff: Backoff::default(),
            deadline: Duration::from_secs(30),
            max_body_bytes: 32 << 20,
            root_ca_pem: None,
            breaker: BreakerConfig::default(),
        }
    }
}

/// Exponential backoff with jitter: attempt `n` waits a random time in `[d/2, d]` with
/// `d = min(initial × 2ⁿ⁻¹, max)`, so retrying clients spread out instead of stampeding together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failed attempt (before jitter).
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(2) }
    }
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let full = self.initial.saturating_mul(1 << exponent).min(self.max);
        let half = full / 2;
        half + full.saturating_sub(half).mul_f64(rand::random::<f64>())
    }
}

/// A [`ProviderConfig`] that cannot work.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderConfigError {
    /// The base URL is unusable.
    #[error("provider {provider}: invalid base URL {url:?}: {reason}")]
    BaseUrl {
        /// The provider.
        provider: String,
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A numeric setting is out of range.
    #[error("provider {provider}: {field} {reason}")]
    Value {
        /// The provider.
        provider: String,
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The breaker settings are invalid.
    #[error("provider {provider}: {source}")]
    Breaker {
        /// The provider.
        provider: String,
        /// The breaker's complaint.
        #[source]
        source: kem_mesh::breaker::BreakerConfigError,
    },
    /// The HTTPS client could not be built.
    #[error("provider {provider}: cannot build the HTTPS client: {reason}")]
    Client {
        /// The provider.
        provider: String,
        /// What failed.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let b = Backoff { initial: Duration::from_millis(100), max: Duration::from_millis(350) };
        for _ in 0..50 {
            let first = b.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let second = b.delay(2);
            assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200), "{second:?}");
            let capped = b.delay(30);
            assert!(capped >= Duration::from_millis(175) && capped <= Duration::from_millis(350), "{capped:?}");
        }
    }
}
