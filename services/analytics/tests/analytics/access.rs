//! Who may see what, and what requests are refused: owners only ever see their own events,
//! deleted events disappear, RecordChannelMetrics validates with camelCase field violations.

use kem_proto::kem::analytics::v1 as pb;
use kem_proto::kem::analytics::v1::analytics_service_server::AnalyticsService;
use kem_proto::kem::event::v1::EventStatus;
use tonic::{Code, Request};

use crate::support::*;

#[tokio::test]
async fn owner_methods_need_a_signed_in_owner_and_an_event_id() {
    let h = Harness::new().await;
    let anonymous = h.api.get_dashboard(Request::new(pb::GetDashboardRequest {})).await;
    expect_code(anonymous, Code::Unauthenticated);
    let anonymous =
        h.api.get_event_analytics(Request::new(pb::GetEventAnalyticsRequest { event_id: "e".into() })).await;
    expect_code(anonymous, Code::Unauthenticated);

    let status = expect_code(h.analytics(OWNER, "").await, Code::InvalidArgument);
    assert_eq!((violations(&status), reason(&status)), (vec!["eventId".to_owned()], "INVALID_ARGUMENT".to_owned()));
    let status = expect_code(h.analytics(OWNER, &"x".repeat(200)).await, Code::InvalidArgument);
    assert_eq!(violations(&status), vec!["eventId"]);
    h.cleanup().await;
}

#[tokio::test]
async fn channel_metrics_are_validated() {
    let h = Harness::new().await;
    let now = SystemClock.now_ms();
    let event = EventSpec::new("m", OWNER, None, &[INSTAGRAM], now - DAY_MS, now + DAY_MS);
    let invalid = pb::RecordChannelMetricsRequest {
        report_id: String::new(),
        event_id: String::new(),
        channel: UNKNOWN,
        views: -1,
        reach: -2,
        deliveries_published: -3,
        deliveries_failed: -4,
        observe_time: None,
        provider: None,
    };
    let status = expect_code(h.record(invalid).await, Code::InvalidArgument);
    assert_eq!(
        violations(&status),
        vec![
            "reportId",
            "eventId",
            "channel",
            "views",
            "reach",
            "deliveriesPublished",
            "deliveriesFailed",
            "observeTime"
        ]
    );
    assert_eq!(reason(&status), "INVALID_ARGUMENT");
    let future = event.metrics("f", INSTAGRAM, 1, 1, now + 3_600_000);
    assert_eq!(violations(&expect_code(h.record(future).await, Code::InvalidArgument)), vec!["observeTime"]);
    let unknown_channel = event.metrics("u", 42, 1, 1, now);
    assert_eq!(violations(&expect_code(h.record(unknown_channel).await, Code::InvalidArgument)), vec!["channel"]);

    // Metrics may arrive before analytics heard of the event: kept, shown once the owner is known.
    assert_eq!(h.record(event.metrics("early", INSTAGRAM, 10, 5, now - 5_000)).await.expect("early"), (false, false));
    expect_code(h.analytics(OWNER, "m").await, Code::NotFound);
    h.deliver(&event.lifecycle_to_published(now - 10_000)).await;
    let a = h.analytics(OWNER, "m").await.expect("known now");
    assert_eq!((a.total_views, a.total_reach), (10, 5));
    h.cleanup().await;
}

#[tokio::test]
async fn a_deleted_event_disappears_and_ignores_late_facts() {
    let h = Harness::new().await;
    let now = SystemClock.now_ms();
    let event = EventSpec::new("gone", OWNER, Some(10_000), &[KAKAO], now - DAY_MS, now + DAY_MS);
    h.deliver(&[event.state(EventStatus::Unspecified, EventStatus::Draft, now - 3_000)]).await;
    h.record(event.metrics("before", KAKAO, 5, 5, now - 2_500)).await.expect("metrics");
    assert_eq!(h.analytics(OWNER, "gone").await.expect("draft").total_views, 5);
    h.deliver(&[event.deleted(now - 2_000)]).await;
    let status = expect_code(h.analytics(OWNER, "gone").await, Code::NotFound);
    assert_eq!(reason(&status), "EVENT_NOT_FOUND");

    // Later facts and reports about it are acknowledged and change nothing.
    h.deliver(&[
        event.entry("late-entry", KAKAO, now - 1_000),
        event.state(EventStatus::Draft, EventStatus::Recommended, now),
    ])
    .await;
    assert_eq!(h.record(event.metrics("after", KAKAO, 9, 9, now)).await.expect("after"), (false, true));
    expect_code(h.analytics(OWNER, "gone").await, Code::NotFound);
    assert!(h.dead_letters().await.is_empty());
    for sql in [
        "SELECT COUNT(*) AS n FROM analytics_hourly",
        "SELECT COUNT(*) AS n FROM analytics_channel_metrics",
        "SELECT COUNT(*) AS n FROM analytics_channel_outcomes",
    ] {
        assert_eq!(count(h.store(), sql).await, 0, "{sql}: nothing of a deleted event is kept");
    }
    assert_eq!(h.dashboard(OWNER).await.expect("dashboard").total_events, 0);
    h.cleanup().await;
}
