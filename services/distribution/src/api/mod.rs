//! The gRPC adapter of `kem.distribution.v1.DistributionService`: owner from the gateway's
//! metadata, use cases from [`DistributionCore`], proto conversion ([`convert`], [`connections`]), errors as
//! `google.rpc` statuses ([`status`]).

pub mod connections;
pub mod convert;
pub mod status;

use std::sync::Arc;

use kem_kit::runtime::owner_id;
use kem_kit::validate::{IdShape, Violations};
use kem_proto::kem::distribution::v1 as pb;
use kem_proto::kem::distribution::v1::distribution_service_server::{DistributionService, DistributionServiceServer};
use tonic::{Request, Response, Status};

pub use status::{DOMAIN, to_status};

use crate::app::{DistributionCore, DistributionError, FieldViolation};

/// Event ids are the event service's: checked for the shape every kem id shares, before the
/// database or the event service is asked.
const EVENT_ID: IdShape = IdShape::Key { max: 64 };

/// The boundary checks' findings as INVALID_ARGUMENT.
fn checked(violations: Violations) -> Result<(), Status> {
    violations.into_result().map_err(|found| {
        to_status(DistributionError::InvalidArgument(
            found.into_iter().map(|v| FieldViolation::new(v.field, v.description)).collect(),
        ))
    })
}

/// The distribution service's gRPC API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DistributionApi {
    core: Arc<DistributionCore>,
}

impl DistributionApi {
    /// The API over `core`.
    pub fn new(core: Arc<DistributionCore>) -> DistributionApi {
        DistributionApi { core }
    }

    /// The use cases (tests feed jobs through them directly).
    pub fn core(&self) -> &Arc<DistributionCore> {
        &self.core
    }

    /// The tonic service to mount on the role server.
    pub fn into_service(self) -> DistributionServiceServer<DistributionApi> {
        DistributionServiceServer::new(self)
    }
}

#[tonic::async_trait]
impl DistributionService for DistributionApi {
    async fn get_status(
        &self,
        request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        let owner = owner_id(&request)?;
        checked(Violations::new().id("eventId", &request.get_ref().event_id, EVENT_ID))?;
        let status = self.core.status(&owner, &request.get_ref().event_id).await.map_err(to_status)?;
        Ok(Response::new(convert::status(&status, self.core.clock().now_ms())))
    }

    async fn retry(&self, request: Request<pb::RetryRequest>) -> Result<Response<pb::RetryResponse>, Status> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, EVENT_ID))?;
        let retried = self.core.retry(&owner, &r.event_id, &r.channels).await.map_err(to_status)?;
        Ok(Response::new(convert::retried(&retried, self.core.clock().now_ms())))
    }

    async fn list_channel_connections(
        &self,
        request: Request<pb::ListChannelConnectionsRequest>,
    ) -> Result<Response<pb::ListChannelConnectionsResponse>, Status> {
        connections::list(&self.core, request).await
    }

    async fn start_channel_connection(
        &self,
        request: Request<pb::StartChannelConnectionRequest>,
    ) -> Result<Response<pb::StartChannelConnectionResponse>, Status> {
        connections::start(&self.core, request).await
    }

    async fn complete_channel_connection(
        &self,
        request: Request<pb::CompleteChannelConnectionRequest>,
    ) -> Result<Response<pb::CompleteChannelConnectionResponse>, Status> {
        connections::complete(&self.core, request).await
    }

    async fn delete_channel_connection(
        &self,
        request: Request<pb::DeleteChannelConnectionRequest>,
    ) -> Result<Response<pb::DeleteChannelConnectionResponse>, Status> {
        connections::delete(&self.core, request).await
    }

    async fn check_channel_connections(
        &self,
        request: Request<pb::CheckChannelConnectionsRequest>,
    ) -> Result<Response<pb::CheckChannelConnectionsResponse>, Status> {
        connections::check(&self.core, request).await
    }
}
