//! Public media links (`/media/{token}`) through a real edge in front of a content backend over
//! mesh mTLS: the rendition with its caching headers, 304, ranges and HEAD; expired, tampered and
//! unknown links all the same 404; the rendition cache; a crawler storm on one link costing
//! one backend call while another client keeps being served; and the KT partner QR links, whose
//! signed text reaches content exactly and keys the cache.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kem_gateway::edge::EdgeConfig;
use kem_gateway::media::MediaEdge;
use kem_gateway::protect::EdgeLimits;
use kem_kit::clock::Clock;
use kem_kit::media::{MediaSigner, MediaVariant};
use parking_lot::Mutex;

use kem_testkit::contracts::instagram::{IG_USER, IgServer, TOKEN, VERSION};

use crate::support::{IMAGE_BYTES, MEDIA_MISSING, MEDIA_SLOW, Setup, client, image_sha256, partner_qr_bytes, start};

const IMAGE: &str = "3c5d2b1a-0000-4000-8000-000000000001";
const OTHER: &str = "3c5d2b1a-0000-4000-8000-000000000002";

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
    Arc::new(MediaSigner::new(&[42; 32], &[]).expect("signer"))
}

async fn media_edge() -> (Setup, Arc<TestClock>) {
    let clock = Arc::new(TestClock(Mutex::new(at(1_800_000_000))));
    let media = Arc::new(MediaEdge::new(signer(), clock.clone()));
    let setup = start(EdgeConfig { media: Some(media), ..EdgeConfig::default() }, EdgeLimits::default()).await;
    (setup, clock)
}

fn link(setup: &Setup, image: &str, expires: u64) -> String {
    link_to(setup, image, MediaVariant::Original, expires)
}

fn link_to(setup: &Setup, image: &str, variant: MediaVariant, expires: u64) -> String {
    setup.url(&format!("/media/{}", signer().sign(image, variant, at(expires)).expect("sign")))
}

#[tokio::test]
async fn a_link_serves_its_rendition_with_tag_ranges_head_and_a_year_of_caching() {
    let (setup, _clock) = media_edge().await;
    let url = link(&setup, IMAGE, 1_800_086_400);
    let http = client();

    let response = http.get(&url).send().await.expect("get");
    assert_eq!(response.status(), 200);
    let h = response.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["content-length"], IMAGE_BYTES.len().to_string().as_str());
    assert_eq!(h["etag"], format!("\"{}\"", image_sha256()).as_str());
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(h.contains_key("x-request-id"));
    assert_eq!(response.bytes().await.expect("body").as_ref(), IMAGE_BYTES);
    assert_eq!(setup.images.calls.load(Ordering::SeqCst), 1);

    // Cached at the edge: no second backend call for the same link.
    let again = http.get(&url).send().await.expect("again");
    assert_eq!(again.bytes().await.expect("body").as_ref(), IMAGE_BYTES);
    assert_eq!(setup.images.calls.load(Ordering::SeqCst), 1, "served from the edge's cache");

    let tag = h["etag"].to_str().expect("tag").to_owned();
    let not_modified = http.get(&url).header("if-none-match", &tag).send().await.expect("304");
    assert_eq!(not_modified.status(), 304);
    assert!(not_modified.bytes().await.expect("body").is_empty());

    let part = http.get(&url).header("range", "bytes=0-3").send().await.expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], format!("bytes 0-3/{}", IMAGE_BYTES.len()).as_str());
    assert_eq!(part.bytes().await.expect("body").as_ref(), &IMAGE_BYTES[..4]);
    let past = http.get(&url).header("range", "bytes=100000-").send().await.expect("416");
    assert_eq!(past.status(), 416);
    assert_eq!(past.headers()["content-range"], format!("bytes */{}", IMAGE_BYTES.len()).as_str());

    let head = http.head(&url).send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], IMAGE_BYTES.len().to_string().as_str(), "the GET's length");
    assert_eq!(head.headers()["etag"], tag.as_str());
    assert!(head.bytes().await.expect("body").is_empty());
    setup.shutdown.trigger();
}

