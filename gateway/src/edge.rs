//! The edge handler: every API request goes through the same pipeline, assembled here in one
//! readable place:
//!
//! request id → route lookup (404/405) → client IP and per-IP limit → authentication for owner
//! routes (401) → per-route limit (429) → body limit (413) → idempotency replay → transcoding (400)
//! → deadline → backend call over the mesh (whose client retries idempotent methods) →
//! canonical JSON response (or the error as `google.rpc.Status`) → access log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::HeaderName;
use http::{HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use kem_proto::contract::Access;
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};

use crate::auth::Authenticate;
use crate::deadline::DeadlinePolicy;
use crate::errors::{bad_request, json_error, status_response};
use crate::idempotency::{IdempotencyStore, Replay};
use crate::protect::{EdgeLimiter, TrustedProxies, client_ip, rate_limit_headers, too_many_requests};
use crate::routes::{Lookup, Route, RouteTable};
use crate::transcode::{DynamicCodec, ResponseBody, build_request, write_response};
use crate::upstream::Upstreams;

/// Metadata carrying the verified end-user (owner) id to services; services trust it only from
/// the gateway's mesh identity (see `kem_mesh::authz`).
pub const OWNER_METADATA: &str = "x-kem-user-id";

/// Edge settings.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Deadlines.
    pub deadlines: DeadlinePolicy,
    /// Largest accepted request body.
    pub body_limit: usize,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            deadlines: DeadlinePolicy::default(),
            body_limit: 1024 * 1024,
            trusted_proxies: TrustedProxies::none(),
        }
    }
}

/// Everything the pipeline needs, shared by all requests.
pub struct Edge {
    /// Routes from the descriptors.
    pub routes: RouteTable,
    /// Backends.
    pub upstreams: Upstreams,
    /// End-user authentication.
    pub auth: Arc<dyn Authenticate>,
    /// Rate limits.
    pub limiter: EdgeLimiter,
    /// Idempotency-Key replay store.
    pub idempotency: IdempotencyStore,
    /// Settings.
    pub config: EdgeConfig,
}

/// The pattern name rate limits are keyed by: `POST /api/v1/events/{id}/participants`.
pub fn route_name(route: &Route) -> &str {
    &route.limit_name
}

/// `X-Request-Id`, in the response and in the metadata of the backend call.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request's id: the client's `X-Request-Id` when it is sane (1–128 visible ASCII characters),
/// else 32 random hex digits. Held as shared bytes, so the response header and the backend
/// metadata reuse one buffer.
#[derive(Debug, Clone)]
pub struct RequestId(Bytes);

