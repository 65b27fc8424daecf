//! Retry re-queues failed deliveries only, and GetStatus / Retry answer errors per the contract.

use kem_distribution::domain::Channel;
use kem_proto::kem::distribution::v1 as pb;
use kem_proto::kem::distribution::v1::distribution_service_server::DistributionService;
use kem_proto::kem::messaging::v1 as msg;
use tonic::Code;

use crate::support::instagram::ContainerScript;
use crate::support::*;

#[tokio::test]
async fn retry_resends_only_the_failed_channel() {
    let providers = Providers::start().await;
    providers.instagram.script(ContainerScript::Error("ERROR: 2207052".into()));
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start(config).await;

    h.publish("evt-retry", &Channel::ALL).await;
    let status = h.settled("evt-retry").await;
    assert_eq!(status.state, pb::DistributionState::PartiallyFailed as i32);
    // A step's provider calls all end before its state is recorded: settled, the counts are final.
    let before = providers.calls();

    // A published channel cannot be retried.
    let refused =
        expect_code(h.retry(OWNER, "evt-retry", &[Channel::GenieTv.number()]).await, Code::FailedPrecondition);
    assert_eq!(reason(&refused), "DELIVERY_NOT_FAILED");
    let info = kem_proto::status::error_info_of(&refused).expect("info");
    assert_eq!(info.metadata.get("state").map(String::as_str), Some("DELIVERY_STATE_PUBLISHED"));
    // Naming a failed and a published channel changes nothing (all or none).
    let refused = h.retry(OWNER, "evt-retry", &[Channel::Instagram.number(), Channel::KakaoChannel.number()]).await;
    assert_eq!(reason(&expect_code(refused, Code::FailedPrecondition)), "DELIVERY_NOT_FAILED");
    let unchanged = h.status(OWNER, "evt-retry").await.expect("status");
    assert_eq!(state_of(&unchanged, Channel::Instagram), pb::DeliveryState::Failed);

    // The container works now; retry every failed channel.
    providers.instagram.script(ContainerScript::InProgress(2));
    let retried = h.retry(OWNER, "evt-retry", &[]).await.expect("retry");
    assert_eq!(retried.state, pb::DistributionState::InProgress as i32);
    let ig = retried.deliveries.iter().find(|d| d.channel == Channel::Instagram.number()).expect("instagram");
    assert!(
        ig.state == pb::DeliveryState::Pending as i32 || ig.state == pb::DeliveryState::Sending as i32,
        "re-queued: {ig:#?}"
    );
    let status = h.settled("evt-retry").await;
    assert_eq!(status.state, pb::DistributionState::Completed as i32, "{status:#?}");
    let ig = delivery(&status, Channel::Instagram);
    assert_eq!((ig.state, ig.attempts), (pb::DeliveryState::Published as i32, 1), "{ig:#?}");
    assert_eq!(providers.instagram.publishes(), 1);

    let after = providers.calls();
    for channel in Channel::ALL.into_iter().filter(|c| *c != Channel::Instagram) {
        assert_eq!(after[&channel], before[&channel], "{channel} got new calls: {before:?} → {after:?}");
    }
    assert!(after[&Channel::Instagram] > before[&Channel::Instagram]);

    // Retrying again with nothing failed changes nothing.
    let again = h.retry(OWNER, "evt-retry", &[]).await.expect("nothing to retry");
    assert_eq!(again.state, pb::DistributionState::Completed as i32);

    // Analytics: Instagram failed once then published; every other channel published once.
    let outcomes = h.outcomes("evt-retry").await;
    assert_eq!(outcomes.len(), 7, "{outcomes:#?}");
    let ig: Vec<_> = outcomes.iter().filter(|(_, o)| o.channel == Channel::Instagram.number()).collect();
    assert_eq!(ig.len(), 2);
    assert_eq!((ig[0].0.as_str(), ig[0].1.result), ("dist:evt-retry:instagram:1", msg::DeliveryResult::Failed as i32));
    assert_eq!(
        (ig[1].0.as_str(), ig[1].1.result),
        ("dist:evt-retry:instagram:2", msg::DeliveryResult::Published as i32)
    );
    h.cleanup().await;
}

#[tokio::test]
async fn status_and_retry_answer_errors_per_the_contract() {
    let providers = Providers::start().await;
    let mut config = fast_config();
    providers.configure(&mut config);
    let h = Harness::start(config).await;
    h.publish("evt-errors", &[Channel::Instagram, Channel::KakaoChannel]).await;
    h.settled("evt-errors").await;

    // Unknown or someone else's event: NOT_FOUND either way.
    assert_eq!(reason(&expect_code(h.status(OWNER, "evt-none").await, Code::NotFound)), "EVENT_NOT_FOUND");
    assert_eq!(reason(&expect_code(h.status(OTHER, "evt-errors").await, Code::NotFound)), "EVENT_NOT_FOUND");
    assert_eq!(reason(&expect_code(h.retry(OTHER, "evt-errors", &[]).await, Code::NotFound)), "EVENT_NOT_FOUND");
    // A channel the event was not published to.
    let status = expect_code(h.retry(OWNER, "evt-errors", &[Channel::GenieTv.number()]).await, Code::NotFound);
    assert_eq!(reason(&status), "DELIVERY_NOT_FOUND");
    // Malformed requests name the fields as REST clients see them.
    let status = expect_code(h.retry(OWNER, "evt-errors", &[0, 4, 4, 42]).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["channels[0]", "channels[2]", "channels[3]"]);
    let status = expect_code(h.status(OWNER, " ").await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["eventId"]);
    // No signed-in owner.
    let anonymous = h.api.get_status(tonic::Request::new(pb::GetStatusRequest { event_id: "evt-errors".into() })).await;
    expect_code(anonymous, Code::Unauthenticated);

    // An event whose period is over: nothing is delivered, and nothing can be retried.
    let mut ended = job("evt-ended", OWNER, &[Channel::Instagram]);
    let start = SystemClock.now_ms() - 10 * 86_400_000;
    ended.period = Some(kem_proto::kem::common::v1::Period {
        start_time: Some(ts(start)),
        end_time: Some(ts(start + 86_400_000)),
    });
    h.send(&ended, "dist:evt-ended").await;
    let status = h.settled("evt-ended").await;
    let ig = delivery(&status, Channel::Instagram);
    assert_eq!(ig.state, pb::DeliveryState::Failed as i32);
    assert_eq!(ig.last_error.map(|e| e.reason), Some("EVENT_ENDED".into()));
    let status = expect_code(h.retry(OWNER, "evt-ended", &[]).await, Code::FailedPrecondition);
    assert_eq!(reason(&status), "EVENT_ENDED");
    assert_eq!(providers.instagram.state().containers_created, 1, "only evt-errors reached Instagram");
    h.cleanup().await;
}
