//! The event service (clean/hexagonal: api → app → domain → infra).
//!
//! Status: the gRPC contract `kem.event.v1.EventService` is served, and every business RPC answers
//! UNIMPLEMENTED until the event service issue (issue 8) lands. The role still answers health
//! checks and reflection, so deployment, probes and the mesh can be built and tested against it.
#![forbid(unsafe_code)]

use kem_proto::kem::event::v1::event_service_server::{EventService, EventServiceServer};

/// gRPC adapter of the event service.
#[derive(Debug, Default, Clone)]
pub struct EventServiceApi;

// Every method keeps the generated default (UNIMPLEMENTED) until the service issue lands.
impl EventService for EventServiceApi {}

/// The tonic service to mount on the role server.
pub fn grpc_service() -> EventServiceServer<EventServiceApi> {
    EventServiceServer::new(EventServiceApi)
}
