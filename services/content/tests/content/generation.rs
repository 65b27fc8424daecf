//! Jobs end to end with the built-in local renderer: real PNGs of every channel size, owner-scoped
//! reads, the report to the event service over mTLS, invalid and expired requests.

use std::time::Duration;

use kem_content::infra::imaging::decode_png;
use kem_proto::google::rpc::BadRequest;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::content::v1 as content;
use kem_proto::kem::content::v1::content_service_server::ContentService;
use kem_testkit::eventually;
use prost::Message;
use tonic::{Code, Request};

use crate::support::*;

const WAIT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn local_provider_makes_real_pngs_for_every_style_and_channel_size() {
    let h = Harness::start(test_config()).await;
    let mut job = request("job-local", "event-local", OWNER);
    job.channels = vec![common::Channel::Instagram as i32, common::Channel::KakaoChannel as i32];
    h.send(&job).await;
    let outcome = h.outcome("job-local", WAIT).await;
    let images = outcome.images();
    assert_eq!(images.image_ids.len(), 9, "3 styles × (Instagram 2 sizes + Kakao 1 size)");
    assert!(images.failed_styles.is_empty());
    let provider = images.provider.clone().expect("provider");
    assert_eq!(provider.kind, common::ProviderKind::Local as i32, "labelled local");
    assert_eq!(provider.name, "local:stability-ai");
    assert_eq!(images.style_results.len(), 3);
    assert!(images.style_results.iter().all(|s| s.image_ids.len() == 3 && s.error.is_none()));
    assert_eq!(h.events.log("job-local").started, 1);

    let listed = h.list(OWNER, "event-local").await.expect("list");
    assert_eq!(listed.images.len(), 9);
    let mut sizes: Vec<(i32, i32, i32)> = listed.images.iter().map(|i| (i.channel, i.width, i.height)).collect();
    sizes.sort();
    sizes.dedup();
    assert_eq!(
        sizes,
        vec![
            (common::Channel::Instagram as i32, 1080, 1080),
            (common::Channel::Instagram as i32, 1080, 1350),
            (common::Channel::KakaoChannel as i32, 800, 800),
        ]
    );
    assert_eq!(listed.style_states.len(), 3);
    assert!(listed.style_states.iter().all(|s| s.state == content::GenerationState::Succeeded as i32));
    for image in &listed.images {
        assert_eq!(image.uri, format!("/api/v1/images/{}/content", image.image_id));
        assert_eq!(image.content_type, "image/png");
        assert!(!image.prompt.is_empty() && image.seed > 0);
        let bytes = h.bytes(OWNER, &image.image_id).await.expect("bytes");
        assert_eq!(bytes.content_type, "image/png");
        assert_eq!(bytes.sha256, image.sha256);
        assert_eq!(bytes.data.len() as i64, image.size_bytes);
        let png = decode_png(&bytes.data).expect("a valid PNG");
        assert_eq!((png.width as i32, png.height as i32), (image.width, image.height));
    }
    // Blobs are files under the data dir, written atomically (no temporary files left).
    let blobs = h.ctx.data_dir.join("blobs/images");
    let mut files = 0;
    for dir in std::fs::read_dir(&blobs).expect("blob dir") {
        for file in std::fs::read_dir(dir.expect("entry").path()).expect("prefix dir") {
            let name = file.expect("file").file_name().to_string_lossy().into_owned();
            assert!(name.ends_with(".png"), "{name}");
            files += 1;
        }
    }
    assert_eq!(files, 9);
    h.cleanup().await;
}

#[tokio::test]
async fn reads_are_owner_scoped_and_validated() {
    let h = Harness::start(test_config()).await;
    let mut job = request("job-scope", "event-scope", OWNER);
    job.sizes = vec![size(common::Channel::Instagram, 120, 120)];
    job.styles = styles(&[common::ImageStyle::Simple]);
    h.send(&job).await;
    let image_id = h.outcome("job-scope", WAIT).await.images().image_ids[0].clone();

    let other = h.list(OTHER, "event-scope").await.expect_err("another owner's event");
    assert_eq!((other.code(), status_reason(&other).as_str()), (Code::NotFound, "kem.content/EVENT_NOT_FOUND"));
    let other = h.bytes(OTHER, &image_id).await.expect_err("another owner's image");
    assert_eq!((other.code(), status_reason(&other).as_str()), (Code::NotFound, "kem.content/IMAGE_NOT_FOUND"));
    let unknown = h.list(OWNER, "never-requested").await.expect("unknown events have no images");
    assert!(unknown.images.is_empty() && unknown.style_states.is_empty());
    let missing = h.bytes(OWNER, "3c5d2b1a-0000-4000-8000-000000000000").await.expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);

    let empty = h.list(OWNER, " ").await.expect_err("empty event id");
    assert_eq!(empty.code(), Code::InvalidArgument);
    let details = kem_proto::status::details(&empty).expect("details");
    let bad = BadRequest::decode(details.details[0].value.as_slice()).expect("bad request");
    assert_eq!(bad.field_violations[0].field, "eventId");
    let unauthenticated = h
        .api
        .list_images(Request::new(content::ListImagesRequest { event_id: "event-scope".into(), style: 0 }))
        .await
        .expect_err("no owner");
    assert_eq!(unauthenticated.code(), Code::Unauthenticated);

    // Style filter; the internal GetImage is not owner-scoped and names the owner.
    let filtered = h
        .api
        .list_images(kem_kit::runtime::with_owner(
            Request::new(content::ListImagesRequest {
                event_id: "event-scope".into(),
                style: common::ImageStyle::Fancy as i32,
            }),
            OWNER,
        ))
        .await
        .expect("filtered")
        .into_inner();
    assert!(filtered.images.is_empty());
    assert_eq!(filtered.style_states.len(), 1, "style states regardless of the filter");
    let got = h
        .api
        .get_image(Request::new(content::GetImageRequest { image_id: image_id.clone() }))
        .await
        .expect("get image")
        .into_inner();
    assert_eq!(got.owner_id, OWNER);
    assert_eq!(got.image.expect("image").event_id, "event-scope");
    let empty = h.api.get_image(Request::new(content::GetImageRequest::default())).await.expect_err("empty");
    assert_eq!(empty.code(), Code::InvalidArgument);
    h.cleanup().await;
}

