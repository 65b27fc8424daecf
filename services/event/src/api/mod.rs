//! The gRPC adapter: `kem.event.v1.EventService` over the use cases. It reads the caller (owner
//! methods need the gateway-verified end user), maps protobuf to domain inputs and back, and
//! errors to statuses ([`status`]). No business rule lives here.

pub mod status;

use std::sync::Arc;

use kem_kit::runtime::owner_id;
use kem_proto::kem::event::v1 as proto;
use kem_proto::kem::event::v1::event_service_server::EventService;
use tonic::{Request, Response, Status};

use crate::app::{EventApp, UpdateCommand};
use crate::convert;

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
        let event = self.app.get_event(&owner, &request.get_ref().event_id).await.map_err(status::to_status)?;
        Ok(Response::new(proto::GetEventResponse { event: Some(convert::event(&event)) }))
    }

    async fn update_event(&self, request: Request<proto::UpdateEventRequest>) -> Reply<proto::UpdateEventResponse> {
        let owner = owner_id(&request)?;
        let request = request.into_inner();
        let body = request.event.unwrap_or_default();
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
        self.app.delete_event(&owner, &r.event_id, &r.etag, r.allow_missing).await.map_err(status::to_status)?;
        Ok(Response::new(proto::DeleteEventResponse {}))
    }

    async fn request_recommendations(
        &self,
        request: Request<proto::RequestRecommendationsRequest>,
    ) -> Reply<proto::RequestRecommendationsResponse> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
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
        let channels = convert::channels_from_proto(&r.channels);
        let styles = convert::styles_from_proto(&r.styles);
        let job = self.app.request_images(&owner, &r.event_id, &channels, &styles).await.map_err(status::to_status)?;
        Ok(Response::new(proto::RequestImagesResponse { job: Some(self.job(&job)) }))
    }

    async fn select_image(&self, request: Request<proto::SelectImageRequest>) -> Reply<proto::SelectImageResponse> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        let event =
            self.app.select_image(&owner, &r.event_id, &r.image_id, &r.etag).await.map_err(status::to_status)?;
        Ok(Response::new(proto::SelectImageResponse { event: Some(convert::event(&event)) }))
    }

    async fn publish_event(&self, request: Request<proto::PublishEventRequest>) -> Reply<proto::PublishEventResponse> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        let channels = convert::channels_from_proto(&r.channels);
        let event = self.app.publish_event(&owner, &r.event_id, &channels, &r.etag).await.map_err(status::to_status)?;
        Ok(Response::new(proto::PublishEventResponse { event: Some(convert::event(&event)) }))
    }

    async fn end_event(&self, request: Request<proto::EndEventRequest>) -> Reply<proto::EndEventResponse> {
        let owner = owner_id(&request)?;
        let r = request.into_inner();
        let event = self.app.end_event(&owner, &r.event_id, &r.etag).await.map_err(status::to_status)?;
        Ok(Response::new(proto::EndEventResponse { event: Some(convert::event(&event)) }))
    }

    async fn get_job(&self, request: Request<proto::GetJobRequest>) -> Reply<proto::GetJobResponse> {
        let owner = owner_id(&request)?;
        let job = self.app.get_job(&owner, &request.get_ref().job_id).await.map_err(status::to_status)?;
        Ok(Response::new(proto::GetJobResponse { job: Some(self.job(&job)) }))
    }

    async fn get_event_for_participation(
        &self,
        request: Request<proto::GetEventForParticipationRequest>,
    ) -> Reply<proto::GetEventForParticipationResponse> {
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
        }))
    }

    async fn report_job_result(
        &self,
        request: Request<proto::ReportJobResultRequest>,
    ) -> Reply<proto::ReportJobResultResponse> {
        let r = request.into_inner();
        let report = convert::report(r.outcome.as_ref()).map_err(|e| status::to_status(e.into()))?;
        let job = self.app.report_job_result(&r.job_id, report).await.map_err(status::to_status)?;
        Ok(Response::new(proto::ReportJobResultResponse { job: Some(self.job(&job)) }))
    }

    async fn batch_get_events(
        &self,
        request: Request<proto::BatchGetEventsRequest>,
    ) -> Reply<proto::BatchGetEventsResponse> {
        let batch = self.app.batch_get_events(&request.get_ref().event_ids).await.map_err(status::to_status)?;
        Ok(Response::new(proto::BatchGetEventsResponse {
            events: batch.events.iter().map(convert::event).collect(),
            missing_event_ids: batch.missing,
        }))
    }
}
