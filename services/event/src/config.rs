//! The event service's own settings (the platform ones — database, cache, queue — come with the
//! `ServiceContext`).
//!
//! | field | env var | default |
//! |---|---|---|
//! | `job_timeout` | `KEM_EVENT_JOB_TIMEOUT` | `5m` |
//! | `job_sweep_interval` | `KEM_EVENT_JOB_SWEEP_INTERVAL` | `15s` |
//! | `job_poll_interval` | `KEM_EVENT_JOB_POLL_INTERVAL` | `2s` |
//! | `default_page_size` | `KEM_EVENT_DEFAULT_PAGE_SIZE` | `20` |
//! | `max_page_size` | `KEM_EVENT_MAX_PAGE_SIZE` | `100` |
//! | `cache_ttl` | `KEM_EVENT_CACHE_TTL` | `5m` |
//! | `scheduler_interval` | `KEM_EVENT_SCHEDULER_INTERVAL` | `1s` |
//! | `auto_draw_delay` | `KEM_EVENT_AUTO_DRAW_DELAY` | `10m` |
//! | `public_base_url` | `KEM_PUBLIC_BASE_URL` | `http://127.0.0.1:8080` |
//!
//! Durations are a whole number with a unit: `500ms`, `30s`, `5m`, `1h`, `7d` (a bare number is
//! seconds). The page sizes default to what the ListEvents contract documents (20, coerced to at
//! most 100). The public base URL is the platform's public edge (shared with distribution): the
//! public view's entry, channel and image links hang off it; a trailing `/` is dropped. Every
//! variable may come from a file named by `<NAME>_FILE`.

use std::time::Duration;

use kem_kit::config::{self, ConfigError, ProcessEnv, Reader, parse};

/// Environment variables [`EventConfig::from_env`] reads.
pub mod env {
    /// `job_timeout` (`5m`).
    pub const JOB_TIMEOUT: &str = "KEM_EVENT_JOB_TIMEOUT";
    /// `job_sweep_interval` (`15s`).
    pub const JOB_SWEEP_INTERVAL: &str = "KEM_EVENT_JOB_SWEEP_INTERVAL";
    /// `job_poll_interval` (`2s`).
    pub const JOB_POLL_INTERVAL: &str = "KEM_EVENT_JOB_POLL_INTERVAL";
    /// `default_page_size` (`20`).
    pub const DEFAULT_PAGE_SIZE: &str = "KEM_EVENT_DEFAULT_PAGE_SIZE";
    /// `max_page_size` (`100`).
    pub const MAX_PAGE_SIZE: &str = "KEM_EVENT_MAX_PAGE_SIZE";
    /// `cache_ttl` (`5m`).
    pub const CACHE_TTL: &str = "KEM_EVENT_CACHE_TTL";
    /// `scheduler_interval` (`1s`).
    pub const SCHEDULER_INTERVAL: &str = "KEM_EVENT_SCHEDULER_INTERVAL";
    /// `auto_draw_delay` (`10m`).
    pub const AUTO_DRAW_DELAY: &str = "KEM_EVENT_AUTO_DRAW_DELAY";
    /// `public_base_url` (`http://127.0.0.1:8080`).
    pub const PUBLIC_BASE_URL: &str = "KEM_PUBLIC_BASE_URL";
}

/// Settings of the event service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventConfig {
    /// A job not finished this long after creation is failed with DEADLINE_EXCEEDED (and its
    /// queue message carries this deadline, so workers stop in time).
    pub job_timeout: Duration,
    /// How often the sweeper looks for jobs past their deadline.
    pub job_sweep_interval: Duration,
    /// Suggested delay between GetJob polls of an unfinished job (`Job.poll_interval`).
    pub job_poll_interval: Duration,
    /// ListEvents page size when the request asks for none.
    pub default_page_size: usize,
    /// Largest ListEvents page; larger requests are coerced down to it.
    pub max_page_size: usize,
    /// Time to live of cached events (entries are also invalidated on every change).
    pub cache_ttl: Duration,
    /// How often the scheduler ends the events whose period is over and draws the auto-draw
    /// events whose delay has passed.
    pub scheduler_interval: Duration,
    /// How long after an auto-draw event ends its winners are drawn (the contract's
    /// AUTO_DRAW_DELAY).
    pub auto_draw_delay: Duration,
    /// Base URL of the public edge (no trailing slash): entry pages `<base>/e/<id>`, images
    /// `<base>/api/v1/public/images/<id>`.
    pub public_base_url: String,
}

