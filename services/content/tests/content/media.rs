//! The edge's public media renditions (`GetMediaContent`, gateway only): the stored image, its
//! JPEG, the Instagram feed JPEG and the KT partner PNG with a QR code of the signed text, of any
//! image — the edge's signed token is what authorizes the fetch, so no publication is asked
//! about — each converted once (per QR text) and kept in the blob store.

use std::sync::atomic::Ordering;
use std::time::Duration;

use kem_proto::kem::common::v1 as common;
use kem_proto::kem::content::v1 as content;
use kem_testkit::status::{expect_code, expect_invalid_field};
use tonic::{Code, Request};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(60);
const UNKNOWN: &str = "3c5d2b1a-0000-4000-8000-000000000000";

async fn one_image(h: &Harness, job_id: &str, event_id: &str, width: i32, height: i32) -> String {
    let mut job = request(job_id, event_id, OWNER);
    job.sizes = vec![size(common::Channel::Instagram, width, height)];
    job.styles = styles(&[common::ImageStyle::Simple]);
    h.send(&job).await;
    let ids = h.outcome(job_id, WAIT).await.images().image_ids.clone();
    assert_eq!(ids.len(), 1, "{ids:?}");
    ids[0].clone()
}

async fn media(
    api: &kem_content::ContentApi,
    image_id: &str,
    variant: content::MediaVariant,
) -> Result<content::GetMediaContentResponse, tonic::Status> {
    media_with(api, image_id, variant as i32, "").await
}

async fn media_with(
    api: &kem_content::ContentApi,
    image_id: &str,
    variant: i32,
    qr_text: &str,
) -> Result<content::GetMediaContentResponse, tonic::Status> {
    use kem_proto::kem::content::v1::content_service_server::ContentService as _;
    let request =
        content::GetMediaContentRequest { image_id: image_id.to_owned(), variant, qr_text: qr_text.to_owned() };
    api.get_media_content(Request::new(request)).await.map(tonic::Response::into_inner)
}

fn sha256_hex(data: &[u8]) -> String {
    kem_kit::hex::encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

fn decoded(data: &[u8]) -> (u16, u16) {
    let mut decoder = jpeg_decoder::Decoder::new(data);
    decoder.decode().expect("an independent decoder reads it");
    let info = decoder.info().expect("info");
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24, "sRGB, no alpha");
    (info.width, info.height)
}

#[tokio::test]
async fn every_variant_is_served_with_its_size_and_converted_once() {
    let h = Harness::start(test_config()).await;
    // 1:2 — too tall for Instagram, so the feed rendition is centre-cropped to 4:5.
    let image = one_image(&h, "job-media", "event-media", 200, 400).await;
    let conversions = || h.api.app().metrics().jpeg_conversions.load(Ordering::Relaxed);

    let original = media(&h.api, &image, content::MediaVariant::Original).await.expect("original");
    let owned = h.bytes(OWNER, &image).await.expect("owner bytes");
    assert_eq!((original.content_type.as_str(), &original.data), ("image/png", &owned.data));
    assert_eq!((original.width, original.height), (200, 400));
    assert_eq!(original.sha256, sha256_hex(&original.data));

    let jpeg = media(&h.api, &image, content::MediaVariant::Jpeg).await.expect("jpeg");
    assert_eq!(jpeg.content_type, "image/jpeg");
    assert_eq!(decoded(&jpeg.data), (200, 400));
    assert_eq!((jpeg.width, jpeg.height, jpeg.sha256.clone()), (200, 400, sha256_hex(&jpeg.data)));

    let feed = media(&h.api, &image, content::MediaVariant::InstagramFeed).await.expect("feed");
    assert_eq!(feed.content_type, "image/jpeg");
    assert_eq!(decoded(&feed.data), (1080, 1350), "1080 wide, 4:5");
    assert_eq!((feed.width, feed.height), (1080, 1350));
    assert!(feed.data.len() <= 8 * 1024 * 1024);
    assert_eq!(feed.sha256, sha256_hex(&feed.data));
    assert_eq!(conversions(), 2);

    // Kept in the blob store: no further conversion here or on a replica sharing it.
    for variant in [content::MediaVariant::Jpeg, content::MediaVariant::InstagramFeed] {
        let again = media(&h.api, &image, variant).await.expect("again");
        let first = if variant == content::MediaVariant::Jpeg { &jpeg } else { &feed };
        assert_eq!((&again.data, &again.sha256, again.width), (&first.data, &first.sha256, first.width));
    }
    assert_eq!(conversions(), 2, "converted once per variant");
    let (replica, stop) = h.replica(test_config()).await;
    let shared = media(&replica, &image, content::MediaVariant::InstagramFeed).await.expect("from a replica");
    assert_eq!((shared.sha256, shared.height), (feed.sha256.clone(), 1350));
    assert_eq!(replica.app().metrics().jpeg_conversions.load(Ordering::Relaxed), 0);
    stop.trigger();
    assert_eq!(h.events.lookups(), 0, "the token authorizes: no publication is asked about");
    h.cleanup().await;
}