#[tokio::test]
async fn expired_tampered_and_unknown_links_are_one_404() {
    let (setup, clock) = media_edge().await;
    let http = client();
    let url = link(&setup, IMAGE, 1_800_000_060);
    assert_eq!(http.get(&url).send().await.expect("get").status(), 200);

    let mut tampered = url.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let missing = link(&setup, MEDIA_MISSING, 1_800_086_400);
    let forged = setup.url(&format!(
        "/media/{}",
        MediaSigner::new(&[1; 32], &[]).expect("other").sign(OTHER, MediaVariant::Jpeg, at(1_900_000_000)).expect("s")
    ));
    *clock.0.lock() = at(1_800_000_060);
    let mut bodies = Vec::new();
    for refused in [url.as_str(), tampered.as_str(), missing.as_str(), forged.as_str()] {
        let response = http.get(refused).send().await.expect("get");
        assert_eq!(response.status(), 404, "{refused}");
        bodies.push(response.bytes().await.expect("body"));
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "no hint of which refusal");
    // Only the unknown image reached the backend (the expired link was served before it expired).
    assert_eq!(setup.images.calls.load(Ordering::SeqCst), 2);
    setup.shutdown.trigger();
}

#[tokio::test]
async fn a_crawler_storm_on_one_link_costs_one_backend_call() {
    let (setup, _clock) = media_edge().await;
    let url = link(&setup, MEDIA_SLOW, 1_800_086_400);
    let http = client();
    let crawlers: Vec<_> = (0..30)
        .map(|_| {
            let (http, url) = (http.clone(), url.clone());
            tokio::spawn(async move {
                let response = http.get(&url).send().await.expect("get");
                (response.status().as_u16(), response.bytes().await.expect("body"))
            })
        })
        .collect();
    // Meanwhile another link is served as usual.
    let other = http.get(link(&setup, OTHER, 1_800_086_400)).send().await.expect("other");
    assert_eq!(other.status(), 200);
    for crawler in crawlers {
        let (status, body) = crawler.await.expect("crawler");
        assert_eq!((status, body.as_ref()), (200, IMAGE_BYTES));
    }
    assert_eq!(setup.images.calls.load(Ordering::SeqCst), 2, "one call for the storm, one for the other link");
    setup.shutdown.trigger();
}

/// Creates an Instagram container for `image_url` at the contract server, as distribution does;
/// its status and Graph answer.
async fn create_container(ig: &IgServer, image_url: &str) -> (u16, serde_json::Value) {
    let url = format!("{}/{VERSION}/{IG_USER}/media", ig.base_url());
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("image_url", image_url), ("caption", "테스트"), ("access_token", TOKEN)])
        .finish();
    let response = client()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .expect("instagram answers");
    (response.status().as_u16(), response.json().await.expect("json"))
}

#[tokio::test]
async fn instagram_takes_the_feed_jpeg_from_the_edge_and_refuses_png_401_and_unreachable() {
    let (setup, _clock) = media_edge().await;
    let ig = IgServer::start().await;
    let wait = Duration::from_secs(2);
    ig.fetch_timeout(wait);

    // The feed rendition: fetched from the running edge, a 1080×1350 JPEG, the container made.
    let feed = link_to(&setup, IMAGE, MediaVariant::InstagramFeed, 1_800_086_400);
    let (status, answer) = create_container(&ig, &feed).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["id"].is_string(), "{answer}");
    let fetch = ig.fetches().pop().expect("Meta's crawler fetched the link");
    assert_eq!((fetch.url.as_str(), fetch.status, fetch.jpeg), (feed.as_str(), Some(200), true));
    assert_eq!((fetch.content_type.as_str(), fetch.dimensions), ("image/jpeg", Some((1080, 1350))));

    // The stored PNG: fetched, refused as an unsupported format.
    let (status, answer) = create_container(&ig, &link(&setup, IMAGE, 1_800_086_400)).await;
    assert_eq!((status, answer["error"]["error_subcode"].as_i64()), (400, Some(2_207_005)), "{answer}");
    // The owner-only route answers Meta 401: media could not be fetched.
    let owner_only = setup.url(&format!("/api/v1/images/{IMAGE}/content"));
    let (status, answer) = create_container(&ig, &owner_only).await;
    assert_eq!((status, answer["error"]["error_subcode"].as_i64()), (400, Some(2_207_052)), "{answer}");
    assert_eq!(ig.fetches().last().and_then(|f| f.status), Some(401));
    // Nothing listening: the same, with the reason recorded.
    let unreachable = format!("http://{}/media/x", kem_testkit::net::free_addr());
    let (status, answer) = create_container(&ig, &unreachable).await;
    assert_eq!((status, answer["error"]["error_subcode"].as_i64()), (400, Some(2_207_052)), "{answer}");
    assert!(ig.fetches().last().is_some_and(|f| f.status.is_none() && f.error.is_some()));
    // An expired link is a 404 to Meta as to anyone.
    let expired = link_to(&setup, IMAGE, MediaVariant::InstagramFeed, 1_799_999_999);
    let (status, answer) = create_container(&ig, &expired).await;
    assert_eq!((status, answer["error"]["error_subcode"].as_i64()), (400, Some(2_207_052)), "{answer}");
    assert_eq!(ig.fetches().last().and_then(|f| f.status), Some(404));
    setup.shutdown.trigger();
}

