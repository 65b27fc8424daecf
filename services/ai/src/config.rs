//! The ai service's settings: which model answers (Claude, or the built-in local stand-in when no
//! API key is configured), token caps, cache lifetime, time budgets and the job consumer.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::Secret;
use kem_kit::config::{self, ConfigError, Parse, ProcessEnv, Reader, parse};
use kem_kit::external::{ProviderConfig, ProviderMode};
use kem_kit::outbox::ConsumerOptions;
use kem_kit::queue::names::AI_EVENT_GENERATION;
use kem_mesh::telemetry::Registry;

use crate::app::jobs::JobPolicy;
use crate::infra::claude;

/// Environment variables [`AiConfig::from_env`] reads.
pub mod env {
    /// Anthropic API key (or `KEM_CLAUDE_API_KEY_FILE`: a file holding it, e.g. a Key Vault CSI
    /// mount); when unset (or blank) the built-in local stand-in answers.
    pub const CLAUDE_API_KEY: &str = "KEM_CLAUDE_API_KEY";
    /// Base URL of the Messages API (default `https://api.anthropic.com`).
    pub const CLAUDE_BASE_URL: &str = "KEM_CLAUDE_BASE_URL";
    /// Model (default `claude-haiku-4-5`).
    pub const CLAUDE_MODEL: &str = "KEM_CLAUDE_MODEL";
    /// Per-attempt timeout in milliseconds, 100 to 600000 (default 10000).
    pub const CLAUDE_TIMEOUT_MS: &str = "KEM_CLAUDE_TIMEOUT_MS";
    /// Jobs handled at once by one replica, 1 to 256 (default 4).
    pub const CONSUMER_CONCURRENCY: &str = "KEM_AI_CONSUMER_CONCURRENCY";
}

/// Everything [`start`](crate::start) needs besides the platform context.
#[derive(Debug, Clone)]
pub struct AiConfig {
    /// Real Claude (client settings and API key) or the local stand-in.
    pub claude: ProviderMode,
    /// The Claude model asked.
    pub model: String,
    /// Output token cap of a trend analysis.
    pub trends_max_tokens: u32,
    /// Output token cap of three recommendations.
    pub recommendations_max_tokens: u32,
    /// How long results are cached (24 h).
    pub cache_ttl: Duration,
    /// Longest an RPC may take when its caller sets no shorter deadline.
    pub request_budget: Duration,
    /// Job retries and time budgets.
    pub jobs: JobPolicy,
    /// Timeout of one ReportJobResult call.
    pub report_timeout: Duration,
    /// The `ai-event-generation` consumer (concurrency, locks, backoff, drain).
    pub consumer: ConsumerOptions,
    /// How long job records and inbox entries are kept.
    pub ledger_retention: Duration,
    /// Where the metrics are exported (the process registry by default).
    pub metrics: Arc<Registry>,
}

impl Default for AiConfig {
    /// Production settings with the local stand-in (tests and `kem up`).
    fn default() -> Self {
        let mut consumer = ConsumerOptions::new(AI_EVENT_GENERATION);
        consumer.name = "ai".to_owned();
        // A generation takes seconds; lock renewal keeps longer ones.
        consumer.lock_for = Duration::from_secs(60);
        AiConfig {
            claude: ProviderMode::Local { provider: claude::PROVIDER.to_owned() },
            model: claude::DEFAULT_MODEL.to_owned(),
            trends_max_tokens: 1_024,
            recommendations_max_tokens: 4_096,
            cache_ttl: Duration::from_secs(24 * 3_600),
            request_budget: Duration::from_secs(60),
            jobs: JobPolicy::default(),
            report_timeout: Duration::from_secs(5),
            consumer,
            ledger_retention: Duration::from_secs(7 * 24 * 3_600),
            metrics: Registry::global(),
        }
    }
}

impl AiConfig {
    /// Real Claude at `base_url` with `api_key` (the production client settings).
    pub fn with_claude(mut self, config: ProviderConfig, api_key: Secret) -> AiConfig {
        self.claude = ProviderMode::select(config, Some(api_key));
        self
    }

    /// Defaults, overridden by the environment (see [`mod@env`]); every variable may come from a
    /// file named by `<NAME>_FILE`.
    pub fn from_env() -> Result<AiConfig, AiConfigError> {
        config::read_from(&ProcessEnv, AiConfig::read)
    }

