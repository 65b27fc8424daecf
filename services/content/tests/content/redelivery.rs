//! Exactly-once effects under at-least-once delivery: a worker killed mid-job leaves its message
//! to come back, and the next delivery finishes the job once, without duplicating images; a
//! redelivery of a finished job does nothing.

use std::time::Duration;

use kem_kit::queue::ReceivedMessage;
use kem_kit::queue::names::CONTENT_GENERATION;
use kem_proto::kem::common::v1 as common;
use prost::Message;

use kem_testkit::eventually_holds;

use crate::contracts::{API_KEY, Reply, StabilityServer};
use crate::stability::stability_config;
use crate::support::*;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_worker_killed_mid_job_is_finished_once_by_the_next_delivery() {
    let server = StabilityServer::start().await;
    // The third image hangs: the worker is killed while waiting for it.
    server.script(|call| if call.n == 2 { Reply::Slow(Duration::from_secs(30)) } else { Reply::Png });
    let mut config = stability_config(&server, API_KEY);
    config.parallelism = 1;
    config.consumer.lock_for = Duration::from_secs(2);
    config.consumer.drain_timeout = Duration::from_millis(50);
    if let kem_kit::external::ProviderMode::Real { config: provider, .. } = &mut config.stability {
        provider.timeout = Duration::from_secs(30);
        provider.deadline = Duration::from_secs(30);
    }
    config.image_budget = Duration::from_secs(30);
    let h = Harness::start(config.clone()).await;
    let mut job = request("job-kill", "event-kill", OWNER);
    job.sizes = vec![size(common::Channel::Instagram, 108, 108)];
    h.send(&job).await;

    let probe = server.clone();
    eventually_holds("the worker is stuck on the third image", WAIT, || probe.count() == 3).await;
    assert!(h.events.outcome("job-kill").is_none());
    // Kill the worker: its consumer drains for 50 ms, then cancels the handler mid-call.
    assert!(h.ctx.shutdown.drained(WAIT).await, "the worker stopped");

    // A restarted worker gets the message once its lock expires and finishes only what is left.
    server.script(|_| Reply::Png);
    let (replica, replica_shutdown) = h.replica(config).await;
    let outcome = h.outcome("job-kill", WAIT).await;
    let images = outcome.images().clone();
    assert_eq!(images.image_ids.len(), 3);
    assert_eq!(server.count(), 4, "the two finished images were not generated again");
    let log = h.events.log("job-kill");
    assert_eq!(log.terminal_reports, 1, "the job completed exactly once");
    assert_eq!(log.started, 2, "each delivery reported that it started");
    let listed = h.list(OWNER, "event-kill").await.expect("list");
    assert_eq!(listed.images.len(), 3, "no duplicate image");

    // The outcome is reported before the message is marked finished (a repeat report is harmless
    // at the event service), so wait for the replica to finish its delivery: only then is the
    // message "finished" for a redelivery.
    let finished = || replica.app().metrics().jobs_succeeded.load(std::sync::atomic::Ordering::Relaxed) == 1;
    eventually_holds("the replica marked the delivery finished", WAIT, finished).await;

    // A redelivery of the finished message (a producer retry, a lost completion) changes nothing.
    let again = ReceivedMessage {
        queue: CONTENT_GENERATION.to_owned(),
        id: "job:job-kill".to_owned(),
        body: job.encode_to_vec(),
        content_type: "application/protobuf".to_owned(),
        traceparent: None,
        properties: [("type".to_owned(), "kem.messaging.v1.GenerateImages".to_owned())].into(),
        delivery_count: 3,
        lock_token: "t".to_owned(),
        locked_until: std::time::SystemTime::now(),
        enqueued_at: std::time::SystemTime::now(),
    };
    kem_content::infra::consumer::handle(replica.app(), again).await.expect("duplicate handled");
    assert_eq!(h.events.log("job-kill").terminal_reports, 1);
    assert_eq!(h.events.log("job-kill").started, 2, "a finished job is not even started again");
    assert_eq!(server.count(), 4);
    assert_eq!(replica.app().metrics().jobs_duplicate.load(std::sync::atomic::Ordering::Relaxed), 1);
    replica_shutdown.trigger();
    h.cleanup().await;
}
