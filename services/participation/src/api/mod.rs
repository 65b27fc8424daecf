//! The gRPC adapter of `kem.participation.v1.ParticipationService`: contract messages in, use
//! cases called, contract messages or rich statuses out.
//!
//! Access is enforced by the mesh (Enter and GetPublicWinners: the gateway; owner methods: the
//! gateway with a verified `x-kem-user-id`; CountEntries: analytics and event; AnonymizeEntries,
//! CloseEntries and DrawWinnersOnSchedule: event; ListMarketingRecipients: distribution, which
//! names the owner in the request because no person is behind its call). Owner methods read the
//! owner from that metadata and answer NOT_FOUND for anyone else's event.

pub mod convert;
pub mod status;

use std::sync::Arc;

use kem_kit::runtime::{client_ip, owner_id};
use kem_kit::validate::{IdShape, Text, Violation, Violations};
use kem_proto::kem::participation::v1 as pb;
use kem_proto::kem::participation::v1::participation_service_server::{
    ParticipationService, ParticipationServiceServer,
};
use tonic::{Request, Response, Status};

pub use status::{DOMAIN, to_status};

use crate::app::{
    BlockRequest, DrawOutcome, DrawRequest, ExportCaller, MAX_REASON_CHARS, ParticipationCore, ParticipationError,
};
use crate::domain::entry::{ConsentInput, EntryInput, RequestId};
use crate::domain::export::ExportKind;
use crate::domain::violation::{FieldViolation, Violations as FieldViolations};

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

/// Event ids are the event service's: checked for the shape every kem id shares, before the
/// database or the event service is asked (a NUL in `/events/%00/participants` was a 500 from
/// PostgreSQL, and a 500 from the event service an UNAVAILABLE here).
const EVENT_ID: IdShape = IdShape::Key { max: 64 };
/// Owner ids are the user service's, named by the distribution service in
/// ListMarketingRecipients: the shape every kem id shares.
const OWNER_ID: IdShape = IdShape::Key { max: 64 };
/// Entry ids are minted here as UUIDs.
const ENTRY_ID: IdShape = IdShape::Uuid;
/// ListParticipants page tokens: base64url (`app::page` authenticates them and bounds their
/// layout; this only keeps anything that cannot be one away from it).
const PAGE_TOKEN: IdShape = IdShape::Token { max: 512 };
/// Characters only: the lengths of names and consent versions are the entry rules' to judge.
const CHARACTERS: Text = Text::line(usize::MAX);
/// Phones and codes a participant types: one short line (the rules then judge the shape).
const SHORT_INPUT: Text = Text::line(64);
/// Block ids are minted here as UUIDs.
const BLOCK_ID: IdShape = IdShape::Uuid;
/// A block's note: one line of at most 200 characters.
const BLOCK_REASON: Text = Text::line(MAX_REASON_CHARS);

/// The metadata the edge (`kem_gateway::edge::REQUEST_ID`) puts the call's request id in, on every
/// call; the mesh's retries re-send it unchanged.
pub const REQUEST_ID_METADATA: &str = "x-request-id";

/// The request id of a call, when it carries a usable one. Enter is reachable from the gateway
/// only (mesh policy), so it is the edge's id; a malformed one (never sent by the edge) makes
/// the call not replayable rather than failing it.
fn request_id<T>(request: &Request<T>) -> Option<RequestId> {
    RequestId::parse(request.metadata().get(REQUEST_ID_METADATA)?.to_str().ok()?)
}

/// The boundary checks' findings as INVALID_ARGUMENT.
fn checked(violations: Violations) -> Result<(), Status> {
    violations.into_result().map_err(|found| {
        let mut violations = FieldViolations::default();
        for v in found {
            violations.push(FieldViolation::new(&v.field, v.description));
        }
        to_status(ParticipationError::InvalidArgument(violations))
    })
}