#[tokio::test]
async fn a_ring_back_tone_only_event_gets_a_cover_image() {
    let h = Harness::start(test_config()).await;
    let mut job = request("job-ringo", "event-ringo", OWNER);
    job.channels = vec![common::Channel::RingoBiz as i32];
    job.styles = styles(&[common::ImageStyle::Trendy]);
    h.send(&job).await;
    assert_eq!(h.outcome("job-ringo", WAIT).await.images().image_ids.len(), 1);
    let listed = h.list(OWNER, "event-ringo").await.expect("list");
    let cover = &listed.images[0];
    assert_eq!((cover.channel, cover.width, cover.height), (common::Channel::RingoBiz as i32, 1080, 1080));
    h.cleanup().await;
}

#[tokio::test]
async fn invalid_requests_are_reported_failed_and_unreportable_ones_dead_lettered() {
    let h = Harness::start(test_config()).await;
    let mut job = request("job-invalid", "event-invalid", OWNER);
    job.channels = vec![common::Channel::Unspecified as i32];
    job.styles = vec![42];
    h.send(&job).await;
    let failure = h.outcome("job-invalid", WAIT).await.failure().clone();
    assert_eq!(failure.code, Code::InvalidArgument as i32);
    assert_eq!(reason(&failure), "kem.content/INVALID_REQUEST");
    let bad = failure
        .details
        .iter()
        .find(|d| d.type_url.ends_with("google.rpc.BadRequest"))
        .map(|d| BadRequest::decode(d.value.as_slice()).expect("bad request"))
        .expect("BadRequest detail");
    let fields: Vec<&str> = bad.field_violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, vec!["channels[0]", "styles[0]"]);

    // No job id: nobody to report to → dead letter. Garbage and unknown types likewise.
    let mut nameless = request("", "event-x", OWNER);
    nameless.job_id.clear();
    h.send_raw("job:nameless", nameless.encode_to_vec(), Some("kem.messaging.v1.GenerateImages")).await;
    h.send_raw("job:garbage", vec![0xff, 0xff, 0xff], Some("kem.messaging.v1.GenerateImages")).await;
    h.send_raw("job:typeless", request("job-t", "e", OWNER).encode_to_vec(), None).await;
    h.send_raw("job:other", request("job-o", "e", OWNER).encode_to_vec(), Some("kem.messaging.v1.DistributionJob"))
        .await;
    eventually("the four unusable messages are dead-lettered", Duration::from_secs(20), || async {
        h.dead_letters().await == 4
    })
    .await;
    assert_eq!(h.dead_letters().await, 4);
    assert!(h.events.outcome("job-t").is_none() && h.events.outcome("job-o").is_none());
    h.cleanup().await;
}

#[tokio::test]
async fn expired_jobs_and_deleted_events_are_dropped_without_images() {
    let h = Harness::start(test_config()).await;
    let mut expired = request("job-expired", "event-expired", OWNER);
    expired.deadline = Some(ts(SystemClock.now_ms() - 1_000));
    h.send(&expired).await;
    h.events.delete_job("job-deleted");
    let mut deleted = request("job-deleted", "event-deleted", OWNER);
    deleted.sizes = vec![size(common::Channel::Instagram, 100, 100)];
    h.send(&deleted).await;
    // Both messages are finished (inbox) with no report and no image.
    let seen = |id: &'static str| kem_kit::outbox::Inbox::seen(&h.ctx.store, "content", id);
    eventually("both messages were finished", Duration::from_secs(30), || async {
        seen("job:job-expired").await.expect("inbox") && seen("job:job-deleted").await.expect("inbox")
    })
    .await;
    assert!(h.events.outcome("job-expired").is_none());
    assert_eq!(h.events.log("job-expired").started, 0, "an expired job is not even started");
    assert!(h.events.outcome("job-deleted").is_none());
    assert!(h.list(OWNER, "event-expired").await.expect("list").images.is_empty());
    assert!(h.list(OWNER, "event-deleted").await.expect("list").images.is_empty());
    assert_eq!(h.dead_letters().await, 0);
    h.cleanup().await;
}

#[tokio::test]
async fn an_unreachable_event_service_delays_the_report_until_it_answers() {
    let h = Harness::start(test_config()).await;
    h.events.fail_next(3);
    let mut job = request("job-retry", "event-retry", OWNER);
    job.sizes = vec![size(common::Channel::Instagram, 100, 100)];
    job.styles = styles(&[common::ImageStyle::Simple, common::ImageStyle::Fancy]);
    h.send(&job).await;
    let outcome = h.outcome("job-retry", WAIT).await;
    assert_eq!(outcome.images().image_ids.len(), 2);
    let log = h.events.log("job-retry");
    assert_eq!(log.terminal_reports, 1, "reported once");
    assert!(h.events.calls() >= 5, "3 refused calls, then started and the outcome");
    assert_eq!(h.list(OWNER, "event-retry").await.expect("list").images.len(), 2, "no duplicate images");
    h.cleanup().await;
}