impl Default for EventConfig {
    fn default() -> Self {
        EventConfig {
            job_timeout: Duration::from_secs(300),
            job_sweep_interval: Duration::from_secs(15),
            job_poll_interval: Duration::from_secs(2),
            default_page_size: 20,
            max_page_size: 100,
            cache_ttl: Duration::from_secs(300),
            scheduler_interval: Duration::from_secs(1),
            auto_draw_delay: Duration::from_secs(600),
            public_base_url: "http://127.0.0.1:8080".to_owned(),
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EventConfigError {
    /// Variables in the environment that cannot be used, each with its value and what is
    /// expected, listed together with any rule the values break.
    #[error(transparent)]
    Invalid(ConfigError),
    /// Every value parses, but together they break the service's rules (each broken rule listed).
    #[error("invalid event service configuration: {0}")]
    Inconsistent(String),
}

impl From<ConfigError> for EventConfigError {
    /// [`Inconsistent`](EventConfigError::Inconsistent) when every variable parsed and only rules
    /// are broken, [`Invalid`](EventConfigError::Invalid) otherwise.
    fn from(error: ConfigError) -> Self {
        if error.only_rules_broken() {
            EventConfigError::Inconsistent(error.to_string())
        } else {
            EventConfigError::Invalid(error)
        }
    }
}

impl EventConfig {
    /// From the `KEM_EVENT_*` environment variables (see [`env`]), defaults for the unset ones.
    pub fn from_env() -> Result<EventConfig, EventConfigError> {
        Ok(config::read_from(&ProcessEnv, EventConfig::read)?)
    }

    /// From any variable lookup (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<EventConfig, EventConfigError> {
        Ok(config::read_from(&lookup, EventConfig::read)?)
    }

    /// Reads the [`env`] variables from `vars`, recording there every bad one (keeping its
    /// default) and every rule the result breaks, so a process can read several services'
    /// settings and report all their problems together.
    pub fn read(vars: &mut Reader<'_>) -> EventConfig {
        let mut config = EventConfig::default();
        if let Some(timeout) = vars.get(env::JOB_TIMEOUT, parse::duration()) {
            config.job_timeout = timeout;
        }
        if let Some(interval) = vars.get(env::JOB_SWEEP_INTERVAL, parse::duration()) {
            config.job_sweep_interval = interval;
        }
        if let Some(interval) = vars.get(env::JOB_POLL_INTERVAL, parse::duration()) {
            config.job_poll_interval = interval;
        }
        if let Some(size) = vars.get(env::DEFAULT_PAGE_SIZE, parse::number::<usize>()) {
            config.default_page_size = size;
        }
        if let Some(size) = vars.get(env::MAX_PAGE_SIZE, parse::number::<usize>()) {
            config.max_page_size = size;
        }
        if let Some(ttl) = vars.get(env::CACHE_TTL, parse::duration()) {
            config.cache_ttl = ttl;
        }
        if let Some(interval) = vars.get(env::SCHEDULER_INTERVAL, parse::duration()) {
            config.scheduler_interval = interval;
        }
        if let Some(delay) = vars.get(env::AUTO_DRAW_DELAY, parse::duration()) {
            config.auto_draw_delay = delay;
        }
        let url = parse::http_url().without_trailing_slash().example("https://kem.example");
        if let Some(base) = vars.get(env::PUBLIC_BASE_URL, url) {
            config.public_base_url = base;
        }
        for (var, rule) in config.broken_rules() {
            vars.broken(var, rule);
        }
        config
    }

    /// Checks ranges and consistency, reporting every broken rule.
    pub fn validate(&self) -> Result<(), EventConfigError> {
        let broken: Vec<String> = self.broken_rules().into_iter().map(|(_, rule)| rule).collect();
        if broken.is_empty() { Ok(()) } else { Err(EventConfigError::Inconsistent(broken.join("; "))) }
    }

    /// Each broken rule, with the variable that sets the offending field.
    fn broken_rules(&self) -> Vec<(&'static str, String)> {
        let mut broken = Vec::new();
        if self.job_timeout < Duration::from_secs(1) {
            broken.push((env::JOB_TIMEOUT, format!("job_timeout must be at least 1s, got {:?}", self.job_timeout)));
        }
        if self.job_sweep_interval < Duration::from_millis(50) {
            let rule = format!("job_sweep_interval must be at least 50ms, got {:?}", self.job_sweep_interval);
            broken.push((env::JOB_SWEEP_INTERVAL, rule));
        }
        if self.job_poll_interval.is_zero() {
            broken.push((env::JOB_POLL_INTERVAL, "job_poll_interval must be positive".to_owned()));
        }
        if self.scheduler_interval < Duration::from_millis(50) {
            let rule = format!("scheduler_interval must be at least 50ms, got {:?}", self.scheduler_interval);
            broken.push((env::SCHEDULER_INTERVAL, rule));
        }
        if self.auto_draw_delay > Duration::from_secs(7 * 24 * 3600) {
            let rule = format!("auto_draw_delay must be at most 7d, got {:?}", self.auto_draw_delay);
            broken.push((env::AUTO_DRAW_DELAY, rule));
        }
        if self.cache_ttl < Duration::from_millis(1) {
            broken.push((env::CACHE_TTL, "cache_ttl must be positive".to_owned()));
        }
        if self.max_page_size == 0 || self.max_page_size > 1_000 {
            let rule = format!("max_page_size must be between 1 and 1000, got {}", self.max_page_size);
            broken.push((env::MAX_PAGE_SIZE, rule));
        }
        if self.default_page_size == 0 || self.default_page_size > self.max_page_size {
            let rule = format!(
                "default_page_size must be between 1 and max_page_size ({}), got {}",
                self.max_page_size, self.default_page_size
            );
            broken.push((env::DEFAULT_PAGE_SIZE, rule));
        }
        broken
    }
}

/// The event service calls no external provider.
impl kem_kit::external::StandIns for EventConfig {}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn defaults_follow_the_contract_and_validate() {
        let config = EventConfig::from_lookup(lookup(&[])).expect("defaults");
        assert_eq!(config, EventConfig::default());
        assert_eq!((config.default_page_size, config.max_page_size), (20, 100));
        assert_eq!(config.auto_draw_delay, Duration::from_secs(600), "the contract's AUTO_DRAW_DELAY");
        assert_eq!(
            (config.scheduler_interval, config.public_base_url.as_str()),
            (Duration::from_secs(1), "http://127.0.0.1:8080")
        );
    }

    #[test]
    fn every_variable_is_read() {
        let config = EventConfig::from_lookup(lookup(&[
            ("KEM_EVENT_JOB_TIMEOUT", "90s"),
            ("KEM_EVENT_JOB_SWEEP_INTERVAL", "500ms"),
            ("KEM_EVENT_JOB_POLL_INTERVAL", "1"),
            ("KEM_EVENT_DEFAULT_PAGE_SIZE", "10"),
            ("KEM_EVENT_MAX_PAGE_SIZE", "50"),
            ("KEM_EVENT_CACHE_TTL", "2m"),
            ("KEM_EVENT_SCHEDULER_INTERVAL", "250ms"),
            ("KEM_EVENT_AUTO_DRAW_DELAY", "30s"),
            ("KEM_PUBLIC_BASE_URL", "https://kem.example/"),
        ]))
        .expect("valid");
        assert_eq!(config.scheduler_interval, Duration::from_millis(250));
        assert_eq!(config.auto_draw_delay, Duration::from_secs(30));
        assert_eq!(config.public_base_url, "https://kem.example", "no trailing slash");
        assert_eq!(config.job_timeout, Duration::from_secs(90));
        assert_eq!(config.job_sweep_interval, Duration::from_millis(500));
        assert_eq!(config.job_poll_interval, Duration::from_secs(1));
        assert_eq!((config.default_page_size, config.max_page_size), (10, 50));
        assert_eq!(config.cache_ttl, Duration::from_secs(120));
        let hours = EventConfig::from_lookup(lookup(&[("KEM_EVENT_JOB_TIMEOUT", "1h")])).expect("hours");
        assert_eq!(hours.job_timeout, Duration::from_secs(3600));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("KEM_EVENT_JOB_TIMEOUT", "soon"),
            ("KEM_EVENT_JOB_TIMEOUT", "5 days"),
            ("KEM_EVENT_JOB_TIMEOUT", "-5s"),
            ("KEM_EVENT_MAX_PAGE_SIZE", "many"),
            ("KEM_EVENT_AUTO_DRAW_DELAY", "later"),
            ("KEM_PUBLIC_BASE_URL", "ftp://kem.example"),
            ("KEM_PUBLIC_BASE_URL", "kem.example"),
        ] {
            let error = EventConfig::from_lookup(lookup(&[(var, value)])).expect_err("invalid");
            assert!(error.to_string().contains(var), "{error}");
        }
        let error = EventConfig::from_lookup(lookup(&[("KEM_EVENT_DEFAULT_PAGE_SIZE", "200")])).expect_err("too big");
        assert!(matches!(error, EventConfigError::Inconsistent(_)), "{error}");
        let error = EventConfig::from_lookup(lookup(&[("KEM_EVENT_JOB_TIMEOUT", "10ms")])).expect_err("too short");
        assert!(error.to_string().contains("job_timeout"), "{error}");
        let error =
            EventConfig::from_lookup(lookup(&[("KEM_EVENT_SCHEDULER_INTERVAL", "1ms")])).expect_err("too often");
        assert!(error.to_string().contains("scheduler_interval"), "{error}");
    }
}
