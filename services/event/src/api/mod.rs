//! The gRPC adapter: `kem.event.v1.EventService` over the use cases. It reads the caller (owner
//! methods need the gateway-verified end user), maps protobuf to domain inputs and back
//! ([`convert`], shared with the queue-message encoder in `infra`), and errors to statuses
//! ([`status`]). No business rule lives here.

pub mod convert;
pub mod status;

use std::sync::Arc;

use kem_kit::runtime::owner_id;
use kem_kit::validate::{IdShape, Text, Violations};
use kem_proto::kem::event::v1 as proto;
use kem_proto::kem::event::v1::event_service_server::EventService;
use tonic::{Request, Response, Status};

use crate::app::{EventApp, UpdateCommand};
use crate::domain::validation::ValidationError;

/// Events and jobs are minted here as UUIDs (`app::ids`).
const OWN_ID: IdShape = IdShape::Uuid;
/// Recommendation ids (ai: `rec-<hex>-<n>`) and image ids (content: UUIDs) are minted by peers:
/// checked for the shape every kem id shares, so a peer's format can change without breaking us.
const PEER_ID: IdShape = IdShape::Key { max: 64 };
/// ListEvents page tokens (`app::page`: base64url of at most ~90 bytes).
const PAGE_TOKEN: IdShape = IdShape::Token { max: 128 };
/// Etags are `v<version>`, optionally quoted or weak (`W/"v3"`); the bound keeps a stale-etag
/// message, which quotes what was sent, short.
const ETAG: Text = Text::line(64);

/// The boundary checks' findings as INVALID_ARGUMENT, before any database or peer is touched.
fn checked(violations: Violations) -> Result<(), Status> {
    violations.into_result().map_err(|found| {
        let mut errors = ValidationError::default();
        for v in found {
            errors.push(v.field, v.description);
        }
        status::to_status(errors.into())
    })
}

/// An event id and the etag that comes with it.
fn event_and_etag(event_id: &str, etag: &str) -> Violations {
    Violations::new().id("eventId", event_id, OWN_ID).text("etag", etag, ETAG)
}

/// The gRPC service of the event service (mount it with `EventServiceServer::new`).
#[derive(Clone, Debug)]
pub struct EventApi {
    app: Arc<EventApp>,
}

impl EventApi {
    /// The adapter over `app`.
    pub fn new(app: Arc<EventApp>) -> EventApi {
        EventApi { app }
    }

    /// The use cases behind it.
    pub fn app(&self) -> &Arc<EventApp> {
        &self.app
    }

