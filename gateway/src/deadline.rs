//! Request deadlines: a default per route, shortened by the client's `Grpc-Timeout` or
//! `X-Request-Timeout`, never beyond a cap; propagated to the backend as `grpc-timeout`.

use std::sync::OnceLock;
use std::time::Duration;

use http::HeaderMap;
use kem_mesh::deadline::{GRPC_TIMEOUT, encode_grpc_timeout, parse_grpc_timeout};
use tonic::metadata::{Ascii, MetadataValue};

/// Deadline policy of the edge.
#[derive(Debug, Clone)]
pub struct DeadlinePolicy {
    /// Used when the client sets none.
    pub default: Duration,
    /// Upper bound on what a client may ask for.
    pub max: Duration,
    /// The `grpc-timeout` value of the last default seen: nearly every request uses it.
    encoded_default: OnceLock<(Duration, MetadataValue<Ascii>)>,
}

impl Default for DeadlinePolicy {
    fn default() -> Self {
        DeadlinePolicy::new(Duration::from_secs(10), Duration::from_secs(60))
    }
}

/// A deadline header the edge cannot read: the client asked for something, and guessing what
/// would either cut its request short or let it hold resources far longer than it meant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{header} must be {expected}")]
pub struct DeadlineError {
    /// The header, as clients spell it.
    pub header: &'static str,
    /// What a valid value looks like.
    pub expected: &'static str,
}

/// Parses `X-Request-Timeout`: positive seconds (`1.5`) or with a unit (`250ms`, `2s`). Values
/// beyond what a `Duration` holds are `Duration::MAX` (the policy caps them anyway); zero,
/// negative, non-finite and malformed values are `None`.
pub fn parse_request_timeout(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (number, scale) = if let Some(ms) = value.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = value.strip_suffix('s') {
        (s, 1.0)
    } else {
        (value, 1.0)
    };
    let number = number.trim();
    // Plain decimal numbers only: `f64`'s parser also takes `inf`, `NaN` and exponents.
    if number.is_empty() || number.len() > 32 || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let seconds = number.parse::<f64>().ok()? * scale;
    if !seconds.is_finite() || seconds <= 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

impl DeadlinePolicy {
    /// Requests get `default` unless they ask for less (or for more, up to `max`).
    pub fn new(default: Duration, max: Duration) -> DeadlinePolicy {
        DeadlinePolicy { default, max, encoded_default: OnceLock::new() }
    }

    /// `deadline` as `grpc-timeout` metadata; the default's value is encoded once.
    pub fn grpc_timeout_value(&self, deadline: Duration) -> MetadataValue<Ascii> {
        // The mesh's encoding (finest unit that fits in 8 digits) is always a valid value.
        let encode = |deadline| {
            MetadataValue::try_from(encode_grpc_timeout(deadline).as_bytes())
                .unwrap_or(MetadataValue::from_static("1n"))
        };
        if deadline != self.default {
            return encode(deadline);
        }
        let (for_deadline, value) = self.encoded_default.get_or_init(|| (self.default, encode(self.default)));
        if *for_deadline == deadline { value.clone() } else { encode(deadline) }
    }

    /// The deadline for a request with `headers`: `Grpc-Timeout` (gRPC's format) or
    /// `X-Request-Timeout`, capped at `max`; the default without either. A header that is present
    /// but unreadable is an error, not silently the default.
    pub fn for_request(&self, headers: &HeaderMap) -> Result<Duration, DeadlineError> {
        let asked = if let Some(value) = headers.get(GRPC_TIMEOUT) {
            Some(parse_grpc_timeout(value).ok_or(DeadlineError {
                header: "Grpc-Timeout",
                expected: "1 to 8 digits and a unit (H, M, S, m, u, n), such as 500m",
            })?)
        } else if let Some(value) = headers.get("x-request-timeout") {
            Some(value.to_str().ok().and_then(parse_request_timeout).ok_or(DeadlineError {
                header: "X-Request-Timeout",
                expected: "a positive number of seconds (1.5) or with a unit (250ms, 2s)",
            })?)
        } else {
            None
        };
        Ok(asked.unwrap_or(self.default).min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_deadline_is_encoded_once_and_others_on_demand() {
        let mut policy = DeadlinePolicy::default();
        assert_eq!(policy.grpc_timeout_value(Duration::from_secs(10)), "10000000u");
        assert_eq!(policy.grpc_timeout_value(Duration::from_secs(10)), "10000000u");
        assert_eq!(policy.grpc_timeout_value(Duration::from_millis(250)), "250000u");
        // A changed default is not served from the old encoding.
        policy.default = Duration::from_secs(20);
        assert_eq!(policy.grpc_timeout_value(Duration::from_secs(20)), "20000000u");
    }

    #[test]
    fn request_timeouts_and_the_cap() {
        assert_eq!(parse_request_timeout("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_request_timeout("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_request_timeout("2s"), Some(Duration::from_secs(2)));
        for bad in ["-1", "0", "0ms", "", "ms", "NaN", "inf", "1e3", "abc", "1.5.5x", "+1"] {
            assert_eq!(parse_request_timeout(bad), None, "{bad:?}");
        }
        let policy = DeadlinePolicy::default();
        let mut headers = HeaderMap::new();
        assert_eq!(policy.for_request(&headers), Ok(Duration::from_secs(10)));
        headers.insert("grpc-timeout", http::HeaderValue::from_static("1H"));
        assert_eq!(policy.for_request(&headers), Ok(Duration::from_secs(60)), "capped");
        headers.insert("grpc-timeout", http::HeaderValue::from_static("100m"));
        assert_eq!(policy.for_request(&headers), Ok(Duration::from_millis(100)));
        headers.insert("grpc-timeout", http::HeaderValue::from_static("123456789m"));
        assert_eq!(policy.for_request(&headers).map_err(|e| e.header), Err("Grpc-Timeout"));
    }

    /// What broke the edge: seconds beyond `Duration`'s range (`Duration::from_secs_f64` panics).
    #[test]
    fn enormous_timeouts_are_capped_not_a_panic() {
        let policy = DeadlinePolicy::default();
        for huge in ["1e20", "18446744073709551616", "1e23ms", "99999999999999999999999999999999"] {
            let mut headers = HeaderMap::new();
            headers.insert("x-request-timeout", http::HeaderValue::from_static(huge));
            let outcome = policy.for_request(&headers);
            assert!(outcome == Ok(Duration::from_secs(60)) || outcome.is_err(), "{huge}: {outcome:?}");
        }
        let mut headers = HeaderMap::new();
        headers.insert("x-request-timeout", http::HeaderValue::from_static("18446744073709551616"));
        assert_eq!(policy.for_request(&headers), Ok(Duration::from_secs(60)));
    }

    proptest::proptest! {
        /// Every header value is an answer: a deadline within the cap, or an error.
        #[test]
        fn any_timeout_header_is_total(value in "\\PC{0,40}", grpc in proptest::bool::ANY) {
            let policy = DeadlinePolicy::default();
            let mut headers = HeaderMap::new();
            if let Ok(value) = http::HeaderValue::from_str(&value) {
                headers.insert(if grpc { "grpc-timeout" } else { "x-request-timeout" }, value);
            }
            if let Ok(deadline) = policy.for_request(&headers) {
                proptest::prop_assert!(deadline <= policy.max && !deadline.is_zero() || deadline.is_zero());
            }
        }
    }
}
