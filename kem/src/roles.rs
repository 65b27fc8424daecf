//! The roles a kem process can run, and how each one starts.
//!
//! `kem up` starts every role in one process; `kem serve <service>`, `kem gateway` and
//! `kem identity` start one each, as Kubernetes does with one role per pod. Tests start roles
//! in-process through [`start`], exactly as the binary does.

use std::fmt;
use std::net::SocketAddr;

use anyhow::Context;
use clap::ValueEnum;
use kem_mesh::{RoleServer, Serving, Shutdown};
use kem_proto::kem::identity::v1::identity_service_server::{IdentityService, IdentityServiceServer};
use tokio::net::TcpListener;

use crate::Settings;

/// A business service (one crate under `services/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum ServiceName {
    /// Owners, credentials, tokens, business verification.
    User,
    /// Events, lifecycle, async jobs.
    Event,
    /// Trend analysis and recommendations.
    Ai,
    /// Generated SNS images.
    Content,
    /// Multi-channel publishing.
    Distribution,
    /// Entries and draws.
    Participation,
    /// Aggregates and dashboards.
    Analytics,
}

impl ServiceName {
    /// Every service, in port order.
    pub const ALL: [ServiceName; 7] = [
        ServiceName::User,
        ServiceName::Event,
        ServiceName::Ai,
        ServiceName::Content,
        ServiceName::Distribution,
        ServiceName::Participation,
        ServiceName::Analytics,
    ];

    /// Lower-case name, as used in SPIFFE IDs, ports and Kubernetes objects.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::User => "user",
            ServiceName::Event => "event",
            ServiceName::Ai => "ai",
            ServiceName::Content => "content",
            ServiceName::Distribution => "distribution",
            ServiceName::Participation => "participation",
            ServiceName::Analytics => "analytics",
        }
    }
}

/// One role of the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The mesh identity CA (`kem identity`).
    Identity,
    /// A business service (`kem serve <service>`).
    Service(ServiceName),
    /// The REST edge (`kem gateway`).
    Gateway,
}

impl Role {
    /// Every role, in the order `kem up` starts them (CA first, edge last).
    pub fn all() -> Vec<Role> {
        let mut roles = vec![Role::Identity];
        roles.extend(ServiceName::ALL.into_iter().map(Role::Service));
        roles.push(Role::Gateway);
        roles
    }

