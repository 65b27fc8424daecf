//! kem's sidecarless service mesh, linked into every role.
//!
//! One module per concern, in the spirit of linkerd2-proxy and ztunnel:
//! - [`admission`]: adaptive concurrency limits that shed excess load fast (servers and the edge);
//! - [`server`]: how a role exposes its gRPC services (health, reflection, graceful drain);
//! - [`shutdown`]: one shutdown signal shared by every server and background task of a process;
//! - [`identity`]: SPIFFE IDs, the identity CA, bootstrap credentials, rotating workload identity;
//! - [`tls`]: mTLS configurations (TLS 1.3, ALPN h2, chain + SPIFFE ID verification);
//! - [`authz`]: default-deny per-method authorization derived from the contracts;
//! - [`client`]: outbound mTLS channels that follow certificate rotation.
//! - [`breaker`]: the one circuit breaker for calls to external APIs, configured per dependency.
//! - [`hex`]: the lower-case hex encoding of digests, random ids and serials.
//! - [`telemetry`]: golden metrics on `/metrics`, W3C trace propagation and OTLP export.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admission;
pub mod authz;
pub mod balance;
pub mod breaker;
pub mod client;
pub mod deadline;
pub mod hex;
pub mod identity;
pub mod report;
pub mod retry;
pub mod server;
pub mod shutdown;
pub mod socket;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;

pub use server::{PeerInfo, RoleServer, ServerError, Serving, Transport};
pub use shutdown::Shutdown;
