//! [`ImageHost`]: a stand-in for the platform edge's public image routes, which the Instagram
//! contract server's crawler (and any test) fetches for real.
//!
//! - `GET /media/{token}` — the edge's signed media links (`gateway/src/media`): the token is
//!   verified with the [`MediaSigner`] the host was given, against its clock; a valid one is
//!   answered with the rendition it grants (a real JPEG for `JPEG` and `INSTAGRAM_FEED`, the
//!   stored PNG for `ORIGINAL`), every refusal — garbage, forged, expired, no key given — with the
//!   edge's same small `404`;
//! - `GET /api/v1/public/images/{id}` — the older public image route: a real JPEG with
//!   `?format=IMAGE_FORMAT_JPEG`, the stored PNG otherwise, as the content service answers;
//! - `GET /hop/{n}` redirects `n` times before landing on the JPEG; `GET /wide.jpg` is a 40×10
//!   JPEG (4:1, outside Instagram's aspect range); `GET /huge.jpg` is a JPEG signature followed by
//!   more than [`MAX_IMAGE_BYTES`].
//!
//! Point a distribution's public base URL at [`ImageHost::base_url`] (and give both the same
//! media key) so Instagram's fetch of the image succeeds for real.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kem_kit::clock::{Clock, SystemClock};
use kem_kit::media::{MAX_TOKEN_LEN, MediaGrant, MediaSigner, MediaVariant, TokenError};
use tokio::task::JoinHandle;

use super::MAX_IMAGE_BYTES;

/// The body of every refused media token, as the edge answers it: the same whatever was wrong.
const NOT_FOUND_BODY: &str = "not found\n";
/// The edge's `Cache-Control` of a rendition (the bytes under a token never change).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The image host; stops when dropped.
pub struct ImageHost {
    pub addr: SocketAddr,
    state: Arc<HostState>,
    task: JoinHandle<()>,
}

/// One `GET /media/{token}`, as the host judged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaFetch {
    /// The token as requested.
    pub token: String,
    /// What it granted, or why it was refused (answered 404).
    pub outcome: Result<MediaGrant, TokenError>,
}

/// How media tokens are verified: the key distribution signs with, and the time to check their
/// expiry against.
struct MediaCheck {
    signer: Arc<MediaSigner>,
    clock: Arc<dyn Clock>,
}

#[derive(Default)]
struct HostState {
    /// Image ids requested on either route (for `/media/`, the id a valid token grants).
    requests: Mutex<Vec<String>>,
    media_fetches: Mutex<Vec<MediaFetch>>,
    /// Serve the stored PNG whatever is asked (an edge without JPEG conversion).
    stored_only: AtomicBool,
    media: Option<MediaCheck>,
}

/// A 4×4 JPEG (quality 90), made with the encoder the content service uses.
pub fn sample_jpeg() -> Vec<u8> {
    sample_jpeg_sized(4, 4)
}

/// A `width`×`height` JPEG (quality 90).
pub fn sample_jpeg_sized(width: u16, height: u16) -> Vec<u8> {
    let pixels: Vec<u8> = (0..usize::from(width) * usize::from(height))
        .flat_map(|i| [(i % 256) as u8, 128, 255 - (i % 256) as u8])
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 90)
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("encode a sample JPEG");
    out
}

/// A 1080×1350 JPEG: the size of the content service's `INSTAGRAM_FEED` rendition of a portrait
/// image. Encoded once per process (it takes a moment in a debug build).
pub fn sample_feed_jpeg() -> &'static [u8] {
    static FEED: OnceLock<Vec<u8>> = OnceLock::new();
    FEED.get_or_init(|| sample_jpeg_sized(1080, 1350))
}

/// A 4×4 RGB PNG.
pub fn sample_png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 4, 4);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("PNG header");
        writer.write_image_data(&[200; 48]).expect("PNG data");
    }
    out
}

fn jpeg(body: Vec<u8>) -> Response {
    ([(http::header::CONTENT_TYPE, "image/jpeg")], body).into_response()
}

fn png() -> Response {
    ([(http::header::CONTENT_TYPE, "image/png")], sample_png()).into_response()
}

