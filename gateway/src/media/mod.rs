//! Public media: `GET|HEAD /media/{token}`, the images posts use, fetched without a login by
//! platforms' crawlers (Instagram's content publishing downloads `image_url`; Naver and the KT
//! partner do the same).
//!
//! The token ([`kem_kit::media`]) is an HMAC over the image id, the variant, an expiry and, for
//! the KT partner channels' QR rendition, the text of the QR code, issued by distribution when it
//! publishes. The text is passed to content as `qr_text` exactly as signed, and it is part of the
//! cache key, so two QR texts on one image never share a body or an ETag. Every refusal — garbage, over-long, control
//! characters, a tampered or forged signature, an expired link, no signing key configured — is
//! the same small `404` with no hint of which, and costs no backend call. A valid token is
//! answered with the rendition from content `GetMediaContent` over the mesh (like the pages'
//! calls: the edge's upstream, admission and deadline), as:
//!
//! - `Content-Type`, `Content-Length`, `ETag: "<sha256>"`, `Accept-Ranges: bytes`,
//!   `Cache-Control: public, max-age=31536000, immutable` (the bytes under a token never change),
//!   `X-Content-Type-Options: nosniff`;
//! - `304` when `If-None-Match` holds the tag; `206` with `Content-Range` for one byte range,
//!   `416` for a range past the end ([`range`]); `HEAD` the same headers without the body;
//! - renditions are kept in a small in-memory cache bounded in bytes, fetched once per rendition
//!   however many crawlers ask at the same moment ([`cache`]).
//!
//! Requests are rate limited per client address (route `GET /media/{token}`, see [`ROUTE`]),
//! like the other public routes, before the token is even looked at.

pub mod cache;
pub mod range;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use kem_kit::clock::Clock;
use kem_kit::media::{MAX_TOKEN_LEN, MediaSigner};
use kem_kit::runtime::with_client_ip;
use kem_proto::kem::content::v1 as content;
use kem_proto::kem::content::v1::content_service_client::ContentServiceClient;
use tonic::metadata::{Ascii, MetadataValue};

use self::cache::{Key, Rendition, RenditionCache};
use self::range::Ranged;
use crate::caching::{etag, none_match};
use crate::edge::{Edge, MAX_UPSTREAM_RESPONSE_BYTES, REQUEST_ID, RequestId};
use crate::pages::calls::Failure;
use crate::protect::{client_ip, rate_limit_headers, too_many_requests};

/// The rate-limit route name of the media route. Like the pages' routes it has no row of its own:
/// the edge's default route limit counts its anonymous callers per client address (20 a second,
/// 40 at once — far more than a platform's fetches of one post), on top of the per-address limit
/// over all routes. Answers are cached, so the content service sees far less.
pub const ROUTE: &str = "GET /media/{token}";
/// Full name of the content service.
pub const CONTENT_SERVICE: &str = "kem.content.v1.ContentService";
/// `Cache-Control` of a rendition: a year, never revalidated — the bytes under a token never
/// change (the token names an immutable image and a deterministic conversion).
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The body of every refusal: small, and the same whatever was wrong.
const NOT_FOUND_BODY: &str = "not found\n";

/// What the media route needs beside the edge: the key that verifies tokens, the clock their
/// expiry is checked against, and the rendition cache.
pub struct MediaEdge {
    signer: Arc<MediaSigner>,
    clock: Arc<dyn Clock>,
    cache: RenditionCache,
}

impl std::fmt::Debug for MediaEdge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEdge").field("signer", &self.signer).field("cache", &self.cache).finish_non_exhaustive()
    }
}

/// Memory the rendition cache holds at most: a few dozen feed JPEGs (a few hundred KB each) and
/// originals (1–3 MB) — the images of the posts being published right now, which is what
/// crawlers fetch.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Largest rendition kept in the cache (larger ones are served, not kept).
pub const CACHE_ENTRY_BYTES: usize = 12 * 1024 * 1024;

