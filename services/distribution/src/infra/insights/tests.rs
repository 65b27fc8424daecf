//! The insights reader against the Instagram contract server (its §10 insights endpoint), and the
//! report to analytics over the real mesh (mTLS and the contracts' authorization) to an in-test
//! analytics service that keeps what it was sent.

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kem_mesh::Shutdown;
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_proto::kem::analytics::v1::analytics_service_server::{AnalyticsService, AnalyticsServiceServer};
use kem_testkit::contracts::instagram::{IgServer, Insights as IgInsights, TOKEN, VERSION};
use tonic::{Request, Response, Status};

use super::*;

fn reader(ig: &IgServer) -> InstagramInsights {
    InstagramInsights::new(provider_config(ig.base_url()), VERSION).expect("reader")
}

fn token() -> Secret {
    Secret::new(TOKEN)
}

#[tokio::test]
async fn empty_insights_and_low_audience_are_not_reported_and_numbers_are() {
    let ig = IgServer::start().await;
    let insights = reader(&ig);
    let media = ig.seed_media(&ig.default_account());
    assert_eq!(insights.read(&media, &token()).await.expect("read"), Insights::NotReported(NotReported::NotYet));

    ig.set_insights(&media, IgInsights { reach: 120, views: 300, likes: 14, comments: 3, saved: 2, shares: 1 });
    let expected =
        MediaInsights { reach: 120, views: 300, likes: 14, comments: 3, saved: 2, shares: 1, total_interactions: 20 };
    assert_eq!(insights.read(&media, &token()).await.expect("read"), Insights::Reported(expected));
    let quiet = ig.seed_media(&ig.default_account());
    ig.set_insights(&quiet, IgInsights::default());
    assert_eq!(
        insights.read(&quiet, &token()).await.expect("read"),
        Insights::Reported(MediaInsights::default()),
        "a reported 0 is a 0"
    );
    ig.low_audience(&media);
    assert_eq!(insights.read(&media, &token()).await.expect("read"), Insights::NotReported(NotReported::LowAudience));
    // The server answers 400/100 to `impressions`: three successful reads prove it was never asked.
    assert!(!METRICS.contains("impressions"));
    assert_eq!(ig.insight_reads(), 3);
}

#[tokio::test]
async fn refused_tokens_and_foreign_media_are_auth_errors_and_bad_ids_are_never_sent() {
    let ig = IgServer::start().await;
    let insights = reader(&ig);
    let mine = ig.seed_media(&ig.default_account());
    let forged = insights.read(&mine, &Secret::new("forged")).await.expect_err("forged token");
    assert!(matches!(forged, ProviderError::Auth { .. }), "{forged:?}");
    let theirs = ig.seed_media(&ig.add_account("someone_else"));
    let foreign = insights.read(&theirs, &token()).await.expect_err("another account's media");
    assert!(matches!(foreign, ProviderError::Auth { .. }), "permission (code 10), not low audience: {foreign:?}");
    assert!(!format!("{foreign:?}{foreign}").contains(TOKEN), "the token is never in an error");
    let calls = ig.calls();
    for bad in ["", "../me", "m-1/insights?x", "m 1", &"9".repeat(65), "m-1%2F"] {
        let error = insights.read(bad, &token()).await.expect_err("refused");
        assert!(matches!(error, ProviderError::Request { .. }), "{bad}: {error:?}");
    }
    assert_eq!(ig.calls(), calls, "nothing was sent for a bad id");
}

/// An analytics service keeping the reports it is sent.
#[derive(Default)]
struct Kept(Mutex<Vec<analytics::RecordChannelMetricsRequest>>);

struct Analytics(std::sync::Arc<Kept>);

#[tonic::async_trait]
impl AnalyticsService for Analytics {
    async fn record_channel_metrics(
        &self,
        request: Request<analytics::RecordChannelMetricsRequest>,
    ) -> Result<Response<analytics::RecordChannelMetricsResponse>, Status> {
        let report = request.into_inner();
        let mut kept = self.0.0.lock().map_err(|_| Status::internal("poisoned"))?;
        let duplicate = kept.iter().any(|r| r.report_id == report.report_id);
        kept.push(report);
        Ok(Response::new(analytics::RecordChannelMetricsResponse { duplicate, stale: false }))
    }
}

#[tokio::test]
async fn reported_numbers_reach_analytics_over_the_mesh_and_unreported_ones_do_not() {
    let ig = IgServer::start().await;
    let insights = reader(&ig);
    let media = ig.seed_media(&ig.default_account());
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let kept = std::sync::Arc::new(Kept::default());
    let addr =
        kem_testkit::mesh::serve(&ca, "analytics", AnalyticsServiceServer::new(Analytics(kept.clone())), &shutdown)
            .await;
    let identity = ca.identity("distribution", Duration::from_secs(3600)).await;
    let peers = Peers::new(identity, TRUST_DOMAIN, NAMESPACE).with_addr("analytics", addr.to_string());
    let secret = token();
    let observed = UNIX_EPOCH + Duration::from_millis(1_800_000_000_123);
    let post =
        PostInsights { event_id: "ev-1", channel: Channel::Instagram, media_id: &media, token: &secret, observed };
    let wait = Duration::from_secs(10);

    let nothing = record_instagram(&insights, &peers, &post, wait).await.expect("not reported");
    assert_eq!(nothing, Recorded::NotReported(NotReported::NotYet));
    assert!(kept.0.lock().expect("kept").is_empty(), "not reported: nothing is sent, analytics keeps 'not reported'");

    ig.set_insights(&media, IgInsights { reach: 80, views: 200, ..IgInsights::default() });
    let recorded = record_instagram(&insights, &peers, &post, wait).await.expect("recorded");
    assert!(matches!(recorded, Recorded::Recorded { duplicate: false, insights, .. } if insights.views == 200));
    let again = record_instagram(&insights, &peers, &post, wait).await.expect("again");
    assert!(matches!(again, Recorded::Recorded { duplicate: true, .. }), "one observation counts once");
    let reports = kept.0.lock().expect("kept").clone();
    let report = &reports[0];
    assert_eq!(report.report_id, "ev-1:instagram:1800000000123");
    assert_eq!((report.event_id.as_str(), report.channel), ("ev-1", Channel::Instagram.number()));
    assert_eq!((report.views, report.reach, report.deliveries_published), (200, 80, 1));
    assert_eq!(report.observe_time.as_ref().map(kem_kit::clock::ms_from_timestamp), Some(1_800_000_000_123));
    assert_eq!(report.provider.as_ref().map(|p| p.kind), Some(common::ProviderKind::External as i32));
    assert_eq!(report_id("e", Channel::Instagram, SystemTime::UNIX_EPOCH), "e:instagram:0");

    // Analytics unreachable: an error naming it, not a silent success.
    let nowhere = Peers::new(ca.identity("distribution", Duration::from_secs(3600)).await, TRUST_DOMAIN, NAMESPACE)
        .with_addr("analytics", kem_testkit::net::free_addr().to_string());
    let failed = record_instagram(&insights, &nowhere, &post, Duration::from_secs(2)).await.expect_err("unreachable");
    assert!(matches!(failed, InsightsError::Analytics(_)), "{failed:?}");
    shutdown.trigger();
}