const ENTRY: &str = "https://kem.example/e/3c5d2b1a-0000-4000-8000-000000000001?src=kt-signage";
const OTHER_ENTRY: &str = "https://kem.example/e/3c5d2b1a-0000-4000-8000-000000000002?src=kt-signage";

fn qr_link(setup: &Setup, image: &str, qr_text: &str, expires: u64) -> String {
    setup.url(&format!("/media/{}", signer().sign_partner_qr(image, qr_text, at(expires)).expect("sign")))
}

fn sha256_hex(data: &[u8]) -> String {
    kem_kit::hex::encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

#[tokio::test]
async fn a_partner_qr_link_passes_its_signed_text_and_each_text_is_its_own_rendition() {
    let (setup, _clock) = media_edge().await;
    let http = client();
    let url = qr_link(&setup, IMAGE, ENTRY, 1_800_086_400);
    assert!(url.len() < 1024, "a link of {} bytes", url.len());

    let response = http.get(&url).send().await.expect("get");
    assert_eq!(response.status(), 200);
    let tag = response.headers()["etag"].to_str().expect("tag").to_owned();
    assert_eq!(tag, format!("\"{}\"", sha256_hex(&partner_qr_bytes(ENTRY))));
    assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(response.bytes().await.expect("body").as_ref(), partner_qr_bytes(ENTRY).as_slice());
    assert_eq!(*setup.images.qr_texts.lock(), vec![ENTRY.to_owned()], "exactly the signed text");

    // The same text under another link (another expiry): the cached body, no backend call.
    let same = qr_link(&setup, IMAGE, ENTRY, 1_800_090_000);
    assert_ne!(same, url);
    let again = http.get(&same).send().await.expect("again");
    assert_eq!(again.headers()["etag"], tag.as_str());
    assert_eq!(setup.images.calls.load(Ordering::SeqCst), 1);

    // Another text on the same image: its own backend call, body and ETag; the first one's tag
    // does not make it a 304.
    let other = qr_link(&setup, IMAGE, OTHER_ENTRY, 1_800_086_400);
    let response = http.get(&other).header("if-none-match", &tag).send().await.expect("other");
    assert_eq!(response.status(), 200, "another text is another entity");
    let other_tag = response.headers()["etag"].to_str().expect("tag").to_owned();
    assert_ne!(other_tag, tag);
    assert_eq!(response.bytes().await.expect("body").as_ref(), partner_qr_bytes(OTHER_ENTRY).as_slice());
    assert_eq!(*setup.images.qr_texts.lock(), vec![ENTRY.to_owned(), OTHER_ENTRY.to_owned()]);
    // And the first is still the first (the cache kept both apart).
    let first = http.get(&url).send().await.expect("first again");
    assert_eq!(first.bytes().await.expect("body").as_ref(), partner_qr_bytes(ENTRY).as_slice());
    assert_eq!(setup.images.calls.load(Ordering::SeqCst), 2);

    // The other variants still send no text.
    let jpeg = http.get(link_to(&setup, IMAGE, MediaVariant::Jpeg, 1_800_086_400)).send().await.expect("jpeg");
    assert_eq!(jpeg.status(), 200);
    assert_eq!(setup.images.qr_texts.lock().last().map(String::as_str), Some(""));
    setup.shutdown.trigger();
}

#[tokio::test]
async fn tampered_swapped_forged_expired_and_over_long_qr_links_are_one_404_without_a_backend_call() {
    let (setup, clock) = media_edge().await;
    let http = client();
    let token = signer().sign_partner_qr(IMAGE, ENTRY, at(1_800_000_060)).expect("sign");
    // Flip one character of the text part (past the fixed fields), of the fixed part, of the tag.
    let text_starts = 26 * 4 / 3 + 1;
    let mut refused = Vec::new();
    for index in [2, text_starts + 5, text_starts + 40, token.len() - 2] {
        let mut bytes = token.clone().into_bytes();
        bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
        refused.push(String::from_utf8(bytes).expect("ascii"));
    }
    // Another link's text spliced into this token (text bytes swapped, tag kept).
    let other = signer().sign_partner_qr(IMAGE, OTHER_ENTRY, at(1_800_000_060)).expect("sign");
    let tag_chars = 22;
    refused.push(format!("{}{}", &other[..other.len() - tag_chars], &token[token.len() - tag_chars..]));
    // Cut short, lengthened, and a plain-variant token grafted onto a text.
    refused.push(token[..token.len() - 4].to_owned());
    refused.push(format!("{token}AAAA"));
    let plain = signer().sign(IMAGE, MediaVariant::Original, at(1_800_000_060)).expect("sign");
    refused.push(format!("{}{}", &plain[..40], &token[40..]));
    // Another key, naming another link.
    refused.push(
        MediaSigner::new(&[1; 32], &[])
            .expect("other key")
            .sign_partner_qr(IMAGE, "https://evil.example/", at(1_900_000_000))
            .expect("sign"),
    );
    // Over-long (past the longest token the edge looks at) and percent-escaped control characters.
    refused.push("A".repeat(kem_kit::media::MAX_TOKEN_LEN + 1));
    refused.push(format!("{token}{}", "A".repeat(2_000)));
    refused.push(format!("{}%0d%0a", &token[..token.len() - 6]));
    let mut bodies = Vec::new();
    for bad in &refused {
        let response = http.get(setup.url(&format!("/media/{bad}"))).send().await.expect("get");
        assert_eq!(response.status(), 404, "{bad:.60}");
        bodies.push(response.bytes().await.expect("body"));
    }
    // Expired by the clock.
    assert_eq!(http.get(setup.url(&format!("/media/{token}"))).send().await.expect("get").status(), 200);
    *clock.0.lock() = at(1_800_000_060);
    let expired = http.get(setup.url(&format!("/media/{token}"))).send().await.expect("expired");
    assert_eq!(expired.status(), 404);
    bodies.push(expired.bytes().await.expect("body"));
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "no hint of which refusal");
    assert_eq!(setup.images.calls.load(Ordering::SeqCst), 1, "only the valid link reached the backend");
    assert_eq!(*setup.images.qr_texts.lock(), vec![ENTRY.to_owned()]);
    setup.shutdown.trigger();
}

