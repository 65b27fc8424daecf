//! Why an image (a style, a job) could not be made, in the terms of the contracts: each kind maps
//! to one gRPC code and `ErrorInfo` reason (see `api::convert::failure_status`).

use serde::{Deserialize, Serialize};

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The provider's moderation refused the prompt (403 `content_moderation`) or filtered the
    /// image (`finish-reason: CONTENT_FILTERED`). FAILED_PRECONDITION, CONTENT_MODERATED.
    Moderated,
    /// The provider rate limits us (429). RESOURCE_EXHAUSTED, PROVIDER_RATE_LIMITED.
    RateLimited,
    /// The provider failed (5xx, connection). UNAVAILABLE, PROVIDER_UNAVAILABLE.
    Unavailable,
    /// The provider's circuit breaker is open; nothing was sent. UNAVAILABLE, PROVIDER_CIRCUIT_OPEN.
    CircuitOpen,
    /// The provider did not answer in time. DEADLINE_EXCEEDED, PROVIDER_TIMEOUT.
    Timeout,
    /// The provider refused the request as invalid (400, 413, 422). INVALID_ARGUMENT,
    /// PROVIDER_REJECTED_INPUT.
    Rejected,
    /// Our credentials or account are refused (401, 402, 403 other than moderation). INTERNAL,
    /// PROVIDER_MISCONFIGURED.
    Misconfigured,
    /// The provider answered outside its contract (not a PNG, a redirect). INTERNAL,
    /// PROVIDER_CONTRACT_VIOLATION.
    ProviderContract,
    /// The blob store could not store or read the bytes. UNAVAILABLE, BLOB_STORE_UNAVAILABLE.
    Storage,
    /// The job's deadline passed. DEADLINE_EXCEEDED, JOB_DEADLINE_EXCEEDED.
    Deadline,
    /// The work request itself is invalid. INVALID_ARGUMENT, INVALID_REQUEST (+ BadRequest).
    InvalidRequest {
        /// `(camelCase field, description)` pairs.
        violations: Vec<(String, String)>,
    },
    /// A defect or corrupt data. INTERNAL.
    Internal,
}

/// A failure with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// What went wrong.
    pub kind: FailureKind,
    /// A sentence for the owner's screen and logs (never a credential).
    pub message: String,
    /// The provider involved, if any (`stability-ai`, `azure-blob`).
    pub provider: Option<String>,
    /// When trying again may help, in milliseconds.
    pub retry_after_ms: Option<u64>,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure { kind, message: message.into(), provider: None, retry_after_ms: None }
    }

    /// Names the provider involved.
    pub fn with_provider(mut self, provider: impl Into<String>) -> Failure {
        self.provider = Some(provider.into());
        self
    }

    /// Adds retry advice.
    pub fn with_retry_after_ms(mut self, ms: Option<u64>) -> Failure {
        self.retry_after_ms = ms;
        self
    }

    /// The job ran out of time.
    pub fn deadline() -> Failure {
        Failure::new(FailureKind::Deadline, "the job's deadline passed before the image could be made")
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
