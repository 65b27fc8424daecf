//! The service `start` returns, served on a mesh role server over real mTLS with the policy
//! derived from the contract, and called with the generated client through the kit's `Peers`, as
//! distribution and the gateway call it: only distribution may record metrics, only the gateway
//! reaches the owner methods, and owner metadata and error details survive the wire.

use std::time::Duration;

use kem_kit::runtime::{Peers, with_owner};
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_proto::kem::analytics::v1 as pb;
use kem_proto::kem::analytics::v1::analytics_service_client::AnalyticsServiceClient;
use kem_testkit::eventually;
use kem_testkit::service::TestService;
use tonic::{Code, Request};

use crate::support::*;

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn start_serves_the_contract_over_the_mesh() {
    let svc = TestService::new("analytics").await;
    let service = kem_analytics::start(svc.ctx.clone(), test_config()).await.expect("start");
    let ca = TestCa::new();
    let addr = kem_testkit::mesh::serve(&ca, "analytics", service, &svc.ctx.shutdown).await;
    let client = |identity| {
        let peers = Peers::new(identity, TRUST_DOMAIN, NAMESPACE).with_addr("analytics", addr.to_string());
        AnalyticsServiceClient::new(peers.channel("analytics").expect("channel"))
    };
    let mut distribution = client(ca.identity("distribution", HOUR).await);
    let mut gateway = client(ca.identity("gateway", HOUR).await);
    let mut participation = client(ca.identity("participation", HOUR).await);

    let now = SystemClock.now_ms();
    let event = EventSpec::new("wired", OWNER, Some(20_000), &[INSTAGRAM], now - DAY_MS, now + DAY_MS);
    let report = || event.metrics("w-1", INSTAGRAM, 40, 30, now - 1_000);
    let recorded = distribution.record_channel_metrics(report()).await.expect("distribution may report").into_inner();
    assert_eq!((recorded.duplicate, recorded.stale), (false, false));
    let again = distribution.record_channel_metrics(report()).await.expect("retried report").into_inner();
    assert!(again.duplicate);
    for (who, caller) in [("gateway", &mut gateway), ("participation", &mut participation)] {
        let denied = caller.record_channel_metrics(report()).await;
        assert_eq!(denied.map_err(|s| s.code()).err(), Some(Code::PermissionDenied), "{who} may not report");
    }

    // The owner methods, through the gateway's identity with the end user's id.
    for (id, body) in event.lifecycle_to_published(now - 2_000) {
        kem_kit::queue::Queue::send(svc.ctx.queue.as_ref(), envelope(&id, &body)).await.expect("send");
    }
    let get = |owner: &str| with_owner(Request::new(pb::GetEventAnalyticsRequest { event_id: "wired".into() }), owner);
    let fetch = || {
        let mut gateway = gateway.clone();
        async move { gateway.get_event_analytics(get(OWNER)).await }
    };
    eventually("the consumer has applied the event's facts", Duration::from_secs(30), || async {
        match fetch().await {
            Ok(_) => true,
            Err(status) if status.code() == Code::NotFound => false,
            Err(status) => panic!("unexpected {status:?}"),
        }
    })
    .await;
    let analytics = fetch().await.expect("analytics").into_inner().analytics.expect("analytics");
    assert_eq!((analytics.total_views, analytics.total_reach, krw(&analytics.budget)), (40, 30, Some(20_000)));
    let status = expect_code(gateway.get_event_analytics(get(OTHER)).await, Code::NotFound);
    assert_eq!(reason(&status), "EVENT_NOT_FOUND", "ErrorInfo crosses the wire");
    let status = expect_code(
        gateway.get_event_analytics(Request::new(pb::GetEventAnalyticsRequest { event_id: "wired".into() })).await,
        Code::Unauthenticated,
    );
    assert!(status.message().contains("Bearer"), "{}", status.message());
    let dashboard = gateway
        .get_dashboard(with_owner(Request::new(pb::GetDashboardRequest {}), OWNER))
        .await
        .expect("dashboard")
        .into_inner()
        .dashboard
        .expect("dashboard");
    assert_eq!((dashboard.total_events, dashboard.total_reach), (1, 30));
    let denied = participation.get_dashboard(with_owner(Request::new(pb::GetDashboardRequest {}), OWNER)).await;
    expect_code(denied, Code::PermissionDenied);

    svc.cleanup().await;
    ca.shutdown.trigger();
}