#[tokio::test]
async fn a_crawler_storm_on_two_qr_texts_costs_one_call_each_and_never_mixes_them() {
    let (setup, _clock) = media_edge().await;
    let http = client();
    let links =
        [qr_link(&setup, MEDIA_SLOW, ENTRY, 1_800_086_400), qr_link(&setup, MEDIA_SLOW, OTHER_ENTRY, 1_800_086_400)];
    let crawlers: Vec<_> = (0..20)
        .map(|i| {
            let (http, url, text) = (http.clone(), links[i % 2].clone(), [ENTRY, OTHER_ENTRY][i % 2]);
            tokio::spawn(async move {
                let response = http.get(&url).send().await.expect("get");
                (response.status().as_u16(), response.bytes().await.expect("body"), text)
            })
        })
        .collect();
    for crawler in crawlers {
        let (status, body, text) = crawler.await.expect("crawler");
        assert_eq!((status, body.as_ref()), (200, partner_qr_bytes(text).as_slice()), "{text}");
    }
    assert_eq!(setup.images.calls.load(Ordering::SeqCst), 2, "one call per text");
    let mut texts = setup.images.qr_texts.lock().clone();
    texts.sort();
    assert_eq!(texts, vec![ENTRY.to_owned(), OTHER_ENTRY.to_owned()]);
    setup.shutdown.trigger();
}

#[tokio::test]
async fn without_a_key_every_link_is_404() {
    let setup = start(EdgeConfig::default(), EdgeLimits::default()).await;
    let response = client().get(link(&setup, IMAGE, 1_900_000_000)).send().await.expect("get");
    assert_eq!(response.status(), 404);
    assert_eq!(setup.images.calls.load(Ordering::SeqCst), 0);
    setup.shutdown.trigger();
}
