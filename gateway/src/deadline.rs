//! Request deadlines: a default per route, shortened by the client's `Grpc-Timeout` or
//! `X-Request-Timeout`, never beyond a cap; propagated to the backend as `grpc-timeout`.

use std::time::Duration;

use http::HeaderMap;

/// Deadline policy of the edge.
#[derive(Debug, Clone)]
pub struct DeadlinePolicy {
    /// Used when the client sets none.
    pub default: Duration,
    /// Upper bound on what a client may ask for.
    pub max: Duration,
}

impl Default for DeadlinePolicy {
    fn default() -> Self {
        DeadlinePolicy { default: Duration::from_secs(10), max: Duration::from_secs(60) }
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
