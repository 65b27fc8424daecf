//! The edge's public media renditions (`GetMediaContent`, gateway only): the stored image, its
//! JPEG and the Instagram feed JPEG of any image — the edge's signed token is what authorizes the
//! fetch, so no publication is asked about — each converted once and kept in the blob store.

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
    use kem_proto::kem::content::v1::content_service_server::ContentService as _;
    let request = content::GetMediaContentRequest {
        image_id: image_id.to_owned(),
        variant: variant as i32,
        qr_text: String::new(),
    };
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
    for bad in [0, 4, -1, i32::MAX, i32::MIN] {
        use kem_proto::kem::content::v1::content_service_server::ContentService as _;
        let request = content::GetMediaContentRequest { image_id: image.clone(), variant: bad, qr_text: String::new() };
        expect_invalid_field(h.api.get_media_content(Request::new(request)).await, "variant");
    }
    let unknown = expect_code(media(&h.api, UNKNOWN, content::MediaVariant::Original).await, Code::NotFound);
    assert_eq!(status_reason(&unknown), "kem.content/IMAGE_NOT_FOUND");
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
