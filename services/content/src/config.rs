//! The content service's settings: which image provider draws (Stability AI, or the built-in local
//! renderer when no API key is configured), where the bytes go (a local directory, or Azure Blob
//! Storage when an account key is configured), cache lifetime, time budgets and the consumer.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `KEM_STABILITY_API_KEY` (or `_FILE`) | Stability AI key; unset → local renderer | unset |
//! | `KEM_STABILITY_BASE_URL` | Stability AI base URL | `https://api.stability.ai` |
//! | `KEM_STABILITY_TIMEOUT_MS` | per-attempt timeout | `5000` |
//! | `KEM_CONTENT_BLOB_DIR` | local blob directory | `<data dir>/blobs` |
//! | `KEM_AZURE_STORAGE_ACCOUNT` | storage account; with a key → Azure Blob Storage | unset |
//! | `KEM_AZURE_STORAGE_KEY` (or `_FILE`) | account key (Base64) | unset |
//! | `KEM_AZURE_STORAGE_CONTAINER` | container of the images | `content-images` |
//! | `KEM_AZURE_BLOB_ENDPOINT` | blob endpoint | `https://<account>.blob.core.windows.net` |
//! | `KEM_CONTENT_IMAGE_CACHE_TTL_SECS` | reuse of identical generations | `86400` |
//! | `KEM_CONTENT_CONSUMER_CONCURRENCY` | jobs at once per replica | `2` |
//! | `KEM_CONTENT_JOB_PARALLELISM` | images of one job generated at once | `3` |
//!
//! Every variable, not only the keys, may instead come from a file named by `<NAME>_FILE`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kem_kit::config::{self, ConfigError, Parse, ProcessEnv, Reader, parse};
use kem_kit::external::ProviderMode;
use kem_kit::outbox::ConsumerOptions;
use kem_kit::queue::names::CONTENT_GENERATION;
use kem_mesh::telemetry::Registry;

use crate::infra::blob::AzureBlobConfig;
use crate::infra::stability;

/// Environment variables [`ContentConfig::from_env`] reads.
pub mod env {
    /// Stability AI API key; when unset (or blank) the built-in local renderer draws.
    pub const STABILITY_API_KEY: &str = "KEM_STABILITY_API_KEY";
    /// Base URL of the Stability AI API (default `https://api.stability.ai`).
    pub const STABILITY_BASE_URL: &str = "KEM_STABILITY_BASE_URL";
    /// Per-attempt timeout in milliseconds (default 5000).
    pub const STABILITY_TIMEOUT_MS: &str = "KEM_STABILITY_TIMEOUT_MS";
    /// Directory of the local blob store (default `<data dir>/blobs`).
    pub const BLOB_DIR: &str = "KEM_CONTENT_BLOB_DIR";
    /// Azure storage account; with a key, images go to Azure Blob Storage.
    pub const AZURE_STORAGE_ACCOUNT: &str = "KEM_AZURE_STORAGE_ACCOUNT";
    /// Azure storage account key (Base64).
    pub const AZURE_STORAGE_KEY: &str = "KEM_AZURE_STORAGE_KEY";
    /// Container of the images (default `content-images`).
    pub const AZURE_STORAGE_CONTAINER: &str = "KEM_AZURE_STORAGE_CONTAINER";
    /// Blob service endpoint (default `https://<account>.blob.core.windows.net`).
    pub const AZURE_BLOB_ENDPOINT: &str = "KEM_AZURE_BLOB_ENDPOINT";
    /// How long identical generations are reused, in seconds (default 86400).
    pub const IMAGE_CACHE_TTL_SECS: &str = "KEM_CONTENT_IMAGE_CACHE_TTL_SECS";
    /// Generation jobs handled at once by one replica (default 2).
    pub const CONSUMER_CONCURRENCY: &str = "KEM_CONTENT_CONSUMER_CONCURRENCY";
    /// Images of one job generated at once (default 3).
    pub const JOB_PARALLELISM: &str = "KEM_CONTENT_JOB_PARALLELISM";
}

/// The default container name.
pub const DEFAULT_CONTAINER: &str = "content-images";

/// Where image bytes are stored.
#[derive(Debug, Clone)]
pub enum BlobConfig {
    /// A local directory; `None`: `<data dir>/blobs`.
    Local {
        /// The directory, when not the default.
        dir: Option<PathBuf>,
    },
    /// Azure Blob Storage.
    Azure(AzureBlobConfig),
}

