//! kem's sidecarless service mesh, linked into every role.
//!
//! One module per concern, in the spirit of linkerd2-proxy and ztunnel:
//! - [`server`]: how a role exposes its gRPC services (health, reflection, graceful drain);
//! - [`shutdown`]: one shutdown signal shared by every server and background task of a process.
//!
//! Workload identity, mTLS, authorization, the resilient client and telemetry arrive as their
//! own modules with the mesh issues; until then roles talk plaintext on loopback.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod server;
pub mod shutdown;

pub use server::{RoleServer, ServerError, Serving};
pub use shutdown::Shutdown;