/// Each non-empty id of a batch (empty ones are skipped by the use case, per the contract).
fn batch_ids(field: &str, ids: &[String], shape: IdShape) -> Violations {
    let mut violations = Violations::new();
    for (i, id) in ids.iter().enumerate().filter(|(_, id)| !id.is_empty()) {
        if let Err(v) = kem_kit::validate::id("", id, shape) {
            violations.push(Violation::new(format!("{field}[{i}]"), v.description));
        }
    }
    violations
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
        // With the event and the phone, what makes a retried Enter answer with the entry its
        // first attempt stored (the contract declares Enter IDEMPOTENT on this).
        let request_id = request_id(&request);
        let client = client_ip(&request);
        let r = request.into_inner();
        let version = |c: &Option<pb::Consent>| c.as_ref().map(|c| c.consent_text_version.clone()).unwrap_or_default();
        checked(
            Violations::new()
                .id("eventId", &r.event_id, EVENT_ID)
                .text("name", &r.name, CHARACTERS)
                .text("phone", &r.phone, CHARACTERS)
                .text("privacyConsent.consentTextVersion", &version(&r.privacy_consent), CHARACTERS)
                .text("marketingConsent.consentTextVersion", &version(&r.marketing_consent), CHARACTERS),
        )?;
        let input = EntryInput {
            event_id: r.event_id,
            name: r.name,
            phone: r.phone,
            privacy: r.privacy_consent.map(consent),
            marketing: r.marketing_consent.map(consent),
            source_channel: r.source_channel,
            age_14_or_older: r.age_14_or_older,
            verification_code: r.verification_code,
        };
        reply(self.core.enter(input, request_id, client).await.map(|e| convert::enter_response(&e)))
    }

    async fn list_participants(
        &self,
        request: Request<pb::ListParticipantsRequest>,
    ) -> Result<Response<pb::ListParticipantsResponse>, Status> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, EVENT_ID).optional_id(
            "pageToken",
            &r.page_token,
            PAGE_TOKEN,
        ))?;
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
        let mut violations = Violations::new().id("eventId", &r.event_id, EVENT_ID);
        for v in batch_ids("excludeEntryIds", &r.exclude_entry_ids, ENTRY_ID) {
            violations.push(v);
        }
        checked(violations)?;
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
        checked(Violations::new().id("eventId", &request.get_ref().event_id, EVENT_ID))?;
        let current = self.core.list_winners(&owner, &request.get_ref().event_id).await;
        reply(current.map(|outcome| match outcome {
            Some(outcome) => {
                let draws = outcome.draws.iter().map(convert::audit).collect();
                let (winners, audit) = draw(outcome);
                pb::ListWinnersResponse { winners, audit, draws }
            }
            None => pb::ListWinnersResponse::default(),
        }))
    }

    async fn get_public_winners(
        &self,
        request: Request<pb::GetPublicWinnersRequest>,
    ) -> Result<Response<pb::GetPublicWinnersResponse>, Status> {
        checked(Violations::new().id("eventId", &request.get_ref().event_id, EVENT_ID))?;
        let current = self.core.public_winners(&request.get_ref().event_id).await;
        reply(current.map(|outcome| match outcome {
            Some(outcome) => pb::GetPublicWinnersResponse {
                winners: outcome.winners.iter().map(convert::public_winner).collect(),
                audit: Some(convert::audit(&outcome.record)),
                draws: outcome.draws.iter().map(convert::audit).collect(),
            },
            None => pb::GetPublicWinnersResponse::default(),
        }))
    }

    async fn draw_winners_on_schedule(
        &self,
        request: Request<pb::DrawWinnersOnScheduleRequest>,
    ) -> Result<Response<pb::DrawWinnersOnScheduleResponse>, Status> {
        checked(Violations::new().id("eventId", &request.get_ref().event_id, EVENT_ID))?;
        let drawn = self.core.draw_on_schedule(&request.get_ref().event_id).await;
        reply(drawn.map(|d| pb::DrawWinnersOnScheduleResponse {
            audit: Some(convert::audit(&d.record)),
            drawn_now: d.drawn_now,
        }))
    }

    async fn count_entries(
        &self,
        request: Request<pb::CountEntriesRequest>,
    ) -> Result<Response<pb::CountEntriesResponse>, Status> {
        checked(batch_ids("eventIds", &request.get_ref().event_ids, EVENT_ID))?;
        let counts = self.core.count_entries(&request.get_ref().event_ids).await;
        reply(counts.map(|c| pb::CountEntriesResponse { counts: c.iter().map(convert::event_count).collect() }))
    }

    async fn anonymize_entries(
        &self,
        request: Request<pb::AnonymizeEntriesRequest>,
    ) -> Result<Response<pb::AnonymizeEntriesResponse>, Status> {
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, EVENT_ID))?;
        let before = r.create_before.as_ref().map(convert::millis);
        let erased = self.core.anonymize(&r.event_id, before).await;
        reply(erased.map(|n| pb::AnonymizeEntriesResponse { anonymized_count: i64::try_from(n).unwrap_or(i64::MAX) }))
    }

    async fn close_entries(
        &self,
        request: Request<pb::CloseEntriesRequest>,
    ) -> Result<Response<pb::CloseEntriesResponse>, Status> {
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, EVENT_ID))?;
        let closed = self.core.close_entries(&r.event_id, r.close_time.as_ref().map(convert::millis)).await;
        reply(closed.map(|ms| pb::CloseEntriesResponse { close_time: Some(convert::timestamp(ms)) }))
    }

    async fn claim_prize(
        &self,
        request: Request<pb::ClaimPrizeRequest>,
    ) -> Result<Response<pb::ClaimPrizeResponse>, Status> {
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, EVENT_ID).text("phone", &r.phone, SHORT_INPUT).text(
            "claimCode",
            &r.claim_code,
            SHORT_INPUT,
        ))?;
        let claimed = self.core.claim_prize(&r.event_id, &r.phone, &r.claim_code).await;
        reply(claimed.map(|c| pb::ClaimPrizeResponse {
            rank: i32::try_from(c.rank).unwrap_or(i32::MAX),
            masked_name: c.masked_name,
            prize: Some(kem_proto::kem::common::v1::Prize {
                name: c.prize_name,
                description: String::new(),
                winner_count: c.winner_count.and_then(|n| i32::try_from(n).ok()).unwrap_or_default(),
                unit_value: c.prize_unit_value_krw.map(|amount_krw| kem_proto::kem::common::v1::Money { amount_krw }),
            }),
            claim_time: Some(convert::timestamp(c.claimed_at_ms)),
        }))
    }

    async fn redraw_unclaimed(
        &self,
        request: Request<pb::RedrawUnclaimedRequest>,
    ) -> Result<Response<pb::RedrawUnclaimedResponse>, Status> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, EVENT_ID))?;
        reply(self.core.redraw_unclaimed(&owner, &r.event_id, &r.seed).await.map(|outcome| {
            let (winners, audit) = draw(outcome);
            pb::RedrawUnclaimedResponse { winners, audit }
        }))
    }

    async fn send_participant_code(
        &self,
        request: Request<pb::SendParticipantCodeRequest>,
    ) -> Result<Response<pb::SendParticipantCodeResponse>, Status> {
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, EVENT_ID).text("phone", &r.phone, SHORT_INPUT))?;
        reply(self.core.send_code(&r.event_id, &r.phone, r.purpose).await.map(|sent| pb::SendParticipantCodeResponse {
            expire_time: Some(convert::timestamp(sent.expire_ms)),
            resend_time: Some(convert::timestamp(sent.resend_ms)),
        }))
    }

    async fn lookup_entry(
        &self,
        request: Request<pb::LookupEntryRequest>,
    ) -> Result<Response<pb::LookupEntryResponse>, Status> {
        let r = request.into_inner();
        checked(
            Violations::new()
                .id("eventId", &r.event_id, EVENT_ID)
                .text("receiptCode", &r.receipt_code, SHORT_INPUT)
                .text("phone", &r.phone, SHORT_INPUT)
                .text("code", &r.code, SHORT_INPUT),
        )?;
        let found = self.core.lookup_entry(&r.event_id, &r.receipt_code, &r.phone, &r.code).await;
        reply(found.map(|s| pb::LookupEntryResponse {
            entry: Some(convert::entry(&s.entry)),
            standing: s.standing,
            rank: s.won.as_ref().map_or(0, |(rank, _)| i32::try_from(*rank).unwrap_or(i32::MAX)),
            claim_state: s.won.as_ref().map_or(0, |(_, c)| convert::state_number(c.state)),
            claim_deadline: s.won.as_ref().map(|(_, c)| convert::timestamp(c.deadline_ms)),
        }))
    }

    async fn withdraw_entry(
        &self,
        request: Request<pb::WithdrawEntryRequest>,
    ) -> Result<Response<pb::WithdrawEntryResponse>, Status> {
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, EVENT_ID).text("phone", &r.phone, SHORT_INPUT).text(
            "code",
            &r.code,
            SHORT_INPUT,
        ))?;
        let withdrawn = self.core.withdraw_entry(&r.event_id, &r.phone, &r.code).await;
        reply(withdrawn.map(|ms| pb::WithdrawEntryResponse { withdraw_time: Some(convert::timestamp(ms)) }))
    }

    async fn export_participants(
        &self,
        request: Request<pb::ExportParticipantsRequest>,
    ) -> Result<Response<pb::ExportParticipantsResponse>, Status> {
        let owner = owner_id(&request)?;
        let caller = ExportCaller { request_id: request_id(&request), client_address: client_ip(&request) };
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, EVENT_ID))?;
        let kind = ExportKind::from_number(r.kind);
        let file = self.core.export(&owner, &r.event_id, kind, r.reveal, caller).await;
        reply(file.map(|f| pb::ExportParticipantsResponse {
            content_type: f.content_type.to_owned(),
            data: f.data,
            filename: f.filename,
            export_id: f.export_id,
        }))
    }

    async fn list_exports(
        &self,
        request: Request<pb::ListExportsRequest>,
    ) -> Result<Response<pb::ListExportsResponse>, Status> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, EVENT_ID).optional_id(
            "pageToken",
            &r.page_token,
            PAGE_TOKEN,
        ))?;
        let page = self.core.list_exports(&owner, &r.event_id, r.page_size, &r.page_token).await;
        reply(page.map(|p| pb::ListExportsResponse {
            exports: p.exports.iter().map(convert::export_record).collect(),
            next_page_token: p.next_page_token,
        }))
    }

    async fn block_participant(
        &self,
        request: Request<pb::BlockParticipantRequest>,
    ) -> Result<Response<pb::BlockParticipantResponse>, Status> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(
            Violations::new()
                .id("eventId", &r.event_id, EVENT_ID)
                .text("phone", &r.phone, CHARACTERS)
                .optional_id("entryId", &r.entry_id, ENTRY_ID)
                .text("reason", &r.reason, BLOCK_REASON),
        )?;
        let request = BlockRequest { event_id: r.event_id, phone: r.phone, entry_id: r.entry_id, reason: r.reason };
        let block = self.core.block(&owner, request).await;
        reply(block.map(|b| pb::BlockParticipantResponse { block: Some(convert::block(&b)) }))
    }

    async fn list_blocks(
        &self,
        request: Request<pb::ListBlocksRequest>,
    ) -> Result<Response<pb::ListBlocksResponse>, Status> {
        let owner = owner_id(&request)?;
        checked(Violations::new().id("eventId", &request.get_ref().event_id, EVENT_ID))?;
        let blocks = self.core.list_blocks(&owner, &request.get_ref().event_id).await;
        reply(blocks.map(|b| pb::ListBlocksResponse { blocks: b.iter().map(convert::block).collect() }))
    }

    async fn list_marketing_recipients(
        &self,
        request: Request<pb::ListMarketingRecipientsRequest>,
    ) -> Result<Response<pb::ListMarketingRecipientsResponse>, Status> {
        let r = request.into_inner();
        checked(Violations::new().id("ownerId", &r.owner_id, OWNER_ID).optional_id(
            "pageToken",
            &r.page_token,
            PAGE_TOKEN,
        ))?;
        let page = self.core.list_marketing_recipients(&r.owner_id, r.page_size, &r.page_token).await;
        reply(page.map(|p| {
            pb::ListMarketingRecipientsResponse {
                recipients: p
                    .recipients
                    .into_iter()
                    .map(|r| pb::MarketingRecipient {
                        phone: r.phone,
                        consent_time: Some(convert::timestamp(r.consented_at_ms)),
                    })
                    .collect(),
                next_page_token: p.next_page_token,
            }
        }))
    }

    async fn unblock_participant(
        &self,
        request: Request<pb::UnblockParticipantRequest>,
    ) -> Result<Response<pb::UnblockParticipantResponse>, Status> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, EVENT_ID).id("blockId", &r.block_id, BLOCK_ID))?;
        let removed = self.core.unblock(&owner, &r.event_id, &r.block_id).await;
        reply(removed.map(|()| pb::UnblockParticipantResponse {}))
    }
}