/// Everything [`start`](crate::start) needs besides the platform context.
#[derive(Debug, Clone)]
pub struct ContentConfig {
    /// Real Stability AI (client settings and API key) or the local renderer.
    pub stability: ProviderMode,
    /// Where image bytes go.
    pub blob: BlobConfig,
    /// How long an identical generation is reused (24 h).
    pub render_ttl: Duration,
    /// Images of one job generated at once.
    pub parallelism: usize,
    /// Most time one image may take at the provider, retries included (the job's deadline
    /// shortens it).
    pub image_budget: Duration,
    /// Timeout of one ReportJobResult call.
    pub report_timeout: Duration,
    /// The `content-generation` consumer (concurrency, locks, backoff, drain).
    pub consumer: ConsumerOptions,
    /// Period of the housekeeping (expired renders, old inbox records).
    pub maintenance_interval: Duration,
    /// Where the metrics are exported (the process registry by default).
    pub metrics: Arc<Registry>,
}

impl Default for ContentConfig {
    /// Production settings with the local renderer and the local blob directory (tests, `kem up`).
    fn default() -> Self {
        let mut consumer = ConsumerOptions::new(CONTENT_GENERATION);
        consumer.name = "content".to_owned();
        consumer.concurrency = 2;
        // A job makes up to a dozen images of several seconds each; the lock is renewed while it
        // runs, and a crashed worker's job comes back after one lock period.
        consumer.lock_for = Duration::from_secs(60);
        consumer.drain_timeout = Duration::from_secs(30);
        ContentConfig {
            stability: ProviderMode::Local { provider: stability::PROVIDER.to_owned() },
            blob: BlobConfig::Local { dir: None },
            render_ttl: Duration::from_secs(24 * 3_600),
            parallelism: 3,
            image_budget: Duration::from_secs(30),
            report_timeout: Duration::from_secs(5),
            consumer,
            maintenance_interval: Duration::from_secs(600),
            metrics: Registry::global(),
        }
    }
}

/// Every variable in the environment that cannot be used, each with its value (secrets redacted)
/// and what is expected (the kit's reader; see [`kem_kit::config`]).
pub type ContentConfigError = ConfigError;

impl ContentConfig {
    /// Defaults, overridden by the environment (see [`env`]); every variable may come from a file
    /// named by `<NAME>_FILE`.
    pub fn from_env() -> Result<ContentConfig, ContentConfigError> {
        config::read_from(&ProcessEnv, ContentConfig::read)
    }

    /// Defaults, overridden by what `lookup` returns for the [`env`] variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ContentConfig, ContentConfigError> {
        config::read_from(&lookup, ContentConfig::read)
    }

    /// Reads the [`env`] variables from `vars`, recording every bad or missing one there and
    /// keeping the default in its place, so a process can read several services' settings and
    /// report all their problems together.
    pub fn read(vars: &mut Reader<'_>) -> ContentConfig {
        let mut config = ContentConfig::default();

        let url = parse::http_url().example("https://api.stability.ai").without_trailing_slash();
        let base_url = vars.get(env::STABILITY_BASE_URL, url).unwrap_or_else(|| stability::DEFAULT_BASE_URL.to_owned());
        let mut provider = stability::provider_config(base_url);
        let timeout = parse::millis().within(Duration::from_millis(100), Duration::from_secs(600));
        if let Some(timeout) = vars.get(env::STABILITY_TIMEOUT_MS, timeout) {
            provider.timeout = timeout;
            provider.deadline = provider.deadline.max(provider.timeout * 3);
            config.image_budget = config.image_budget.max(provider.deadline);
        }
        config.stability = ProviderMode::select(provider, vars.secret(env::STABILITY_API_KEY));

        let account = vars.get(env::AZURE_STORAGE_ACCOUNT, parse::text());
        let key = vars.secret(env::AZURE_STORAGE_KEY);
        let both = "Azure Blob Storage needs both (unset both for the local directory)";
        config.blob = match (account, key) {
            (Some(account), Some(key)) => {
                let url = parse::http_url().example("https://<account>.blob.core.windows.net");
                let endpoint = vars
                    .get(env::AZURE_BLOB_ENDPOINT, url)
                    .unwrap_or_else(|| AzureBlobConfig::default_endpoint(&account));
                BlobConfig::Azure(AzureBlobConfig {
                    account,
                    key,
                    container: vars
                        .get(env::AZURE_STORAGE_CONTAINER, parse::text())
                        .unwrap_or_else(|| DEFAULT_CONTAINER.to_owned()),
                    endpoint,
                    timeout: Duration::from_secs(10),
                    root_ca_pem: None,
                })
            }
            (Some(_), None) => {
                vars.missing(env::AZURE_STORAGE_KEY, format!("{} is set, and {both}", env::AZURE_STORAGE_ACCOUNT));
                BlobConfig::Local { dir: None }
            }
            (None, Some(_)) => {
                vars.missing(env::AZURE_STORAGE_ACCOUNT, format!("{} is set, and {both}", env::AZURE_STORAGE_KEY));
                BlobConfig::Local { dir: None }
            }
            (None, None) => BlobConfig::Local { dir: vars.get(env::BLOB_DIR, parse::path()) },
        };
        let ttl = parse::seconds().within(Duration::from_secs(1), Duration::from_secs(30 * 24 * 3_600));
        if let Some(ttl) = vars.get(env::IMAGE_CACHE_TTL_SECS, ttl) {
            config.render_ttl = ttl;
        }
        if let Some(n) = vars.get(env::CONSUMER_CONCURRENCY, parse::number::<usize>().within(1, 64)) {
            config.consumer.concurrency = n;
        }
        if let Some(n) = vars.get(env::JOB_PARALLELISM, parse::number::<usize>().within(1, 16)) {
            config.parallelism = n;
        }
        config
    }
}

