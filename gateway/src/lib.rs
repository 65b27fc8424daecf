//! The REST/JSON edge: transcodes HTTP/JSON into gRPC from the `google.api.http` annotations of
//! the published contracts, at runtime — no handwritten per-route handlers.
//!
//! - [`routes`]: the route table built from the descriptors (path templates, custom verbs);
//! - [`transcode`]: path/query/body → dynamic request message, response → canonical JSON;
//! - [`edge`]: the request pipeline (auth, limits, idempotency, deadlines, retries, errors);
//! - [`access_log`]: one record per request, through `tracing` or a process's own sink;
//! - [`auth`], [`protect`], [`idempotency`], [`deadline`], [`errors`], [`caching`]: its stages;
//! - [`openapi`]: the OpenAPI 3.1 document generated from the same descriptors;
//! - [`pages`]: the participant's entry page, receipt, winners and QR codes (`/e/...`, HTML);
//! - [`media`]: public media renditions at signed, expiring links (`/media/{token}`, no login);
//! - [`upstream`]: backend channels (mesh mTLS).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access_log;
pub mod auth;
pub mod caching;
pub mod deadline;
pub mod edge;
pub mod errors;
pub mod idempotency;
pub mod media;
pub mod openapi;
pub mod pages;
pub mod protect;
pub mod routes;
pub mod trace;
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
use futures_util::FutureExt as _;
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
/// API requests without `Accept-Encoding: gzip` (most API clients) take the shortest path: no
/// router, no compression layer, no extractors, no boxed service — each of those costs
/// microseconds per request for nothing. [`serve`] gives every connection its own `EdgeApp`
/// knowing the peer address (client IP for rate limits and access logs); an `EdgeApp` used
/// without `serve` reads it from the request's [`axum::extract::ConnectInfo`].
#[derive(Clone)]
pub struct EdgeApp {
    app: Arc<App>,
    peer: Option<SocketAddr>,
}

/// What every connection shares.
#[derive(Clone)]
struct App {
    edge: Arc<Edge>,
    /// The API behind gzip, for clients that accept it (the peer travels in `ConnectInfo`).
    api_gzip: BoxedService,
    /// The fixed endpoints; their fallback is the API pipeline.
    fixed: Router,
    /// With CORS configured, everything goes through the CORS layer first.
    cors: Option<BoxedService>,
}

/// A type-erased request → response service.
type BoxedService = tower::util::BoxCloneSyncService<axum::extract::Request, Response, std::convert::Infallible>;

/// Builds the edge: the API pipeline, the fixed endpoints, CORS for `cors_origins` (none: no CORS).
pub fn router(edge: Arc<Edge>, jwks: Option<Arc<auth::JwtAuthenticator>>, cors_origins: &[String]) -> EdgeApp {
    let info = openapi::ApiInfo::default();
    let openapi = serde_json::to_vec(&openapi::document(kem_proto::descriptor_pool(), &info)).unwrap_or_default();
    let fixed = Arc::new(Fixed { edge: edge.clone(), openapi, jwks });
    let compression = || tower_http::compression::CompressionLayer::new().gzip(true).compress_when(compress_when());
    // The pipeline as a service, for the paths that need one (gzip, the router's fallback, CORS).
    let pipeline = {
        let edge = edge.clone();
        tower::service_fn(move |request: axum::extract::Request| {
            let edge = edge.clone();
            async move {
                let peer = peer_of(&request);
                Ok::<_, std::convert::Infallible>(edge::handle(&edge, peer, request).await)
            }
        })
    };
    let api_gzip = tower::ServiceBuilder::new()
        .map_response(|response: Response<_>| response.map(axum::body::Body::new))
        .layer(compression())
        .service(pipeline.clone());
    let fixed_routes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi_json))
        .route("/docs", get(docs))
        .route("/docs/assets/{asset}", get(docs_asset))
        .route("/.well-known/jwks.json", get(jwks_json))
        .route_service(
            "/e/{*path}",
            edge_route(edge.clone(), |edge, request| async move { pages::handle(&edge, request).await }),
        )
        .route_service(
            "/media/{token}",
            edge_route(edge.clone(), |edge, request| async move { media::handle(&edge, request).await }),
        )
        .with_state(fixed)
        .route_layer(compression())
        .fallback_service(pipeline);
    // No origins configured means no cross-origin access: then there is no CORS layer at all
    // (not one that only adds `Vary` headers to every response).
    let cors = (!cors_origins.is_empty()).then(|| cors_layer(cors_origins));
    let mut app = App { edge, api_gzip: BoxedService::new(api_gzip), fixed: fixed_routes, cors: None };
    if let Some(cors) = cors {
        // The CORS layer wraps the same routes without CORS.
        let inner = EdgeApp { app: Arc::new(app.clone()), peer: None };
        app.cors = Some(BoxedService::new(tower::Layer::layer(&cors, inner)));
    }
    EdgeApp { app: Arc::new(app), peer: None }
}

