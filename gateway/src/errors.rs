//! gRPC status → HTTP response, per the standard mapping, with a JSON `google.rpc.Status` body.
//!
//! Details carried in `grpc-status-details-bin` (`ErrorInfo`, `BadRequest`, ...) are rendered as
//! canonical JSON with their `@type`. Messages from the backend pass through; transport-level
//! failures are replaced by a generic message so no internal address or stack ever leaks.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use prost_reflect::{DynamicMessage, SerializeOptions};
use serde_json::{Value, json};
use tonic::Code;

/// The HTTP status for a gRPC code (DESIGN.md "Gateway").
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // 499 Client Closed Request (nginx); not a registered constant.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn details_json(status: &tonic::Status) -> Vec<Value> {
    let Some(decoded) = kem_proto::status::details(status) else { return Vec::new() };
    let pool = kem_proto::descriptor_pool();
    decoded
        .details
        .iter()
        .filter_map(|any| {
            let type_name = any.type_url.rsplit('/').next()?;
            let desc = pool.get_message_by_name(type_name)?;
            let message = DynamicMessage::decode(desc, any.value.as_slice()).ok()?;
            let mut value = serde_json::to_value(SerializeWrapper(&message)).ok()?;
            if let Value::Object(map) = &mut value {
                map.insert("@type".to_owned(), Value::String(any.type_url.clone()));
            }
            Some(value)
        })
        .collect()
}

struct SerializeWrapper<'a>(&'a DynamicMessage);

impl serde::Serialize for SerializeWrapper<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_with_options(serializer, &SerializeOptions::new())
    }
}

/// At most `max` characters of caller input, for quoting it in a message: an error must never
/// carry a client's megabyte back (or into a log line).
pub fn quote(input: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match input.char_indices().nth(max) {
        None => std::borrow::Cow::Borrowed(input),
        Some((cut, _)) => std::borrow::Cow::Owned(format!("{}…", &input[..cut])),
    }
}

/// Whether a status came from the transport rather than from a backend handler.
fn is_transport_failure(status: &tonic::Status) -> bool {
    // Handler statuses carry no source; transport errors (connect, TLS, h2) do.
    std::error::Error::source(status).is_some()
}

/// Renders a gRPC status as an HTTP error response. A `RetryInfo` detail becomes the
/// `Retry-After` header (whole seconds, rounded up): the one place backend statuses get it, so
/// every 429 and 503 that says when to come back says it in HTTP too.
pub fn status_response(status: &tonic::Status, request_id: &str) -> Response {
    let mut response = render_status(status, request_id);
    if let Some(delay) = retry_delay(status) {
        let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    }
    response
}

/// The `RetryInfo` delay of a status, if it carries one (and it is sane).
fn retry_delay(status: &tonic::Status) -> Option<std::time::Duration> {
    let delay = kem_kit::status::retry_delay(status)?;
    // A day at most: a longer wait is a backend's mistake, not advice for a client.
    Some(std::time::Duration::new(delay.as_secs().min(86_400), delay.subsec_nanos()))
}

/// The JSON `RetryInfo` detail of a `google.rpc.Status` body the edge writes itself (rate limits,
/// load shedding), asking to come back in `seconds`.
pub fn retry_info_json(seconds: u64) -> Value {
    json!({ "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{seconds}s") })
}

fn render_status(status: &tonic::Status, request_id: &str) -> Response {
    let code = status.code();
    // A response the edge could not read (its headers over the limit, a reset stream) fails
    // that request only: the backend misbehaved, it is not unavailable.
    if is_transport_failure(status)
        && std::error::Error::source(status).map(kem_mesh::client::classify) == Some(kem_mesh::client::Failure::Stream)
    {
        return json_error(
            StatusCode::BAD_GATEWAY,
            Code::Internal,
            "the service sent a response the edge could not read",
            vec![],
            request_id,
        );
    }
    let message = if is_transport_failure(status) {
        match code {
            Code::DeadlineExceeded => "the request deadline was exceeded".to_owned(),
            Code::Cancelled => "the request was cancelled".to_owned(),
            _ => "the service is temporarily unavailable; retry later".to_owned(),
        }
    } else {
        status.message().to_owned()
    };
    // Transport failures surface as UNAVAILABLE (503) whatever code tonic chose for them.
    let code = if is_transport_failure(status) && !matches!(code, Code::DeadlineExceeded | Code::Cancelled) {
        Code::Unavailable
    } else {
        code
    };
    json_error(http_status(code), code, &message, details_json(status), request_id)
}

/// A JSON `google.rpc.Status` error response.
pub fn json_error(http: StatusCode, code: Code, message: &str, details: Vec<Value>, request_id: &str) -> Response {
    let body = json!({ "code": code as i32, "message": message, "details": details });
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = http;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// A 400 with one `BadRequest` field violation. Parsers' descriptions may quote the input they
/// choked on; both the field and the description are cut to a readable length.
pub fn bad_request(field: &str, description: &str, request_id: &str) -> Response {
    let (field, description) = (quote(field, 128), quote(description, 256));
    let (field, description) = (field.as_ref(), description.as_ref());
    let message = format!("invalid request: {field}: {description}");
    let tonic_status = kem_proto::status::bad_request(&message, &[(field, description)]);
    status_response(&tonic_status, request_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn every_code_maps_per_the_design() {
        let table = [
            (Code::InvalidArgument, 400),
            (Code::FailedPrecondition, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::ResourceExhausted, 429),
            (Code::Cancelled, 499),
            (Code::Unimplemented, 501),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 500),
            (Code::Unknown, 500),
            (Code::DataLoss, 500),
        ];
        for (code, http) in table {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }

    #[tokio::test]
    async fn details_are_rendered_with_their_type() {
        let status = kem_proto::status::error_info(
            Code::FailedPrecondition,
            "event is PUBLISHED",
            "kem.event",
            "INVALID_TRANSITION",
            &[("status", "PUBLISHED")],
        );
        let response = status_response(&status, "req-1");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = response.into_body().collect().await.expect("body").to_bytes();
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["code"], 9);
        assert_eq!(json["message"], "event is PUBLISHED");
        assert_eq!(json["details"][0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
        assert_eq!(json["details"][0]["reason"], "INVALID_TRANSITION");
        assert_eq!(json["details"][0]["metadata"]["status"], "PUBLISHED");
    }

    #[tokio::test]
    async fn bad_request_names_the_field() {
        let response = bad_request("event.title", "expected a string", "r");
        let body = response.into_body().collect().await.expect("body").to_bytes();
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["details"][0]["fieldViolations"][0]["field"], "event.title");
    }
}