impl kem_kit::external::StandIns for ContentConfig {
    fn stand_ins(&self) -> Vec<kem_kit::external::StandIn> {
        let mut stand_ins = Vec::new();
        if self.stability.is_local() {
            let what = "Stability AI image generation (local PNG renderer)";
            stand_ins.push(kem_kit::external::StandIn::new(what, [env::STABILITY_API_KEY]));
        }
        stand_ins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn defaults_are_local_everything() {
        let config = ContentConfig::from_lookup(lookup(&[])).expect("defaults");
        assert!(config.stability.is_local());
        assert_eq!(config.stability.source_label(), "local:stability-ai");
        assert!(matches!(config.blob, BlobConfig::Local { dir: None }));
        assert_eq!(config.render_ttl, Duration::from_secs(86_400));
    }

    #[test]
    fn keys_select_the_real_providers() {
        let config = ContentConfig::from_lookup(lookup(&[
            (env::STABILITY_API_KEY, "sk-test"),
            (env::STABILITY_BASE_URL, "http://127.0.0.1:9/"),
            (env::STABILITY_TIMEOUT_MS, "20000"),
            (env::AZURE_STORAGE_ACCOUNT, "kemacct"),
            (env::AZURE_STORAGE_KEY, "a2V5"),
            (env::CONSUMER_CONCURRENCY, "4"),
            (env::JOB_PARALLELISM, "1"),
        ]))
        .expect("valid");
        let ProviderMode::Real { config: provider, .. } = &config.stability else { panic!("real Stability AI") };
        assert_eq!(provider.base_url, "http://127.0.0.1:9");
        assert_eq!(provider.timeout, Duration::from_secs(20));
        assert!(provider.deadline >= Duration::from_secs(60));
        let BlobConfig::Azure(azure) = &config.blob else { panic!("Azure") };
        assert_eq!(
            (azure.endpoint.as_str(), azure.container.as_str()),
            ("https://kemacct.blob.core.windows.net", DEFAULT_CONTAINER)
        );
        assert_eq!((config.consumer.concurrency, config.parallelism), (4, 1));
    }

    #[test]
    fn bad_or_partial_settings_name_the_variable() {
        for (vars, needle) in [
            (vec![(env::STABILITY_BASE_URL, "ftp://x")], env::STABILITY_BASE_URL),
            (vec![(env::STABILITY_TIMEOUT_MS, "soon")], env::STABILITY_TIMEOUT_MS),
            (vec![(env::AZURE_STORAGE_ACCOUNT, "kemacct")], env::AZURE_STORAGE_KEY),
            (vec![(env::AZURE_STORAGE_KEY, "k")], env::AZURE_STORAGE_ACCOUNT),
            (vec![(env::JOB_PARALLELISM, "0")], env::JOB_PARALLELISM),
        ] {
            let error = ContentConfig::from_lookup(lookup(&vars)).expect_err("invalid");
            assert!(error.to_string().contains(needle), "{error}");
        }
    }
}
