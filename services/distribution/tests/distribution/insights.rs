//! The insights job's claim (#21): a published Instagram post is read at most once per interval,
//! however many replicas look for due posts at the same moment.

use std::collections::BTreeMap;

use kem_distribution::domain::Channel;
use kem_distribution::infra::Repository;
use kem_proto::kem::distribution::v1 as pb;

use crate::support::*;

const HOUR_MS: i64 = 3_600_000;
/// The channels the insights job reads when Instagram and every KT partner are real.
const READ: [Channel; 4] = [Channel::Instagram, Channel::UridongneTv, Channel::RingoBiz, Channel::GenieTv];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_claim_each_published_post_once_per_interval() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start(config).await;
    let events = ["evt-insights-1", "evt-insights-2", "evt-insights-3"];
    for event in events {
        h.publish(event, &[Channel::Instagram, Channel::KakaoChannel]).await;
        let status = h.settled(event).await;
        assert_eq!(state_of(&status, Channel::Instagram), pb::DeliveryState::Published, "{status:#?}");
    }

    // Eight replicas ask at the same moment: every post is claimed by exactly one of them, and
    // only posts on the channels asked for are (Kakao has no per-message numbers).
    let now = kem_kit::store::millis(std::time::SystemTime::now());
    let claims = (0..8).map(|_| {
        let repo = Repository::new(h.store().clone());
        tokio::spawn(async move { repo.claim_insights_due(now, now - HOUR_MS, 0, 10, &READ).await.expect("claim") })
    });
    let mut claimed: BTreeMap<String, usize> = BTreeMap::new();
    for claim in claims {
        for post in claim.await.expect("task") {
            assert!(!post.media_id.is_empty(), "{post:?}");
            *claimed.entry(post.event_id).or_default() += 1;
        }
    }
    let expected: BTreeMap<String, usize> = events.iter().map(|e| ((*e).to_owned(), 1)).collect();
    assert_eq!(claimed, expected, "each post claimed exactly once");

    // Within the interval nothing is due again; after it, every post is.
    let repo = Repository::new(h.store().clone());
    let again = repo.claim_insights_due(now + 1_000, now + 1_000 - HOUR_MS, 0, 10, &READ).await.expect("claim");
    assert!(again.is_empty(), "{again:?}");
    let later = now + HOUR_MS + 1;
    let next = repo.claim_insights_due(later, later - HOUR_MS, 0, 10, &READ).await.expect("claim");
    assert_eq!(next.len(), events.len(), "{next:?}");
    // Posts published before the window are not read any more.
    let outside = repo.claim_insights_due(later + 2 * HOUR_MS, later + HOUR_MS, later, 10, &READ).await.expect("claim");
    assert!(outside.is_empty(), "{outside:?}");
    h.cleanup().await;
}
