//! Raw answers (`response_body` bytes) through the edge: content-addressed bytes (a `sha256` beside
//! them) carry an `ETag` and are `304 Not Modified` for a client that holds the tag; only the
//! public images (ACCESS_PUBLIC, NO_SIDE_EFFECTS) are cacheable by anyone, for a day, immutably.

use kem_gateway::caching::PUBLIC_IMMUTABLE;
use kem_gateway::edge::EdgeConfig;
use kem_gateway::protect::EdgeLimits;
use reqwest::{Method, Response, StatusCode};

use crate::support::{IMAGE_BYTES, Setup, client, image_sha256, start};

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().expect("ascii header"))
}

async fn fetch(setup: &Setup, method: Method, path: &str, if_none_match: Option<&str>, token: bool) -> Response {
    let mut request = client().request(method, setup.url(path));
    if let Some(tags) = if_none_match {
        request = request.header("if-none-match", tags);
    }
    if token {
        request = request.bearer_auth(setup.token("owner-1"));
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn public_images_are_cacheable_by_anyone_with_an_etag_and_a_304_for_a_held_tag() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let tag = format!("\"{}\"", image_sha256());
    let path = "/api/v1/public/images/img-1";

    let full = fetch(&setup, Method::GET, path, None, false).await;
    assert_eq!(full.status(), StatusCode::OK, "no login needed");
    assert_eq!(header(&full, "content-type"), Some("image/png"));
    assert_eq!(header(&full, "etag"), Some(tag.as_str()));
    assert_eq!(header(&full, "cache-control"), Some(PUBLIC_IMMUTABLE));
    assert_eq!(full.bytes().await.expect("body").as_ref(), IMAGE_BYTES);

    // The tag, weak or strong, alone or in a list, or `*`: 304 with the validators, no bytes.
    for held in [tag.clone(), format!("W/{tag}"), format!("\"stale\", {tag}"), "*".to_owned()] {
        let not_modified = fetch(&setup, Method::GET, path, Some(&held), false).await;
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED, "{held}");
        assert_eq!(header(&not_modified, "etag"), Some(tag.as_str()));
        assert_eq!(header(&not_modified, "cache-control"), Some(PUBLIC_IMMUTABLE));
        assert!(header(&not_modified, "content-type").is_none());
        assert!(not_modified.bytes().await.expect("body").is_empty());
    }
    let head = fetch(&setup, Method::HEAD, path, Some(&tag), false).await;
    assert_eq!(head.status(), StatusCode::NOT_MODIFIED, "HEAD is conditional too");

    // Another tag: the bytes again.
    let changed = fetch(&setup, Method::GET, path, Some("\"stale\""), false).await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(changed.bytes().await.expect("body").as_ref(), IMAGE_BYTES);

    // Errors and bytes without a digest promise nothing to caches.
    let missing = fetch(&setup, Method::GET, "/api/v1/public/images/missing", Some(&tag), false).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND, "a held tag never hides an error");
    assert!(header(&missing, "etag").is_none() && header(&missing, "cache-control").is_none());
    let untagged = fetch(&setup, Method::GET, "/api/v1/public/images/untagged", Some(&tag), false).await;
    assert_eq!(untagged.status(), StatusCode::OK);
    assert!(header(&untagged, "etag").is_none() && header(&untagged, "cache-control").is_none());
    assert_eq!(setup.images.calls.load(std::sync::atomic::Ordering::SeqCst), 9, "every request asked content");
    setup.shutdown.trigger();
}

#[tokio::test]
async fn owner_image_bytes_get_an_etag_and_304_but_no_public_caching() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let tag = format!("\"{}\"", image_sha256());
    let path = "/api/v1/images/img-1/content";

    let full = fetch(&setup, Method::GET, path, None, true).await;
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(header(&full, "content-type"), Some("image/png"));
    assert_eq!(header(&full, "etag"), Some(tag.as_str()));
    assert!(header(&full, "cache-control").is_none(), "an owner's image is never made public");
    assert_eq!(full.bytes().await.expect("body").as_ref(), IMAGE_BYTES);

    let not_modified = fetch(&setup, Method::GET, path, Some(&tag), true).await;
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&not_modified, "etag"), Some(tag.as_str()));
    assert!(header(&not_modified, "cache-control").is_none());

    // A held tag does not replace the login.
    let anonymous = fetch(&setup, Method::GET, path, Some(&tag), false).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    setup.shutdown.trigger();
}
