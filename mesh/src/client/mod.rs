//! Outbound mesh connections.
//!
//! [`connect`] dials one endpoint over mTLS; [`MeshChannel`] is what service code holds: a tonic
//! channel to a peer that re-dials with the workload's new certificate after every renewal, while
//! RPCs already in flight finish on the old connection.

pub mod balanced;
pub mod channel;
pub mod connect;
pub mod failure;

pub use balanced::{BalancedChannel, ClientConfig, ClientCounters};
pub use channel::MeshChannel;
pub use failure::{Failure, MESH_ERROR_HEADER, OVERLOADED, classify, mesh_error};
