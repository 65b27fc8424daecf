//! The gRPC adapter of `kem.guestbook.v1.GuestbookService`: contract messages in, use cases
//! called, contract messages or rich statuses out.
//!
//! Who may call is not decided here: the mesh authorization layer admits only the identities
//! the contract's `kem.api.v1.access` option allows (ACCESS_PUBLIC: the gateway) before a
//! handler runs.

pub mod status;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::app::{GuestbookApp, GuestbookError};
use crate::domain::{Entry, RequestId, Signature};
use crate::pb;
use crate::pb::guestbook_service_server::{GuestbookService, GuestbookServiceServer};

pub use status::{DOMAIN, to_status};

/// The metadata the edge puts every call's request id in; the mesh re-sends it unchanged when
/// it retries a call.
pub const REQUEST_ID_METADATA: &str = "x-request-id";

/// The guestbook's gRPC API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GuestbookApi {
    app: Arc<GuestbookApp>,
}

impl GuestbookApi {
    /// The API over the use cases.
    pub fn new(app: Arc<GuestbookApp>) -> GuestbookApi {
        GuestbookApi { app }
    }

    /// The tonic service to mount on the role server.
    pub fn into_service(self) -> GuestbookServiceServer<GuestbookApi> {
        GuestbookServiceServer::new(self)
    }
}

fn entry(e: Entry) -> pb::Entry {
    let created = kem_kit::store::from_millis(e.created_at_ms);
    pb::Entry {
        entry_id: e.id,
        event_id: e.signature.event_id,
        name: e.signature.name,
        message: e.signature.message,
        create_time: Some(created.into()),
    }
}

fn reply<T>(result: Result<T, GuestbookError>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(to_status)
}

#[tonic::async_trait]
impl GuestbookService for GuestbookApi {
    async fn sign(&self, request: Request<pb::SignRequest>) -> Result<Response<pb::SignResponse>, Status> {
        let request_id = request
            .metadata()
            .get(REQUEST_ID_METADATA)
            .and_then(|value| value.to_str().ok())
            .and_then(RequestId::parse);
        let r = request.into_inner();
        let signature = Signature { event_id: r.event_id, name: r.name, message: r.message };
        reply(self.app.sign(signature, request_id).await.map(|e| pb::SignResponse { entry: Some(entry(e)) }))
    }

    async fn list_entries(
        &self,
        request: Request<pb::ListEntriesRequest>,
    ) -> Result<Response<pb::ListEntriesResponse>, Status> {
        let r = request.into_inner();
        let page = self.app.list(&r.event_id, r.page_size, &r.page_token).await;
        reply(page.map(|p| pb::ListEntriesResponse {
            entries: p.entries.into_iter().map(entry).collect(),
            next_page_token: p.next_page_token,
        }))
    }
}
