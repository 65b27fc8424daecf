//! The event service as distribution sees it: `GetEventForDistribution` over mesh mTLS, allowed
//! for the distribution workload by the contract's policy. A scriptable table of publications.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kem_distribution::domain::Channel;
use kem_proto::kem::event::v1 as pb;
use kem_proto::kem::event::v1::event_service_server::EventService;
use tonic::{Request, Response, Status};

/// The fake event service.
#[derive(Clone, Default)]
pub struct FakeEvents {
    events: Arc<Mutex<HashMap<String, pb::GetEventForDistributionResponse>>>,
    refusals: Arc<Mutex<HashMap<String, Status>>>,
    lookups: Arc<AtomicU64>,
}

impl FakeEvents {
    /// Records `event_id` of `owner` as PUBLISHED to `channels` at `published_at_ms`, as
    /// PublishEvent commits it (before distribution sees the job).
    pub fn publish(&self, event_id: &str, owner: &str, channels: &[Channel], published_at_ms: i64) {
        let event = pb::GetEventForDistributionResponse {
            event_id: event_id.to_owned(),
            owner_id: owner.to_owned(),
            status: pb::EventStatus::Published as i32,
            channels: channels.iter().map(|c| c.number()).collect(),
            publish_time: Some(super::ts(published_at_ms)),
            selected_image_id: String::new(),
        };
        self.events.lock().expect("events").insert(event_id.to_owned(), event);
    }

    /// Records `event_id` of `owner` in `status`, never published (no channels).
    pub fn draft(&self, event_id: &str, owner: &str, status: pb::EventStatus) {
        let event = pb::GetEventForDistributionResponse {
            event_id: event_id.to_owned(),
            owner_id: owner.to_owned(),
            status: status as i32,
            ..Default::default()
        };
        self.events.lock().expect("events").insert(event_id.to_owned(), event);
    }

    /// Every lookup of `event_id` answers `status`.
    pub fn refuse(&self, event_id: &str, status: Status) {
        self.refusals.lock().expect("refusals").insert(event_id.to_owned(), status);
    }

    /// GetEventForDistribution calls received.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::SeqCst)
    }
}

#[tonic::async_trait]
impl EventService for FakeEvents {
    async fn get_event_for_distribution(
        &self,
        request: Request<pb::GetEventForDistributionRequest>,
    ) -> Result<Response<pb::GetEventForDistributionResponse>, Status> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let id = &request.get_ref().event_id;
        if let Some(status) = self.refusals.lock().expect("refusals").get(id) {
            return Err(status.clone());
        }
        match self.events.lock().expect("events").get(id) {
            Some(event) => Ok(Response::new(event.clone())),
            None => Err(Status::not_found("event not found")),
        }
    }
}
