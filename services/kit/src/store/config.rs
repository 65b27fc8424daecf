//! Connection settings of a [`Store`](super::Store).

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{Backend, StoreError};
use crate::Secret;
use crate::config::{self, Parse, ProcessEnv, Reader, parse};

/// `KEM_<SERVICE>_<name>`: a variable for one service when several share an environment.
fn service_var(service: &str, name: &str) -> String {
    format!("KEM_{}_{name}", service.to_ascii_uppercase().replace('-', "_"))
}

/// Where a service's database is and how to talk to it.
///
/// Deserializes from configuration with durations in milliseconds (`acquire_timeout_ms`, …);
/// every field but `url` has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user:password@host:5432/db` or `sqlite://path/to/file.db`.
    pub url: Secret,
    /// A read replica (same engine); reads that tolerate lag go there. Default: the primary.
    #[serde(default)]
    pub read_url: Option<Secret>,
    /// Pool size (per pool).
    #[serde(default = "defaults::max_connections")]
    pub max_connections: u32,
    /// Connections kept open when idle.
    #[serde(default)]
    pub min_connections: u32,
    /// How long a query waits for a free connection before failing.
    #[serde(default = "defaults::acquire_timeout", rename = "acquire_timeout_ms", deserialize_with = "ms")]
    pub acquire_timeout: Duration,
    /// PostgreSQL `statement_timeout` set on every connection (`None`: the server's default).
    #[serde(default = "defaults::statement_timeout", rename = "statement_timeout_ms", deserialize_with = "opt_ms")]
    pub statement_timeout: Option<Duration>,
    /// How long a SQLite writer waits for the file lock before failing with "database is locked".
    #[serde(default = "defaults::busy_timeout", rename = "sqlite_busy_timeout_ms", deserialize_with = "ms")]
    pub sqlite_busy_timeout: Duration,
    /// PostgreSQL `application_name` (shows in `pg_stat_activity`); usually the service name.
    #[serde(default)]
    pub application_name: Option<String>,
    /// Retry of the first connection at start.
    #[serde(default)]
    pub connect_retry: ConnectRetry,
}

/// Exponential backoff for the first connection, bounded in attempts and in time.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectRetry {
    /// Wait after the first failure; doubles on each further failure.
    #[serde(rename = "initial_delay_ms", deserialize_with = "ms")]
    pub initial_delay: Duration,
    /// Cap of the wait between attempts.
    #[serde(rename = "max_delay_ms", deserialize_with = "ms")]
    pub max_delay: Duration,
    /// Give up after this long in total.
    #[serde(rename = "max_elapsed_ms", deserialize_with = "ms")]
    pub max_elapsed: Duration,
    /// Give up after this many attempts (1 = no retry).
    pub max_attempts: u32,
}

impl Default for ConnectRetry {
    fn default() -> Self {
        ConnectRetry {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_elapsed: Duration::from_secs(60),
            max_attempts: 30,
        }
    }
}

impl ConnectRetry {
    /// One attempt, no retry (tests that expect a failure fast).
    pub fn none() -> Self {
        ConnectRetry { max_attempts: 1, ..ConnectRetry::default() }
    }
}

mod defaults {
    use std::time::Duration;

    pub fn max_connections() -> u32 {
        10
    }
    pub fn acquire_timeout() -> Duration {
        Duration::from_secs(5)
    }
    pub fn statement_timeout() -> Option<Duration> {
        Some(Duration::from_secs(30))
    }
    pub fn busy_timeout() -> Duration {
        Duration::from_secs(10)
    }
}

fn ms<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

fn opt_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<u64>::deserialize(d).map(|v| v.map(Duration::from_millis))
}

impl StoreConfig {
    /// Settings with the defaults for `url`.
    pub fn new(url: impl Into<String>) -> StoreConfig {
        StoreConfig {
            url: Secret::new(url),
            read_url: None,
            max_connections: defaults::max_connections(),
            min_connections: 0,
            acquire_timeout: defaults::acquire_timeout(),
            statement_timeout: defaults::statement_timeout(),
            sqlite_busy_timeout: defaults::busy_timeout(),
            application_name: None,
            connect_retry: ConnectRetry::default(),
        }
    }

    /// The embedded default: `<data_dir>/db/<service>.db` (SQLite, created when missing).
    pub fn embedded(data_dir: &Path, service: &str) -> StoreConfig {
        let file = data_dir.join("db").join(format!("{service}.db"));
        let mut config = StoreConfig::new(format!("sqlite://{}", file.display()));
        config.application_name = Some(service.to_owned());
        config
    }