    /// Defaults, overridden by what `lookup` returns for the [`mod@env`] variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<AiConfig, AiConfigError> {
        config::read_from(&lookup, AiConfig::read)
    }

    /// Reads the [`mod@env`] variables from `vars`, recording every bad one there and keeping the
    /// default in its place, so a process can read several services' settings and report all
    /// their problems together.
    pub fn read(vars: &mut Reader<'_>) -> AiConfig {
        let mut config = AiConfig::default();
        let url = parse::http_url().example("https://api.anthropic.com").without_trailing_slash();
        let base_url = vars.get(env::CLAUDE_BASE_URL, url).unwrap_or_else(|| claude::DEFAULT_BASE_URL.to_owned());
        let mut provider = claude::provider_config(base_url);
        let timeout = parse::millis().within(Duration::from_millis(100), Duration::from_secs(600));
        if let Some(timeout) = vars.get(env::CLAUDE_TIMEOUT_MS, timeout) {
            provider.timeout = timeout;
            provider.deadline = provider.deadline.max(provider.timeout * 3);
        }
        if let Some(model) = vars.get(env::CLAUDE_MODEL, parse::text()) {
            config.model = model;
        }
        if let Some(concurrency) = vars.get(env::CONSUMER_CONCURRENCY, parse::number::<usize>().within(1, 256)) {
            config.consumer.concurrency = concurrency;
        }
        config.claude = ProviderMode::select(provider, vars.secret(env::CLAUDE_API_KEY));
        config
    }
}

/// Every variable in the environment that cannot be used, each with its value (never the API
/// key's) and what is expected (the kit's reader; see [`kem_kit::config`]).
pub type AiConfigError = ConfigError;

impl kem_kit::external::StandIns for AiConfig {
    fn stand_ins(&self) -> Vec<kem_kit::external::StandIn> {
        let mut stand_ins = Vec::new();
        if self.claude.is_local() {
            let what = "Claude recommendations (local stand-in, demo data)";
            stand_ins.push(kem_kit::external::StandIn::new(what, [env::CLAUDE_API_KEY]));
        }
        stand_ins
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<AiConfig, AiConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        AiConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn without_a_key_the_local_stand_in_answers() {
        let config = from(&[]).expect("valid");
        assert!(config.claude.is_local());
        assert_eq!(config.claude.source_label(), "local:claude");
        assert_eq!(config.cache_ttl, Duration::from_secs(86_400));
        assert_eq!(config.consumer.queue, "ai-event-generation");
        assert!(from(&[(env::CLAUDE_API_KEY, "  ")]).expect("valid").claude.is_local());
    }

    #[test]
    fn a_key_selects_claude_with_the_given_settings() {
        let config = from(&[
            (env::CLAUDE_API_KEY, "sk-ant-test"),
            (env::CLAUDE_BASE_URL, "http://127.0.0.1:9/"),
            (env::CLAUDE_MODEL, "claude-sonnet-4-5"),
            (env::CLAUDE_TIMEOUT_MS, "2500"),
            (env::CONSUMER_CONCURRENCY, "8"),
        ])
        .expect("valid");
        let ProviderMode::Real { config: provider, .. } = &config.claude else { panic!("real expected") };
        assert_eq!(provider.base_url, "http://127.0.0.1:9");
        assert_eq!(provider.timeout, Duration::from_millis(2_500));
        assert_eq!((config.model.as_str(), config.consumer.concurrency), ("claude-sonnet-4-5", 8));
        assert!(!format!("{config:?}").contains("sk-ant-test"), "the key is redacted");
    }

    #[test]
    fn the_key_may_come_from_a_mounted_file() {
        let path = std::env::temp_dir().join(format!("kem-ai-key-{}", std::process::id()));
        std::fs::write(&path, "sk-ant-from-file\n").expect("write the key file");
        let file = path.display().to_string();
        let config = from(&[("KEM_CLAUDE_API_KEY_FILE", file.as_str())]).expect("valid");
        let _ = std::fs::remove_file(&path);
        let ProviderMode::Real { credentials, .. } = &config.claude else { panic!("real expected") };
        assert_eq!(credentials.expose(), "sk-ant-from-file");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            (env::CLAUDE_TIMEOUT_MS, "ten"),
            (env::CLAUDE_TIMEOUT_MS, "0"),
            (env::CONSUMER_CONCURRENCY, "0"),
            (env::CLAUDE_BASE_URL, "ftp://x"),
        ] {
            let error = from(&[(var, value)]).expect_err(value);
            assert!(error.to_string().starts_with(var), "{error}");
        }
    }
}