impl MediaEdge {
    /// Verifies with `signer` at `clock`'s time, caching up to [`CACHE_BYTES`].
    pub fn new(signer: Arc<MediaSigner>, clock: Arc<dyn Clock>) -> MediaEdge {
        MediaEdge::with_cache(signer, clock, CACHE_BYTES, CACHE_ENTRY_BYTES)
    }

    /// Like [`new`](Self::new) with another cache size.
    pub fn with_cache(signer: Arc<MediaSigner>, clock: Arc<dyn Clock>, bytes: usize, entry_bytes: usize) -> MediaEdge {
        MediaEdge { signer, clock, cache: RenditionCache::new(bytes, entry_bytes) }
    }

    /// The rendition cache.
    pub fn cache(&self) -> &RenditionCache {
        &self.cache
    }
}

/// Serves one media request (a panic is caught and answered 500).
pub async fn handle(edge: &Arc<Edge>, request: Request) -> Response {
    let started = tokio::time::Instant::now();
    let peer = crate::peer_of(&request);
    let (parts, _body) = request.into_parts();
    let rid = RequestId::from_headers(&parts.headers);
    let client = client_ip(peer, &parts.headers, &edge.config.trusted_proxies);
    let span = crate::trace::ServerSpan::start(&parts.headers, &parts.method);
    let work = std::panic::AssertUnwindSafe(answer(edge, &parts, client, &rid));
    let mut response = match span.run(futures_util::FutureExt::catch_unwind(work)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(request_id = rid.as_str(), "the media route failed while handling a request");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    };
    response.headers_mut().insert(REQUEST_ID, rid.header_value());
    if parts.method == Method::HEAD {
        *response.body_mut() = Body::empty();
    }
    let duration = started.elapsed();
    crate::access_log::record(&crate::access_log::AccessRecord {
        request_id: rid.as_str(),
        method: parts.method.as_str(),
        // The token is a capability: the log names the route, never the token.
        path: "/media/{token}",
        rpc: Some(ROUTE),
        owner: None,
        status: response.status().as_u16(),
        duration,
    });
    span.end(Some(ROUTE), response.status());
    kem_mesh::telemetry::Registry::global().edge_request(ROUTE, response.status().as_u16(), duration);
    response
}

async fn answer(edge: &Edge, parts: &http::request::Parts, client: IpAddr, rid: &RequestId) -> Response {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let decision = edge.limiter.check(ROUTE, client, None, tokio::time::Instant::now());
    if !decision.allowed {
        return too_many_requests(&decision).map(Body::from);
    }
    let mut response = match verified(edge, parts.uri.path()) {
        None => not_found(),
        Some((media, grant)) => {
            let key = Key::of(&grant);
            // The policy's default deadline: a crawler's deadline headers (if any) mean nothing here,
            // and the first fetch of a rendition may convert it.
            let deadline = edge.config.deadlines.for_request(&HeaderMap::new()).unwrap_or(Duration::from_secs(10));
            let fetched = media.cache.get_or_fetch(&key, || fetch(edge, &key, deadline, client, rid)).await;
            match fetched {
                Ok(rendition) => serve(&rendition, &parts.headers),
                Err(status) => failure(&status),
            }
        }
    };
    rate_limit_headers(&decision, response.headers_mut());
    response
}

/// The grant of the token in `path`, or `None` for every kind of refusal (logged at debug only:
/// probes are common and none of them is news).
fn verified<'a>(edge: &'a Edge, path: &str) -> Option<(&'a MediaEdge, kem_kit::media::MediaGrant)> {
    let media = edge.config.media.as_deref()?;
    let token = path.strip_prefix("/media/")?;
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    match media.signer.verify(token, media.clock.now()) {
        Ok(grant) => Some((media, grant)),
        Err(reason) => {
            tracing::debug!(%reason, "media token refused");
            None
        }
    }
}

