//! The analytics service's own settings (database, cache, queue and mesh come with the
//! `ServiceContext`). Analytics calls no external provider.
//!
//! | field | env var | default |
//! |---|---|---|
//! | `cache_ttl` | `KEM_ANALYTICS_CACHE_TTL` | `5m` |
//! | `values.default_krw` | `KEM_ANALYTICS_VALUE_PER_PARTICIPANT_KRW` | `10000` |
//! | `values.per_category` | `KEM_ANALYTICS_VALUE_PER_CATEGORY` | none (e.g. `cafe=7000,restaurant=15000`) |
//! | `consumer_concurrency` | `KEM_ANALYTICS_CONSUMER_CONCURRENCY` | `4` |
//! | `dedupe_retention` | `KEM_ANALYTICS_DEDUPE_RETENTION` | `7d` |
//! | `maintenance_interval` | `KEM_ANALYTICS_MAINTENANCE_INTERVAL` | `1h` |
//!
//! Durations are a whole number with a unit: `500ms`, `30s`, `5m`, `1h`, `7d` (a bare number is
//! seconds). Categories are the `kem.common.v1.BusinessCategory` names without the prefix, in any
//! case (`cafe`, `LOCAL_SERVICE`).

use std::collections::BTreeMap;
use std::time::Duration;

use kem_proto::kem::common::v1::BusinessCategory;

use crate::model::ValueTable;

/// Environment variables [`AnalyticsConfig::from_env`] reads.
pub mod env {
    /// How long answers are cached (`5m`).
    pub const CACHE_TTL: &str = "KEM_ANALYTICS_CACHE_TTL";
    /// Value of one entry in KRW for categories without their own figure (`10000`).
    pub const VALUE_PER_PARTICIPANT_KRW: &str = "KEM_ANALYTICS_VALUE_PER_PARTICIPANT_KRW";
    /// Values per business category, `category=krw,...`.
    pub const VALUE_PER_CATEGORY: &str = "KEM_ANALYTICS_VALUE_PER_CATEGORY";
    /// Queue messages handled at once (`4`).
    pub const CONSUMER_CONCURRENCY: &str = "KEM_ANALYTICS_CONSUMER_CONCURRENCY";
    /// How long processed message ids and report ids are remembered (`7d`).
    pub const DEDUPE_RETENTION: &str = "KEM_ANALYTICS_DEDUPE_RETENTION";
    /// Period of the purge of expired idempotency records (`1h`).
    pub const MAINTENANCE_INTERVAL: &str = "KEM_ANALYTICS_MAINTENANCE_INTERVAL";
}

/// Settings of the analytics service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsConfig {
    /// How long GetEventAnalytics and GetDashboard answers are cached (`CacheInfo.max_age`);
    /// new data for an event or owner invalidates them earlier.
    pub cache_ttl: Duration,
    /// Estimated value of one entry per business category (for ROI).
    pub values: ValueTable,
    /// `analytics-aggregation` messages handled at once.
    pub consumer_concurrency: usize,
    /// How long the inbox remembers processed message ids (and RecordChannelMetrics its report
    /// ids). It must exceed the longest time a message can be delivered again: the queue's
    /// duplicate-detection window plus the producers' worst-case outbox delay.
    pub dedupe_retention: Duration,
    /// Period of the background purge of expired idempotency records and tombstones.
    pub maintenance_interval: Duration,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            cache_ttl: Duration::from_secs(300),
            values: ValueTable::default(),
            consumer_concurrency: 4,
            dedupe_retention: Duration::from_secs(7 * 24 * 3600),
            maintenance_interval: Duration::from_secs(3600),
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalyticsConfigError {
    /// An environment variable has a value that does not parse.
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What it holds.
        value: String,
        /// What is expected.
        reason: String,
    },
    /// Values parse but are out of range.
    #[error("invalid analytics service configuration: {0}")]
    Inconsistent(String),
}

impl AnalyticsConfig {
    /// From the `KEM_ANALYTICS_*` environment variables (see [`env`]), defaults for the unset ones.
    pub fn from_env() -> Result<AnalyticsConfig, AnalyticsConfigError> {
        AnalyticsConfig::from_lookup(kem_kit::secret::env_or_file)
    }

    /// From any variable lookup (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<AnalyticsConfig, AnalyticsConfigError> {
        let get = |var: &'static str| lookup(var).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut config = AnalyticsConfig::default();
        if let Some(value) = get(env::CACHE_TTL) {
            config.cache_ttl = duration(env::CACHE_TTL, &value)?;
        }
        if let Some(value) = get(env::VALUE_PER_PARTICIPANT_KRW) {
            config.values.default_krw = krw(env::VALUE_PER_PARTICIPANT_KRW, &value, &value)?;
        }
        if let Some(value) = get(env::VALUE_PER_CATEGORY) {
            config.values.per_category = categories(&value)?;
        }
        if let Some(value) = get(env::CONSUMER_CONCURRENCY) {
            config.consumer_concurrency = value.parse().map_err(|_| AnalyticsConfigError::Invalid {
                var: env::CONSUMER_CONCURRENCY,
                value: value.clone(),
                reason: "expected a positive whole number".to_owned(),
            })?;
        }
        if let Some(value) = get(env::DEDUPE_RETENTION) {
            config.dedupe_retention = duration(env::DEDUPE_RETENTION, &value)?;
        }
        if let Some(value) = get(env::MAINTENANCE_INTERVAL) {
            config.maintenance_interval = duration(env::MAINTENANCE_INTERVAL, &value)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), AnalyticsConfigError> {
        let fail = |why: String| Err(AnalyticsConfigError::Inconsistent(why));
        if self.cache_ttl < Duration::from_secs(1) {
            return fail(format!("cache_ttl must be at least 1s, got {:?}", self.cache_ttl));
        }
        if self.consumer_concurrency == 0 || self.consumer_concurrency > 256 {
            return fail(format!("consumer_concurrency must be between 1 and 256, got {}", self.consumer_concurrency));
        }
        if self.dedupe_retention < Duration::from_secs(3600) {
            return fail(format!(
                "dedupe_retention must be at least 1h (longer than any redelivery), got {:?}",
                self.dedupe_retention
            ));
        }
        if self.maintenance_interval < Duration::from_secs(1) {
            return fail(format!("maintenance_interval must be at least 1s, got {:?}", self.maintenance_interval));
        }
        if self.values.default_krw < 0 || self.values.per_category.values().any(|v| *v < 0) {
            return fail("values per participant must not be negative".to_owned());
        }
        Ok(())
    }
}

