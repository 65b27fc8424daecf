//! Workload identity: SPIFFE IDs, the identity CA, bootstrap credentials, and the in-process
//! workload identity that renews its certificate before it expires.

pub mod ca;
pub mod credential;
pub mod service;
pub mod spiffe;
pub mod workload;

pub use spiffe::{SpiffeId, SpiffeIdError};
pub use workload::{CertificateSource, IdentityError, IdentityStatus, WorkloadIdentity};
