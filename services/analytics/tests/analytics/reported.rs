//! "Not reported" is not 0 (#21): a channel's figures say whether RecordChannelMetrics ever
//! reported them and when the latest report was observed — in the event's analytics and summed
//! on the dashboard — and a reported 0 is reported.

use kem_kit::clock::ms_from_timestamp;

use crate::support::*;

fn reported(stats: &[kem_proto::kem::analytics::v1::ChannelStats], channel: i32) -> (bool, Option<i64>, i64) {
    let c = stats.iter().find(|c| c.channel == channel).unwrap_or_else(|| panic!("channel {channel} listed"));
    (c.metrics_reported, c.metrics_observe_time.as_ref().map(ms_from_timestamp), c.views)
}

#[tokio::test]
async fn a_reported_zero_is_reported_and_a_silent_channel_is_not() {
    let h = Harness::new().await;
    let now = SystemClock.now_ms();
    let minute = 60_000;
    let e = EventSpec::new("e-rep", OWNER, Some(100_000), &[INSTAGRAM, KAKAO], now - DAY_MS, now + DAY_MS);
    let f = EventSpec::new("f-rep", OWNER, Some(100_000), &[INSTAGRAM, NAVER], now - DAY_MS, now + DAY_MS);
    let mut facts = e.lifecycle_to_published(now - DAY_MS);
    facts.extend(f.lifecycle_to_published(now - DAY_MS));
    h.deliver(&facts).await;

    // Nothing reported yet: every planned channel shows, none reported.
    let a = h.analytics(OWNER, "e-rep").await.expect("analytics");
    assert_eq!(reported(&a.channel_stats, INSTAGRAM), (false, None, 0));
    assert_eq!(reported(&a.channel_stats, KAKAO), (false, None, 0));

    // Instagram reports 0 views: reported, at its observation time.
    let at = now - 30 * minute;
    assert_eq!(h.record(e.metrics("e-rep:ig:1", INSTAGRAM, 0, 0, at)).await.expect("record"), (false, false));
    let a = h.analytics(OWNER, "e-rep").await.expect("analytics");
    assert_eq!(reported(&a.channel_stats, INSTAGRAM), (true, Some(at), 0), "a reported 0");
    assert_eq!(reported(&a.channel_stats, KAKAO), (false, None, 0), "still not reported");

    // A later report moves the time; an older one (stale) does not.
    let later = now - 10 * minute;
    h.record(e.metrics("e-rep:ig:2", INSTAGRAM, 40, 30, later)).await.expect("later");
    assert_eq!(h.record(e.metrics("e-rep:ig:0", INSTAGRAM, 5, 5, now - DAY_MS)).await.expect("stale"), (false, true));
    let a = h.analytics(OWNER, "e-rep").await.expect("analytics");
    assert_eq!(reported(&a.channel_stats, INSTAGRAM), (true, Some(later), 40));

    // The dashboard: Instagram reported (by one of the two events, the latest observation),
    // Kakao and Naver not.
    let d = h.dashboard(OWNER).await.expect("dashboard");
    assert_eq!(reported(&d.channel_stats, INSTAGRAM), (true, Some(later), 40));
    assert_eq!(reported(&d.channel_stats, KAKAO), (false, None, 0));
    assert_eq!(reported(&d.channel_stats, NAVER), (false, None, 0));
    h.record(f.metrics("f-rep:nv:1", NAVER, 0, 0, now - 5 * minute)).await.expect("naver");
    let d = h.dashboard(OWNER).await.expect("dashboard");
    assert_eq!(reported(&d.channel_stats, NAVER), (true, Some(now - 5 * minute), 0));
    h.cleanup().await;
}
