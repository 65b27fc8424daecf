//! The analytics service (layered).
//!
//! Status: the gRPC contract `kem.analytics.v1.AnalyticsService` is served, and every business RPC answers
//! UNIMPLEMENTED until the analytics service issue (issue 10) lands. The role still answers health
//! checks and reflection, so deployment, probes and the mesh can be built and tested against it.
#![forbid(unsafe_code)]

use kem_proto::kem::analytics::v1::analytics_service_server::{AnalyticsService, AnalyticsServiceServer};

/// gRPC adapter of the analytics service.
#[derive(Debug, Default, Clone)]
pub struct AnalyticsServiceApi;

// Every method keeps the generated default (UNIMPLEMENTED) until the service issue lands.
impl AnalyticsService for AnalyticsServiceApi {}

/// The tonic service to mount on the role server.
pub fn grpc_service() -> AnalyticsServiceServer<AnalyticsServiceApi> {
    AnalyticsServiceServer::new(AnalyticsServiceApi)
}
