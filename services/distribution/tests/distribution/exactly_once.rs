//! At-least-once delivery of jobs, exactly-once effects: a redelivered or re-sent publication
//! never publishes twice, and every outcome is reported exactly once.

use std::time::{Duration, SystemTime};

use kem_distribution::domain::Channel;
use kem_kit::outbox::{Inbox, Processed};
use kem_kit::queue::ReceivedMessage;
use kem_kit::queue::names;
use kem_kit::queue::store::StoreQueueOptions;
use kem_proto::kem::distribution::v1 as pb;

use kem_testkit::eventually;

use crate::support::*;

fn received(job: &kem_proto::kem::messaging::v1::DistributionJob, id: &str) -> ReceivedMessage {
    let sent = job_message(job, id);
    ReceivedMessage {
        queue: sent.queue,
        id: sent.id,
        body: sent.body,
        content_type: sent.content_type,
        traceparent: None,
        properties: sent.properties,
        delivery_count: 1,
        lock_token: "t".into(),
        locked_until: SystemTime::now(),
        enqueued_at: SystemTime::now(),
    }
}

#[tokio::test]
async fn a_redelivered_or_resent_job_never_publishes_twice() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    // No dedupe window: the queue delivers a re-sent message id again, as a broker does once its
    // duplicate-detection window has passed.
    let options = StoreQueueOptions { dedupe_window: Duration::ZERO, ..StoreQueueOptions::default() };
    let h = Harness::start_with_queue(config, Some(options)).await;

    let job = h.publish("evt-dup", &Channel::ALL).await;
    let status = h.settled("evt-dup").await;
    assert_eq!(status.state, pb::DistributionState::Completed as i32);
    // A step's provider calls all end before its state is recorded: settled, the counts are final.
    let before = providers.calls();
    let outcomes_before = h.outcomes("evt-dup").await.len();
    assert_eq!(outcomes_before, 6);

    // The same message again (redelivery), then the same publication under another id.
    h.send(&job, "dist:evt-dup").await;
    h.send(&job, "dist:evt-dup:resent").await;
    let store = h.store().clone();
    eventually("both copies to be consumed", Duration::from_secs(10), || {
        let store = store.clone();
        async move { Inbox::seen(&store, "distribution", "dist:evt-dup:resent").await.unwrap_or(false) }
    })
    .await;
    let queue = h.queue.clone();
    eventually("the job queue to empty", Duration::from_secs(10), || {
        let queue = queue.clone();
        async move {
            queue.depth(names::DISTRIBUTION_JOBS).await.map(|d| d.ready + d.locked + d.scheduled == 0).unwrap_or(false)
        }
    })
    .await;
    // A quiet period (what must not happen cannot be awaited): a re-publication shows within a few scans.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(providers.calls(), before, "no provider was called again");
    let status = h.status(OWNER, "evt-dup").await.expect("status");
    assert!(status.deliveries.iter().all(|d| d.state == pb::DeliveryState::Published as i32 && d.attempts == 1));
    assert_eq!(h.outcomes("evt-dup").await.len(), outcomes_before, "no outcome twice");

    // Driving the consumer directly: the inbox sees the duplicate.
    let again = h.api.core().accept_job(&received(&job, "dist:evt-dup")).await.expect("handled");
    assert_eq!(again, Processed::Duplicate);
    h.cleanup().await;
}

#[tokio::test]
async fn malformed_jobs_are_rejected_for_the_dead_letter_queue() {
    let h = Harness::start(fast_config()).await;
    let core = h.api.core().clone();
    let good = job("evt-bad", OWNER, &[Channel::Instagram]);

    let mut wrong_type = received(&good, "m-1");
    wrong_type.properties.insert("type".into(), "kem.messaging.v1.GenerateImages".into());
    let mut not_protobuf = received(&good, "m-2");
    not_protobuf.content_type = "application/json".into();
    let mut garbage = received(&good, "m-3");
    garbage.body = vec![0xff, 0xff, 0xff];
    let mut duplicate_channel = good.clone();
    duplicate_channel.deliveries.push(duplicate_channel.deliveries[0].clone());
    let mut no_owner = good.clone();
    no_owner.owner_id.clear();
    for message in [wrong_type, not_protobuf, garbage, received(&duplicate_channel, "m-4"), received(&no_owner, "m-5")]
    {
        let result = core.accept_job(&message).await;
        assert!(matches!(result, Err(kem_kit::outbox::HandlerError::Reject(_))), "{}: {result:?}", message.id);
    }
    expect_code(h.status(OWNER, "evt-bad").await, tonic::Code::NotFound);

    // A job through the real queue is consumed and acknowledged.
    h.send(&good, "dist:evt-bad").await;
    let status = h.settled("evt-bad").await;
    assert_eq!(status.state, pb::DistributionState::Completed as i32, "local Instagram publishes: {status:#?}");
    h.cleanup().await;
}
