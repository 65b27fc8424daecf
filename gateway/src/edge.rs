//! The edge handler: every API request goes through the same pipeline, assembled here in one
//! readable place:
//!
//! request id → route lookup (404/405) → client IP and per-IP limit → authentication for owner
//! routes (401) → per-route limit (429) → admission control per backend service (503) → deadline
//! and idempotency-key headers (400) → body limit (413) → transcoding, path variables included
//! (400) → idempotency claim or replay → backend call over the mesh (whose client retries
//! idempotent methods) → canonical JSON response, or raw bytes with their `ETag`, caching policy
//! and `304` for a held tag ([`crate::caching`]) (or the error as `google.rpc.Status`, with
//! `Retry-After` from `RetryInfo`) → access log. A panic anywhere is a 500 with the request id.

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
use kem_kit::runtime::{with_client_ip, with_owner};
use kem_kit::validate::excerpt;
use kem_proto::contract::Access;
use opentelemetry::context::FutureExt as _;
use tonic::Code;
use tonic::metadata::{Ascii, MetadataValue};

use crate::auth::Authenticate;
use crate::deadline::DeadlinePolicy;
use crate::errors::{bad_request, json_error, status_response};
use crate::idempotency::{Fingerprint, IdempotencyStore, Replay, validate_key};
use crate::protect::{EdgeAdmission, EdgeLimiter, TrustedProxies, client_ip, rate_limit_headers, too_many_requests};
use crate::routes::{Lookup, Route, RouteTable};
use crate::transcode::{DynamicCodec, ResponseBody, build_request, write_response};
use crate::upstream::Upstreams;

/// Edge settings.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Deadlines.
    pub deadlines: DeadlinePolicy,
    /// Largest accepted request body.
    pub body_limit: usize,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// Adaptive concurrency limits per backend service (their state included).
    pub admission: EdgeAdmission,
    /// The public media route (`/media/{token}`): its verifying key, clock and rendition cache.
    /// `None` (no key configured): every media link is answered 404.
    pub media: Option<Arc<crate::media::MediaEdge>>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            deadlines: DeadlinePolicy::default(),
            body_limit: 1024 * 1024,
            trusted_proxies: TrustedProxies::none(),
            admission: EdgeAdmission::default(),
            media: None,
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

/// The largest answer the edge takes from a service: tonic's 4 MiB default cut the CSV export of
/// an event with about 45,000 entries; 32 MiB carries 100,000 entries (about 9 MB) with room.
/// Requests stay bounded by the much smaller body limit.
pub const MAX_UPSTREAM_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

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
        let random: [u8; 16] = rand::rng().random();
        RequestId(Bytes::from(kem_kit::hex::encode(random)))
    }

    /// The id as text (always visible ASCII).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("-")
    }

    /// The id as a header value (no copy).
    pub fn header_value(&self) -> HeaderValue {
        HeaderValue::from_maybe_shared(self.0.clone()).unwrap_or(HeaderValue::from_static("-"))
    }

    /// The id as gRPC metadata (no copy).
    fn metadata_value(&self) -> Option<MetadataValue<Ascii>> {
        MetadataValue::try_from(self.0.clone()).ok()
    }
}

/// Sends `id` as the call's `x-request-id`, marked sensitive: HPACK then never indexes it, so a
/// value that is new on every call does not churn the connection's header table (evicting the
/// headers that do repeat) on both ends.
pub(crate) fn set_request_id<T>(request: &mut tonic::Request<T>, mut id: MetadataValue<Ascii>) {
    id.set_sensitive(true);
    request.metadata_mut().insert("x-request-id", id);
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Runs one API request from `peer` through the pipeline. A panic anywhere in it is caught:
/// the client gets a 500 with the request id (and the panic is logged), never a dropped
/// connection.
pub async fn handle(edge: &Arc<Edge>, peer: SocketAddr, request: Request) -> Response {
    let started = tokio::time::Instant::now();
    let (parts, body) = request.into_parts();
    let rid = RequestId::from_headers(&parts.headers);
    let path = parts.uri.path();
    let mut outcome = Outcome::default();
    let span = crate::trace::ServerSpan::start(&parts.headers, &parts.method);
    let pipeline = std::panic::AssertUnwindSafe(pipeline(edge, peer, &parts, body, &rid, &mut outcome));
    let mut response = match span.run(futures_util::FutureExt::catch_unwind(pipeline)).await {
        Ok(response) => response,
        Err(_) => internal_error(rid.as_str()),
    };

    response.headers_mut().entry(REQUEST_ID).or_insert_with(|| rid.header_value());
    if let Some(decision) = outcome.limit.filter(|d| d.allowed) {
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
        rpc: outcome.rpc,
        owner: outcome.owner.as_deref(),
        status: response.status().as_u16(),
        duration,
    });
    span.end(outcome.route, response.status());
    let route = outcome.rpc.unwrap_or("unmatched");
    kem_mesh::telemetry::Registry::global().edge_request(route, response.status().as_u16(), duration);
    response
}

