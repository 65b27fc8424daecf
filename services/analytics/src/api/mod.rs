//! The gRPC adapter of `kem.analytics.v1.AnalyticsService`: requests in, use cases called,
//! contract messages ([`convert`]) and `google.rpc` statuses ([`status`]) out. No business rule
//! lives here.

pub mod convert;
pub mod status;

use std::sync::Arc;

use kem_kit::runtime::owner_id;
use kem_proto::kem::analytics::v1 as pb;
use kem_proto::kem::analytics::v1::analytics_service_server::{AnalyticsService, AnalyticsServiceServer};
use tonic::{Request, Response, Status};

pub use status::{DOMAIN, to_status};

use crate::app::AnalyticsCore;
use crate::domain::MetricsInput;
use crate::infra::consumer::AggregationHandler;

/// The analytics service's gRPC API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AnalyticsApi {
    core: Arc<AnalyticsCore>,
}

impl AnalyticsApi {
    /// The API over `core`.
    pub fn new(core: Arc<AnalyticsCore>) -> AnalyticsApi {
        AnalyticsApi { core }
    }

    /// The use cases (cache counters for metrics and tests).
    pub fn core(&self) -> &Arc<AnalyticsCore> {
        &self.core
    }

    /// The `analytics-aggregation` consumer's handler over the same use cases.
    pub fn aggregation_handler(&self) -> AggregationHandler {
        AggregationHandler::new(self.core.clone())
    }

    /// The tonic service to mount on the role server.
    pub fn into_service(self) -> AnalyticsServiceServer<AnalyticsApi> {
        AnalyticsServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl AnalyticsService for AnalyticsApi {
    async fn get_event_analytics(
        &self,
        request: Request<pb::GetEventAnalyticsRequest>,
    ) -> Result<Response<pb::GetEventAnalyticsResponse>, Status> {
        let owner = owner_id(&request)?;
        let (view, freshness) =
            self.core.event_analytics(&owner, &request.get_ref().event_id).await.map_err(to_status)?;
        Ok(Response::new(pb::GetEventAnalyticsResponse { analytics: Some(convert::event_analytics(&view, freshness)) }))
    }

    async fn get_dashboard(
        &self,
        request: Request<pb::GetDashboardRequest>,
    ) -> Result<Response<pb::GetDashboardResponse>, Status> {
        let owner = owner_id(&request)?;
        let (view, freshness) = self.core.dashboard(&owner).await.map_err(to_status)?;
        Ok(Response::new(pb::GetDashboardResponse { dashboard: Some(convert::dashboard(&view, freshness)) }))
    }

    async fn record_channel_metrics(
        &self,
        request: Request<pb::RecordChannelMetricsRequest>,
    ) -> Result<Response<pb::RecordChannelMetricsResponse>, Status> {
        let r = request.into_inner();
        let provider = r.provider.unwrap_or_default();
        let input = MetricsInput {
            report_id: r.report_id,
            event_id: r.event_id,
            channel: r.channel,
            views: r.views,
            reach: r.reach,
            deliveries_published: r.deliveries_published,
            deliveries_failed: r.deliveries_failed,
            observed_ms: r.observe_time.as_ref().map(convert::timestamp_ms),
            source_kind: provider.kind,
            source_name: provider.name,
        };
        let recorded = self.core.record_metrics(input).await.map_err(to_status)?;
        Ok(Response::new(pb::RecordChannelMetricsResponse { duplicate: recorded.duplicate, stale: recorded.stale }))
    }
}
