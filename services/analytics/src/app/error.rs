//! What an analytics use case can fail with. The gRPC adapter turns each variant into a status
//! with `google.rpc` details (`api::status`).

use std::sync::Arc;

use crate::domain::FieldViolation;
use crate::infra::repository::RepositoryError;

/// A failed use case. `Clone`, because cache-aside hands one load's error to every caller
/// waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AnalyticsError {
    /// Request fields are invalid.
    #[error("invalid request: {}", describe(.0))]
    Invalid(Vec<FieldViolation>),
    /// The event is unknown to analytics, deleted, or another owner's.
    #[error("event {event_id} not found")]
    EventNotFound {
        /// The requested event.
        event_id: String,
    },
    /// The database failed in a way that may pass.
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[source] Arc<RepositoryError>),
    /// The database failed for good, or stored data is corrupt.
    #[error("internal error: {0}")]
    Storage(#[source] Arc<RepositoryError>),
    /// A defect.
    #[error("internal error: {0}")]
    Internal(String),
}

fn describe(violations: &[FieldViolation]) -> String {
    violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ")
}

impl From<RepositoryError> for AnalyticsError {
    fn from(error: RepositoryError) -> Self {
        if error.is_transient() {
            AnalyticsError::Unavailable(Arc::new(error))
        } else {
            AnalyticsError::Storage(Arc::new(error))
        }
    }
}