    /// Lower-case role name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Identity => "identity",
            Role::Service(s) => s.as_str(),
            Role::Gateway => "gateway",
        }
    }

    /// Offset of this role's gRPC port from the base port.
    pub fn port_offset(self) -> u16 {
        match self {
            Role::Identity => 0,
            Role::Service(s) => 1 + ServiceName::ALL.iter().position(|x| *x == s).unwrap_or_default() as u16,
            Role::Gateway => 8,
        }
    }

    /// The gRPC port this role binds under `settings` (0 = a free port).
    pub fn grpc_port(self, settings: &Settings) -> u16 {
        if settings.base_port == 0 { 0 } else { settings.base_port + self.port_offset() }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A started role: its bound addresses and the tasks to await after shutdown.
pub struct RunningRole {
    /// Which role.
    pub role: Role,
    /// The gRPC listener (business services, health, reflection).
    pub grpc_addr: SocketAddr,
    /// The REST listener (gateway only).
    pub http_addr: Option<SocketAddr>,
    /// The gRPC server, for health updates.
    pub grpc: Serving,
    http_task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningRole {
    /// The `kem:` announcement line printed on stdout when the role is up.
    pub fn announcement(&self) -> String {
        match self.http_addr {
            Some(http) => format!("kem: role={} grpc={} http={}", self.role, self.grpc_addr, http),
            None => format!("kem: role={} grpc={}", self.role, self.grpc_addr),
        }
    }

    /// Waits for the role to finish draining after shutdown.
    pub async fn join(self) -> anyhow::Result<()> {
        let role = self.role;
        self.grpc.task.await.with_context(|| format!("role {role}: gRPC task panicked"))??;
        if let Some(task) = self.http_task {
            task.await
                .with_context(|| format!("role {role}: HTTP task panicked"))?
                .with_context(|| format!("role {role}: REST edge failed"))?;
        }
        Ok(())
    }
}

async fn bind(settings: &Settings, port: u16, role: Role, what: &str) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::new(settings.listen_host, port);
    TcpListener::bind(addr).await.with_context(|| {
        format!("role {role}: cannot bind the {what} listener on {addr}; is another kem running? choose another port with --base-port/--http-port (0 = any free port)")
    })
}

/// The identity CA's gRPC adapter. Certificate issuance arrives with the mesh identity issue;
/// until then every RPC keeps the generated UNIMPLEMENTED default.
#[derive(Debug, Default, Clone)]
pub struct IdentityApi;

impl IdentityService for IdentityApi {}

/// Starts `role` with `settings`; it runs until `shutdown` fires.
pub async fn start(role: Role, settings: &Settings, shutdown: &Shutdown) -> anyhow::Result<RunningRole> {
    let listener = bind(settings, role.grpc_port(settings), role, "gRPC").await?;
    let server = RoleServer::new(role.as_str()).drain_timeout(settings.drain_timeout);
    let server = match role {
        Role::Identity => server.add_service(IdentityServiceServer::new(IdentityApi)),
        Role::Service(ServiceName::User) => server.add_service(kem_user::grpc_service()),
        Role::Service(ServiceName::Event) => server.add_service(kem_event::grpc_service()),
        Role::Service(ServiceName::Ai) => server.add_service(kem_ai::grpc_service()),
        Role::Service(ServiceName::Content) => server.add_service(kem_content::grpc_service()),
        Role::Service(ServiceName::Distribution) => server.add_service(kem_distribution::grpc_service()),
        Role::Service(ServiceName::Participation) => server.add_service(kem_participation::grpc_service()),
        Role::Service(ServiceName::Analytics) => server.add_service(kem_analytics::grpc_service()),
        // The edge exposes only health and reflection over gRPC; its API is REST.
        Role::Gateway => server,
    };
    let grpc = server.serve(listener, shutdown.clone()).await?;

    let (http_addr, http_task) = if role == Role::Gateway {
        let listener = bind(settings, settings.http_port, role, "REST").await?;
        let (addr, task) =
            kem_gateway::serve(listener, shutdown.clone()).context("gateway: cannot start the REST edge")?;
        (Some(addr), Some(task))
    } else {
        (None, None)
    };
    Ok(RunningRole { role, grpc_addr: grpc.addr, http_addr, grpc, http_task })
}

/// Starts several roles; on the first failure the ones already started are shut down.
pub async fn start_all(roles: &[Role], settings: &Settings, shutdown: &Shutdown) -> anyhow::Result<Vec<RunningRole>> {
    let mut running = Vec::with_capacity(roles.len());
    for role in roles {
        match start(*role, settings, shutdown).await {
            Ok(r) => running.push(r),
            Err(error) => {
                shutdown.trigger();
                for r in running {
                    let _ = r.join().await;
                }
                return Err(error);
            }
        }
    }
    Ok(running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_has_a_distinct_port_offset() {
        let mut offsets: Vec<u16> = Role::all().iter().map(|r| r.port_offset()).collect();
        offsets.sort_unstable();
        assert_eq!(offsets, (0..9).collect::<Vec<u16>>());
    }

    #[test]
    fn port_zero_means_free_port_for_every_role() {
        let settings = Settings { base_port: 0, ..Settings::default() };
        assert!(Role::all().iter().all(|r| r.grpc_port(&settings) == 0));
        let settings = Settings::default();
        assert_eq!(Role::Service(ServiceName::Event).grpc_port(&settings), 7102);
    }
}
