//! Identical requests share one generation (24 h, content-addressed by the render key), and a
//! re-request after a partial failure regenerates only what is missing.

use std::time::Duration;

use kem_proto::kem::common::v1 as common;
use kem_proto::kem::content::v1 as content;

use crate::contracts::{API_KEY, Reply, StabilityServer};
use crate::stability::stability_config;
use crate::support::*;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_second_identical_request_makes_no_provider_call() {
    let server = StabilityServer::start().await;
    let mut config = stability_config(&server, API_KEY);
    config.parallelism = 1;
    let h = Harness::start(config).await;
    let mut first = request("job-c1", "event-c1", OWNER);
    // Two square sizes: one generation (1:1), fitted twice.
    first.sizes = vec![size(common::Channel::Instagram, 108, 108), size(common::Channel::KakaoChannel, 80, 80)];
    first.styles = styles(&[common::ImageStyle::Simple]);
    h.send(&first).await;
    let one = h.outcome("job-c1", WAIT).await.images().clone();
    assert_eq!(one.image_ids.len(), 2);
    assert_eq!(server.count(), 1, "sizes of one aspect ratio share a generation");
    assert!(!one.provider.clone().expect("provider").cached);

    // Same brief for another event of the same owner: served from the cache.
    let mut second = first.clone();
    second.job_id = "job-c2".into();
    second.event_id = "event-c2".into();
    h.send(&second).await;
    let two = h.outcome("job-c2", WAIT).await.images().clone();
    assert_eq!(server.count(), 1, "zero provider calls for the identical request");
    assert!(two.provider.clone().expect("provider").cached, "reported as cached");
    assert_eq!(two.image_ids.len(), 2);
    assert!(two.image_ids.iter().all(|id| !one.image_ids.contains(id)), "the second event has its own images");
    let listed = h.list(OWNER, "event-c2").await.expect("list");
    assert!(listed.images.iter().all(|i| i.provider.clone().expect("provider").cached));
    let first_bytes = h.bytes(OWNER, &one.image_ids[0]).await.expect("bytes");
    let listed_one = h.list(OWNER, "event-c1").await.expect("list");
    let same_slot = listed
        .images
        .iter()
        .find(|i| {
            listed_one
                .images
                .iter()
                .any(|j| j.image_id == one.image_ids[0] && j.width == i.width && j.height == i.height)
        })
        .expect("same size in both events");
    assert_eq!(same_slot.sha256, first_bytes.sha256, "identical bytes, stored once (content-addressed)");

    // A different prompt (another title) is a different render.
    let mut third = first.clone();
    third.job_id = "job-c3".into();
    third.event_id = "event-c3".into();
    third.title = "Summer Special 여름 이벤트".into();
    h.send(&third).await;
    h.outcome("job-c3", WAIT).await.images();
    assert_eq!(server.count(), 2);
    h.cleanup().await;
}

#[tokio::test]
async fn a_re_request_after_a_partial_failure_regenerates_only_the_missing_style() {
    let server = StabilityServer::start().await;
    server.script(|call| match (call.style_preset.as_str(), call.n_for_preset) {
        ("cinematic", 0) => Reply::Error(403, "content_moderation", Vec::new()),
        _ => Reply::Png,
    });
    let h = Harness::start(stability_config(&server, API_KEY)).await;
    let mut first = request("job-p1", "event-p", OWNER);
    first.sizes = vec![size(common::Channel::Instagram, 108, 108)];
    h.send(&first).await;
    let partial = h.outcome("job-p1", WAIT).await.images().clone();
    assert_eq!(partial.image_ids.len(), 2);
    assert_eq!(partial.failed_styles, styles(&[common::ImageStyle::Fancy]));
    assert_eq!(server.count(), 3);

    let mut again = first.clone();
    again.job_id = "job-p2".into();
    h.send(&again).await;
    let full = h.outcome("job-p2", WAIT).await.images().clone();
    assert_eq!(full.image_ids.len(), 3);
    assert!(full.failed_styles.is_empty());
    assert_eq!(server.count(), 4, "only the failed style was generated again");
    assert_eq!(server.count_preset("cinematic"), 2);
    for id in &partial.image_ids {
        assert!(full.image_ids.contains(id), "the styles that succeeded keep their images");
    }
    let listed = h.list(OWNER, "event-p").await.expect("list");
    assert_eq!(listed.images.len(), 3, "no duplicate images");
    assert!(listed.style_states.iter().all(|s| s.state == content::GenerationState::Succeeded as i32));
    assert!(listed.style_states.iter().all(|s| s.error.is_none()));
    h.cleanup().await;
}
