//! The user service's rules, free of I/O: what a valid email, password, phone, business number
//! and profile are, the owner and verification records, which profile paths may change, and when
//! sign-in attempts are throttled.
//!
//! Nothing here imports tonic, sqlx or a cache: the use cases (`app`) apply these rules and the
//! gRPC adapter (`api`) turns their violations into `google.rpc.BadRequest` details.

pub mod business_number;
pub mod email;
pub mod login_throttle;
pub mod owner;
pub mod password;
pub mod phone;
pub mod profile;
pub mod verification;

pub use business_number::{BusinessNumber, BusinessNumberError};
pub use owner::{NewOwner, Owner, ProfileChanges};
pub use profile::ProfileField;
pub use verification::{BusinessStatus, ProviderSource, Verification};

/// One invalid request field: its path as a REST client sees it (camelCase, e.g. `storeName`,
/// `owner.phone`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// camelCase field path relative to the request.
    pub field: String,
    /// What to fix.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> FieldViolation {
        FieldViolation { field: field.into(), description: description.into() }
    }
}
