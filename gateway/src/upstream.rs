//! Backends: one channel per gRPC service, over the mesh in production.

use std::collections::HashMap;
use std::time::Duration;

use tonic::body::Body;
use tower::util::BoxCloneSyncService;

/// A channel to one service (mesh mTLS, or plaintext in tests), type-erased. The error type is
/// tonic's concrete transport error (a boxed error would defeat `Send` inference in handlers).
pub type Upstream = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, tonic::transport::Error>;

/// Erases any tonic channel (`tonic::transport::Channel`, `kem_mesh::client::MeshChannel`).
pub fn upstream<S>(service: S) -> Upstream
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>, Error = tonic::transport::Error>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    BoxCloneSyncService::new(service)
}

/// Channels by full service name (`kem.event.v1.EventService`).
#[derive(Clone, Default)]
pub struct Upstreams {
    channels: HashMap<String, Upstream>,
}

impl Upstreams {
    /// No backends yet.
    pub fn new() -> Upstreams {
        Upstreams::default()
    }

    /// Routes `service` to `channel`.
    pub fn insert(&mut self, service: impl Into<String>, channel: Upstream) {
        self.channels.insert(service.into(), channel);
    }

    /// The channel for `service`.
    pub fn get(&self, service: &str) -> Option<Upstream> {
        self.channels.get(service).cloned()
    }

    /// Service names with a channel.
    pub fn services(&self) -> impl Iterator<Item = &String> {
        self.channels.keys()
    }

    /// Whether every backend answers its gRPC health check within `timeout` (for `/readyz`).
    pub async fn all_serving(&self, timeout: Duration) -> Result<(), String> {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        for (service, channel) in &self.channels {
            let mut client = HealthClient::new(channel.clone());
            let check = client.check(HealthCheckRequest { service: service.clone() });
            match tokio::time::timeout(timeout, check).await {
                Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32 => {}
                Ok(Ok(_)) => return Err(format!("{service} is not serving")),
                Ok(Err(status)) => return Err(format!("{service}: {}", status.code())),
                Err(_) => return Err(format!("{service}: health check timed out")),
            }
        }
        Ok(())
    }
}
