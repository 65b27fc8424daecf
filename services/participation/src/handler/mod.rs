//! The gRPC adapter of `kem.participation.v1.ParticipationService`: contract messages in, use
//! cases called, contract messages or rich statuses out.
//!
//! Access is enforced by the mesh (Enter: the gateway; owner methods: the gateway with a
//! verified `x-kem-user-id`; CountEntries: analytics; AnonymizeEntries: event). Owner methods
//! read the owner from that metadata and answer NOT_FOUND for anyone else's event.

pub mod convert;
pub mod status;

use std::sync::Arc;

use kem_kit::runtime::owner_id;
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::{
    ParticipationService, ParticipationServiceServer,
};
use tonic::{Request, Response, Status};

pub use status::{DOMAIN, to_status};

use crate::model::entry::{ConsentInput, EntryInput};
use crate::service::{DrawOutcome, DrawRequest, ParticipationCore, ParticipationError};

/// The participation service's gRPC API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ParticipationApi {
    core: Arc<ParticipationCore>,
}

impl ParticipationApi {
    /// The API over `core`.
    pub fn new(core: Arc<ParticipationCore>) -> ParticipationApi {
        ParticipationApi { core }
    }

    /// The use cases.
    pub fn core(&self) -> &Arc<ParticipationCore> {
        &self.core
    }

    /// The tonic service to mount on the role server.
    pub fn into_service(self) -> ParticipationServiceServer<ParticipationApi> {
        ParticipationServiceServer::new(self)
    }
}

fn reply<T>(result: Result<T, ParticipationError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(to_status)
}

fn consent(c: pb::Consent) -> ConsentInput {
    ConsentInput { granted: c.granted, text_version: c.consent_text_version }
}

fn draw(outcome: DrawOutcome) -> (Vec<pb::Winner>, Option<pb::DrawAudit>) {
    (outcome.winners.iter().map(convert::winner).collect(), Some(convert::audit(&outcome.record)))
}

#[tonic::async_trait]
impl ParticipationService for ParticipationApi {
    async fn enter(&self, request: Request<pb::EnterRequest>) -> Result<Response<pb::EnterResponse>, Status> {
        let r = request.into_inner();
        let input = EntryInput {
            event_id: r.event_id,
            name: r.name,
            phone: r.phone,
            privacy: r.privacy_consent.map(consent),
            marketing: r.marketing_consent.map(consent),
            source_channel: r.source_channel,
        };
        reply(self.core.enter(input).await.map(|e| pb::EnterResponse { entry: Some(convert::entry(&e)) }))
    }

    async fn list_participants(
        &self,
        request: Request<pb::ListParticipantsRequest>,
    ) -> Result<Response<pb::ListParticipantsResponse>, Status> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        let page = self.core.list_participants(&owner, &r.event_id, r.page_size, &r.page_token).await;
        reply(page.map(|p| pb::ListParticipantsResponse {
            entries: p.entries.iter().map(convert::entry).collect(),
            next_page_token: p.next_page_token,
            total_size: p.total_size,
        }))
    }

    async fn draw_winners(
        &self,
        request: Request<pb::DrawWinnersRequest>,
    ) -> Result<Response<pb::DrawWinnersResponse>, Status> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        let request = DrawRequest {
            event_id: r.event_id,
            count: r.count,
            seed: r.seed,
            redraw: r.redraw,
            exclude_entry_ids: r.exclude_entry_ids,
        };
        reply(self.core.draw_winners(&owner, request).await.map(|outcome| {
            let (winners, audit) = draw(outcome);
            pb::DrawWinnersResponse { winners, audit }
        }))
    }

    async fn list_winners(
        &self,
        request: Request<pb::ListWinnersRequest>,
    ) -> Result<Response<pb::ListWinnersResponse>, Status> {
        let owner = owner_id(&request)?;
        let current = self.core.list_winners(&owner, &request.get_ref().event_id).await;
        reply(current.map(|outcome| match outcome {
            Some(outcome) => {
                let (winners, audit) = draw(outcome);
                pb::ListWinnersResponse { winners, audit }
            }
            None => pb::ListWinnersResponse::default(),
        }))
    }

    async fn count_entries(
        &self,
        request: Request<pb::CountEntriesRequest>,
    ) -> Result<Response<pb::CountEntriesResponse>, Status> {
        let counts = self.core.count_entries(&request.get_ref().event_ids).await;
        reply(counts.map(|c| pb::CountEntriesResponse { counts: c.iter().map(convert::event_count).collect() }))
    }

    async fn anonymize_entries(
        &self,
        request: Request<pb::AnonymizeEntriesRequest>,
    ) -> Result<Response<pb::AnonymizeEntriesResponse>, Status> {
        let r = request.into_inner();
        let before = r.create_before.as_ref().map(convert::millis);
        let erased = self.core.anonymize(&r.event_id, before).await;
        reply(erased.map(|n| pb::AnonymizeEntriesResponse { anonymized_count: i64::try_from(n).unwrap_or(i64::MAX) }))
    }
}
