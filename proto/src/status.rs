//! Rich gRPC errors: `google.rpc.Status` with `ErrorInfo` / `BadRequest` details, carried in the
//! standard `grpc-status-details-bin` trailer so the gateway (and any gRPC client) can read them.

use prost::Message;

use crate::google::rpc::{BadRequest, ErrorInfo, Status, bad_request::FieldViolation};

/// `message` packed as a `google.protobuf.Any` detail named `type_name` (e.g.
/// `google.rpc.PreconditionFailure`).
pub fn any<M: Message>(type_name: &str, message: &M) -> prost_types::Any {
    prost_types::Any { type_url: format!("type.googleapis.com/{type_name}"), value: message.encode_to_vec() }
}

/// A status carrying several details at once (e.g. `ErrorInfo` plus `PreconditionFailure`).
pub fn with_details(code: tonic::Code, message: &str, details: Vec<prost_types::Any>) -> tonic::Status {
    let status = Status { code: code as i32, message: message.to_owned(), details };
    tonic::Status::with_details(code, message.to_owned(), status.encode_to_vec().into())
}

/// A status whose `ErrorInfo` names the failing domain (e.g. `kem.identity`) and a stable,
/// machine-readable reason (e.g. `BAD_TOKEN`), plus optional metadata.
pub fn error_info(
    code: tonic::Code,
    message: &str,
    domain: &str,
    reason: &str,
    metadata: &[(&str, &str)],
) -> tonic::Status {
    let info = ErrorInfo {
        reason: reason.to_owned(),
        domain: domain.to_owned(),
        metadata: metadata.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    };
    with_details(code, message, vec![any("google.rpc.ErrorInfo", &info)])
}

/// An INVALID_ARGUMENT status with one `BadRequest` field violation per `(field, description)`.
pub fn bad_request(message: &str, violations: &[(&str, &str)]) -> tonic::Status {
    let request = BadRequest {
        field_violations: violations
            .iter()
            .map(|(field, description)| FieldViolation {
                field: (*field).to_owned(),
                description: (*description).to_owned(),
                ..Default::default()
            })
            .collect(),
    };
    with_details(tonic::Code::InvalidArgument, message, vec![any("google.rpc.BadRequest", &request)])
}

/// Decodes the `google.rpc.Status` carried by a tonic status, if any.
pub fn details(status: &tonic::Status) -> Option<Status> {
    let bytes = status.details();
    if bytes.is_empty() { None } else { Status::decode(bytes).ok() }
}

/// The `ErrorInfo` detail of a status, if any.
pub fn error_info_of(status: &tonic::Status) -> Option<ErrorInfo> {
    details(status)?
        .details
        .iter()
        .find(|d| d.type_url.ends_with("google.rpc.ErrorInfo"))
        .and_then(|d| ErrorInfo::decode(d.value.as_slice()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_info_round_trips_through_the_status() {
        let status =
            error_info(tonic::Code::PermissionDenied, "no", "kem.identity", "IDENTITY_MISMATCH", &[("want", "x")]);
        assert_eq!(status.code(), tonic::Code::PermissionDenied);
        let info = error_info_of(&status).expect("info present");
        assert_eq!((info.domain.as_str(), info.reason.as_str()), ("kem.identity", "IDENTITY_MISMATCH"));
        assert_eq!(info.metadata.get("want").map(String::as_str), Some("x"));
    }

    #[test]
    fn bad_request_names_fields() {
        let status = bad_request("invalid", &[("business_number", "checksum digit is wrong")]);
        let decoded = details(&status).expect("details");
        let br = BadRequest::decode(decoded.details[0].value.as_slice()).expect("bad request");
        assert_eq!(br.field_violations[0].field, "business_number");
    }
}
