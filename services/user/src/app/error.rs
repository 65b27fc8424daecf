//! What a user-service use case can fail with. The gRPC adapter turns each variant into a gRPC
//! status with `google.rpc` details (`api::status`).

use std::sync::Arc;
use std::time::Duration;

use super::VerifyError;
use crate::domain::{FieldViolation, Verification};
use crate::infra::{HashError, KeyRingError, RepositoryError};

/// What an internal error came from, shared so that a use-case error stays cloneable (one cached
/// lookup's outcome goes to every caller waiting on it).
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// `ErrorInfo.reason` of field violations that concern the business number.
pub const REASON_BUSINESS_NUMBER: &str = "BUSINESS_NUMBER_CHECKSUM";
/// `ErrorInfo.reason` of other field violations.
pub const REASON_INVALID_FIELDS: &str = "INVALID_FIELDS";

/// A failed use case.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UserError {
    /// Request fields are invalid.
    #[error("invalid request: {}", describe(violations))]
    InvalidArgument {
        /// One entry per invalid field.
        violations: Vec<FieldViolation>,
        /// `ErrorInfo.reason`.
        reason: &'static str,
    },
    /// The email is registered already.
    #[error("this email is already registered")]
    EmailTaken,
    /// NTS reports the business as not active (휴업, 폐업, or unknown).
    #[error("business {} is not active at NTS ({:?})", verification.business_number, verification.status)]
    BusinessNotActive {
        /// The NTS answer.
        verification: Box<Verification>,
    },
    /// NTS could not be asked (unreachable, timeout, breaker open, failing) and nothing is cached.
    #[error("business verification is unavailable: {cause}")]
    NtsUnavailable {
        /// When trying again makes sense.
        retry_after: Duration,
        /// What happened (for logs).
        #[source]
        cause: VerifyError,
    },
    /// The NTS daily quota of the service key is used up.
    #[error("the NTS lookup quota is exhausted: {cause}")]
    NtsQuota {
        /// When trying again makes sense.
        retry_after: Duration,
        /// What happened (for logs).
        #[source]
        cause: VerifyError,
    },
    /// Unknown email or wrong password (deliberately indistinguishable).
    #[error("email or password is incorrect")]
    InvalidCredentials,
    /// Sign-in is locked after repeated failures.
    #[error("too many failed sign-ins; retry in {} s", retry_after.as_secs().max(1))]
    TooManyAttempts {
        /// How long the lock still holds.
        retry_after: Duration,
    },
    /// The refresh token is unknown, expired or revoked.
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    /// The refresh token was already used: its session is now revoked.
    #[error("the refresh token was already used; the session is revoked")]
    RefreshTokenReused,
    /// No such owner.
    #[error("owner not found")]
    OwnerNotFound,
    /// A dependency (the database) failed in a way that may pass.
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[source] Arc<RepositoryError>),
    /// A defect or a broken invariant.
    #[error("internal error: {0}")]
    Internal(#[source] Cause),
}

fn describe(violations: &[FieldViolation]) -> String {
    violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ")
}

impl UserError {
    /// Field violations, with the business-number reason when one concerns `businessNumber`.
    pub fn invalid(violations: Vec<FieldViolation>) -> UserError {
        let reason = if violations.iter().any(|v| v.field.ends_with("businessNumber")) {
            REASON_BUSINESS_NUMBER
        } else {
            REASON_INVALID_FIELDS
        };
        UserError::InvalidArgument { violations, reason }
    }

    /// A defect or a broken invariant caused by `cause` (an error, or a message).
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> UserError {
        UserError::Internal(Arc::from(cause.into()))
    }

    /// One field violation.
    pub fn field(field: &str, description: impl Into<String>) -> UserError {
        UserError::invalid(vec![FieldViolation::new(field, description)])
    }
}

impl From<RepositoryError> for UserError {
    fn from(error: RepositoryError) -> Self {
        if error.is_transient() { UserError::Unavailable(Arc::new(error)) } else { UserError::internal(error) }
    }
}

impl From<HashError> for UserError {
    fn from(error: HashError) -> Self {
        UserError::internal(error)
    }
}

impl From<KeyRingError> for UserError {
    fn from(error: KeyRingError) -> Self {
        match error {
            KeyRingError::Repository(e) => e.into(),
            other => UserError::internal(other),
        }
    }
}
