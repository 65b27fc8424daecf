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
//!
//! Durations are a whole number with a unit: `500ms`, `30s`, `5m`, `1h` (a bare number is seconds).
//! The page sizes default to what the ListEvents contract documents (20, coerced to at most 100).

use std::time::Duration;

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
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventConfigError {
    /// An environment variable has a value that does not parse.
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What it holds.
        value: String,
        /// What is expected.
        reason: &'static str,
    },
    /// Values parse but do not fit together or are out of range.
    #[error("invalid event service configuration: {0}")]
    Inconsistent(String),
}

impl EventConfig {
    /// From the `KEM_EVENT_*` environment variables, defaults for the unset ones.
    pub fn from_env() -> Result<EventConfig, EventConfigError> {
        EventConfig::from_lookup(kem_kit::secret::env_or_file)
    }

    /// From any variable lookup (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<EventConfig, EventConfigError> {
        let mut config = EventConfig::default();
        let get =
            |var: &'static str| lookup(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).map(|v| (var, v));
        if let Some((var, value)) = get("KEM_EVENT_JOB_TIMEOUT") {
            config.job_timeout = duration(var, &value)?;
        }
        if let Some((var, value)) = get("KEM_EVENT_JOB_SWEEP_INTERVAL") {
            config.job_sweep_interval = duration(var, &value)?;
        }
        if let Some((var, value)) = get("KEM_EVENT_JOB_POLL_INTERVAL") {
            config.job_poll_interval = duration(var, &value)?;
        }
        if let Some((var, value)) = get("KEM_EVENT_DEFAULT_PAGE_SIZE") {
            config.default_page_size = count(var, &value)?;
        }
        if let Some((var, value)) = get("KEM_EVENT_MAX_PAGE_SIZE") {
            config.max_page_size = count(var, &value)?;
        }
        if let Some((var, value)) = get("KEM_EVENT_CACHE_TTL") {
            config.cache_ttl = duration(var, &value)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges and consistency.
    pub fn validate(&self) -> Result<(), EventConfigError> {
        let fail = |why: String| Err(EventConfigError::Inconsistent(why));
        if self.job_timeout < Duration::from_secs(1) {
            return fail(format!("job_timeout must be at least 1s, got {:?}", self.job_timeout));
        }
        if self.job_sweep_interval < Duration::from_millis(50) {
            return fail(format!("job_sweep_interval must be at least 50ms, got {:?}", self.job_sweep_interval));
        }
        if self.job_poll_interval.is_zero() {
            return fail("job_poll_interval must be positive".to_owned());
        }
        if self.cache_ttl < Duration::from_millis(1) {
            return fail("cache_ttl must be positive".to_owned());
        }
        if self.max_page_size == 0 || self.max_page_size > 1_000 {
            return fail(format!("max_page_size must be between 1 and 1000, got {}", self.max_page_size));
        }
        if self.default_page_size == 0 || self.default_page_size > self.max_page_size {
            return fail(format!(
                "default_page_size must be between 1 and max_page_size ({}), got {}",
                self.max_page_size, self.default_page_size
            ));
        }
        Ok(())
    }
}

fn duration(var: &'static str, value: &str) -> Result<Duration, EventConfigError> {
    let invalid = || EventConfigError::Invalid {
        var,
        value: value.to_owned(),
        reason: "expected a whole number with a unit: 500ms, 30s, 5m or 1h",
    };
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let n: u64 = number.parse().map_err(|_| invalid())?;
    let millis = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    };
    millis.map(Duration::from_millis).ok_or_else(invalid)
}

fn count(var: &'static str, value: &str) -> Result<usize, EventConfigError> {
    value.parse().map_err(|_| EventConfigError::Invalid {
        var,
        value: value.to_owned(),
        reason: "expected a positive whole number",
    })
}

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
        ]))
        .expect("valid");
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
        ] {
            let error = EventConfig::from_lookup(lookup(&[(var, value)])).expect_err("invalid");
            assert!(error.to_string().contains(var), "{error}");
        }
        let error = EventConfig::from_lookup(lookup(&[("KEM_EVENT_DEFAULT_PAGE_SIZE", "200")])).expect_err("too big");
        assert!(matches!(error, EventConfigError::Inconsistent(_)), "{error}");
        let error = EventConfig::from_lookup(lookup(&[("KEM_EVENT_JOB_TIMEOUT", "10ms")])).expect_err("too short");
        assert!(error.to_string().contains("job_timeout"), "{error}");
    }
}
