//! The distribution service (layered).
//!
//! Status: the gRPC contract `kem.distribution.v1.DistributionService` is served, and every business RPC answers
//! UNIMPLEMENTED until the distribution service issue (issue 10) lands. The role still answers health
//! checks and reflection, so deployment, probes and the mesh can be built and tested against it.
#![forbid(unsafe_code)]

use kem_proto::kem::distribution::v1::distribution_service_server::{DistributionService, DistributionServiceServer};

/// gRPC adapter of the distribution service.
#[derive(Debug, Default, Clone)]
pub struct DistributionServiceApi;

// Every method keeps the generated default (UNIMPLEMENTED) until the service issue lands.
impl DistributionService for DistributionServiceApi {}

/// The tonic service to mount on the role server.
pub fn grpc_service() -> DistributionServiceServer<DistributionServiceApi> {
    DistributionServiceServer::new(DistributionServiceApi)
}
