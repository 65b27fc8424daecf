//! What a service configures per dependency: thresholds, window, open duration, probes.

use std::time::Duration;

/// The thresholds of one [`CircuitBreaker`](super::CircuitBreaker), chosen per dependency.
///
/// Timeouts are not here: they belong to the client of the dependency, which reports a timed-out
/// call as a failure. Build one with struct-update syntax:
///
/// ```
/// # use std::time::Duration;
/// # use kem_mesh::breaker::BreakerConfig;
/// // NTS: open as soon as 5% of the calls of the last 30 s failed (at least 20 calls seen).
/// let nts = BreakerConfig { failure_rate_threshold: 0.05, minimum_calls: 20, ..BreakerConfig::default() };
/// assert!(nts.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Failure rate (failures / calls, in `(0, 1]`) over the window at which the breaker opens.
    pub failure_rate_threshold: f64,
    /// Calls the window must hold before the breaker may open: one failure out of two calls is
    /// not a 50% outage.
    pub minimum_calls: u32,
    /// How far back the failure rate looks.
    pub window: Duration,
    /// Into how many buckets the window is cut; it slides one bucket at a time, so old
    /// outcomes age out with a granularity of `window / window_buckets`.
    pub window_buckets: u32,
    /// How long an open breaker rejects every call before it lets probes through.
    pub open_duration: Duration,
    /// Probe calls admitted while half-open; all must succeed to close the breaker, one failure
    /// re-opens it.
    pub half_open_probes: u32,
}

impl Default for BreakerConfig {
    /// 50% failures over 30 s (10 buckets of 3 s) with at least 10 calls; open for 15 s; 3 probes.
    fn default() -> Self {
        BreakerConfig {
            failure_rate_threshold: 0.5,
            minimum_calls: 10,
            window: Duration::from_secs(30),
            window_buckets: 10,
            open_duration: Duration::from_secs(15),
            half_open_probes: 3,
        }
    }
}

/// The smallest bucket: below this the window would be dominated by clock granularity.
const MIN_BUCKET: Duration = Duration::from_millis(1);

/// The most buckets a window may have (each record sums them).
const MAX_BUCKETS: u32 = 1_000;

impl BreakerConfig {
    /// Checks that the values make sense, naming the first that does not.
    pub fn validate(&self) -> Result<(), BreakerConfigError> {
        let invalid = |field: &'static str, reason: String| Err(BreakerConfigError { field, reason });
        let rate = self.failure_rate_threshold;
        if !(rate > 0.0 && rate <= 1.0) {
            return invalid("failure_rate_threshold", format!("{rate} is not in (0, 1]; 0.05 means 5% of calls"));
        }
        if self.minimum_calls == 0 {
            return invalid("minimum_calls", "must be at least 1".to_owned());
        }
        if self.window_buckets == 0 || self.window_buckets > MAX_BUCKETS {
            return invalid("window_buckets", format!("{} is not in 1..={MAX_BUCKETS}", self.window_buckets));
        }
        if self.window / self.window_buckets < MIN_BUCKET {
            return invalid(
                "window",
                format!(
                    "{:?} cut into {} buckets gives buckets under {MIN_BUCKET:?}",
                    self.window, self.window_buckets
                ),
            );
        }
        if self.open_duration.is_zero() {
            return invalid("open_duration", "must be positive".to_owned());
        }
        if self.half_open_probes == 0 {
            return invalid("half_open_probes", "must be at least 1".to_owned());
        }
        Ok(())
    }
}

/// A [`BreakerConfig`] value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid circuit breaker configuration: {field} {reason}")]
pub struct BreakerConfigError {
    /// The offending field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_named() {
        assert_eq!(BreakerConfig::default().validate(), Ok(()));
        let field = |c: BreakerConfig| c.validate().expect_err("invalid").field;
        let d = BreakerConfig::default;
        assert_eq!(field(BreakerConfig { failure_rate_threshold: 0.0, ..d() }), "failure_rate_threshold");
        assert_eq!(field(BreakerConfig { failure_rate_threshold: f64::NAN, ..d() }), "failure_rate_threshold");
        assert_eq!(field(BreakerConfig { failure_rate_threshold: 1.5, ..d() }), "failure_rate_threshold");
        assert_eq!(field(BreakerConfig { minimum_calls: 0, ..d() }), "minimum_calls");
        assert_eq!(field(BreakerConfig { window_buckets: 0, ..d() }), "window_buckets");
        assert_eq!(field(BreakerConfig { window: Duration::from_micros(5), ..d() }), "window");
        assert_eq!(field(BreakerConfig { open_duration: Duration::ZERO, ..d() }), "open_duration");
        assert_eq!(field(BreakerConfig { half_open_probes: 0, ..d() }), "half_open_probes");
    }
}
