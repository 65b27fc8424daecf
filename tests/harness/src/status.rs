//! Reading rich gRPC errors in tests: the `ErrorInfo` / `BadRequest` details that
//! [`kem_proto::status`] packs into a `tonic::Status` (or a bare `google.rpc.Status`), and the
//! code a call failed with.

use kem_proto::google::rpc::{BadRequest, ErrorInfo, Status as RpcStatus};
use prost::Message;
use tonic::{Code, Status};

/// Asserts `result` failed with `code`, returning the status.
#[track_caller]
pub fn expect_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    match result {
        Err(status) if status.code() == code => status,
        other => panic!("expected {code:?}, got {other:?}"),
    }
}

/// The first detail of type `type_name` (e.g. `google.rpc.RetryInfo`) of a status, decoded.
pub fn detail<M: Message + Default>(status: &Status, type_name: &str) -> Option<M> {
    kem_proto::status::details(status)?
        .details
        .iter()
        .find(|d| d.type_url.ends_with(type_name))
        .and_then(|d| M::decode(d.value.as_slice()).ok())
}

/// `ErrorInfo.reason` of a status (empty without an `ErrorInfo`).
pub fn reason(status: &Status) -> String {
    kem_proto::status::error_info_of(status).map(|i| i.reason).unwrap_or_default()
}

/// `domain/reason` of a status's `ErrorInfo` (empty without one).
pub fn domain_reason(status: &Status) -> String {
    kem_proto::status::error_info_of(status).map(|i| format!("{}/{}", i.domain, i.reason)).unwrap_or_default()
}

/// `domain/reason` of the `ErrorInfo` of a bare `google.rpc.Status` (e.g. a job's FAILED outcome).
pub fn rpc_domain_reason(status: &RpcStatus) -> String {
    status
        .details
        .iter()
        .find(|d| d.type_url.ends_with("google.rpc.ErrorInfo"))
        .and_then(|d| ErrorInfo::decode(d.value.as_slice()).ok())
        .map(|i| format!("{}/{}", i.domain, i.reason))
        .unwrap_or_default()
}

/// `ErrorInfo.metadata[key]` of a status (empty when absent).
pub fn metadata(status: &Status, key: &str) -> String {
    kem_proto::status::error_info_of(status).and_then(|i| i.metadata.get(key).cloned()).unwrap_or_default()
}

/// The `BadRequest` field paths of a status, in order (empty without a `BadRequest`).
pub fn violations(status: &Status) -> Vec<String> {
    let Some(details) = kem_proto::status::details(status) else { return Vec::new() };
    details
        .details
        .iter()
        .filter(|d| d.type_url.ends_with("google.rpc.BadRequest"))
        .filter_map(|d| BadRequest::decode(d.value.as_slice()).ok())
        .flat_map(|b| b.field_violations.into_iter().map(|v| v.field))
        .collect()
}

/// The longest status message a service may send back when it quotes caller input: services
/// quote short excerpts ([`kem_kit::validate::excerpt`]), never the input itself.
pub const MESSAGE_MAX: usize = 512;

/// Asserts `status` does not echo caller input: a short message and short `ErrorInfo` metadata.
#[track_caller]
pub fn expect_no_echo(status: &Status) {
    assert!(status.message().len() <= MESSAGE_MAX, "message of {} bytes", status.message().len());
    if let Some(info) = kem_proto::status::error_info_of(status) {
        assert!(info.metadata.values().all(|v| v.len() <= 64), "{:?}", info.metadata);
    }
}

/// Asserts `result` failed with INVALID_ARGUMENT naming `field` among its `BadRequest`
/// violations, without echoing the input; returns the status.
#[track_caller]
pub fn expect_invalid_field<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) -> Status {
    let status = expect_code(result, Code::InvalidArgument);
    let fields = violations(&status);
    assert!(fields.iter().any(|f| f == field), "{field} not in {fields:?}");
    expect_no_echo(&status);
    status
}
