//! Owner answers are cached in Redis for 5 minutes and recomputed as soon as new data arrives for
//! the event or its owner.

use kem_proto::kem::event::v1::EventStatus;

use crate::support::*;

#[tokio::test]
async fn answers_come_from_redis_until_new_data_arrives() {
    let h = Harness::new().await;
    let now = SystemClock.now_ms();
    let event = EventSpec::new("cached", OWNER, Some(90_000), &[INSTAGRAM], now - DAY_MS, now + DAY_MS);
    let mut facts = event.lifecycle_to_published(now - HOUR_MS);
    facts.push(event.entry("c-1", INSTAGRAM, now - 1_000));
    facts.push(event.entry("c-2", INSTAGRAM, now - 900));
    h.deliver(&facts).await;

    // First read computes, second is served from the cache without touching the database.
    let first = h.analytics(OWNER, "cached").await.expect("first");
    assert_eq!(first.total_participants, 2);
    assert_eq!(first.cache.as_ref().map(|c| c.cached), Some(false));
    let loads = h.loads();
    let second = h.analytics(OWNER, "cached").await.expect("second");
    assert_eq!(second.cache.as_ref().map(|c| c.cached), Some(true));
    assert_eq!(h.loads(), loads, "no database computation for a cached answer");
    assert_eq!(second.cache.as_ref().and_then(|c| c.compute_time), first.cache.as_ref().and_then(|c| c.compute_time));
    assert_eq!(second.total_participants, 2);
    let keys = h.redis_keys().await;
    assert!(keys.iter().any(|k| k.contains("event:cached")), "the answer is in Redis: {keys:?}");

    // Same for the dashboard.
    let dashboard = h.dashboard(OWNER).await.expect("dashboard");
    assert_eq!((dashboard.total_participants, dashboard.cache.as_ref().map(|c| c.cached)), (2, Some(false)));
    let loads = h.loads();
    let cached = h.dashboard(OWNER).await.expect("dashboard again");
    assert_eq!((cached.cache.as_ref().map(|c| c.cached), h.loads()), (Some(true), loads));

    // Another owner reading the event is refused from the cached answer too.
    expect_code(h.analytics(OTHER, "cached").await, tonic::Code::NotFound);

    // A new entry invalidates both the event's answer and its owner's dashboard.
    h.deliver(&[event.entry("c-3", KAKAO, now)]).await;
    let fresh = h.analytics(OWNER, "cached").await.expect("after a new entry");
    assert_eq!((fresh.total_participants, fresh.cache.as_ref().map(|c| c.cached)), (3, Some(false)));
    assert_eq!(krw(&fresh.cost_per_entry), Some(30_000));
    let dashboard = h.dashboard(OWNER).await.expect("dashboard after a new entry");
    assert_eq!((dashboard.total_participants, dashboard.cache.as_ref().map(|c| c.cached)), (3, Some(false)));

    // A redelivered entry changes nothing, so the cached answer stays.
    h.analytics(OWNER, "cached").await.expect("warm");
    h.deliver(&[event.entry("c-3", KAKAO, now)]).await;
    let same = h.analytics(OWNER, "cached").await.expect("after a redelivery");
    assert_eq!((same.total_participants, same.cache.as_ref().map(|c| c.cached)), (3, Some(true)));

    // Channel metrics invalidate as well.
    assert_eq!(h.record(event.metrics("r-1", INSTAGRAM, 700, 400, now)).await.expect("metrics"), (false, false));
    let measured = h.analytics(OWNER, "cached").await.expect("after metrics");
    assert_eq!((measured.total_views, measured.cache.as_ref().map(|c| c.cached)), (700, Some(false)));
    let dashboard = h.dashboard(OWNER).await.expect("dashboard after metrics");
    assert_eq!((dashboard.total_reach, dashboard.cache.as_ref().map(|c| c.cached)), (400, Some(false)));

    // A state change (the event ends) too.
    h.deliver(&[event.state(EventStatus::Published, EventStatus::Ended, now)]).await;
    let dashboard = h.dashboard(OWNER).await.expect("dashboard after the end");
    assert_eq!((dashboard.active_events_count, dashboard.total_events), (0, 1));
    h.cleanup().await;
}

#[tokio::test]
async fn an_unknown_event_becomes_visible_as_soon_as_its_facts_arrive() {
    let h = Harness::new().await;
    let now = SystemClock.now_ms();
    // "Not found" is cached briefly, and invalidated by the event's first fact.
    expect_code(h.analytics(OWNER, "late").await, tonic::Code::NotFound);
    expect_code(h.analytics(OWNER, "late").await, tonic::Code::NotFound);
    let empty = h.dashboard(OWNER).await.expect("empty dashboard");
    assert_eq!((empty.total_events, empty.total_participants, empty.roi, empty.update_time), (0, 0, None, None));
    assert_eq!(krw(&empty.total_budget), Some(0));
    let event = EventSpec::new("late", OWNER, Some(10_000), &[KAKAO], now - DAY_MS, now + DAY_MS);
    h.deliver(&event.lifecycle_to_published(now - 10)).await;
    assert_eq!(h.analytics(OWNER, "late").await.expect("visible").total_participants, 0);
    assert_eq!(h.dashboard(OWNER).await.expect("dashboard").total_events, 1);
    h.cleanup().await;
}
