//! The `content-generation` consumer: decodes `kem.messaging.v1.GenerateImages` envelopes
//! (protobuf binary, `type` property) and hands them to the generation use case, on the kit's
//! consumer runner (bounded concurrency, lock renewal, backoff, dead letters, graceful drain).

use std::sync::Arc;

use kem_kit::outbox::{Consumer, ConsumerOptions, ConsumerReport, HandlerError};
use kem_kit::queue::{Queue, ReceivedMessage};
use kem_mesh::Shutdown;
use kem_proto::kem::messaging::v1 as msg;
use prost::Message;
use tokio::task::JoinHandle;

use crate::api::convert;
use crate::app::generation::InvalidRequest;
use crate::app::{ContentApp, WorkError};
use crate::domain::request;

/// Full name of the body message (the `type` application property).
pub const MESSAGE_TYPE: &str = "kem.messaging.v1.GenerateImages";
/// Content types of a protobuf body.
const CONTENT_TYPES: [&str; 2] = ["application/protobuf", "application/x-protobuf"];

/// Handles one delivery.
pub async fn handle(app: &ContentApp, message: ReceivedMessage) -> Result<(), HandlerError> {
    match message.properties.get("type").map(String::as_str) {
        Some(MESSAGE_TYPE) => {}
        Some(other) => return Err(HandlerError::Reject(format!("unknown message type {other:?}"))),
        None => return Err(HandlerError::Reject(format!("no `type` property (expected {MESSAGE_TYPE})"))),
    }
    let content_type = message.content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if !CONTENT_TYPES.contains(&content_type.as_str()) {
        return Err(HandlerError::Reject(format!(
            "content type {:?} is not application/protobuf",
            message.content_type
        )));
    }
    let body = msg::GenerateImages::decode(message.body.as_slice())
        .map_err(|e| HandlerError::Reject(format!("the body is not a {MESSAGE_TYPE}: {e}")))?;
    let input = convert::request_input(body);
    let (job_id, event_id) = (input.job_id.clone(), input.event_id.clone());
    let request = request::validate(input).map_err(|violations| InvalidRequest {
        job_id: Some(job_id).filter(|j| !j.trim().is_empty()),
        event_id: Some(event_id).filter(|e| !e.trim().is_empty()),
        violations,
    });
    match app.run_job(&message.id, request).await {
        Ok(disposition) => {
            tracing::debug!(message_id = %message.id, ?disposition, "generation message handled");
            Ok(())
        }
        Err(WorkError::Retry(reason)) => Err(HandlerError::Retry(reason)),
        Err(WorkError::Storage(error)) => Err(HandlerError::Retry(error.to_string())),
        Err(WorkError::Reject(reason)) => Err(HandlerError::Reject(reason)),
    }
}

/// Runs the consumer until `shutdown`; the handle yields its report.
pub fn spawn(
    app: Arc<ContentApp>,
    queue: Arc<dyn Queue>,
    options: ConsumerOptions,
    shutdown: Shutdown,
) -> JoinHandle<ConsumerReport> {
    shutdown.clone().spawn(Consumer::run(
        queue,
        move |message: ReceivedMessage| {
            let app = app.clone();
            async move { handle(&app, message).await }
        },
        options,
        shutdown,
    ))
}