/// What the pipeline learned about a request, for the access log and the response headers
/// (kept outside the pipeline's future so that a panic inside it does not lose them).
#[derive(Default)]
struct Outcome<'a> {
    rpc: Option<&'a str>,
    /// The matched route as `METHOD /template` (the server span's name).
    route: Option<&'a str>,
    owner: Option<Arc<str>>,
    limit: Option<crate::protect::Decision>,
}

async fn pipeline<'a>(
    edge: &'a Arc<Edge>,
    peer: SocketAddr,
    parts: &http::request::Parts,
    body: Body,
    rid: &RequestId,
    outcome: &mut Outcome<'a>,
) -> Response {
    let path = parts.uri.path();
    let (route, captures) = match edge.routes.lookup(&parts.method, path) {
        Lookup::Found(route, captures) => (route, captures),
        Lookup::NotFound => {
            let quoted = excerpt(path);
            return json_error(
                StatusCode::NOT_FOUND,
                Code::NotFound,
                &format!("no route for {quoted}"),
                vec![],
                rid.as_str(),
            );
        }
        Lookup::MethodNotAllowed(allowed) => {
            let quoted = excerpt(path);
            let mut response = json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::Unimplemented,
                &format!("{} is not allowed on {quoted}", parts.method),
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
    outcome.rpc = Some(route.grpc_path());
    outcome.route = Some(route_name(route));
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
            Ok(subject) => outcome.owner = Some(subject),
            Err(reason) => return unauthorized(&reason, rid.as_str()),
        }
    }
    let owner = outcome.owner.clone();

    // Entries are counted per event and address: the event is the route's `event_id` variable.
    let event = captures.iter().find(|(name, _)| name == "event_id").map(|(_, value)| value.as_str());
    let now = tokio::time::Instant::now();
    let decision = edge.limiter.check_event(route_name(route), event, client, owner.as_deref(), now);
    outcome.limit = Some(decision);
    if !decision.allowed {
        // `too_many_requests` already carries the google.rpc.Status body (with RetryInfo)
        // and the Retry-After / RateLimit-* headers.
        // (The request id is added below, as for every response.)
        let (parts, text) = too_many_requests(&decision).into_parts();
        return Response::from_parts(parts, Body::from(text));
    }

    // Overload is refused before any work is spent on the request; the permit is held until
    // the answer is ready (its latency is what the limit adapts to).
    let _permit = match edge.config.admission.admit(route.service()).await {
        Ok(permit) => permit,
        Err(rejected) => return crate::protect::admission::overloaded(&rejected),
    };

    // Headers are checked before the body is read: a bad request costs no body transfer.
    let deadline = match edge.config.deadlines.for_request(&parts.headers) {
        Ok(deadline) => deadline,
        Err(error) => return bad_request(error.header, &error.to_string(), rid.as_str()),
    };
    let idempotency_key = match parts.headers.get("idempotency-key").filter(|_| parts.method == Method::POST) {
        Some(value) => match validate_key(value) {
            Ok(key) => Some(key),
            Err(error) => return bad_request("Idempotency-Key", &error.to_string(), rid.as_str()),
        },
        None => None,
    };

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

    // Transcoding has no side effect, so it comes before an idempotency claim: a request that
    // cannot even be read never holds its key.
    let query = parts.uri.query();
    let message = match build_request(route, &captures, query, &body) {
        Ok(message) => message,
        Err(error) => return bad_request(&error.field, &error.description, rid.as_str()),
    };
    let pretty = query.is_some_and(|q| q.split('&').any(|p| p == "pretty" || p == "pretty=true"));
    let Some(key) = idempotency_key else {
        let caller = Caller { owner: owner.as_deref(), client };
        // A conditional GET (or HEAD) may be answered 304 when its tags name the bytes.
        let if_none_match = if matches!(parts.method, Method::GET | Method::HEAD) {
            parts.headers.get_all(header::IF_NONE_MATCH).iter().cloned().collect()
        } else {
            Vec::new()
        };
        let wanted = Wanted { pretty, if_none_match };
        return call(edge, route, message, deadline, caller, rid, wanted).await.into_response();
    };

    // A replayed POST with the same Idempotency-Key gets the first answer.
    let scope = owner.as_deref().map_or_else(|| client.to_string(), str::to_owned);
    let fingerprint = Fingerprint::of(&parts.method, path, query, &body);
    match edge.idempotency.begin(&scope, key, fingerprint).await {
        Replay::Stored(stored) => stored.into_response(rid.as_str()),
        Replay::InProgress => json_error(
            StatusCode::CONFLICT,
            Code::Aborted,
            "a request with this Idempotency-Key is still in progress; retry shortly",
            vec![],
            rid.as_str(),
        ),
        Replay::Mismatch => json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            Code::InvalidArgument,
            "this Idempotency-Key was used with a different request (method, path, query or body)",
            vec![],
            rid.as_str(),
        ),
        Replay::Proceed(claim) => {
            // Once claimed, the call runs to its end and its answer is stored even if the client
            // goes away meanwhile: its retry then gets the answer instead of a second effect.
            let (edge, route, detached_rid) = (edge.clone(), route.clone(), rid.clone());
            let detached = tokio::spawn(
                async move {
                    let caller = Caller { owner: owner.as_deref(), client };
                    let wanted = Wanted { pretty, if_none_match: Vec::new() };
                    let response = call(&edge, &route, message, deadline, caller, &detached_rid, wanted).await;
                    edge.idempotency.finish(claim, response).await
                }
                // The backend call stays a child of the request's server span.
                .with_context(opentelemetry::Context::current()),
            );
            // A panic in there drops the claim, which releases the key.
            detached.await.unwrap_or_else(|_| internal_error(rid.as_str()))
        }
    }
}