    fn job(&self, job: &crate::domain::job::Job) -> proto::Job {
        convert::job(job, self.app.settings().job_poll_interval)
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl EventService for EventApi {
    async fn create_event(&self, request: Request<proto::CreateEventRequest>) -> Reply<proto::CreateEventResponse> {
        let owner = owner_id(&request)?;
        let request = request.into_inner();
        let input = request.event.as_ref().map(convert::event_input).unwrap_or_default();
        let event = self.app.create_event(&owner, &input, &request.request_id).await.map_err(status::to_status)?;
        Ok(Response::new(proto::CreateEventResponse { event: Some(convert::event(&event)) }))
    }

    async fn list_events(&self, request: Request<proto::ListEventsRequest>) -> Reply<proto::ListEventsResponse> {
        let owner = owner_id(&request)?;
        let request = request.into_inner();
        checked(Violations::new().optional_id("pageToken", &request.page_token, PAGE_TOKEN))?;
        let status_filter = convert::status_from_proto(request.status);
        let page = self
            .app
            .list_events(&owner, status_filter, request.page_size, &request.page_token)
            .await
            .map_err(status::to_status)?;
        Ok(Response::new(proto::ListEventsResponse {
            events: page.events.iter().map(convert::event).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_event(&self, request: Request<proto::GetEventRequest>) -> Reply<proto::GetEventResponse> {
        let owner = owner_id(&request)?;
        checked(Violations::new().id("eventId", &request.get_ref().event_id, OWN_ID))?;
        let event = self.app.get_event(&owner, &request.get_ref().event_id).await.map_err(status::to_status)?;
        Ok(Response::new(proto::GetEventResponse { event: Some(convert::event(&event)) }))
    }

    async fn get_public_event(
        &self,
        request: Request<proto::GetPublicEventRequest>,
    ) -> Reply<proto::GetPublicEventResponse> {
        // Public: no owner. Anything that is not an event id is refused before the cache.
        checked(Violations::new().id("eventId", &request.get_ref().event_id, OWN_ID))?;
        let view = self.app.public_event(&request.get_ref().event_id).await.map_err(status::to_status)?;
        Ok(Response::new(proto::GetPublicEventResponse { event: Some(convert::public_event(&view)) }))
    }

    async fn update_event(&self, request: Request<proto::UpdateEventRequest>) -> Reply<proto::UpdateEventResponse> {
        let owner = owner_id(&request)?;
        let request = request.into_inner();
        let body = request.event.unwrap_or_default();
        checked(
            Violations::new()
                .id("eventId", &request.event_id, OWN_ID)
                .optional_id("event.eventId", &body.event_id, OWN_ID)
                .text("event.etag", &body.etag, ETAG),
        )?;
        let command = UpdateCommand {
            event_id: request.event_id,
            body_event_id: body.event_id.clone(),
            input: convert::event_input(&body),
            mask: request.update_mask.map(|m| m.paths).unwrap_or_default(),
            etag: body.etag,
        };
        let event = self.app.update_event(&owner, &command).await.map_err(status::to_status)?;
        Ok(Response::new(proto::UpdateEventResponse { event: Some(convert::event(&event)) }))
    }

    async fn delete_event(&self, request: Request<proto::DeleteEventRequest>) -> Reply<proto::DeleteEventResponse> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(event_and_etag(&r.event_id, &r.etag))?;
        self.app.delete_event(&owner, &r.event_id, &r.etag, r.allow_missing).await.map_err(status::to_status)?;
        Ok(Response::new(proto::DeleteEventResponse {}))
    }

    async fn request_recommendations(
        &self,
        request: Request<proto::RequestRecommendationsRequest>,
    ) -> Reply<proto::RequestRecommendationsResponse> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, OWN_ID))?;
        let job = self
            .app
            .request_recommendations(&owner, &r.event_id, &r.additional_instructions)
            .await
            .map_err(status::to_status)?;
        Ok(Response::new(proto::RequestRecommendationsResponse { job: Some(self.job(&job)) }))
    }

    async fn select_recommendation(
        &self,
        request: Request<proto::SelectRecommendationRequest>,
    ) -> Reply<proto::SelectRecommendationResponse> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(event_and_etag(&r.event_id, &r.etag).id("recommendationId", &r.recommendation_id, PEER_ID))?;
        let event = self
            .app
            .select_recommendation(&owner, &r.event_id, &r.recommendation_id, &r.etag)
            .await
            .map_err(status::to_status)?;
        Ok(Response::new(proto::SelectRecommendationResponse { event: Some(convert::event(&event)) }))
    }

    async fn request_images(
        &self,
        request: Request<proto::RequestImagesRequest>,
    ) -> Reply<proto::RequestImagesResponse> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(Violations::new().id("eventId", &r.event_id, OWN_ID))?;
        let channels = convert::channels_from_proto(&r.channels);
        let styles = convert::styles_from_proto(&r.styles);
        let job = self.app.request_images(&owner, &r.event_id, &channels, &styles).await.map_err(status::to_status)?;
        Ok(Response::new(proto::RequestImagesResponse { job: Some(self.job(&job)) }))
    }

