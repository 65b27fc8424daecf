use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::BodyExt as _;
use kem_kit::cache::MemoryCache;
use kem_kit::jwt::{Issuer, SigningKey};
use kem_kit::media::MediaVariant;
use parking_lot::Mutex;
use tower::ServiceExt as _;

use super::*;
use crate::auth::{JwtAuthenticator, StaticKeys};
use crate::edge::EdgeConfig;
use crate::idempotency::IdempotencyStore;
use crate::protect::{EdgeLimiter, EdgeLimits};
use crate::routes::RouteTable;
use crate::upstream::Upstreams;

const IMAGE: &str = "3c5d2b1a-0000-4000-8000-000000000000";
const ENTRY: &str = "https://kem.example/e/3c5d2b1a?src=kt";

/// A clock the test moves.
#[derive(Debug)]
struct TestClock(Mutex<SystemTime>);

impl Clock for TestClock {
    fn now(&self) -> SystemTime {
        *self.0.lock()
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn signer() -> Arc<MediaSigner> {
    Arc::new(MediaSigner::new(&[7; 32], &[]).expect("signer"))
}

fn edge(clock: Arc<TestClock>, media: bool) -> Arc<Edge> {
    let issuer = Issuer::new(SigningKey::generate().expect("key"), "kem-user", "kem-api");
    let keys = Arc::new(StaticKeys(issuer.jwks(SystemTime::now())));
    let media = media.then(|| Arc::new(MediaEdge::new(signer(), clock)));
    Arc::new(Edge {
        routes: RouteTable::from_pool(kem_proto::descriptor_pool()).expect("routes"),
        upstreams: Upstreams::new(),
        auth: JwtAuthenticator::new("kem-user", "kem-api", keys),
        limiter: EdgeLimiter::new(&EdgeLimits::default()),
        idempotency: IdempotencyStore::new(Arc::new(MemoryCache::new(10)), Duration::from_secs(60)),
        config: EdgeConfig { media, ..EdgeConfig::default() },
    })
}

#[test]
fn only_a_valid_unexpired_untampered_token_is_granted() {
    let clock = Arc::new(TestClock(Mutex::new(at(1_000))));
    let edge = edge(clock.clone(), true);
    let token = signer().sign(IMAGE, MediaVariant::InstagramFeed, at(2_000)).expect("sign");
    let grant = verified(&edge, &format!("/media/{token}")).map(|(_, g)| g).expect("granted");
    assert_eq!((grant.image_id.as_str(), grant.variant), (IMAGE, MediaVariant::InstagramFeed));

    // Tampered: one character of the signature, one of the payload.
    for at_index in [0, 5, token.len() - 1] {
        let mut chars: Vec<char> = token.chars().collect();
        chars[at_index] = if chars[at_index] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert!(verified(&edge, &format!("/media/{tampered}")).is_none(), "tampered at {at_index}");
    }
    let forged = MediaSigner::new(&[8; 32], &[]).expect("other").sign(IMAGE, MediaVariant::Jpeg, at(2_000));
    assert!(verified(&edge, &format!("/media/{}", forged.expect("sign"))).is_none(), "another key");
    for garbage in ["", "x", "%00", "..", "\u{7f}", &"A".repeat(MAX_TOKEN_LEN + 1), &"A".repeat(56)] {
        assert!(verified(&edge, &format!("/media/{garbage}")).is_none(), "{garbage:.20}");
    }
    assert!(verified(&edge, &format!("/other/{token}")).is_none());

    // Expired by the clock.
    *clock.0.lock() = at(2_000);
    assert!(verified(&edge, &format!("/media/{token}")).is_none(), "expired");

    // No key configured: nothing is granted.
    let keyless = self::edge(clock, false);
    assert!(verified(&keyless, &format!("/media/{token}")).is_none());
}

#[test]
fn a_partner_qr_token_grants_its_signed_text_and_nothing_else() {
    let clock = Arc::new(TestClock(Mutex::new(at(1_000))));
    let edge = edge(clock.clone(), true);
    let token = signer().sign_partner_qr(IMAGE, ENTRY, at(2_000)).expect("sign");
    let grant = verified(&edge, &format!("/media/{token}")).map(|(_, g)| g).expect("granted");
    assert_eq!((grant.variant, grant.qr_text.as_deref()), (MediaVariant::PartnerQr, Some(ENTRY)));
    let key = cache::Key::of(&grant);
    assert_eq!(key.qr_text.as_deref(), Some(ENTRY), "the text is part of the cache key");

    // Any changed character — in the text, the fixed fields or the tag — is refused.
    let text_starts = 26 * 4 / 3 + 1;
    for at_index in [0, 3, text_starts, text_starts + 8, token.len() / 2, token.len() - 1] {
        let mut chars: Vec<char> = token.chars().collect();
        chars[at_index] = if chars[at_index] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert!(verified(&edge, &format!("/media/{tampered}")).is_none(), "tampered at {at_index}");
    }
    // Cut short, or with characters added: refused.
    for cut in [&token[..token.len() - 1], &token[..token.len() - 4], &token[..60]] {
        assert!(verified(&edge, &format!("/media/{cut}")).is_none(), "{}", cut.len());
    }
    assert!(verified(&edge, &format!("/media/{token}AAAA")).is_none());
    // Another key's token for another link: refused.
    let forged =
        MediaSigner::new(&[8; 32], &[]).expect("other").sign_partner_qr(IMAGE, "https://evil.example/", at(2_000));
    assert!(verified(&edge, &format!("/media/{}", forged.expect("sign"))).is_none(), "another key");
    // Past the longest token, not even decoded; control characters and percent-escapes refused.
    for garbage in [
        "A".repeat(MAX_TOKEN_LEN + 1),
        format!("{token}{}", "A".repeat(MAX_TOKEN_LEN)),
        format!("{}%0a", &token[..token.len() - 3]),
        format!("{}\u{0}", &token[..token.len() - 1]),
    ] {
        assert!(verified(&edge, &format!("/media/{garbage}")).is_none(), "{garbage:.30}");
    }
    *clock.0.lock() = at(2_000);
    assert!(verified(&edge, &format!("/media/{token}")).is_none(), "expired");
}

async fn call(edge: &Arc<Edge>, method: Method, path: &str) -> (StatusCode, HeaderMap, bytes::Bytes) {
    let request = http::Request::builder().method(method).uri(path).body(Body::empty()).expect("request");
    let response = handle(edge, request).await;
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.collect().await.expect("body").to_bytes())
}

#[tokio::test]
async fn every_refusal_is_the_same_small_404_without_a_backend_call() {
    let clock = Arc::new(TestClock(Mutex::new(at(1_000))));
    let edge = edge(clock.clone(), true);
    let good = signer().sign(IMAGE, MediaVariant::Jpeg, at(2_000)).expect("sign");
    let expired = signer().sign(IMAGE, MediaVariant::Jpeg, at(1_000)).expect("sign");
    let mut tampered = good.clone().into_bytes();
    tampered[40] = if tampered[40] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let long = "A".repeat(10_000);
    let mut bodies = Vec::new();
    for token in [expired.as_str(), tampered.as_str(), "garbage", long.as_str(), "%00%0d%0a"] {
        let (status, headers, body) = call(&edge, Method::GET, &format!("/media/{token}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{token:.20}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
        assert!(body.len() < 32);
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "no hint of what was wrong");
    // A valid token reaches for the content service: none here, so 503 (not 404) with Retry-After.
    let (status, headers, _) = call(&edge, Method::GET, &format!("/media/{good}")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(headers.contains_key(header::RETRY_AFTER));
    let (status, headers, _) = call(&edge, Method::POST, &format!("/media/{good}")).await;
    assert_eq!(
        (status, &headers[header::ALLOW]),
        (StatusCode::METHOD_NOT_ALLOWED, &HeaderValue::from_static("GET, HEAD"))
    );
}

#[tokio::test]
async fn the_route_is_mounted_on_the_edge() {
    let clock = Arc::new(TestClock(Mutex::new(at(1_000))));
    let app = crate::router(edge(clock, true), None, &[]);
    let request = http::Request::builder().uri("/media/garbage").body(Body::empty()).expect("request");
    let response = app.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8", "the media 404, not JSON");
    assert!(response.headers().contains_key("ratelimit-limit") || response.headers().contains_key("ratelimit"));
}

fn rendition() -> Rendition {
    let data: Vec<u8> = (0..=255u8).cycle().take(1_000).collect();
    Rendition { content_type: "image/jpeg".into(), sha256: "ab".repeat(32), data: data.into() }
}

fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(name.clone(), HeaderValue::from_str(value).expect("value"));
    }
    map
}

async fn body(response: Response) -> bytes::Bytes {
    response.into_body().collect().await.expect("body").to_bytes()
}

#[tokio::test]
async fn renditions_carry_their_type_length_tag_and_a_year_of_caching() {
    let r = rendition();
    let response = serve(&r, &HeaderMap::new());
    assert_eq!(response.status(), StatusCode::OK);
    let h = response.headers().clone();
    assert_eq!(h[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(h[header::CONTENT_LENGTH], "1000");
    assert_eq!(h[header::ETAG], format!("\"{}\"", r.sha256).as_str());
    assert_eq!(h[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert_eq!(h[header::ACCEPT_RANGES], "bytes");
    assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(body(response).await, r.data);
}

#[tokio::test]
async fn a_held_tag_is_304_without_the_bytes() {
    let r = rendition();
    let tag = format!("\"{}\"", r.sha256);
    for held in [tag.clone(), format!("W/{tag}"), "*".to_owned(), format!("\"other\", {tag}")] {
        let response = serve(&r, &headers(&[(header::IF_NONE_MATCH, &held)]));
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{held}");
        assert_eq!(response.headers()[header::ETAG], tag.as_str());
        assert!(!response.headers().contains_key(header::CONTENT_TYPE));
        assert!(body(response).await.is_empty());
    }
    let response = serve(&r, &headers(&[(header::IF_NONE_MATCH, "\"other\"")]));
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn one_range_is_206_and_a_range_past_the_end_416() {
    let r = rendition();
    let response = serve(&r, &headers(&[(header::RANGE, "bytes=10-19")]));
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes 10-19/1000");
    assert_eq!(response.headers()[header::CONTENT_LENGTH], "10");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "image/jpeg");
    assert_eq!(body(response).await, r.data.slice(10..20));

    let response = serve(&r, &headers(&[(header::RANGE, "bytes=-4")]));
    assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes 996-999/1000");
    assert_eq!(body(response).await, r.data.slice(996..));

    let response = serve(&r, &headers(&[(header::RANGE, "bytes=1000-")]));
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes */1000");

    let response = serve(&r, &headers(&[(header::RANGE, "bytes=0-1,5-6")]));
    assert_eq!(response.status(), StatusCode::OK, "several ranges: the whole");
    assert_eq!(body(response).await.len(), 1000);
}
