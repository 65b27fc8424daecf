//! `Range: bytes=…` of a GET (RFC 9110 §14): one range is served as 206; several are answered
//! with the whole representation (allowed, and no crawler or player asks for several); a range
//! that cannot be satisfied is 416.

use http::{HeaderMap, HeaderValue, header};

/// What a request's `Range` asks of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranged {
    /// No usable `Range` (absent, unreadable, several ranges, another unit, or `If-Range`
    /// naming another version): the whole representation.
    Full,
    /// Bytes `start..=end`.
    Part {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// A syntactically valid range with no byte in the representation: 416.
    Unsatisfiable,
}

/// Longest `Range` value read; longer ones (never a real client's single range) are ignored.
const MAX_RANGE_HEADER: usize = 200;

/// What `headers` ask of a representation of `len` bytes tagged `etag`.
pub fn ranged(headers: &HeaderMap, len: u64, etag: Option<&HeaderValue>) -> Ranged {
    let mut values = headers.get_all(header::RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else { return Ranged::Full };
    // If-Range: the range only applies to the version the client holds (strong comparison).
    if let Some(if_range) = headers.get(header::IF_RANGE)
        && etag.is_none_or(|tag| tag.as_bytes() != if_range.as_bytes())
    {
        return Ranged::Full;
    }
    let Ok(value) = value.to_str() else { return Ranged::Full };
    if value.len() > MAX_RANGE_HEADER {
        return Ranged::Full;
    }
    parse(value, len)
}

fn parse(value: &str, len: u64) -> Ranged {
    let Some(spec) = value.trim().strip_prefix("bytes=") else { return Ranged::Full };
    if spec.contains(',') {
        return Ranged::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return Ranged::Full };
    let (first, last) = (first.trim(), last.trim());
    if !first.bytes().chain(last.bytes()).all(|b| b.is_ascii_digit()) {
        return Ranged::Full;
    }
    // Digits only from here; a number past u64 is larger than anything served.
    let number = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
    match (first.is_empty(), last.is_empty()) {
        (true, true) => Ranged::Full,
        // `bytes=-N`: the last N bytes.
        (true, false) => {
            let suffix = number(last);
            if suffix == 0 || len == 0 {
                return Ranged::Unsatisfiable;
            }
            Ranged::Part { start: len.saturating_sub(suffix), end: len - 1 }
        }
        // `bytes=A-` and `bytes=A-B` (B past the end is cut to the end).
        (false, open) => {
            let start = number(first);
            let end = if open { u64::MAX } else { number(last) };
            if end < start {
                return Ranged::Full;
            }
            if start >= len {
                return Ranged::Unsatisfiable;
            }
            Ranged::Part { start, end: end.min(len - 1) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(range: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(range).expect("value"));
        headers
    }

    #[test]
    fn single_ranges_are_parts_and_the_rest_is_full_or_unsatisfiable() {
        let part = |start, end| Ranged::Part { start, end };
        for (range, expected) in [
            ("bytes=0-0", part(0, 0)),
            ("bytes=0-99", part(0, 99)),
            ("bytes=10-", part(10, 99)),
            ("bytes=90-1000", part(90, 99)),
            ("bytes=-10", part(90, 99)),
            ("bytes=-1000", part(0, 99)),
            (" bytes= 5 - 6 ", part(5, 6)),
            ("bytes=100-", Ranged::Unsatisfiable),
            ("bytes=100-200", Ranged::Unsatisfiable),
            ("bytes=-0", Ranged::Unsatisfiable),
            ("bytes=99999999999999999999999-", Ranged::Unsatisfiable),
            ("bytes=5-1", Ranged::Full),
            ("bytes=0-1,5-6", Ranged::Full),
            ("bytes=-", Ranged::Full),
            ("bytes=a-b", Ranged::Full),
            ("bytes=+1-2", Ranged::Full),
            ("items=0-1", Ranged::Full),
            ("bytes 0-1", Ranged::Full),
            ("", Ranged::Full),
        ] {
            assert_eq!(ranged(&with(range), 100, None), expected, "{range:?}");
        }
        assert_eq!(ranged(&with("bytes=-5"), 0, None), Ranged::Unsatisfiable, "nothing to serve");
        assert_eq!(ranged(&with(&format!("bytes=0-{}", "9".repeat(300))), 100, None), Ranged::Full, "over-long");
        assert_eq!(ranged(&HeaderMap::new(), 100, None), Ranged::Full);
        let mut two = with("bytes=0-1");
        two.append(header::RANGE, HeaderValue::from_static("bytes=2-3"));
        assert_eq!(ranged(&two, 100, None), Ranged::Full, "two Range headers");
    }

    #[test]
    fn if_range_applies_the_range_only_to_the_same_version() {
        let tag = HeaderValue::from_static("\"abc\"");
        let mut headers = with("bytes=0-9");
        headers.insert(header::IF_RANGE, tag.clone());
        assert_eq!(ranged(&headers, 100, Some(&tag)), Ranged::Part { start: 0, end: 9 });
        headers.insert(header::IF_RANGE, HeaderValue::from_static("\"old\""));
        assert_eq!(ranged(&headers, 100, Some(&tag)), Ranged::Full);
        headers.insert(header::IF_RANGE, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(ranged(&headers, 100, Some(&tag)), Ranged::Full, "a date never matches a content tag");
    }
}