impl RequestId {
    /// The client's id from `headers`, or a fresh one.
    pub fn from_headers(headers: &http::HeaderMap) -> RequestId {
        let given = headers
            .get(&REQUEST_ID)
            .map(HeaderValue::as_bytes)
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.iter().all(u8::is_ascii_graphic));
        match given {
            Some(bytes) => RequestId(Bytes::copy_from_slice(bytes)),
            None => RequestId::random(),
        }
    }

    fn random() -> RequestId {
        use rand::Rng;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let random: [u8; 16] = rand::rng().random();
        let mut id = Vec::with_capacity(32);
        for b in random {
            id.extend([HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
        RequestId(Bytes::from(id))
    }

    /// The id as text (always visible ASCII).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("-")
    }

    /// The id as a header value (no copy).
    pub fn header_value(&self) -> HeaderValue {
        HeaderValue::from_maybe_shared(self.0.clone()).unwrap_or(HeaderValue::from_static("-"))
    }

    /// The id as gRPC metadata, marked sensitive: HPACK then never indexes it, so a value that
    /// is new on every call does not churn the connection's header table (evicting the headers
    /// that do repeat) on both ends.
    fn metadata_value(&self) -> Option<MetadataValue<Ascii>> {
        let mut value = MetadataValue::try_from(self.0.clone()).ok()?;
        value.set_sensitive(true);
        Some(value)
    }
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Runs one API request from `peer` through the pipeline.
pub async fn handle(edge: &Edge, peer: SocketAddr, request: Request) -> Response {
    let started = tokio::time::Instant::now();
    let (parts, body) = request.into_parts();
    let rid = RequestId::from_headers(&parts.headers);
    let path = parts.uri.path();
    let mut owner: Option<Arc<str>> = None;
    let mut route_for_log = None;
    let mut limit_decision = None;
    let mut response = async {
        let (route, captures) = match edge.routes.lookup(&parts.method, path) {
            Lookup::Found(route, captures) => (route, captures),
            Lookup::NotFound => {
                return json_error(
                    StatusCode::NOT_FOUND,
                    Code::NotFound,
                    &format!("no route for {path}"),
                    vec![],
                    rid.as_str(),
                );
            }
            Lookup::MethodNotAllowed(allowed) => {
                let mut response = json_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    Code::Unimplemented,
                    &format!("{} is not allowed on {path}", parts.method),
                    vec![],
                    rid.as_str(),
                );
                let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
                if let Ok(value) = HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(header::ALLOW, value);
                }
                return response;
            }
        };
        route_for_log = Some(route.grpc_path());
        let client = client_ip(peer, &parts.headers, &edge.config.trusted_proxies);

        // Authentication before the per-route limit, so owners are counted per owner.
        if route.access == Access::Owner {
            let Some(token) = bearer(&parts.headers) else {
                return unauthorized("an access token is required (Authorization: Bearer <token>)", rid.as_str());
            };
            let verdict = match edge.auth.authenticate_now(token) {
                Some(verdict) => verdict,
                None => edge.auth.authenticate(token).await,
            };
            match verdict {
                Ok(subject) => owner = Some(subject),
                Err(reason) => return unauthorized(&reason, rid.as_str()),
            }
        }

        let decision = edge.limiter.check(route_name(route), client, owner.as_deref(), tokio::time::Instant::now());
        limit_decision = Some(decision);
        if !decision.allowed {
            // `too_many_requests` already carries the google.rpc.Status body (with RetryInfo)
            // and the Retry-After / RateLimit-* headers.
            // (The request id is added below, as for every response.)
            let (parts, text) = too_many_requests(&decision).into_parts();
            return Response::from_parts(parts, Body::from(text));
        }

        let body = match http_body_util::Limited::new(body, edge.config.body_limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Code::InvalidArgument,
                    &format!("the request body exceeds {} bytes", edge.config.body_limit),
                    vec![],
                    rid.as_str(),
                );
            }
        };

        // A replayed POST with the same Idempotency-Key gets the first answer.
        let idempotency_key = (parts.method == Method::POST)
            .then(|| parts.headers.get("idempotency-key").and_then(|v| v.to_str().ok()))
            .flatten();
        let claim = match idempotency_key {
            Some(key) => {
                let scope = owner.as_deref().map_or_else(|| client.to_string(), str::to_owned);
                match edge.idempotency.begin(&scope, route_name(route), key, &body).await {
                    Replay::Stored(stored) => return stored.into_response(rid.as_str()),
                    Replay::InProgress => {
                        return json_error(
                            StatusCode::CONFLICT,
                            Code::Aborted,
                            "a request with this Idempotency-Key is still in progress; retry shortly",
                            vec![],
                            rid.as_str(),
                        );
                    }
                    Replay::Mismatch => {
                        return json_error(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            Code::InvalidArgument,
                            "this Idempotency-Key was used with a different request body",
                            vec![],
                            rid.as_str(),
                        );
                    }
                    Replay::Proceed(claim) => Some(claim),
                }
            }
            None => None,
        };

        let query = parts.uri.query();
        let message = match build_request(route, &captures, query, &body) {
            Ok(message) => message,
            Err(error) => return bad_request(&error.field, &error.description, rid.as_str()),
        };
        let deadline = edge.config.deadlines.for_request(&parts.headers);
        let pretty = query.is_some_and(|q| q.split('&').any(|p| p == "pretty" || p == "pretty=true"));
        let response = call(edge, route, message, deadline, owner.as_deref(), &rid, pretty).await;
        if let Some(claim) = claim { edge.idempotency.finish(claim, response).await } else { response.into_response() }
    }
    .await;

    response.headers_mut().entry(REQUEST_ID).or_insert_with(|| rid.header_value());
    if let Some(decision) = limit_decision.filter(|d| d.allowed) {
        rate_limit_headers(&decision, response.headers_mut());
    }
    if parts.method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    let duration = started.elapsed();
    crate::access_log::record(&crate::access_log::AccessRecord {
        request_id: rid.as_str(),
        method: parts.method.as_str(),
        path,
        rpc: route_for_log,
        owner: owner.as_deref(),
        status: response.status().as_u16(),
        duration,
    });
    let route = route_for_log.unwrap_or("unmatched");
    kem_mesh::telemetry::Registry::global().edge_request(route, response.status().as_u16(), duration);
    response
}