fn cors_layer(origins: &[String]) -> tower_http::cors::CorsLayer {
    let origins: Vec<HeaderValue> = origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect();
    tower_http::cors::CorsLayer::new()
        .allow_origin(origins)
        .allow_methods(tower_http::cors::Any)
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, IDEMPOTENCY_KEY, edge::REQUEST_ID])
        .expose_headers([edge::REQUEST_ID, header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}

const IDEMPOTENCY_KEY: header::HeaderName = header::HeaderName::from_static("idempotency-key");

/// A route the edge answers itself (the pages, the media), as a service for the router: each
/// request handled by `handle` with the shared [`Edge`].
fn edge_route<F, Fut>(
    edge: Arc<Edge>,
    handle: F,
) -> impl tower::Service<
    axum::extract::Request,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send,
> + Clone
+ Send
+ Sync
+ 'static
where
    F: Fn(Arc<Edge>, axum::extract::Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = axum::response::Response> + Send + 'static,
{
    tower::service_fn(move |request: axum::extract::Request| {
        let (edge, handle) = (edge.clone(), handle.clone());
        async move { Ok(handle(edge, request).await) }
    })
}

/// The peer a request came from: its `ConnectInfo`, else the unspecified address (an `EdgeApp`
/// called directly, outside [`serve`]).
fn peer_of(request: &axum::extract::Request) -> SocketAddr {
    request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |info| info.0)
}

impl EdgeApp {
    /// This app for one connection from `peer`.
    fn for_peer(&self, peer: SocketAddr) -> EdgeApp {
        EdgeApp { app: self.app.clone(), peer: Some(peer) }
    }

    async fn dispatch(self, mut request: axum::extract::Request) -> Response {
        use tower::ServiceExt as _;
        let peer = match self.peer {
            Some(peer) => peer,
            None => peer_of(&request),
        };
        if let Some(cors) = &self.app.cors {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            return cors.clone().oneshot(request).await.unwrap_or_else(|never| match never {});
        }
        let api = request.uri().path().starts_with("/api/");
        if api && !accepts_gzip(request.headers()) {
            return edge::handle(&self.app.edge, peer, request).await;
        }
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        let outcome = if api {
            self.app.api_gzip.clone().oneshot(request).await
        } else {
            self.app.fixed.clone().oneshot(request).await
        };
        outcome.unwrap_or_else(|never| match never {})
    }
}

impl tower::Service<axum::extract::Request> for EdgeApp {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = futures_util::future::BoxFuture<'static, Result<Response, std::convert::Infallible>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        Box::pin(self.clone().dispatch(request).map(Ok))
    }
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
    // Per connection: the app knowing its peer (client IP for rate limits and access logs).
    let per_connection = tower::service_fn(move |incoming: axum::serve::IncomingStream<'_, TcpListener>| {
        let app = app.for_peer(*incoming.remote_addr());
        async move { Ok::<_, std::convert::Infallible>(app) }
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, per_connection).with_graceful_shutdown(async move { shutdown.wait().await }).await
    });
    Ok((addr, task))
}
