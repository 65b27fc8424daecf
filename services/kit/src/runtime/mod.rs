//! What a service is given when its role starts: its store, cache, the shared queue, its mesh
//! peers, the clock and the process shutdown signal.
//!
//! The `kem` binary builds one [`ServiceContext`] per service role (from configuration), and tests
//! build one directly; a service crate never reads the process configuration itself except for
//! its own provider settings. That keeps every service startable in a test with a fresh database
//! and key prefix.

mod caller;
mod peers;
pub mod periodic;
mod service;

use std::path::PathBuf;
use std::sync::Arc;

pub use caller::{CLIENT_IP_METADATA, OWNER_METADATA, client_ip, owner_id, with_client_ip, with_owner};
pub use peers::{PeerDirectory, PeerError, Peers};
pub use service::KemService;

use kem_mesh::Shutdown;

use crate::cache::Cache;
use crate::clock::Clock;
use crate::outbox::{OutboxRelay, OutboxWaker, RelayOptions};
use crate::queue::Queue;
use crate::store::Store;

/// Everything a service role needs from the platform.
#[derive(Clone)]
pub struct ServiceContext {
    /// The service name (`user`, `event`, …): the key prefix, inbox consumer name and log field.
    pub service: String,
    /// The service's own database, connected, with the kit's tables (outbox, inbox) migrated.
    /// The service applies its own migrations at start.
    pub store: Store,
    /// Cache, already scoped to this service's key prefix. Failures degrade to the store.
    pub cache: Arc<dyn Cache>,
    /// The message queue shared by all services (store-backed or Azure Service Bus).
    pub queue: Arc<dyn Queue>,
    /// Mesh clients of the other services (mTLS as this workload's identity).
    pub peers: Peers,
    /// Directory for embedded state (blobs, local files).
    pub data_dir: PathBuf,
    /// Where the service's rules read "now" from: the system clock in a process, a
    /// `ManualClock` in tests about time.
    pub clock: Arc<dyn Clock>,
    /// Triggered when the process stops: background workers finish and return.
    pub shutdown: Shutdown,
}

impl ServiceContext {
    /// Starts the relay that publishes this service's outbox rows to the shared queue; the
    /// returned waker lets a producer skip the relay's poll interval right after a commit.
    pub fn spawn_outbox_relay(&self) -> OutboxWaker {
        let relay = OutboxRelay::new(self.store.clone(), self.queue.clone(), RelayOptions::default());
        let waker = relay.waker();
        relay.spawn(self.shutdown.clone());
        waker
    }
}

impl std::fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceContext")
            .field("service", &self.service)
            .field("store", &self.store.target())
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}