/// The answer to a request the edge failed on itself (a bug): a 500 naming the request id, so
/// the client can report it and the operator can find it in the logs.
fn internal_error(rid: &str) -> Response {
    tracing::error!(request_id = rid, "the edge failed while handling a request");
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
        &format!("internal error; quote request id {rid} when reporting it"),
        vec![],
        rid,
    )
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

/// Who a backend call is made for: the verified owner (owner routes) and the client's address,
/// forwarded as `x-kem-user-*` metadata.
#[derive(Clone, Copy)]
struct Caller<'a> {
    owner: Option<&'a str>,
    client: std::net::IpAddr,
}

/// How the client wants the answer: pretty-printed JSON (`?pretty`), and the entity tags it
/// already holds (`If-None-Match` of a GET or HEAD; usually none).
struct Wanted {
    pretty: bool,
    if_none_match: Vec<HeaderValue>,
}

async fn call(
    edge: &Edge,
    route: &Route,
    message: prost_reflect::DynamicMessage,
    deadline: Duration,
    caller: Caller<'_>,
    rid: &RequestId,
    wanted: Wanted,
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
    // The owner id and the client's address (after the trusted-proxy rules, e.g. for per-address
    // sign-in throttling); services trust both only from the gateway's mesh identity.
    if let Some(owner) = caller.owner {
        request = with_owner(request, owner);
    }
    let mut request = with_client_ip(request, caller.client);
    if let Some(value) = rid.metadata_value() {
        set_request_id(&mut request, value);
    }
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(MAX_UPSTREAM_RESPONSE_BYTES);
    let outcome = async {
        grpc.ready().await.map_err(|e| tonic::Status::from_error(Box::new(e)))?;
        grpc.unary(request, path, DynamicCodec::new(route.rpc.output())).await
    };
    let last = match tokio::time::timeout(deadline, outcome).await {
        Ok(Ok(response)) => {
            return match write_response(route, response.get_ref(), wanted.pretty) {
                Ok(ResponseBody::Json(bytes)) => EdgeResponse(json_ok(bytes)),
                Ok(ResponseBody::Raw { content_type, data, sha256, filename }) => {
                    EdgeResponse(crate::caching::raw_response(
                        route,
                        &content_type,
                        data,
                        crate::caching::RawMeta { sha256: sha256.as_deref(), filename: filename.as_deref() },
                        &wanted.if_none_match,
                    ))
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
