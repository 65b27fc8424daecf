//! The `google.rpc` details every service's error → `tonic::Status` mapping attaches: an
//! `ErrorInfo` naming the service's domain and a stable reason, the `BadRequest` that carries
//! field violations, and the `RetryInfo` that says when to come back. A service keeps its own
//! table of codes and reasons; the encoding lives here. Pack the details into a status with
//! [`kem_proto::status::with_details`]; read a `RetryInfo` back with [`retry_delay`].
//!
//! ```
//! use std::time::Duration;
//! use kem_kit::status::{error_info, retry_delay, retry_info};
//!
//! let status = kem_proto::status::with_details(
//!     tonic::Code::Unavailable,
//!     "retry shortly",
//!     vec![error_info("kem.example", "STORAGE_UNAVAILABLE", &[]), retry_info(Duration::from_secs(1))],
//! );
//! assert_eq!(retry_delay(&status), Some(Duration::from_secs(1)));
//! ```

use std::time::Duration;

use kem_proto::google::rpc::{BadRequest, ErrorInfo, RetryInfo, bad_request};
use kem_proto::status::any;
use prost::Message;

/// `type_url` suffix of a `RetryInfo` detail.
const RETRY_INFO: &str = "/google.rpc.RetryInfo";

/// An `ErrorInfo` detail: `reason` in `domain` (e.g. `kem.user`), with `metadata`.
pub fn error_info(domain: &str, reason: &str, metadata: &[(&str, String)]) -> prost_types::Any {
    let info = ErrorInfo {
        reason: reason.to_owned(),
        domain: domain.to_owned(),
        metadata: metadata.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect(),
    };
    any("google.rpc.ErrorInfo", &info)
}

/// A `BadRequest` detail with one field violation per `(field, description)`, in order.
pub fn bad_request(violations: impl IntoIterator<Item = (String, String)>) -> prost_types::Any {
    let request = BadRequest {
        field_violations: violations
            .into_iter()
            .map(|(field, description)| bad_request::FieldViolation { field, description, ..Default::default() })
            .collect(),
    };
    any("google.rpc.BadRequest", &request)
}

/// A `RetryInfo` detail asking the caller to come back after `delay` (to the nanosecond; the
/// edge rounds it up to whole seconds for `Retry-After`).
pub fn retry_info(delay: Duration) -> prost_types::Any {
    let retry_delay = prost_types::Duration {
        seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
        // Below 10^9 by definition, so it always fits.
        nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
    };
    any("google.rpc.RetryInfo", &RetryInfo { retry_delay: Some(retry_delay) })
}

/// The delay of the `RetryInfo` detail of `status`, if it carries a well-formed one (a negative
/// or malformed delay is no advice).
pub fn retry_delay(status: &tonic::Status) -> Option<Duration> {
    retry_delay_in(&kem_proto::status::details(status)?.details)
}

/// The delay of the first `RetryInfo` among `details` (e.g. of a bare `google.rpc.Status`, a job's
/// failure), if it is well-formed.
pub fn retry_delay_in(details: &[prost_types::Any]) -> Option<Duration> {
    let detail = details.iter().find(|d| d.type_url.ends_with(RETRY_INFO))?;
    let delay = RetryInfo::decode(detail.value.as_slice()).ok()?.retry_delay?;
    let seconds = u64::try_from(delay.seconds).ok()?;
    let nanos = u32::try_from(delay.nanos).ok().filter(|n| *n < 1_000_000_000)?;
    Some(Duration::new(seconds, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_decode_as_the_google_rpc_messages() {
        let info = error_info("kem.test", "NOPE", &[("eventId", "e-1".to_owned())]);
        assert_eq!(info.type_url, "type.googleapis.com/google.rpc.ErrorInfo");
        let info = ErrorInfo::decode(info.value.as_slice()).expect("ErrorInfo");
        assert_eq!((info.domain.as_str(), info.reason.as_str()), ("kem.test", "NOPE"));
        assert_eq!(info.metadata.get("eventId").map(String::as_str), Some("e-1"));

        let request = bad_request([("b".to_owned(), "x".to_owned()), ("a".to_owned(), "y".to_owned())]);
        assert_eq!(request.type_url, "type.googleapis.com/google.rpc.BadRequest");
        let request = BadRequest::decode(request.value.as_slice()).expect("BadRequest");
        let fields: Vec<_> =
            request.field_violations.iter().map(|v| (v.field.as_str(), v.description.as_str())).collect();
        assert_eq!(fields, [("b", "x"), ("a", "y")]);
    }

    #[test]
    fn retry_info_carries_the_delay_to_the_nanosecond() {
        let detail = retry_info(Duration::from_millis(2_500));
        assert_eq!(detail.type_url, "type.googleapis.com/google.rpc.RetryInfo");
        let delay = RetryInfo::decode(detail.value.as_slice()).expect("RetryInfo").retry_delay.expect("delay");
        assert_eq!((delay.seconds, delay.nanos), (2, 500_000_000));
        // The encoding every service sent before this helper existed: whole seconds, no nanos.
        let whole = RetryInfo { retry_delay: Some(prost_types::Duration { seconds: 1, nanos: 0 }) };
        assert_eq!(retry_info(Duration::from_secs(1)).value, whole.encode_to_vec());
        let forever = RetryInfo::decode(retry_info(Duration::MAX).value.as_slice()).expect("RetryInfo");
        assert_eq!(forever.retry_delay.map(|d| d.seconds), Some(i64::MAX), "saturates");
    }

    #[test]
    fn retry_delay_reads_it_back_and_ignores_nonsense() {
        let status = |details| kem_proto::status::with_details(tonic::Code::Unavailable, "later", details);
        let delay = Duration::new(3, 250);
        let advised = status(vec![error_info("kem.test", "DOWN", &[]), retry_info(delay)]);
        assert_eq!(retry_delay(&advised), Some(delay));
        assert_eq!(retry_delay(&status(vec![error_info("kem.test", "DOWN", &[])])), None);
        assert_eq!(retry_delay(&tonic::Status::unavailable("no details")), None);
        for (seconds, nanos) in [(-1, 0), (1, -1), (1, 1_000_000_000)] {
            let bad = RetryInfo { retry_delay: Some(prost_types::Duration { seconds, nanos }) };
            let bad = status(vec![any("google.rpc.RetryInfo", &bad)]);
            assert_eq!(retry_delay(&bad), None, "{seconds}s {nanos}ns");
        }
        assert_eq!(retry_delay_in(&[retry_info(delay)]), Some(delay));
        assert_eq!(retry_delay_in(&[]), None);
    }
}
