//! The user service (layered: handler → service → repository).
//!
//! Status: the gRPC contract `kem.user.v1.UserService` is served, and every business RPC answers
//! UNIMPLEMENTED until the user service issue (issue 8) lands. The role still answers health
//! checks and reflection, so deployment, probes and the mesh can be built and tested against it.
#![forbid(unsafe_code)]

use kem_proto::kem::user::v1::user_service_server::{UserService, UserServiceServer};

/// gRPC adapter of the user service.
#[derive(Debug, Default, Clone)]
pub struct UserServiceApi;

// Every method keeps the generated default (UNIMPLEMENTED) until the service issue lands.
impl UserService for UserServiceApi {}

/// The tonic service to mount on the role server.
pub fn grpc_service() -> UserServiceServer<UserServiceApi> {
    UserServiceServer::new(UserServiceApi)
}
