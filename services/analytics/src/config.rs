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
//! case (`cafe`, `LOCAL_SERVICE`). Every variable may come from a file named by `<NAME>_FILE`.

use std::collections::BTreeMap;
use std::time::Duration;

use kem_kit::config::{self, ConfigError, Parse, ProcessEnv, Reader, parse};
use kem_proto::kem::common::v1::BusinessCategory;

use crate::domain::ValueTable;

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
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnalyticsConfigError {
    /// Variables in the environment that cannot be used, each with its value and what is
    /// expected, listed together with any rule the values break.
    #[error(transparent)]
    Invalid(ConfigError),
    /// Every value parses, but some are out of range (each broken rule listed).
    #[error("invalid analytics service configuration: {0}")]
    Inconsistent(String),
}

impl From<ConfigError> for AnalyticsConfigError {
    /// [`Inconsistent`](AnalyticsConfigError::Inconsistent) when every variable parsed and only
    /// rules are broken, [`Invalid`](AnalyticsConfigError::Invalid) otherwise.
    fn from(error: ConfigError) -> Self {
        if error.only_rules_broken() {
            AnalyticsConfigError::Inconsistent(error.to_string())
        } else {
            AnalyticsConfigError::Invalid(error)
        }
    }
}

impl AnalyticsConfig {
    /// From the `KEM_ANALYTICS_*` environment variables (see [`env`]), defaults for the unset ones;
    /// every variable may come from a file named by `<NAME>_FILE`.
    pub fn from_env() -> Result<AnalyticsConfig, AnalyticsConfigError> {
        Ok(config::read_from(&ProcessEnv, AnalyticsConfig::read)?)
    }

    /// From any variable lookup (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<AnalyticsConfig, AnalyticsConfigError> {
        Ok(config::read_from(&lookup, AnalyticsConfig::read)?)
    }

    /// Reads the [`env`] variables from `vars`, recording there every bad one (keeping its
    /// default) and every rule the result breaks, so a process can read several services'
    /// settings and report all their problems together.
    pub fn read(vars: &mut Reader<'_>) -> AnalyticsConfig {
        let mut config = AnalyticsConfig::default();
        if let Some(ttl) = vars.get(env::CACHE_TTL, parse::duration()) {
            config.cache_ttl = ttl;
        }
        if let Some(krw) = vars.get(env::VALUE_PER_PARTICIPANT_KRW, krw()) {
            config.values.default_krw = krw;
        }
        if let Some(table) = vars.get(env::VALUE_PER_CATEGORY, categories()) {
            config.values.per_category = table;
        }
        if let Some(concurrency) = vars.get(env::CONSUMER_CONCURRENCY, parse::number::<usize>()) {
            config.consumer_concurrency = concurrency;
        }
        if let Some(retention) = vars.get(env::DEDUPE_RETENTION, parse::duration()) {
            config.dedupe_retention = retention;
        }
        if let Some(interval) = vars.get(env::MAINTENANCE_INTERVAL, parse::duration()) {
            config.maintenance_interval = interval;
        }
        for (var, rule) in config.broken_rules() {
            vars.broken(var, rule);
        }
        config
    }

    /// Checks ranges, reporting every broken rule.
    pub fn validate(&self) -> Result<(), AnalyticsConfigError> {
        let broken: Vec<String> = self.broken_rules().into_iter().map(|(_, rule)| rule).collect();
        if broken.is_empty() { Ok(()) } else { Err(AnalyticsConfigError::Inconsistent(broken.join("; "))) }
    }

    /// Each broken rule, with the variable that sets the offending field.
    fn broken_rules(&self) -> Vec<(&'static str, String)> {
        let mut broken = Vec::new();
        if self.cache_ttl < Duration::from_secs(1) {
            broken.push((env::CACHE_TTL, format!("cache_ttl must be at least 1s, got {:?}", self.cache_ttl)));
        }
        if self.consumer_concurrency == 0 || self.consumer_concurrency > 256 {
            let rule = format!("consumer_concurrency must be between 1 and 256, got {}", self.consumer_concurrency);
            broken.push((env::CONSUMER_CONCURRENCY, rule));
        }
        if self.dedupe_retention < Duration::from_secs(3600) {
            let rule = format!(
                "dedupe_retention must be at least 1h (longer than any redelivery), got {:?}",
                self.dedupe_retention
            );
            broken.push((env::DEDUPE_RETENTION, rule));
        }
        if self.maintenance_interval < Duration::from_secs(1) {
            let rule = format!("maintenance_interval must be at least 1s, got {:?}", self.maintenance_interval);
            broken.push((env::MAINTENANCE_INTERVAL, rule));
        }
        if self.values.default_krw < 0 || self.values.per_category.values().any(|v| *v < 0) {
            let rule = "values per participant must not be negative".to_owned();
            broken.push((env::VALUE_PER_PARTICIPANT_KRW, rule));
        }
        broken
    }
}

/// A whole, non-negative number of won.
fn krw() -> impl Parse<Output = i64> {
    parse::custom("a whole, non-negative number of won", |amount: &str| {
        amount
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| "expected a whole, non-negative number of won".to_owned())
    })
}

/// `cafe=7000,restaurant=15000` → category number → KRW; names in any case.
fn categories() -> impl Parse<Output = BTreeMap<i32, i64>> {
    parse::custom("category=krw pairs, e.g. cafe=7000,restaurant=15000", |value: &str| {
        let mut table = BTreeMap::new();
        for (name, amount) in parse::pairs(krw()).parse(value)? {
            let full = format!("BUSINESS_CATEGORY_{}", name.to_ascii_uppercase());
            let category = BusinessCategory::from_str_name(&full)
                .filter(|c| *c != BusinessCategory::Unspecified)
                .ok_or_else(|| {
                    format!(
                        "unknown business category {name:?}; use restaurant, cafe, bakery, bar, beauty, retail, \
                         fitness, education, healthcare, local_service or other"
                    )
                })?;
            table.insert(category as i32, amount);
        }
        Ok(table)
    })
}

/// The analytics service calls no external provider.
impl kem_kit::external::StandIns for AnalyticsConfig {}

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