#[tokio::test]
async fn hostile_ids_and_variants_are_invalid_and_unknown_images_not_found() {
    let h = Harness::start(test_config()).await;
    let image = one_image(&h, "job-media-bad", "event-media-bad", 64, 64).await;
    for bad in ["x".repeat(16_000), "\u{0}".into(), "%00".into(), "../../etc/passwd".into(), "".into()] {
        expect_invalid_field(media(&h.api, &bad, content::MediaVariant::Jpeg).await, "imageId");
    }
    for bad in [0, 5, -1, i32::MAX, i32::MIN] {
        expect_invalid_field(media_with(&h.api, &image, bad, "").await, "variant");
    }
    let unknown = expect_code(media(&h.api, UNKNOWN, content::MediaVariant::Original).await, Code::NotFound);
    assert_eq!(status_reason(&unknown), "kem.content/IMAGE_NOT_FOUND");
    h.cleanup().await;
}

async fn partner(
    api: &kem_content::ContentApi,
    image_id: &str,
    qr_text: &str,
) -> Result<content::GetMediaContentResponse, tonic::Status> {
    media_with(api, image_id, content::MediaVariant::PartnerQr as i32, qr_text).await
}

/// RGB pixels of a PNG, with its size (the `png` crate: an independent decoder of what we encode).
fn pixels(data: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(data));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buffer).expect("frame");
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected {other:?}"),
    };
    let mut rgb = Vec::with_capacity((info.width * info.height * 3) as usize);
    for y in 0..info.height as usize {
        let row = &buffer[y * info.line_size..y * info.line_size + info.width as usize * channels];
        for px in row.chunks_exact(channels) {
            rgb.extend_from_slice(&px[..3]);
        }
    }
    (info.width, info.height, rgb)
}

/// The texts of the QR codes an independent reader (rqrr) finds in RGB `pixels`.
fn qr_codes(width: u32, height: u32, pixels: &[u8]) -> Vec<String> {
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(width as usize, height as usize, |x, y| {
        let i = (y * width as usize + x) * 3;
        ((u32::from(pixels[i]) * 299 + u32::from(pixels[i + 1]) * 587 + u32::from(pixels[i + 2]) * 114) / 1000) as u8
    });
    prepared.detect_grids().iter().filter_map(|grid| grid.decode().ok().map(|(_, text)| text)).collect()
}

const ENTRY: &str =
    "https://kem.example/e/3c5d2b1a-0000-4000-8000-000000000000?src=kt-signage&utm_campaign=spring-2027";

#[tokio::test]
async fn the_partner_rendition_carries_a_readable_qr_code_of_exactly_the_text() {
    let h = Harness::start(test_config()).await;
    let image = one_image(&h, "job-media-qr", "event-media-qr", 600, 800).await;
    let renders = || h.api.app().metrics().qr_renditions.load(Ordering::Relaxed);
    let stored = h.bytes(OWNER, &image).await.expect("owner bytes");
    let (sw, sh, source) = pixels(&stored.data);
    assert_eq!((sw, sh), (600, 800));

    let served = partner(&h.api, &image, ENTRY).await.expect("partner rendition");
    assert_eq!(served.content_type, "image/png");
    assert_eq!((served.width, served.height), (600, 800));
    assert_eq!(served.sha256, sha256_hex(&served.data));
    let (w, h_px, rendered) = pixels(&served.data);
    assert_eq!((w, h_px), (600, 800));
    assert_eq!(qr_codes(w, h_px, &rendered), vec![ENTRY.to_owned()], "exactly the signed text");

    // The box is in the bottom-right corner: find its white quiet zone's top-left from the corner.
    let at = |x: u32, y: u32| {
        let i = ((y * w + x) * 3) as usize;
        [rendered[i], rendered[i + 1], rendered[i + 2]]
    };
    let side =
        (0..w).take_while(|d| at(w - 1 - d, h_px - 1) == [255; 3] && at(w - 1, h_px - 1 - d) == [255; 3]).count();
    assert!(side >= 4 * 4, "a quiet zone of 4 modules of at least 4 px: {side}");
    let mut changed_outside = 0;
    let mut changed_inside = 0;
    for y in 0..h_px {
        for x in 0..w {
            let i = ((y * w + x) * 3) as usize;
            let same = rendered[i..i + 3] == source[i..i + 3];
            // 600 px shorter side: a box of about 150 px, at most 300 (half).
            let inside = x >= w - 300 && y >= h_px - 300;
            match (inside, same) {
                (false, false) => changed_outside += 1,
                (true, false) => changed_inside += 1,
                _ => {}
            }
        }
    }
    assert_eq!(changed_outside, 0, "nothing outside the QR box changes");
    assert!(changed_inside > 0, "the code is drawn");
    // Sampled: far corners and the centre are the stored image's.
    for (x, y) in [(0, 0), (599, 0), (0, 799), (300, 400), (450, 500)] {
        let i = ((y * w + x) * 3) as usize;
        assert_eq!(rendered[i..i + 3], source[i..i + 3], "({x}, {y})");
    }
    assert_eq!(renders(), 1);

    // Kept: the same text again is the same bytes with no drawing, here or on a replica.
    let again = partner(&h.api, &image, ENTRY).await.expect("again");
    assert_eq!((again.sha256.clone(), again.data.clone()), (served.sha256.clone(), served.data.clone()));
    assert_eq!(renders(), 1, "drawn once per text");
    let (replica, stop) = h.replica(test_config()).await;
    let shared = partner(&replica, &image, ENTRY).await.expect("from a replica");
    assert_eq!(shared.sha256, served.sha256);
    assert_eq!(replica.app().metrics().qr_renditions.load(Ordering::Relaxed), 0);
    stop.trigger();

    // Another text on the same image: another rendition, another ETag, its own code.
    let other_text = "https://kem.example/e/other";
    let other = partner(&h.api, &image, other_text).await.expect("another text");
    assert_ne!(other.sha256, served.sha256, "two texts never share a body or an ETag");
    let (ow, oh, other_pixels) = pixels(&other.data);
    assert_eq!(qr_codes(ow, oh, &other_pixels), vec![other_text.to_owned()]);
    assert_eq!(renders(), 2);
    // The other variants ignore a text, as the contract says.
    let original = media_with(&h.api, &image, content::MediaVariant::Original as i32, "javascript:alert(1)").await;
    let original = original.expect("ignored");
    assert_eq!(original.data, stored.data);
    assert_eq!(h.events.lookups(), 0, "the token authorizes: no publication is asked about");
    h.cleanup().await;
}

