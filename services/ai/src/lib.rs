//! The ai service (clean/hexagonal).
//!
//! Status: the gRPC contract `kem.ai.v1.AiService` is served, and every business RPC answers
//! UNIMPLEMENTED until the ai service issue (issue 9) lands. The role still answers health
//! checks and reflection, so deployment, probes and the mesh can be built and tested against it.
#![forbid(unsafe_code)]

use kem_proto::kem::ai::v1::ai_service_server::{AiService, AiServiceServer};

/// gRPC adapter of the ai service.
#[derive(Debug, Default, Clone)]
pub struct AiServiceApi;

// Every method keeps the generated default (UNIMPLEMENTED) until the service issue lands.
impl AiService for AiServiceApi {}

/// The tonic service to mount on the role server.
pub fn grpc_service() -> AiServiceServer<AiServiceApi> {
    AiServiceServer::new(AiServiceApi)
}
