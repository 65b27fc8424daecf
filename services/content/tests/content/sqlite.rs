//! The same SQL on embedded SQLite (`kem up`): a job end to end with the in-process cache, a
//! re-request reusing the images, and the reads.

use std::time::Duration;

use kem_proto::kem::common::v1 as common;

use crate::support::*;

#[tokio::test]
async fn jobs_run_on_embedded_sqlite() {
    let h = Harness::sqlite(test_config()).await;
    let mut job = request("job-lite", "event-lite", OWNER);
    job.sizes = vec![size(common::Channel::Instagram, 120, 120), size(common::Channel::GenieTv, 160, 90)];
    h.send(&job).await;
    let first = h.outcome("job-lite", Duration::from_secs(60)).await.images().clone();
    assert_eq!(first.image_ids.len(), 6);

    let mut again = job.clone();
    again.job_id = "job-lite-2".into();
    h.send(&again).await;
    let second = h.outcome("job-lite-2", Duration::from_secs(60)).await.images().clone();
    let (mut a, mut b) = (first.image_ids.clone(), second.image_ids.clone());
    a.sort();
    b.sort();
    assert_eq!(a, b, "the re-request reuses every image");

    let listed = h.list(OWNER, "event-lite").await.expect("list");
    assert_eq!(listed.images.len(), 6);
    assert_eq!(listed.style_states.len(), 3);
    let bytes = h.bytes(OWNER, &first.image_ids[0]).await.expect("bytes");
    assert!(!bytes.data.is_empty());
    assert!(h.list(OTHER, "event-lite").await.is_err());
    h.cleanup().await;
}
