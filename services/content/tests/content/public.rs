//! Public images (`GetPublicImageContent`, no login): only the selected image of a PUBLISHED or
//! ENDED event is served, as the event service's `GetEventForDistribution` tells; every other
//! image is NOT_FOUND exactly like an unknown id, so nothing of a draft leaks. The positive
//! decision is cached, and an unreachable event service is UNAVAILABLE with RetryInfo.

use std::time::Duration;

use kem_kit::validate::excerpt;
use kem_proto::google::rpc::RetryInfo;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::content::v1 as content;
use kem_proto::kem::event::v1::EventStatus;
use kem_testkit::status::{detail, expect_code, expect_invalid_field, metadata};
use tonic::{Code, Request, Status};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(60);
/// A well-formed image id no image has.
const UNKNOWN: &str = "3c5d2b1a-0000-4000-8000-000000000000";

/// Generates two images (two styles, one small size) for `event_id`; returns their ids.
async fn two_images(h: &Harness, job_id: &str, event_id: &str) -> (String, String) {
    let mut job = request(job_id, event_id, OWNER);
    job.sizes = vec![size(common::Channel::Instagram, 100, 100)];
    job.styles = styles(&[common::ImageStyle::Simple, common::ImageStyle::Fancy]);
    h.send(&job).await;
    let ids = h.outcome(job_id, WAIT).await.images().image_ids.clone();
    assert_eq!(ids.len(), 2, "{ids:?}");
    (ids[0].clone(), ids[1].clone())
}

