//! The `google.rpc` details every service's error → `tonic::Status` mapping attaches: an
//! `ErrorInfo` naming the service's domain and a stable reason, and the `BadRequest` that carries
//! field violations. A service keeps its own table of codes and reasons; the encoding lives here.
//! Pack the details into a status with [`kem_proto::status::with_details`].

use kem_proto::google::rpc::{BadRequest, ErrorInfo, bad_request};
use kem_proto::status::any;

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

#[cfg(test)]
mod tests {
    use prost::Message;

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
}