    /// From the environment: `KEM_<SERVICE>_DATABASE_URL`, else `DATABASE_URL` (one service per
    /// pod in Kubernetes), else the embedded default under `data_dir`; see [`StoreConfig::read`].
    pub fn from_env(service: &str, data_dir: &Path) -> Result<StoreConfig, StoreError> {
        let config = config::read_from(&ProcessEnv, |env| StoreConfig::read(env, service, data_dir))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a service's database settings from `env`: `KEM_<SERVICE>_DATABASE_URL`, else
    /// `DATABASE_URL`, else the embedded default under `data_dir`; the read replica from
    /// `KEM_<SERVICE>_DATABASE_READ_URL` / `DATABASE_READ_URL`; the pool size as
    /// [`StoreConfig::read_pool_size`] does. Each may be given as a `_FILE` (a mounted secret).
    pub fn read(env: &mut Reader<'_>, service: &str, data_dir: &Path) -> StoreConfig {
        let url = env.secret(&service_var(service, "DATABASE_URL")).or_else(|| env.secret("DATABASE_URL"));
        let mut config = match url {
            Some(url) => StoreConfig::new(url.expose()),
            None => StoreConfig::embedded(data_dir, service),
        };
        config.read_url =
            env.secret(&service_var(service, "DATABASE_READ_URL")).or_else(|| env.secret("DATABASE_READ_URL"));
        let mut config = config.read_pool_size(env, service);
        config.application_name = Some(service.to_owned());
        config
    }

    /// Caps the pool at `KEM_<SERVICE>_DATABASE_MAX_CONNECTIONS`, else `DATABASE_MAX_CONNECTIONS`,
    /// when set — also for a URL that did not come from the environment: many processes sharing
    /// one PostgreSQL server must share its `max_connections`.
    pub fn read_pool_size(mut self, env: &mut Reader<'_>, service: &str) -> StoreConfig {
        let size = parse::number::<u32>().at_least(1);
        let specific = service_var(service, "DATABASE_MAX_CONNECTIONS");
        if let Some(n) = env.get(&specific, size.clone()).or_else(|| env.get("DATABASE_MAX_CONNECTIONS", size)) {
            self.max_connections = n;
        }
        self
    }

    /// [`StoreConfig::read_pool_size`] from the process environment.
    pub fn with_pool_size_from_env(self, service: &str) -> Result<StoreConfig, StoreError> {
        Ok(config::read_from(&ProcessEnv, |env| self.read_pool_size(env, service))?)
    }

    /// The engine the URL selects.
    pub fn backend(&self) -> Result<Backend, StoreError> {
        backend_of(self.url.expose()).ok_or_else(|| StoreError::unsupported_url(&self.url.redacted()))
    }

    /// Rejects settings that cannot work, before any connection attempt.
    pub fn validate(&self) -> Result<(), StoreError> {
        let backend = self.backend()?;
        if let Some(read) = &self.read_url {
            let read_backend =
                backend_of(read.expose()).ok_or_else(|| StoreError::unsupported_url(&read.redacted()))?;
            if read_backend != backend {
                return Err(StoreError::Config(format!(
                    "read_url is {read_backend} but url is {backend}; a replica must be the same engine"
                )));
            }
        }
        if self.max_connections == 0 {
            return Err(StoreError::Config("max_connections must be at least 1".into()));
        }
        if self.min_connections > self.max_connections {
            return Err(StoreError::Config(format!(
                "min_connections ({}) exceeds max_connections ({})",
                self.min_connections, self.max_connections
            )));
        }
        if self.connect_retry.max_attempts == 0 {
            return Err(StoreError::Config("connect_retry.max_attempts must be at least 1".into()));
        }
        Ok(())
    }
}

/// The backend a URL selects by its scheme.
pub(crate) fn backend_of(url: &str) -> Option<Backend> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase())?;
    match scheme.as_str() {
        "postgres" | "postgresql" => Some(Backend::Postgres),
        "sqlite" => Some(Backend::Sqlite),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_select_the_backend() {
        assert_eq!(backend_of("postgres://u@h/db"), Some(Backend::Postgres));
        assert_eq!(backend_of("postgresql://h/db"), Some(Backend::Postgres));
        assert_eq!(backend_of("sqlite://data/x.db"), Some(Backend::Sqlite));
        assert_eq!(backend_of("mysql://h/db"), None);
        assert_eq!(backend_of("nonsense"), None);
    }

    #[test]
    fn embedded_puts_one_file_per_service_under_the_data_dir() {
        let config = StoreConfig::embedded(Path::new("/var/kem"), "event");
        assert_eq!(config.url.expose(), "sqlite:///var/kem/db/event.db");
        assert_eq!(config.backend().expect("sqlite"), Backend::Sqlite);
    }

    #[test]
    fn deserializes_with_defaults_and_redacts_the_url() {
        let config: StoreConfig = serde_json::from_str(
            r#"{"url":"postgres://kem:pw@db:5432/event","statement_timeout_ms":1500,"connect_retry":{"max_attempts":3}}"#,
        )
        .expect("valid config");
        assert_eq!(config.statement_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(config.max_connections, 10);
        assert_eq!(config.connect_retry.max_attempts, 3);
        assert_eq!(config.connect_retry.initial_delay, Duration::from_millis(200));
        assert!(!format!("{config:?}").contains("pw"));
    }

    #[test]
    fn mismatched_replica_and_empty_pool_are_rejected() {
        let mut config = StoreConfig::new("postgres://h/db");
        config.read_url = Some(Secret::new("sqlite://x.db"));
        assert!(matches!(config.validate(), Err(StoreError::Config(_))));
        let mut config = StoreConfig::new("postgres://h/db");
        config.max_connections = 0;
        assert!(matches!(config.validate(), Err(StoreError::Config(_))));
        assert!(matches!(StoreConfig::new("redis://h").validate(), Err(StoreError::Config(_))));
    }
}