    async fn select_image(&self, request: Request<proto::SelectImageRequest>) -> Reply<proto::SelectImageResponse> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(event_and_etag(&r.event_id, &r.etag).id("imageId", &r.image_id, PEER_ID))?;
        let event =
            self.app.select_image(&owner, &r.event_id, &r.image_id, &r.etag).await.map_err(status::to_status)?;
        Ok(Response::new(proto::SelectImageResponse { event: Some(convert::event(&event)) }))
    }

    async fn publish_event(&self, request: Request<proto::PublishEventRequest>) -> Reply<proto::PublishEventResponse> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(event_and_etag(&r.event_id, &r.etag))?;
        let channels = convert::channels_from_proto(&r.channels);
        let event = self.app.publish_event(&owner, &r.event_id, &channels, &r.etag).await.map_err(status::to_status)?;
        Ok(Response::new(proto::PublishEventResponse { event: Some(convert::event(&event)) }))
    }

    async fn end_event(&self, request: Request<proto::EndEventRequest>) -> Reply<proto::EndEventResponse> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        checked(event_and_etag(&r.event_id, &r.etag))?;
        let event = self.app.end_event(&owner, &r.event_id, &r.etag).await.map_err(status::to_status)?;
        Ok(Response::new(proto::EndEventResponse { event: Some(convert::event(&event)) }))
    }

    async fn get_job(&self, request: Request<proto::GetJobRequest>) -> Reply<proto::GetJobResponse> {
        let owner = owner_id(&request)?;
        checked(Violations::new().id("jobId", &request.get_ref().job_id, OWN_ID))?;
        let job = self.app.get_job(&owner, &request.get_ref().job_id).await.map_err(status::to_status)?;
        Ok(Response::new(proto::GetJobResponse { job: Some(self.job(&job)) }))
    }

    async fn get_event_for_participation(
        &self,
        request: Request<proto::GetEventForParticipationRequest>,
    ) -> Reply<proto::GetEventForParticipationResponse> {
        checked(Violations::new().id("eventId", &request.get_ref().event_id, OWN_ID))?;
        let event = self.app.event_for_participation(&request.get_ref().event_id).await.map_err(status::to_status)?;
        Ok(Response::new(proto::GetEventForParticipationResponse {
            event_id: event.id.clone(),
            owner_id: event.owner_id.clone(),
            status: convert::status_to_proto(event.status) as i32,
            period: Some(convert::period(event.spec.period)),
            participation_method: convert::method_to_proto(event.spec.participation_method) as i32,
            prize: event.spec.prize.as_ref().map(convert::prize),
            title: event.spec.title.clone(),
            channels: convert::channels_to_proto(&event.spec.channels),
            terms: event.terms.as_ref().map(convert::terms),
            entry_rules: Some(convert::entry_rules(event.spec.entry_rules)),
            claim_days: event.spec.claim_days,
            retention_days: event.spec.retention_days,
            // The terms' data controller: empty before publication, as the terms are unset then.
            store_name: event.terms.as_ref().map(|t| t.controller.clone()).unwrap_or_default(),
            entry_url: self.app.entry_url(&event.id),
        }))
    }

    async fn get_event_for_distribution(
        &self,
        request: Request<proto::GetEventForDistributionRequest>,
    ) -> Reply<proto::GetEventForDistributionResponse> {
        checked(Violations::new().id("eventId", &request.get_ref().event_id, OWN_ID))?;
        let event = self.app.event_for_distribution(&request.get_ref().event_id).await.map_err(status::to_status)?;
        Ok(Response::new(proto::GetEventForDistributionResponse {
            event_id: event.id.clone(),
            owner_id: event.owner_id.clone(),
            status: convert::status_to_proto(event.status) as i32,
            channels: convert::channels_to_proto(&event.spec.channels),
            publish_time: event.published_at.map(convert::timestamp),
            selected_image_id: event.selected_image_id.clone().unwrap_or_default(),
        }))
    }

    async fn report_job_result(
        &self,
        request: Request<proto::ReportJobResultRequest>,
    ) -> Reply<proto::ReportJobResultResponse> {
        let r = request.into_inner();
        checked(Violations::new().id("jobId", &r.job_id, OWN_ID))?;
        let report = convert::report(r.outcome.as_ref()).map_err(|e| status::to_status(e.into()))?;
        let job = self.app.report_job_result(&r.job_id, report).await.map_err(status::to_status)?;
        Ok(Response::new(proto::ReportJobResultResponse { job: Some(self.job(&job)) }))
    }

    async fn batch_get_events(
        &self,
        request: Request<proto::BatchGetEventsRequest>,
    ) -> Reply<proto::BatchGetEventsResponse> {
        // The use case bounds the number of distinct ids, and an unknown or empty id is reported
        // missing (the batch contract); an id no kem service could have minted (too long, control
        // characters, punctuation) is refused before the database.
        let mut violations = Violations::new();
        for (i, id) in request.get_ref().event_ids.iter().enumerate().filter(|(_, id)| !id.is_empty()) {
            if let Err(v) = kem_kit::validate::id("", id, PEER_ID) {
                violations.push(kem_kit::validate::Violation::new(format!("eventIds[{i}]"), v.description));
            }
        }
        checked(violations)?;
        let batch = self.app.batch_get_events(&request.get_ref().event_ids).await.map_err(status::to_status)?;
        Ok(Response::new(proto::BatchGetEventsResponse {
            events: batch.events.iter().map(convert::event).collect(),
            missing_event_ids: batch.missing,
        }))
    }
}
