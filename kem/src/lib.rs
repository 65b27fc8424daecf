//! The `kem` binary's library half: configuration and the roles a process can run.
//!
//! Keeping this a library lets tests start any role in-process exactly as the binary does.
#![forbid(unsafe_code)]

pub mod bench;
pub mod cluster;
pub mod config;
pub mod load;
pub mod mesh;
pub mod platform;
pub mod roles;
pub mod telemetry;
pub mod top;

pub use config::Settings;
pub use roles::{Role, RunningRole, ServiceName};