#[tokio::test]
async fn hostile_qr_texts_are_invalid_and_too_small_images_not_convertible() {
    let h = Harness::start(test_config()).await;
    let image = one_image(&h, "job-media-qr-bad", "event-media-qr-bad", 64, 64).await;
    let long = format!("https://kem.example/{}", "a".repeat(600));
    let huge = "h".repeat(16_000);
    for bad in [
        "",
        long.as_str(),
        huge.as_str(),
        "https://kem.example/\u{0}",
        "https://kem.example/a\r\nx",
        "https://kem.example/\u{202e}",
        "https://kem.example/a b",
        "javascript:alert(1)",
        "data:text/html,x",
        "//kem.example/e",
        "kem.example/e",
        "https://user:pw@kem.example/",
        "https:\\\\evil.example",
    ] {
        let status = expect_invalid_field(partner(&h.api, &image, bad).await, "qrText");
        assert!(!status.message().contains("evil") && status.message().len() < 300, "{}", status.message());
    }
    // Every problem at once: a bad id and a bad text.
    let status = expect_invalid_field(partner(&h.api, "%00", "javascript:x").await, "qrText");
    expect_invalid_field::<()>(Err(status), "imageId");
    // A valid text on an unknown image: NOT_FOUND; on an image too small for a readable code:
    // FAILED_PRECONDITION, nothing kept.
    expect_code(partner(&h.api, UNKNOWN, ENTRY).await, Code::NotFound);
    let small = expect_code(partner(&h.api, &image, ENTRY).await, Code::FailedPrecondition);
    assert_eq!(status_reason(&small), "kem.content/IMAGE_NOT_CONVERTIBLE");
    assert_eq!(h.api.app().metrics().qr_renditions.load(Ordering::Relaxed), 0);
    h.cleanup().await;
}

#[tokio::test]
async fn concurrent_first_fetches_of_one_text_agree() {
    let h = Harness::start(test_config()).await;
    let image = one_image(&h, "job-media-qr-race", "event-media-qr-race", 400, 400).await;
    let api = std::sync::Arc::new(h.api.clone());
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (api, image) = (api.clone(), image.clone());
            tokio::spawn(async move { partner(&api, &image, "https://kem.example/e/x").await.map(|r| r.sha256) })
        })
        .collect();
    let mut tags = Vec::new();
    for task in tasks {
        tags.push(task.await.expect("task").expect("rendition"));
    }
    assert!(tags.windows(2).all(|w| w[0] == w[1]), "racing first fetches store and serve the same bytes");
    let kept = partner(&h.api, &image, "https://kem.example/e/x").await.expect("kept");
    assert_eq!(kept.sha256, tags[0]);
    h.cleanup().await;
}

#[tokio::test]
async fn the_mesh_admits_the_gateway_and_no_one_else() {
    let h = Harness::start(test_config()).await;
    let image = one_image(&h, "job-media-mesh", "event-media-mesh", 64, 64).await;
    let addr = h.serve(test_config()).await;
    let request = || {
        Request::new(content::GetMediaContentRequest {
            image_id: image.clone(),
            variant: content::MediaVariant::Jpeg as i32,
            qr_text: String::new(),
        })
    };
    let mut gateway = h.client(addr, "gateway").await;
    let served = gateway.get_media_content(request()).await.expect("the gateway").into_inner();
    assert_eq!(served.sha256, sha256_hex(&served.data));
    for caller in ["event", "distribution"] {
        let mut other = h.client(addr, caller).await;
        let denied = other.get_media_content(request()).await.expect_err("the gateway's alone");
        assert_eq!(denied.code(), Code::PermissionDenied, "{caller}");
    }
    h.cleanup().await;
}
