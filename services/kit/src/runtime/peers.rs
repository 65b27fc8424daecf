//! Mesh clients of the other services, created on first use and shared.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use kem_mesh::balance::Resolver;
use kem_mesh::client::balanced::{BalancedChannel, ClientConfig};
use kem_mesh::identity::{SpiffeId, WorkloadIdentity};

/// Why a peer client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// No address is configured for the peer.
    #[error("no address configured for the {0} service; set KEM_UPSTREAMS (e.g. {0}=host:port)")]
    Unknown(String),
    /// The address is not `host:port` (or a `|`-separated list of them).
    #[error("address {addr:?} of the {service} service must be host:port or host:port|host:port|…")]
    BadAddress {
        /// The peer.
        service: String,
        /// What was configured.
        addr: String,
    },
    /// The identity or the channel could not be built.
    #[error("cannot build a mesh client of the {service} service: {reason}")]
    Channel {
        /// The peer.
        service: String,
        /// Why.
        reason: String,
    },
}

/// Where the services listen (`event` → `host:port`), shared by every role of a process so a
/// role started early learns the addresses of roles started after it.
#[derive(Clone, Debug, Default)]
pub struct PeerDirectory(Arc<RwLock<HashMap<String, String>>>);

impl PeerDirectory {
    /// Records where `service` listens (replacing what was there).
    pub fn insert(&self, service: impl Into<String>, addr: impl Into<String>) {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(service.into(), addr.into());
    }

    /// Where `service` listens, if known.
    pub fn get(&self, service: &str) -> Option<String> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(service).cloned()
    }
}

/// Where the other services are and who this workload is.
#[derive(Clone)]
pub struct Peers {
    identity: Option<WorkloadIdentity>,
    trust_domain: String,
    namespace: String,
    addrs: PeerDirectory,
    config: ClientConfig,
    channels: Arc<Mutex<HashMap<String, BalancedChannel>>>,
}

impl Peers {
    /// Peers reached as `identity`, whose SPIFFE ids are in `trust_domain`/`namespace`.
    pub fn new(identity: WorkloadIdentity, trust_domain: impl Into<String>, namespace: impl Into<String>) -> Peers {
        Peers {
            identity: Some(identity),
            trust_domain: trust_domain.into(),
            namespace: namespace.into(),
            addrs: PeerDirectory::default(),
            config: ClientConfig::default(),
            channels: Arc::default(),
        }
    }

    /// No peers at all (a service that calls nobody, in a test).
    pub fn none() -> Peers {
        Peers {
            identity: None,
            trust_domain: String::new(),
            namespace: String::new(),
            addrs: PeerDirectory::default(),
            config: ClientConfig::default(),
            channels: Arc::default(),
        }
    }

    /// Declares where `service` (`event`, `ai`, …) listens: `host:port`, resolved through DNS
    /// (a Kubernetes headless service gives one address per pod).
    pub fn with_addr(self, service: impl Into<String>, addr: impl Into<String>) -> Peers {
        self.addrs.insert(service, addr);
        self
    }

    /// Shares `directory` for the peers' addresses (later insertions are seen here).
    pub fn with_directory(mut self, directory: PeerDirectory) -> Peers {
        self.addrs = directory;
        self
    }

    /// Client settings of every peer channel (deadline, retries, endpoints).
    pub fn with_client_config(mut self, config: ClientConfig) -> Peers {
        self.config = config;
        self
    }

    /// The balanced mTLS channel to `service`, for a generated client:
    /// `EventServiceClient::new(peers.channel("event")?)`.
    pub fn channel(&self, service: &str) -> Result<BalancedChannel, PeerError> {
        let mut channels = self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(channel) = channels.get(service) {
            return Ok(channel.clone());
        }
        let addr = self.addrs.get(service).ok_or_else(|| PeerError::Unknown(service.to_owned()))?;
        let addr = &addr;
        let identity = self.identity.as_ref().ok_or_else(|| PeerError::Unknown(service.to_owned()))?;
        let resolver = Resolver::parse(addr)
            .map_err(|_| PeerError::BadAddress { service: service.to_owned(), addr: addr.clone() })?;
        let channel_error = |reason: String| PeerError::Channel { service: service.to_owned(), reason };
        let expected =
            SpiffeId::new(&self.trust_domain, &self.namespace, service).map_err(|e| channel_error(e.to_string()))?;
        let grpc_service = grpc_service_name(service);
        let channel = BalancedChannel::new(identity, &grpc_service, &expected, resolver, self.config.clone())
            .map_err(|e| channel_error(e.to_string()))?;
        channels.insert(service.to_owned(), channel.clone());
        Ok(channel)
    }
}

/// `event` → `kem.event.v1.EventService` (the naming rule of every kem contract).
fn grpc_service_name(service: &str) -> String {
    let mut chars = service.chars();
    let pascal: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("kem.{service}.v1.{pascal}Service")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_service_names_follow_the_contracts() {
        let pool = kem_proto::descriptor_pool();
        for service in ["user", "event", "ai", "content", "distribution", "participation", "analytics"] {
            let name = grpc_service_name(service);
            assert!(pool.get_service_by_name(&name).is_some(), "{name} is not in the descriptors");
        }
    }

    #[test]
    fn unknown_peer_names_the_setting_to_fix() {
        let error = Peers::none().channel("event").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("KEM_UPSTREAMS"), "{error}");
    }
}
