//! The participation service (layered).
//!
//! Status: the gRPC contract `kem.participation.v1.ParticipationService` is served, and every business RPC answers
//! UNIMPLEMENTED until the participation service issue (issue 10) lands. The role still answers health
//! checks and reflection, so deployment, probes and the mesh can be built and tested against it.
#![forbid(unsafe_code)]

use kem_proto::kem::participation::v1::participation_service_server::{
    ParticipationService, ParticipationServiceServer,
};

/// gRPC adapter of the participation service.
#[derive(Debug, Default, Clone)]
pub struct ParticipationServiceApi;

// Every method keeps the generated default (UNIMPLEMENTED) until the service issue lands.
impl ParticipationService for ParticipationServiceApi {}

/// The tonic service to mount on the role server.
pub fn grpc_service() -> ParticipationServiceServer<ParticipationServiceApi> {
    ParticipationServiceServer::new(ParticipationServiceApi)
}
