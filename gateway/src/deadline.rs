//! Request deadlines: a default per route, shortened by the client's `Grpc-Timeout` or
//! `X-Request-Timeout`, never beyond a cap; propagated to the backend as `grpc-timeout`.

use std::sync::OnceLock;
use std::time::Duration;

use http::HeaderMap;
use kem_mesh::deadline::encode_grpc_timeout;
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

/// Parses a gRPC timeout (`100m`, `5S`, `2H`: up to 8 digits and a unit).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Parses `X-Request-Timeout`: seconds (`1.5`) or with a unit (`250ms`, `2s`).
pub fn parse_request_timeout(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (number, scale) = if let Some(ms) = value.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = value.strip_suffix('s') {
        (s, 1.0)
    } else {
        (value, 1.0)
    };
    let seconds = number.trim().parse::<f64>().ok()? * scale;
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
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

    /// The deadline for a request with `headers`.
    pub fn for_request(&self, headers: &HeaderMap) -> Duration {
        let asked =
            headers.get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout).or_else(|| {
                headers.get("x-request-timeout").and_then(|v| v.to_str().ok()).and_then(parse_request_timeout)
            });
        asked.unwrap_or(self.default).min(self.max)
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
    fn grpc_timeouts_parse_every_unit() {
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("123456789m"), None, "at most 8 digits");
        assert_eq!(parse_grpc_timeout("10x"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
    }

    #[test]
    fn request_timeouts_and_the_cap() {
        assert_eq!(parse_request_timeout("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_request_timeout("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_request_timeout("-1"), None);
        let policy = DeadlinePolicy::default();
        let mut headers = HeaderMap::new();
        assert_eq!(policy.for_request(&headers), Duration::from_secs(10));
        headers.insert("grpc-timeout", http::HeaderValue::from_static("1H"));
        assert_eq!(policy.for_request(&headers), Duration::from_secs(60), "capped");
        headers.insert("grpc-timeout", http::HeaderValue::from_static("100m"));
        assert_eq!(policy.for_request(&headers), Duration::from_millis(100));
    }
}
