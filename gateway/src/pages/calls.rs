//! The pages' backend calls, made exactly like the transcoded routes make theirs: over the edge's
//! upstream channels (mesh mTLS, the mesh client retrying idempotent methods), through the edge's
//! admission control per service, with the request's deadline as `grpc-timeout` and as a local
//! timeout, the client's address as `x-kem-client-ip` and the request id as `x-request-id`.

use std::net::IpAddr;
use std::time::Duration;

use kem_kit::runtime::with_client_ip;
use kem_proto::kem::event::v1 as event;
use kem_proto::kem::event::v1::event_service_client::EventServiceClient;
use kem_proto::kem::participation::v1 as participation;
use kem_proto::kem::participation::v1::participation_service_client::ParticipationServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::{Code, Status};

use crate::edge::Edge;
use crate::upstream::Upstream;

/// Full name of the event service.
pub const EVENT_SERVICE: &str = "kem.event.v1.EventService";
/// Full name of the participation service.
pub const PARTICIPATION_SERVICE: &str = "kem.participation.v1.ParticipationService";

/// What one page request needs to call the services.
pub struct Calls<'a> {
    /// The edge (upstreams, admission, deadline policy).
    pub edge: &'a Edge,
    /// The request's deadline.
    pub deadline: Duration,
    /// The client's address (after the trusted-proxy rules).
    pub client: IpAddr,
}

impl Calls<'_> {
    /// `GetPublicEvent` of `event_id`.
    pub async fn public_event(&self, event_id: &str, request_id: &str) -> Result<event::PublicEvent, Status> {
        let message = event::GetPublicEventRequest { event_id: event_id.to_owned() };
        let request = self.request(message, request_id);
        let response =
            self.run(EVENT_SERVICE, |channel| async move {
                EventServiceClient::new(channel).get_public_event(request).await
            })
            .await?;
        response.event.ok_or_else(|| Status::internal("the event service answered without the event"))
    }

    /// `Enter`, sent with `request_id` so that a repeated submission of the same render replays
    /// the first entry instead of making a duplicate.
    pub async fn enter(
        &self,
        message: participation::EnterRequest,
        request_id: &str,
    ) -> Result<participation::EnterResponse, Status> {
        let request = self.request(message, request_id);
        self.run(PARTICIPATION_SERVICE, |channel| async move {
            ParticipationServiceClient::new(channel).enter(request).await
        })
        .await
    }

    /// `GetPublicWinners` of `event_id`.
    pub async fn public_winners(
        &self,
        event_id: &str,
        request_id: &str,
    ) -> Result<participation::GetPublicWinnersResponse, Status> {
        let message = participation::GetPublicWinnersRequest { event_id: event_id.to_owned() };
        let request = self.request(message, request_id);
        self.run(PARTICIPATION_SERVICE, |channel| async move {
            ParticipationServiceClient::new(channel).get_public_winners(request).await
        })
        .await
    }

    /// `ClaimPrize`, sent with the render's request id (claims are idempotent per phone and code).
    pub async fn claim_prize(
        &self,
        message: participation::ClaimPrizeRequest,
        request_id: &str,
    ) -> Result<participation::ClaimPrizeResponse, Status> {
        let request = self.request(message, request_id);
        self.run(PARTICIPATION_SERVICE, |channel| async move {
            ParticipationServiceClient::new(channel).claim_prize(request).await
        })
        .await
    }

    /// `SendParticipantCode`: a one-time code by SMS.
    pub async fn send_code(
        &self,
        message: participation::SendParticipantCodeRequest,
        request_id: &str,
    ) -> Result<participation::SendParticipantCodeResponse, Status> {
        let request = self.request(message, request_id);
        self.run(PARTICIPATION_SERVICE, |channel| async move {
            ParticipationServiceClient::new(channel).send_participant_code(request).await
        })
        .await
    }

    /// `LookupEntry`: where an entry stands.
    pub async fn lookup_entry(
        &self,
        message: participation::LookupEntryRequest,
        request_id: &str,
    ) -> Result<participation::LookupEntryResponse, Status> {
        let request = self.request(message, request_id);
        self.run(PARTICIPATION_SERVICE, |channel| async move {
            ParticipationServiceClient::new(channel).lookup_entry(request).await
        })
        .await
    }

    /// `WithdrawEntry`, sent with the render's request id (withdrawing again answers OK).
    pub async fn withdraw_entry(
        &self,
        message: participation::WithdrawEntryRequest,
        request_id: &str,
    ) -> Result<participation::WithdrawEntryResponse, Status> {
        let request = self.request(message, request_id);
        self.run(PARTICIPATION_SERVICE, |channel| async move {
            ParticipationServiceClient::new(channel).withdraw_entry(request).await
        })
        .await
    }

    fn request<T>(&self, message: T, request_id: &str) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("grpc-timeout", self.edge.config.deadlines.grpc_timeout_value(self.deadline));
        let mut request = with_client_ip(request, self.client);
        if let Ok(value) = MetadataValue::<Ascii>::try_from(request_id) {
            crate::edge::set_request_id(&mut request, value);
        }
        request
    }

    async fn run<T, F>(&self, service: &str, call: impl FnOnce(Upstream) -> F) -> Result<T, Status>
    where
        F: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let Some(channel) = self.edge.upstreams.get(service) else {
            return Err(Status::unavailable("the service is not available"));
        };
        // Overload is refused at the door, as for the API; the permit is held for the call.
        let _permit = match self.edge.config.admission.admit(service).await {
            Ok(permit) => permit,
            Err(rejected) => return Err(Status::unavailable(format!("the service is {rejected}"))),
        };
        match tokio::time::timeout(self.deadline, call(channel)).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(status),
            Err(_) => Err(Status::deadline_exceeded("the request deadline was exceeded")),
        }
    }
}

/// How a failed call is shown to a participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The event does not exist for the public (unknown, or never published).
    NotFound,
    /// The service refused the id.
    BadRequest,
    /// Unreachable, overloaded, too slow or rate limited: try again in this many seconds.
    Unavailable {
        /// Seconds until a retry makes sense (`Retry-After`).
        retry_after: u64,
    },
    /// Anything else: a defect somewhere.
    Internal,
}

impl Failure {
    /// The failure a status stands for. Transport failures (which carry a source error) are
    /// unavailability whatever code tonic gave them.
    pub fn of(status: &Status) -> Failure {
        let retry_after = kem_kit::status::retry_delay(status).map_or(1, |d| d.as_secs().clamp(1, 3600));
        if std::error::Error::source(status).is_some() {
            return Failure::Unavailable { retry_after };
        }
        match status.code() {
            Code::NotFound => Failure::NotFound,
            Code::InvalidArgument => Failure::BadRequest,
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Cancelled => {
                Failure::Unavailable { retry_after }
            }
            _ => Failure::Internal,
        }
    }
}

/// The `ErrorInfo.reason` of a status ("" when it has none).
pub fn reason(status: &Status) -> String {
    kem_proto::status::error_info_of(status).map(|info| info.reason).unwrap_or_default()
}

/// The field paths of a status's `BadRequest` violations.
pub fn violated_fields(status: &Status) -> Vec<String> {
    use prost::Message as _;
    let Some(details) = kem_proto::status::details(status) else { return Vec::new() };
    details
        .details
        .iter()
        .filter(|any| any.type_url.ends_with("google.rpc.BadRequest"))
        .filter_map(|any| kem_proto::google::rpc::BadRequest::decode(any.value.as_slice()).ok())
        .flat_map(|request| request.field_violations.into_iter().map(|v| v.field))
        .collect()
}
