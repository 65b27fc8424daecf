//! The `ai-event-generation` consumer: decodes each message (protobuf body, content type
//! `application/protobuf`, application property `type` = `kem.messaging.v1.GenerateRecommendations`),
//! runs the job use case and settles the message from its disposition. A message that cannot be
//! decoded is dead-lettered at once, never retried forever.

use std::sync::Arc;
use std::time::SystemTime;

use kem_kit::outbox::{Consumer, ConsumerOptions, ConsumerReport, HandlerError};
use kem_kit::queue::{Queue, ReceivedMessage};
use kem_mesh::Shutdown;
use kem_proto::kem::messaging::v1::GenerateRecommendations;
use prost::Message;

use crate::api::convert;
use crate::app::jobs::{Disposition, JobService, JobSpec};
use crate::app::metrics::bump;

/// The body's content type.
pub const CONTENT_TYPE: &str = "application/protobuf";
/// The application property naming the body message.
pub const TYPE_PROPERTY: &str = "type";
/// The body message of this queue.
pub const MESSAGE_TYPE: &str = "kem.messaging.v1.GenerateRecommendations";

/// Why a message is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("message {id}: {reason}")]
pub struct UndecodableMessage {
    /// The message id.
    pub id: String,
    /// What is wrong.
    pub reason: String,
}

/// One delivery as a job spec. Invalid event inputs are not a decoding error: the job is reported
/// FAILED with them.
pub fn decode(message: &ReceivedMessage) -> Result<JobSpec, UndecodableMessage> {
    let fail = |reason: String| UndecodableMessage { id: message.id.clone(), reason };
    let content_type = message.content_type.split(';').next().unwrap_or_default().trim();
    if !content_type.eq_ignore_ascii_case(CONTENT_TYPE) {
        return Err(fail(format!("content type {:?} is not {CONTENT_TYPE}", message.content_type)));
    }
    match message.properties.get(TYPE_PROPERTY) {
        Some(kind) if kind == MESSAGE_TYPE => {}
        Some(kind) => return Err(fail(format!("unknown message type {kind:?} (expected {MESSAGE_TYPE})"))),
        None => return Err(fail(format!("no `{TYPE_PROPERTY}` property (expected {MESSAGE_TYPE})"))),
    }
    let body = GenerateRecommendations::decode(message.body.as_slice())
        .map_err(|e| fail(format!("the body is not a {MESSAGE_TYPE}: {e}")))?;
    if body.job_id.trim().is_empty() {
        return Err(fail("job_id is empty".to_owned()));
    }
    let deadline = body.deadline.as_ref().map(|t| {
        let millis = convert::millis(t);
        SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(millis).unwrap_or(0))
    });
    Ok(JobSpec {
        message_id: message.id.clone(),
        brief: convert::brief_from_message(&body),
        job_id: body.job_id,
        event_id: body.event_id,
        owner_id: body.owner_id,
        deadline,
        delivery: message.delivery_count,
    })
}

/// Consumes `options.queue` with `jobs` until `shutdown`.
pub fn spawn(
    queue: Arc<dyn Queue>,
    jobs: Arc<JobService>,
    options: ConsumerOptions,
    shutdown: Shutdown,
) -> tokio::task::JoinHandle<ConsumerReport> {
    let handler = move |message: ReceivedMessage| {
        let jobs = jobs.clone();
        async move { handle(&jobs, &message).await }
    };
    shutdown.clone().spawn(Consumer::run(queue, handler, options, shutdown))
}

async fn handle(jobs: &JobService, message: &ReceivedMessage) -> Result<(), HandlerError> {
    let spec = match decode(message) {
        Ok(spec) => spec,
        Err(error) => {
            bump(&jobs.metrics().jobs.dead_lettered);
            return Err(HandlerError::Reject(error.to_string()));
        }
    };
    tracing::info!(job_id = %spec.job_id, event_id = %spec.event_id, delivery = spec.delivery, "recommendations job received");
    match jobs.run(spec).await {
        Disposition::Complete => Ok(()),
        Disposition::Retry(reason) => Err(HandlerError::Retry(reason)),
        Disposition::DeadLetter(reason) => Err(HandlerError::Reject(reason)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kem_proto::kem::common::v1 as common;

    use super::*;

    fn received(body: Vec<u8>, content_type: &str, kind: Option<&str>) -> ReceivedMessage {
        ReceivedMessage {
            queue: "ai-event-generation".into(),
            id: "job:j-1".into(),
            body,
            content_type: content_type.into(),
            traceparent: None,
            properties: kind.map(|k| BTreeMap::from([(TYPE_PROPERTY.to_owned(), k.to_owned())])).unwrap_or_default(),
            delivery_count: 2,
            lock_token: "t".into(),
            locked_until: SystemTime::now(),
            enqueued_at: SystemTime::now(),
        }
    }

    fn body() -> GenerateRecommendations {
        GenerateRecommendations {
            job_id: "j-1".into(),
            event_id: "e-1".into(),
            objective: common::EventObjective::NewCustomers as i32,
            period: Some(common::Period {
                start_time: Some(prost_types::Timestamp { seconds: 1_761_922_800, nanos: 0 }),
                end_time: Some(prost_types::Timestamp { seconds: 1_763_132_400, nanos: 0 }),
            }),
            deadline: Some(prost_types::Timestamp { seconds: 4_000_000_000, nanos: 0 }),
            ..Default::default()
        }
    }

    #[test]
    fn valid_messages_decode() {
        let spec = decode(&received(body().encode_to_vec(), CONTENT_TYPE, Some(MESSAGE_TYPE))).expect("decodes");
        assert_eq!((spec.job_id.as_str(), spec.message_id.as_str(), spec.delivery), ("j-1", "job:j-1", 2));
        assert!(spec.brief.is_ok());
        assert!(spec.deadline.is_some());
        // Inputs the brief refuses are the job's failure, not the message's.
        let mut incomplete = body();
        incomplete.period = None;
        let spec = decode(&received(incomplete.encode_to_vec(), CONTENT_TYPE, Some(MESSAGE_TYPE))).expect("decodes");
        assert!(spec.brief.is_err());
    }

    #[test]
    fn unusable_messages_are_refused() {
        let cases = [
            (received(body().encode_to_vec(), "application/json", Some(MESSAGE_TYPE)), "content type"),
            (
                received(body().encode_to_vec(), CONTENT_TYPE, Some("kem.messaging.v1.GenerateImages")),
                "unknown message type",
            ),
            (received(body().encode_to_vec(), CONTENT_TYPE, None), "no `type` property"),
            (received(vec![0xff, 0xff, 0xff], CONTENT_TYPE, Some(MESSAGE_TYPE)), "the body is not"),
            (
                received(
                    GenerateRecommendations { job_id: " ".into(), ..body() }.encode_to_vec(),
                    CONTENT_TYPE,
                    Some(MESSAGE_TYPE),
                ),
                "job_id is empty",
            ),
        ];
        for (message, expected) in cases {
            let error = decode(&message).expect_err(expected);
            assert!(error.to_string().contains(expected), "{error}");
        }
    }
}
