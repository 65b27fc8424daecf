//! The gRPC adapter: `kem.ai.v1.AiService` on top of the use cases.
//!
//! Both RPCs run on the caller's deadline (the mesh's inbound `grpc-timeout`), capped at the
//! configured request budget. GetTrends is an owner method (the gateway vouches for the owner);
//! GenerateRecommendations is called by the event service over the mesh.

pub mod convert;
pub mod status;

use std::time::Duration;

use kem_proto::kem::ai::v1::ai_service_server::AiService;
use kem_proto::kem::ai::v1::{
    GenerateRecommendationsRequest, GenerateRecommendationsResponse, GetTrendsRequest, GetTrendsResponse,
};
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use crate::app::error::AppError;
use crate::app::recommendations::RecommendationService;
use crate::app::trends::TrendService;

/// The gRPC adapter of the ai service.
#[derive(Clone)]
pub struct AiApi {
    trends: TrendService,
    recommendations: RecommendationService,
    request_budget: Duration,
}

impl AiApi {
    /// The adapter over the use cases; a call gets at most `request_budget`.
    pub fn new(trends: TrendService, recommendations: RecommendationService, request_budget: Duration) -> AiApi {
        AiApi { trends, recommendations, request_budget }
    }

    /// When the call must be done: the caller's deadline, at most the request budget from now.
    fn deadline<T>(&self, request: &Request<T>) -> Instant {
        let budget = request
            .extensions()
            .get::<kem_mesh::deadline::Deadline>()
            .copied()
            .or_else(kem_mesh::deadline::current)
            .map_or(self.request_budget, |d| d.remaining().min(self.request_budget));
        Instant::now() + budget
    }
}

impl std::fmt::Debug for AiApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiApi").field("request_budget", &self.request_budget).finish_non_exhaustive()
    }
}

fn fail(error: AppError) -> Status {
    status::to_status(&error)
}

#[tonic::async_trait]
impl AiService for AiApi {
    async fn get_trends(&self, request: Request<GetTrendsRequest>) -> Result<Response<GetTrendsResponse>, Status> {
        let owner = kem_kit::runtime::owner_id(&request)?;
        let deadline = self.deadline(&request);
        let query = convert::trend_query(request.get_ref()).map_err(|e| fail(e.into()))?;
        let record = self.trends.trends(&query, deadline).await.map_err(fail)?;
        tracing::debug!(owner_id = %owner, category = %query.category, region = %query.region, cached = record.cached,
            provider = %record.provider.name, "trends served");
        Ok(Response::new(GetTrendsResponse {
            trend_analysis: Some(convert::trend_analysis(&record, self.trends.ttl())),
        }))
    }

    async fn generate_recommendations(
        &self,
        request: Request<GenerateRecommendationsRequest>,
    ) -> Result<Response<GenerateRecommendationsResponse>, Status> {
        let deadline = self.deadline(&request);
        let brief = convert::brief_from_request(request.get_ref()).map_err(|e| fail(e.into()))?;
        let result = self.recommendations.generate(&brief, deadline).await.map_err(fail)?;
        tracing::debug!(event_id = %request.get_ref().event_id, input_hash = %result.input_hash, cached = result.cached,
            provider = %result.provider.name, "recommendations served");
        Ok(Response::new(convert::generate_response(&result, self.recommendations.ttl())))
    }
}
