//! The HTTP side of a rate-limit decision: `RateLimit-*` headers and the `429` response.
//!
//! Header names follow the IETF httpapi `RateLimit` header fields draft in its widely deployed
//! three-field form (`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` in seconds).

use std::time::Duration;

use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use super::limiter::Decision;

/// `RateLimit-Limit`: the burst quota.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left right now.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the whole quota is back.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// `google.rpc.Code.RESOURCE_EXHAUSTED`, the gRPC code HTTP 429 stands for.
const RESOURCE_EXHAUSTED: i32 = 8;

/// Whole seconds, rounded up: a client told "0" would retry before it is allowed to.
pub fn ceil_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

/// Sets the `RateLimit-*` headers (and `Retry-After` when denied) for `decision` on `headers`;
/// for every response of a rate-limited route.
pub fn rate_limit_headers(decision: &Decision, headers: &mut HeaderMap) {
    headers.insert(RATELIMIT_LIMIT, number(u64::from(decision.limit)));
    headers.insert(RATELIMIT_REMAINING, number(u64::from(decision.remaining)));
    headers.insert(RATELIMIT_RESET, number(ceil_seconds(decision.reset_after)));
    if let Some(retry_after) = decision.retry_after {
        headers.insert(RETRY_AFTER, number(ceil_seconds(retry_after).max(1)));
    }
}

/// Numbers below this come from a table built once.
const TABLED_NUMBERS: u64 = 1024;

/// `n` as a header value. Every response of a limited route carries three numbers, nearly always
/// small; a value from the table is a static string (cloned without allocating or counting
/// references), where formatting one allocates.
fn number(n: u64) -> HeaderValue {
    static TABLE: std::sync::OnceLock<Vec<HeaderValue>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        // One process-lifetime string holding every tabled number, sliced per value.
        let mut digits = String::new();
        let spans: Vec<(usize, usize)> = (0..TABLED_NUMBERS)
            .map(|n| {
                let start = digits.len();
                digits.push_str(&n.to_string());
                (start, digits.len())
            })
            .collect();
        let digits: &'static str = Box::leak(digits.into_boxed_str());
        spans.into_iter().map(|(start, end)| HeaderValue::from_static(&digits[start..end])).collect()
    });
    usize::try_from(n).ok().and_then(|i| table.get(i)).cloned().unwrap_or_else(|| HeaderValue::from(n))
}

/// The `429 Too Many Requests` response for a denied `decision`: `Retry-After`, `RateLimit-*`
/// and a JSON `google.rpc.Status` body (RESOURCE_EXHAUSTED with a `RetryInfo` detail), like every
/// other error the edge returns.
pub fn too_many_requests(decision: &Decision) -> Response<String> {
    let retry_secs = ceil_seconds(decision.retry_after.unwrap_or(decision.reset_after)).max(1);
    let body = serde_json::json!({
        "code": RESOURCE_EXHAUSTED,
        "message": format!("too many requests; retry after {retry_secs} s"),
        "details": [crate::errors::retry_info_json(retry_secs)],
    });
    let mut response = Response::new(body.to_string());
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    rate_limit_headers(decision, headers);
    headers.insert(RETRY_AFTER, HeaderValue::from(retry_secs));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        headers.get(name).map(|v| v.to_str().expect("ascii header"))
    }

    #[test]
    fn numbers_from_the_table_and_beyond_it_read_the_same() {
        for n in [0, 1, 9, 10, 199, TABLED_NUMBERS - 1, TABLED_NUMBERS, 1_000_000, u64::MAX] {
            assert_eq!(number(n).to_str().expect("ascii"), n.to_string());
        }
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_seconds(Duration::ZERO), 0);
        assert_eq!(ceil_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ceil_seconds(Duration::from_millis(1000)), 1);
        assert_eq!(ceil_seconds(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn allowed_responses_carry_the_ratelimit_headers_only() {
        let decision = Decision {
            allowed: true,
            limit: 200,
            remaining: 199,
            reset_after: Duration::from_millis(10),
            retry_after: None,
        };
        let mut headers = HeaderMap::new();
        rate_limit_headers(&decision, &mut headers);
        assert_eq!(header(&headers, "RateLimit-Limit"), Some("200"));
        assert_eq!(header(&headers, "RateLimit-Remaining"), Some("199"));
        assert_eq!(header(&headers, "RateLimit-Reset"), Some("1"));
        assert_eq!(header(&headers, "Retry-After"), None);
    }

    #[test]
    fn denied_requests_get_429_with_retry_after_and_a_status_body() {
        let decision = Decision {
            allowed: false,
            limit: 5,
            remaining: 0,
            reset_after: Duration::from_millis(30_000),
            retry_after: Some(Duration::from_millis(5_200)),
        };
        let response = too_many_requests(&decision);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let headers = response.headers();
        assert_eq!(header(headers, "Retry-After"), Some("6"));
        assert_eq!(header(headers, "RateLimit-Limit"), Some("5"));
        assert_eq!(header(headers, "RateLimit-Remaining"), Some("0"));
        assert_eq!(header(headers, "RateLimit-Reset"), Some("30"));
        assert_eq!(header(headers, "Content-Type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(response.body()).expect("json body");
        assert_eq!(body["code"], 8);
        assert_eq!(body["details"][0]["retryDelay"], "6s");
    }
}
