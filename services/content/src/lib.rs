//! The content service (clean/hexagonal).
//!
//! Status: the gRPC contract `kem.content.v1.ContentService` is served, and every business RPC answers
//! UNIMPLEMENTED until the content service issue (issue 9) lands. The role still answers health
//! checks and reflection, so deployment, probes and the mesh can be built and tested against it.
#![forbid(unsafe_code)]

use kem_proto::kem::content::v1::content_service_server::{ContentService, ContentServiceServer};

/// gRPC adapter of the content service.
#[derive(Debug, Default, Clone)]
pub struct ContentServiceApi;

// Every method keeps the generated default (UNIMPLEMENTED) until the service issue lands.
impl ContentService for ContentServiceApi {}

/// The tonic service to mount on the role server.
pub fn grpc_service() -> ContentServiceServer<ContentServiceApi> {
    ContentServiceServer::new(ContentServiceApi)
}