fn sha256_hex(data: &[u8]) -> String {
    kem_kit::hex::encode(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

/// Asserts `result` is the NOT_FOUND an unknown image gets — same code, message, reason and
/// metadata but for the id — so a hidden image cannot be told from a missing one.
#[track_caller]
fn assert_hidden<T: std::fmt::Debug>(result: Result<T, Status>, unknown: &Status, image_id: &str) {
    let status = expect_code(result, Code::NotFound);
    // Ids are quoted as excerpts.
    let (quoted, unknown_quoted) = (excerpt(image_id), excerpt(UNKNOWN));
    assert_eq!(status.message(), unknown.message().replace(unknown_quoted.as_str(), &quoted));
    assert_eq!(status_reason(&status), status_reason(unknown));
    assert_eq!(metadata(&status, "imageId"), quoted);
    assert_eq!(kem_proto::status::details(&status).map(|d| d.details.len()), Some(1), "no further detail");
}

#[tokio::test]
async fn only_the_selected_image_of_a_published_or_ended_event_is_served() {
    let h = Harness::start(test_config()).await;
    let (selected, other) = two_images(&h, "job-pub", "event-pub").await;
    let unknown = h.public_bytes(UNKNOWN).await.expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(status_reason(&unknown), "kem.content/IMAGE_NOT_FOUND");

    // An event the event service does not know (deleted), a draft, an unpublished event with this
    // image selected: hidden, and asked again every time (a publication shows at once).
    assert_hidden(h.public_bytes(&selected).await, &unknown, &selected);
    h.events.set_event("event-pub", EventStatus::Draft, "");
    assert_hidden(h.public_bytes(&selected).await, &unknown, &selected);
    h.events.set_event("event-pub", EventStatus::ContentReady, &selected);
    assert_hidden(h.public_bytes(&selected).await, &unknown, &selected);
    assert_eq!(h.events.lookups(), 3, "a hidden image is never cached");

    // Published: the selected image is served, byte for byte what its owner gets.
    h.events.set_event("event-pub", EventStatus::Published, &selected);
    let public = h.public_bytes(&selected).await.expect("the selected image is public");
    let owned = h.bytes(OWNER, &selected).await.expect("owner bytes");
    assert_eq!(public.content_type, "image/png");
    assert!(!public.data.is_empty());
    assert_eq!(public.data, owned.data);
    assert_eq!(public.sha256, sha256_hex(&public.data));
    assert_eq!(public.sha256, owned.sha256);
    // ...the other image of the same published event is not.
    assert_hidden(h.public_bytes(&other).await, &unknown, &other);

    // The positive decision is cached: a popular page does not ask the event service per fetch.
    let asked = h.events.lookups();
    for _ in 0..5 {
        h.public_bytes(&selected).await.expect("served again");
    }
    assert_eq!(h.events.lookups(), asked, "served from the cached decision");

    // An event that has ended keeps its selected image public.
    let (ended, _) = two_images(&h, "job-ended", "event-ended").await;
    h.events.set_event("event-ended", EventStatus::Ended, &ended);
    let served = h.public_bytes(&ended).await.expect("the selected image of an ended event");
    assert_eq!(served.sha256, sha256_hex(&served.data));
    h.cleanup().await;
}

#[tokio::test]
async fn the_public_image_converts_to_jpeg_once_with_its_own_etag() {
    let h = Harness::start(test_config()).await;
    let (selected, other) = two_images(&h, "job-jpeg", "event-jpeg").await;
    let jpeg = content::ImageFormat::Jpeg as i32;
    let unknown = h.public_bytes(UNKNOWN).await.expect_err("unknown");

    // Not public yet: hidden in JPEG exactly as in PNG, and nothing is converted.
    h.events.set_event("event-jpeg", EventStatus::Draft, &selected);
    assert_hidden(public_in(&h.api, &selected, jpeg).await, &unknown, &selected);
    h.events.set_event("event-jpeg", EventStatus::Published, &selected);
    assert_hidden(public_in(&h.api, &other, jpeg).await, &unknown, &other);
    let conversions = || h.api.app().metrics().jpeg_conversions.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(conversions(), 0, "a hidden image is never converted");

    let png = h.public_bytes(&selected).await.expect("stored format");
    let first = public_in(&h.api, &selected, jpeg).await.expect("JPEG");
    assert_eq!(first.content_type, "image/jpeg");
    assert!(first.data.starts_with(&[0xFF, 0xD8, 0xFF]), "JPEG magic bytes");
    let mut decoder = jpeg_decoder::Decoder::new(first.data.as_slice());
    decoder.decode().expect("an independent decoder reads it");
    let info = decoder.info().expect("info");
    assert_eq!((info.width, info.height, info.pixel_format), (100, 100, jpeg_decoder::PixelFormat::RGB24), "no alpha");
    // The ETag (sha256) is the JPEG's own, not the PNG's.
    assert_eq!(first.sha256, sha256_hex(&first.data));
    assert_ne!(first.sha256, png.sha256);
    assert_eq!(png.content_type, "image/png", "the default stays the stored format");

    // Converted once: later fetches, and another replica on the same blob store, reuse it.
    let again = public_in(&h.api, &selected, jpeg).await.expect("JPEG again");
    assert_eq!((again.data, again.sha256), (first.data.clone(), first.sha256.clone()));
    assert_eq!(conversions(), 1, "the conversion is kept, not redone");
    let (replica, stop) = h.replica(test_config()).await;
    let shared = public_in(&replica, &selected, jpeg).await.expect("JPEG from a replica");
    assert_eq!(shared.sha256, first.sha256);
    let replica_conversions = replica.app().metrics().jpeg_conversions.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(replica_conversions, 0, "kept in the blob store, which replicas share");
    stop.trigger();
    h.cleanup().await;
}

#[tokio::test]
async fn hostile_formats_are_invalid_arguments() {
    let h = Harness::start(test_config()).await;
    let (selected, _) = two_images(&h, "job-fmt", "event-fmt").await;
    h.events.set_event("event-fmt", EventStatus::Published, &selected);
    for bad in [2, -1, i32::MAX, i32::MIN, 1_000] {
        expect_invalid_field(public_in(&h.api, &selected, bad).await, "format");
    }
    h.cleanup().await;
}

#[tokio::test]
async fn unknown_and_malformed_ids_never_reach_the_event_service() {
    let h = Harness::start(test_config()).await;
    for bad in ["x".repeat(16_000), "\u{0}".into(), "%00".into(), "../../etc/passwd".into(), "이미지".into(), "".into()]
    {
        expect_invalid_field(h.public_bytes(&bad).await, "imageId");
    }
    let unknown = expect_code(h.public_bytes(UNKNOWN).await, Code::NotFound);
    assert_eq!(status_reason(&unknown), "kem.content/IMAGE_NOT_FOUND");
    assert_eq!(h.events.lookups(), 0, "nothing to ask about");
    h.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_event_service_is_unavailable_with_retry_info() {
    let h = Harness::start(test_config()).await;
    let (selected, _) = two_images(&h, "job-down", "event-down").await;
    h.events.set_event("event-down", EventStatus::Published, &selected);
    let assert_unavailable = |result: Result<content::GetPublicImageContentResponse, Status>| {
        let status = expect_code(result, Code::Unavailable);
        assert_eq!(status_reason(&status), "kem.content/EVENT_SERVICE_UNAVAILABLE");
        let retry: RetryInfo = detail(&status, "google.rpc.RetryInfo").expect("RetryInfo");
        assert!(retry.retry_delay.is_some_and(|d| d.seconds >= 1), "{retry:?}");
    };

    // The event service answers UNAVAILABLE (its database restarting)...
    h.events.lookups_down(true);
    assert_unavailable(h.public_bytes(&selected).await);
    // ...or nothing listens where it should be (a replica on the same database and cache).
    let dead = kem_testkit::net::free_addr().to_string();
    let (cut_off, cut_off_shutdown) = h.replica_with_event_at(&dead, test_config()).await;
    assert_unavailable(public_bytes(&cut_off, &selected).await);

    // Back up: served, and the decision now cached carries a replica through the next outage.
    h.events.lookups_down(false);
    h.public_bytes(&selected).await.expect("served once the event service answers");
    let served = public_bytes(&cut_off, &selected).await.expect("the cached decision is shared");
    assert_eq!(served.sha256, sha256_hex(&served.data));
    cut_off_shutdown.trigger();
    h.cleanup().await;
}

#[tokio::test]
async fn the_mesh_admits_the_gateway_without_an_owner_and_no_one_else() {
    let h = Harness::start(test_config()).await;
    let (selected, _) = two_images(&h, "job-mesh", "event-mesh").await;
    h.events.set_event("event-mesh", EventStatus::Published, &selected);
    let addr = h.serve(test_config()).await;
    let request =
        || Request::new(content::GetPublicImageContentRequest { image_id: selected.clone(), ..Default::default() });

    let mut gateway = h.client(addr, "gateway").await;
    let served = gateway.get_public_image_content(request()).await.expect("anyone, through the gateway").into_inner();
    assert_eq!(served.sha256, sha256_hex(&served.data));
    let mut event = h.client(addr, "event").await;
    let denied = event.get_public_image_content(request()).await.expect_err("public methods are the gateway's");
    assert_eq!(denied.code(), Code::PermissionDenied);
    h.cleanup().await;
}