/// `GetMediaContent` of `key` over the edge's content upstream, through its admission control,
/// within `deadline`.
async fn fetch(
    edge: &Edge,
    key: &Key,
    deadline: Duration,
    client: IpAddr,
    rid: &RequestId,
) -> Result<Rendition, tonic::Status> {
    let Some(channel) = edge.upstreams.get(CONTENT_SERVICE) else {
        return Err(tonic::Status::unavailable("the content service is not available"));
    };
    let _permit = edge
        .config
        .admission
        .admit(CONTENT_SERVICE)
        .await
        .map_err(|rejected| tonic::Status::unavailable(format!("the content service is {rejected}")))?;
    let message = content::GetMediaContentRequest {
        image_id: key.image_id.clone(),
        variant: key.variant.number(),
        // The signed text, exactly: content checks it again and draws nothing else.
        qr_text: key.qr_text.clone().unwrap_or_default(),
    };
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("grpc-timeout", edge.config.deadlines.grpc_timeout_value(deadline));
    let mut request = with_client_ip(request, client);
    if let Ok(value) = MetadataValue::<Ascii>::try_from(rid.as_str()) {
        crate::edge::set_request_id(&mut request, value);
    }
    // Renditions are up to 8 MB (feed) or the stored original: past tonic's 4 MiB default.
    let mut client = ContentServiceClient::new(channel).max_decoding_message_size(MAX_UPSTREAM_RESPONSE_BYTES);
    let answered = tokio::time::timeout(deadline, client.get_media_content(request))
        .await
        .map_err(|_| tonic::Status::deadline_exceeded("the request deadline was exceeded"))??
        .into_inner();
    Ok(Rendition { content_type: answered.content_type, data: answered.data.into(), sha256: answered.sha256 })
}

/// The answer for `rendition` to a request with `headers`: 200, 206, 304 or 416.
pub fn serve(rendition: &Rendition, headers: &HeaderMap) -> Response {
    let tag = etag(&rendition.sha256);
    let len = rendition.data.len() as u64;
    let mut response = if let Some(tag) = tag.as_ref().filter(|t| none_match(headers.get_all(header::IF_NONE_MATCH), t))
    {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response.headers_mut().insert(header::ETAG, tag.clone());
        response
    } else {
        match range::ranged(headers, len, tag.as_ref()) {
            Ranged::Full => {
                let mut response = Response::new(Body::from(rendition.data.clone()));
                response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                response
            }
            Ranged::Part { start, end } => {
                // `ranged` keeps start <= end < len, so the slice is in bounds.
                let part = rendition.data.slice(start as usize..=end as usize);
                let mut response = Response::new(Body::from(part));
                *response.status_mut() = StatusCode::PARTIAL_CONTENT;
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
                if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
                    headers.insert(header::CONTENT_RANGE, value);
                }
                response
            }
            Ranged::Unsatisfiable => {
                let mut response = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                response.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                return response;
            }
        }
    };
    let out = response.headers_mut();
    if response_is_content(out) {
        if let Ok(value) = HeaderValue::from_str(&rendition.content_type) {
            out.insert(header::CONTENT_TYPE, value);
        }
        if let Some(tag) = tag {
            out.insert(header::ETAG, tag);
        }
    }
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    out.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    out.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// Whether the headers so far are those of content (not a 304, which carries only its tag).
fn response_is_content(headers: &HeaderMap) -> bool {
    headers.contains_key(header::CONTENT_LENGTH)
}

/// How a failed `GetMediaContent` is answered: an image that is gone (or refused) is the same
/// 404 as a bad token; an outage is 503 with `Retry-After`; anything else 500.
fn failure(status: &tonic::Status) -> Response {
    match Failure::of(status) {
        Failure::NotFound | Failure::BadRequest => not_found(),
        Failure::Unavailable { retry_after } => {
            let mut response = plain(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable\n");
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response
        }
        Failure::Internal => {
            tracing::warn!(code = ?status.code(), message = status.message(), "media rendition failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
        }
    }
}

fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, NOT_FOUND_BODY)
}

/// A short plain-text answer that no cache keeps.
fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

#[cfg(test)]
mod tests;
