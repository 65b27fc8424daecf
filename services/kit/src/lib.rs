//! The platform kit: mechanisms every kem service shares, so no service copies them.
//!
//! Today it holds [`Secret`], the redacting wrapper configuration uses for credentials.
//! Storage, cache, queues with outbox/inbox and the external-API client base arrive with the
//! platform-kit issue.
#![forbid(unsafe_code)]

pub mod secret;

pub use secret::Secret;