fn unauthorized(reason: &str, rid: &str) -> Response {
    let mut response = json_error(StatusCode::UNAUTHORIZED, Code::Unauthenticated, reason, vec![], rid);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"kem\""));
    response
}

/// An HTTP response that can also be captured for idempotent replay.
pub struct EdgeResponse(pub Response);

impl IntoResponse for EdgeResponse {
    fn into_response(self) -> Response {
        self.0
    }
}

async fn call(
    edge: &Edge,
    route: &Route,
    message: prost_reflect::DynamicMessage,
    deadline: Duration,
    owner: Option<&str>,
    rid: &RequestId,
    pretty: bool,
) -> EdgeResponse {
    let Some(channel) = edge.upstreams.get(route.service()) else {
        return EdgeResponse(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            Code::Unavailable,
            "the service is not available",
            vec![],
            rid.as_str(),
        ));
    };
    let path = route.grpc_path_and_query().clone();
    // One attempt here: retries of idempotent methods, with their budget and endpoint choice,
    // belong to the mesh client behind the upstream (`kem_mesh::client::BalancedChannel`).
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("grpc-timeout", edge.config.deadlines.grpc_timeout_value(deadline));
    if let Some(owner) = owner.and_then(|o| o.parse().ok()) {
        request.metadata_mut().insert(OWNER_METADATA, owner);
    }
    if let Some(value) = rid.metadata_value() {
        request.metadata_mut().insert("x-request-id", value);
    }
    let mut grpc = tonic::client::Grpc::new(channel);
    let outcome = async {
        grpc.ready().await.map_err(|e| tonic::Status::from_error(Box::new(e)))?;
        grpc.unary(request, path, DynamicCodec::new(route.rpc.output())).await
    };
    let last = match tokio::time::timeout(deadline, outcome).await {
        Ok(Ok(response)) => {
            return match write_response(route, response.get_ref(), pretty) {
                Ok(ResponseBody::Json(bytes)) => EdgeResponse(json_ok(bytes)),
                Ok(ResponseBody::Raw { content_type, data }) => {
                    let mut response = Response::new(Body::from(data));
                    if let Ok(value) = HeaderValue::from_str(&content_type) {
                        response.headers_mut().insert(header::CONTENT_TYPE, value);
                    }
                    EdgeResponse(response)
                }
                Err(e) => EdgeResponse(json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Code::Internal,
                    &format!("cannot encode the response: {e}"),
                    vec![],
                    rid.as_str(),
                )),
            };
        }
        Ok(Err(status)) => Some(status),
        Err(_) => None,
    };
    let status = last.unwrap_or_else(|| tonic::Status::deadline_exceeded("the request deadline was exceeded"));
    EdgeResponse(status_response(&status, rid.as_str()))
}

fn json_ok(bytes: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(bytes));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
