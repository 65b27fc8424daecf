//! The REST/JSON edge: transcodes HTTP/JSON into gRPC from the `google.api.http` annotations of
//! the published contracts, at runtime — no handwritten per-route handlers.
//!
//! - [`routes`]: the route table built from the descriptors (path templates, custom verbs);
//! - [`transcode`]: path/query/body → dynamic request message, response → canonical JSON;
//! - [`edge`]: the request pipeline (auth, limits, idempotency, deadlines, retries, errors);
//! - [`auth`], [`protect`], [`idempotency`], [`deadline`], [`errors`]: its stages;
//! - [`openapi`]: the OpenAPI 3.1 document generated from the same descriptors;
//! - [`upstream`]: backend channels (mesh mTLS).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod auth;
pub mod deadline;
pub mod edge;
pub mod errors;
pub mod idempotency;
pub mod openapi;
pub mod protect;
pub mod routes;
pub mod transcode;
pub mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kem_mesh::Shutdown;
use tokio::net::TcpListener;

pub use edge::{Edge, EdgeConfig};

/// Fixed edge endpoints beside the API.
struct Fixed {
    edge: Arc<Edge>,
    openapi: Vec<u8>,
    jwks: Option<Arc<auth::JwtAuthenticator>>,
}

/// The edge as one HTTP service: the API (every path under `/api/`) goes straight to the
/// [`edge`] pipeline; health, readiness, OpenAPI, docs and JWKS are a small axum router (whose
/// fallback is the same pipeline, so unknown paths get its JSON 404).
///
/// API requests never pass through the router: matching them against the fixed routes first,
/// then falling back, costs a few microseconds per request for nothing.
#[derive(Clone)]
pub struct EdgeApp {
    service: EdgeService,
}

/// The type-erased service behind [`EdgeApp`].
type EdgeService = tower::util::BoxCloneSyncService<axum::extract::Request, Response, std::convert::Infallible>;

/// Builds the edge: the API pipeline, the fixed endpoints, CORS for `cors_origins` (none: no CORS).
pub fn router(edge: Arc<Edge>, jwks: Option<Arc<auth::JwtAuthenticator>>, cors_origins: &[String]) -> EdgeApp {
    let info = openapi::ApiInfo::default();
    let openapi = serde_json::to_vec(&openapi::document(kem_proto::descriptor_pool(), &info)).unwrap_or_default();
    let fixed = Arc::new(Fixed { edge: edge.clone(), openapi, jwks });
    let fixed_routes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
        .route("/docs/assets/{asset}", get(docs_asset))
        .route("/.well-known/jwks.json", get(jwks_json))
        .with_state(fixed);
    // No origins configured means no cross-origin access: then there is no CORS layer at all
    // (not one that only adds `Vary` headers to every response).
    let cors = (!cors_origins.is_empty()).then(|| {
        let origins: Vec<HeaderValue> = cors_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods(tower_http::cors::Any)
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                "idempotency-key".parse().unwrap_or(header::ACCEPT),
                "x-request-id".parse().unwrap_or(header::ACCEPT),
            ])
            .expose_headers(["x-request-id".parse().unwrap_or(header::ACCEPT), header::RETRY_AFTER])
            .max_age(Duration::from_secs(600))
    });
    let compression = || tower_http::compression::CompressionLayer::new().gzip(true).compress_when(compress_when());
    // API requests that do not accept gzip at all (most API clients) skip the compression layer:
    // it costs a few microseconds per request even when it ends up passing the body through.
    let api_plain = axum::handler::Handler::with_state(edge::handle, edge);
    let api_gzip = tower::Layer::layer(&compression(), api_plain.clone());
    let api = tower::service_fn(move |request: axum::extract::Request| {
        let accepts = accepts_gzip(request.headers());
        let (plain, gzip) = (api_plain.clone(), api_gzip.clone());
        async move {
            use tower::ServiceExt as _;
            if accepts {
                gzip.oneshot(request).await.map(|response| response.map(axum::body::Body::new))
            } else {
                plain.oneshot(request).await
            }
        }
    });
    let fixed_routes = fixed_routes.route_layer(compression()).fallback_service(api.clone());
    let dispatch = tower::service_fn(move |request: axum::extract::Request| {
        use tower::ServiceExt as _;
        let (api, fixed_routes) = (api.clone(), fixed_routes.clone());
        async move {
            if request.uri().path().starts_with("/api/") {
                api.oneshot(request).await
            } else {
                fixed_routes.oneshot(request).await
            }
        }
    });
    let service = tower::ServiceBuilder::new().layer(tower::util::option_layer(cors)).service(dispatch);
    EdgeApp { service: EdgeService::new(service) }
}

/// Whether the request may accept a gzipped response at all: a quick filter only; the
/// compression layer then negotiates properly (`gzip;q=0`, `*`, ...).
fn accepts_gzip(headers: &http::HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().any(|value| {
        let value = value.as_bytes();
        value.windows(4).any(|w| w.eq_ignore_ascii_case(b"gzip")) || value.contains(&b'*')
    })
}

/// Which responses are gzipped (when the client accepts it): bodies of at least 1 KiB — below
/// that, compression saves a few bytes for a measurable CPU cost per request — and never gRPC,
/// images or event streams.
fn compress_when() -> impl tower_http::compression::Predicate {
    use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
    SizeAbove::new(1024).and(NotForContentType::GRPC).and(NotForContentType::IMAGES).and(NotForContentType::SSE)
}

async fn readyz(State(fixed): State<Arc<Fixed>>) -> Response {
    match fixed.edge.upstreams.all_serving(Duration::from_secs(1)).await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {reason}")).into_response(),
    }
}

async fn openapi_json(State(fixed): State<Arc<Fixed>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], fixed.openapi.clone()).into_response()
}

async fn docs() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], openapi::html_page("/openapi.json")).into_response()
}

async fn docs_asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match openapi::asset(&name) {
        Some((content_type, bytes)) => ([(header::CONTENT_TYPE, content_type)], bytes).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn jwks_json(State(fixed): State<Arc<Fixed>>) -> Response {
    let keys = fixed.jwks.as_ref().map(|a| a.jwks()).unwrap_or_default();
    let body = serde_json::json!({ "keys": keys });
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "max-age=300")], body.to_string())
        .into_response()
}

/// Serves `app` on `listener` (HTTP/1.1 and HTTP/2) until `shutdown`, then drains.
pub fn serve(
    listener: TcpListener,
    app: EdgeApp,
    shutdown: Shutdown,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "REST edge listening");
    let service = app.service;
    // Per connection: the edge service with the peer address put where `ConnectInfo` finds it
    // (client IP for rate limits and access logs).
    let per_connection = tower::service_fn(move |incoming: axum::serve::IncomingStream<'_, TcpListener>| {
        let peer = *incoming.remote_addr();
        let service = service.clone();
        async move {
            Ok::<_, std::convert::Infallible>(tower::util::MapRequest::new(
                service,
                move |mut request: axum::extract::Request| {
                    request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                    request
                },
            ))
        }
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, per_connection).with_graceful_shutdown(async move { shutdown.wait().await }).await
    });
    Ok((addr, task))
}
