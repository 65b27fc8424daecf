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

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kem_kit::Secret;
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

/// A setting in the environment that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentConfigError {
    /// A variable has a value of the wrong form.
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What it holds (never a secret: secrets are not echoed).
        value: String,
        /// What is expected.
        reason: &'static str,
    },
    /// Variables that only work together are set partly.
    #[error("{0}")]
    Incomplete(String),
}

impl ContentConfig {
    /// Defaults, overridden by the environment (see [`env`]); secrets may come from `<VAR>_FILE`.
    pub fn from_env() -> Result<ContentConfig, ContentConfigError> {
        ContentConfig::from_lookup(kem_kit::secret::env_or_file)
    }

    /// Defaults, overridden by what `lookup` returns for the [`env`] variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ContentConfig, ContentConfigError> {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut config = ContentConfig::default();

        let base_url = var(env::STABILITY_BASE_URL)
            .map(|v| v.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| stability::DEFAULT_BASE_URL.to_owned());
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            return Err(ContentConfigError::Invalid {
                var: env::STABILITY_BASE_URL,
                value: base_url,
                reason: "must be an http(s) URL such as https://api.stability.ai",
            });
        }
        let mut provider = stability::provider_config(base_url);
        if let Some(ms) = number(&var, env::STABILITY_TIMEOUT_MS, 100, 600_000)? {
            provider.timeout = Duration::from_millis(ms);
            provider.deadline = provider.deadline.max(provider.timeout * 3);
            config.image_budget = config.image_budget.max(provider.deadline);
        }
        config.stability = ProviderMode::select(provider, var(env::STABILITY_API_KEY).map(Secret::new));

        let account = var(env::AZURE_STORAGE_ACCOUNT);
        let key = var(env::AZURE_STORAGE_KEY);
        config.blob = match (account, key) {
            (Some(account), Some(key)) => {
                let endpoint =
                    var(env::AZURE_BLOB_ENDPOINT).unwrap_or_else(|| AzureBlobConfig::default_endpoint(&account));
                if !(endpoint.starts_with("https://") || endpoint.starts_with("http://")) {
                    return Err(ContentConfigError::Invalid {
                        var: env::AZURE_BLOB_ENDPOINT,
                        value: endpoint,
                        reason: "must be an http(s) URL such as https://<account>.blob.core.windows.net",
                    });
                }
                BlobConfig::Azure(AzureBlobConfig {
                    account,
                    key: Secret::new(key),
                    container: var(env::AZURE_STORAGE_CONTAINER).unwrap_or_else(|| DEFAULT_CONTAINER.to_owned()),
                    endpoint,
                    timeout: Duration::from_secs(10),
                    root_ca_pem: None,
                })
            }
            (Some(_), None) => {
                return Err(ContentConfigError::Incomplete(format!(
                    "{} is set but {} is not: set both for Azure Blob Storage, or neither for the local directory",
                    env::AZURE_STORAGE_ACCOUNT,
                    env::AZURE_STORAGE_KEY
                )));
            }
            (None, Some(_)) => {
                return Err(ContentConfigError::Incomplete(format!(
                    "{} is set but {} is not",
                    env::AZURE_STORAGE_KEY,
                    env::AZURE_STORAGE_ACCOUNT
                )));
            }
            (None, None) => BlobConfig::Local { dir: var(env::BLOB_DIR).map(PathBuf::from) },
        };
        if let Some(secs) = number(&var, env::IMAGE_CACHE_TTL_SECS, 1, 30 * 24 * 3_600)? {
            config.render_ttl = Duration::from_secs(secs);
        }
        if let Some(n) = number(&var, env::CONSUMER_CONCURRENCY, 1, 64)? {
            config.consumer.concurrency = usize::try_from(n).unwrap_or(1);
        }
        if let Some(n) = number(&var, env::JOB_PARALLELISM, 1, 16)? {
            config.parallelism = usize::try_from(n).unwrap_or(1);
        }
        Ok(config)
    }
}

fn number(
    var: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ContentConfigError> {
    let Some(value) = var(name) else { return Ok(None) };
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => {
            Err(ContentConfigError::Invalid { var: name, value, reason: "must be a whole number in the allowed range" })
        }
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
