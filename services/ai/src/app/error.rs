//! Why a use case failed. The gRPC mapping (codes, `google.rpc` details) lives in
//! [`crate::api::status`], used both for RPC errors and for the error of a FAILED job.

use crate::domain::input::InvalidInput;
use crate::domain::parse::OutputError;

use super::ports::ModelError;

/// A use case's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The request is invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The model gave no answer.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model answered, but not in the contract's shape, even after the repair attempt.
    #[error("{provider} returned output that does not match the contract even after one repair attempt: {error}")]
    BadOutput {
        /// The provider.
        provider: String,
        /// What was wrong with the last answer.
        error: OutputError,
    },
    /// The time for the request (or the job) ran out before the model could be asked.
    #[error("no time left to {what}")]
    DeadlineExceeded {
        /// What could not be done.
        what: &'static str,
    },
}

impl AppError {
    /// Whether trying again later may succeed (the model was unavailable, throttled or slow).
    pub fn is_transient(&self) -> bool {
        matches!(self, AppError::Model(error) if error.is_transient())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_model_outages_are_transient() {
        let timeout =
            AppError::Model(ModelError::Timeout { provider: "claude".into(), after: Duration::from_secs(10) });
        assert!(timeout.is_transient());
        let auth = AppError::Model(ModelError::Misconfigured { provider: "claude".into(), detail: "401".into() });
        assert!(!auth.is_transient());
        let bad = AppError::BadOutput { provider: "claude".into(), error: OutputError { problems: vec!["x".into()] } };
        assert!(!bad.is_transient());
        assert!(bad.to_string().contains("even after one repair attempt: the model output does not match"));
        assert!(!AppError::DeadlineExceeded { what: "x" }.is_transient());
    }
}