fn duration(var: &'static str, value: &str) -> Result<Duration, AnalyticsConfigError> {
    let invalid = || AnalyticsConfigError::Invalid {
        var,
        value: value.to_owned(),
        reason: "expected a whole number with a unit: 500ms, 30s, 5m, 1h or 7d".to_owned(),
    };
    let digits = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    let n: u64 = number.parse().map_err(|_| invalid())?;
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(invalid()),
    };
    n.checked_mul(unit_ms).map(Duration::from_millis).ok_or_else(invalid)
}

fn krw(var: &'static str, whole: &str, amount: &str) -> Result<i64, AnalyticsConfigError> {
    amount.trim().parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| AnalyticsConfigError::Invalid {
        var,
        value: whole.to_owned(),
        reason: format!("{amount:?} is not a whole, non-negative number of won"),
    })
}

/// `cafe=7000,restaurant=15000` → category number → KRW.
fn categories(value: &str) -> Result<BTreeMap<i32, i64>, AnalyticsConfigError> {
    let var = env::VALUE_PER_CATEGORY;
    let mut table = BTreeMap::new();
    for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((name, amount)) = pair.split_once('=') else {
            return Err(AnalyticsConfigError::Invalid {
                var,
                value: value.to_owned(),
                reason: format!("{pair:?} is not category=krw (e.g. cafe=7000)"),
            });
        };
        let full = format!("BUSINESS_CATEGORY_{}", name.trim().to_ascii_uppercase());
        let category = BusinessCategory::from_str_name(&full)
            .filter(|c| *c != BusinessCategory::Unspecified)
            .ok_or_else(|| AnalyticsConfigError::Invalid {
                var,
                value: value.to_owned(),
                reason: format!(
                    "unknown business category {name:?}; use restaurant, cafe, bakery, bar, beauty, retail, fitness, \
                     education, healthcare, local_service or other"
                ),
            })?;
        table.insert(category as i32, krw(var, value, amount)?);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let config = AnalyticsConfig::from_lookup(lookup(&[])).expect("defaults");
        assert_eq!(config, AnalyticsConfig::default());
        assert_eq!(config.cache_ttl, Duration::from_secs(300), "CacheInfo documents 5 minutes");
    }

    #[test]
    fn every_variable_is_read() {
        let config = AnalyticsConfig::from_lookup(lookup(&[
            (env::CACHE_TTL, "2m"),
            (env::VALUE_PER_PARTICIPANT_KRW, "12000"),
            (env::VALUE_PER_CATEGORY, "cafe=7000, local_service = 15000"),
            (env::CONSUMER_CONCURRENCY, "8"),
            (env::DEDUPE_RETENTION, "14d"),
            (env::MAINTENANCE_INTERVAL, "30m"),
        ]))
        .expect("valid");
        assert_eq!(config.cache_ttl, Duration::from_secs(120));
        assert_eq!(config.values.default_krw, 12_000);
        assert_eq!(config.values.value_for(BusinessCategory::Cafe as i32), 7_000);
        assert_eq!(config.values.value_for(BusinessCategory::LocalService as i32), 15_000);
        assert_eq!(config.values.value_for(BusinessCategory::Bar as i32), 12_000);
        assert_eq!(config.consumer_concurrency, 8);
        assert_eq!(config.dedupe_retention, Duration::from_secs(14 * 86_400));
        assert_eq!(config.maintenance_interval, Duration::from_secs(1_800));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            (env::CACHE_TTL, "soon"),
            (env::CACHE_TTL, "5 weeks"),
            (env::VALUE_PER_PARTICIPANT_KRW, "-1"),
            (env::VALUE_PER_CATEGORY, "cafe"),
            (env::VALUE_PER_CATEGORY, "spaceport=100"),
            (env::VALUE_PER_CATEGORY, "unspecified=100"),
            (env::VALUE_PER_CATEGORY, "cafe=lots"),
            (env::CONSUMER_CONCURRENCY, "many"),
        ] {
            let error = AnalyticsConfig::from_lookup(lookup(&[(var, value)])).expect_err(value);
            assert!(error.to_string().contains(var), "{error}");
        }
        for (var, value) in [(env::CACHE_TTL, "10ms"), (env::CONSUMER_CONCURRENCY, "0"), (env::DEDUPE_RETENTION, "5m")]
        {
            let error = AnalyticsConfig::from_lookup(lookup(&[(var, value)])).expect_err(value);
            assert!(matches!(error, AnalyticsConfigError::Inconsistent(_)), "{error}");
        }
    }
}