async fn host_image(
    State(state): State<Arc<HostState>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    state.requests.lock().expect("image host").push(id);
    let stored_only = state.stored_only.load(Ordering::SeqCst);
    match query.get("format").map(String::as_str).filter(|_| !stored_only) {
        Some("IMAGE_FORMAT_JPEG") => jpeg(sample_jpeg()),
        None | Some("IMAGE_FORMAT_UNSPECIFIED" | "IMAGE_FORMAT_STORED") => png(),
        Some(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// `GET /media/{token}`, answered as the edge answers it.
async fn host_media(State(state): State<Arc<HostState>>, Path(token): Path<String>) -> Response {
    let outcome = match &state.media {
        // Over-long tokens are refused before any decoding, as at the edge.
        Some(check) if token.len() <= MAX_TOKEN_LEN => check.signer.verify(&token, check.clock.now()),
        // No key given: like an edge with no signing key, every link is refused.
        _ => Err(TokenError::Malformed),
    };
    state.media_fetches.lock().expect("image host").push(MediaFetch { token, outcome: outcome.clone() });
    let Ok(grant) = outcome else {
        return (StatusCode::NOT_FOUND, [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], NOT_FOUND_BODY)
            .into_response();
    };
    state.requests.lock().expect("image host").push(grant.image_id);
    let mut response = match grant.variant {
        _ if state.stored_only.load(Ordering::SeqCst) => png(),
        MediaVariant::Original => png(),
        MediaVariant::Jpeg => jpeg(sample_jpeg()),
        MediaVariant::InstagramFeed => jpeg(sample_feed_jpeg().to_vec()),
        // The KT partner rendition: the stored PNG stands in (this host draws no QR code).
        MediaVariant::PartnerQr => png(),
    };
    let headers = response.headers_mut();
    headers.insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static(IMMUTABLE));
    headers.insert(http::header::X_CONTENT_TYPE_OPTIONS, http::HeaderValue::from_static("nosniff"));
    response
}

async fn hop(Path(n): Path<u32>) -> Response {
    let next = match n {
        0 => "/api/v1/public/images/hop?format=IMAGE_FORMAT_JPEG".to_owned(),
        n => format!("/hop/{}", n - 1),
    };
    (StatusCode::FOUND, [(http::header::LOCATION, next)]).into_response()
}

impl ImageHost {
    /// A host with no media key: every `/media/{token}` is refused (404).
    pub async fn start() -> ImageHost {
        ImageHost::serve(HostState::default()).await
    }

    /// A host verifying `/media/{token}` links with `key` (the raw bytes, at least 32; give
    /// distribution the same key, base64) against the system clock.
    pub async fn start_with_media_key(key: &[u8]) -> ImageHost {
        let signer = MediaSigner::new(key, &[]).expect("a media key of at least 32 bytes");
        ImageHost::start_with_media(Arc::new(signer), Arc::new(SystemClock)).await
    }

    /// A host verifying `/media/{token}` links with `signer` at `clock`'s time (share a test's
    /// manual clock to see links expire).
    pub async fn start_with_media(signer: Arc<MediaSigner>, clock: Arc<dyn Clock>) -> ImageHost {
        ImageHost::serve(HostState { media: Some(MediaCheck { signer, clock }), ..HostState::default() }).await
    }

    async fn serve(state: HostState) -> ImageHost {
        let state = Arc::new(state);
        let router = Router::new()
            .route("/media/{token}", get(host_media))
            .route("/api/v1/public/images/{id}", get(host_image))
            .route("/hop/{n}", get(hop))
            .route("/wide.jpg", get(|| async { jpeg(sample_jpeg_sized(40, 10)) }))
            .route(
                "/huge.jpg",
                get(|| async {
                    let mut body = sample_jpeg();
                    body.resize(MAX_IMAGE_BYTES + 1, 0);
                    jpeg(body)
                }),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind image host");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("image host serves");
        });
        ImageHost { addr, state, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The image ids requested so far, on either route (a refused media token names none).
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().expect("image host").clone()
    }

    /// Every `GET /media/{token}` so far, granted or refused.
    pub fn media_fetches(&self) -> Vec<MediaFetch> {
        self.state.media_fetches.lock().expect("image host").clone()
    }

    /// From now on serve the stored PNG whatever is asked, as an edge without JPEG conversion
    /// would.
    pub fn serve_stored_only(&self) {
        self.state.stored_only.store(true, Ordering::SeqCst);
    }
}

impl Drop for ImageHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use kem_kit::clock::ManualClock;

    use super::super::testing::get_raw;
    use super::super::{IG_USER, IgServer, TOKEN, VERSION, testing};
    use super::*;

    const KEY: [u8; 32] = [42; 32];
    const IMAGE: &str = "0b6f3a52-9c1e-4d7a-8f00-5e2b1c3d4e5f";
    const DAY: Duration = Duration::from_secs(86_400);

    fn content_type(headers: &http::HeaderMap) -> &str {
        headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    fn signer(key: &[u8]) -> MediaSigner {
        MediaSigner::new(key, &[]).expect("signer")
    }

    #[tokio::test]
    async fn a_signed_link_serves_the_rendition_it_grants() {
        let clock = ManualClock::starting_now();
        let host = ImageHost::start_with_media(Arc::new(signer(&KEY)), Arc::new(clock.clone())).await;
        let link = |variant| {
            let token = signer(&KEY).sign(IMAGE, variant, clock.now() + DAY).expect("sign");
            (format!("{}/media/{token}", host.base_url()), token)
        };

        let (jpeg_url, _) = link(MediaVariant::Jpeg);
        let (status, headers, body) = get_raw(&jpeg_url).await;
        assert_eq!((status, content_type(&headers)), (200, "image/jpeg"));
        assert_eq!(body.as_ref(), sample_jpeg().as_slice());
        assert_eq!(&headers[http::header::CACHE_CONTROL], IMMUTABLE);
        let (feed_url, _) = link(MediaVariant::InstagramFeed);
        let (status, headers, body) = get_raw(&feed_url).await;
        assert_eq!((status, content_type(&headers)), (200, "image/jpeg"));
        assert_eq!(super::super::jpeg_dimensions(&body), Some((1080, 1350)), "a feed-sized JPEG");
        let (original_url, original_token) = link(MediaVariant::Original);
        let (status, headers, body) = get_raw(&original_url).await;
        assert_eq!((status, content_type(&headers)), (200, "image/png"));
        assert_eq!(body.as_ref(), sample_png().as_slice());
        assert_eq!(host.requests(), vec![IMAGE; 3]);

        // Instagram's crawler takes the feed JPEG, and refuses the PNG.
        let ig = IgServer::start().await;
        let media = format!("{}/{VERSION}/{IG_USER}/media", ig.base_url());
        let create = |url: &str| {
            let pairs =
                [("image_url", url.to_owned()), ("caption", "hi".to_owned()), ("access_token", TOKEN.to_owned())];
            let media = media.clone();
            async move {
                let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
                testing::post_form(&media, &pairs).await.1
            }
        };
        assert_eq!(create(&feed_url).await["id"], "c-1");
        assert_eq!(create(&original_url).await["error"]["error_subcode"], 2_207_005);

        // Expired on the host's clock: 404, and no image is named.
        clock.advance(DAY);
        let (status, _, body) = get_raw(&original_url).await;
        assert_eq!((status, body.as_ref()), (404, NOT_FOUND_BODY.as_bytes()));
        let last = host.media_fetches().pop().expect("recorded");
        assert_eq!((last.token, last.outcome), (original_token, Err(TokenError::Expired)));
        assert_eq!(host.requests().len(), 5, "three here, two by the crawler; none for the expired link");
    }

    #[tokio::test]
    async fn forged_garbage_and_unkeyed_links_are_the_same_404() {
        let host = ImageHost::start_with_media_key(&KEY).await;
        let base = host.base_url();
        let later = SystemTime::now() + DAY;
        let forged = signer(&[7; 32]).sign(IMAGE, MediaVariant::Jpeg, later).expect("sign");
        let good = signer(&KEY).sign(IMAGE, MediaVariant::Jpeg, later).expect("sign");
        let mut flipped = good.clone().into_bytes();
        flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).expect("ascii");
        let long = "A".repeat(10_000);
        for token in [forged.as_str(), flipped.as_str(), "x", "..%00", "%0d%0aSet-Cookie:x", long.as_str()] {
            let (status, _, body) = get_raw(&format!("{base}/media/{token}")).await;
            assert_eq!((status, body.as_ref()), (404, NOT_FOUND_BODY.as_bytes()), "{token:.40}");
        }
        assert!(host.requests().is_empty(), "a refused token names no image");
        assert!(host.media_fetches().iter().all(|f| f.outcome.is_err()));

        // A host given no key refuses even a well-signed link, like an edge with no key.
        let unkeyed = ImageHost::start().await;
        let (status, _, _) = get_raw(&format!("{}/media/{good}", unkeyed.base_url())).await;
        assert_eq!(status, 404);
        // The older route still answers.
        let (status, headers, _) =
            get_raw(&format!("{}/api/v1/public/images/a?format=IMAGE_FORMAT_JPEG", unkeyed.base_url())).await;
        assert_eq!((status, content_type(&headers)), (200, "image/jpeg"));
        assert_eq!(unkeyed.requests(), vec!["a".to_owned()]);
    }

    #[tokio::test]
    async fn an_edge_without_conversion_serves_the_png_for_every_variant() {
        let host = ImageHost::start_with_media_key(&KEY).await;
        host.serve_stored_only();
        let token = signer(&KEY).sign(IMAGE, MediaVariant::InstagramFeed, SystemTime::now() + DAY).expect("sign");
        let (status, headers, _) = get_raw(&format!("{}/media/{token}", host.base_url())).await;
        assert_eq!((status, content_type(&headers)), (200, "image/png"));
    }
}
