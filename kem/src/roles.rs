//! The roles a kem process can run, and how each one starts.
//!
//! `kem up` starts every role in one process; `kem serve <service>`, `kem gateway` and
//! `kem identity` start one each, as Kubernetes does with one role per pod. Tests start roles
//! in-process through [`start`], exactly as the binary does.

use std::fmt;
use std::net::SocketAddr;

use anyhow::Context;
use clap::ValueEnum;
use std::sync::Arc;
use std::time::Duration;

use kem_gateway::auth::{JwtAuthenticator, RevocationList, UserServiceKeys, UserServiceRevocations};
use kem_gateway::edge::{Edge, EdgeConfig};
use kem_gateway::idempotency::IdempotencyStore;
use kem_gateway::protect::{EdgeLimiter, TrustedProxies};
use kem_gateway::routes::RouteTable;
use kem_gateway::upstream::{Upstreams, upstream};
use kem_kit::runtime::{KemService, ServiceContext};
use kem_mesh::admission::{Admission, AdmissionConfig};
use kem_mesh::authz::{Policy, Rule};
use kem_mesh::balance::Resolver;
use kem_mesh::client::balanced::{BalancedChannel, ClientConfig};
use kem_mesh::identity::WorkloadIdentity;
use kem_mesh::identity::service::IdentityApi;
use kem_mesh::{RoleServer, Serving, Shutdown, Transport};
use tokio::net::TcpListener;

use crate::Settings;
use crate::mesh::{CaAccess, CaState};
use crate::platform::{ProcessShared, ServiceConfigs};

/// A business service (one crate under `services/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, ValueEnum)]
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
    /// The gRPC listener (business services, health, reflection), over mTLS.
    pub grpc_addr: SocketAddr,
    /// The plaintext admin listener (gRPC health for probes).
    pub admin_addr: SocketAddr,
    /// The REST listener (gateway only).
    pub http_addr: Option<SocketAddr>,
    /// The gRPC server, for health updates.
    pub grpc: Serving,
    /// The workload identity the role serves with.
    pub identity: WorkloadIdentity,
    admin: Serving,
    http_task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningRole {
    /// The `kem:` announcement line printed on stdout when the role is up.
    pub fn announcement(&self) -> String {
        let mut line = format!("kem: role={} grpc={} admin={}", self.role, self.grpc_addr, self.admin_addr);
        if let Some(http) = self.http_addr {
            line.push_str(&format!(" http={http}"));
        }
        line
    }

    /// Waits for the role to finish draining after shutdown.
    pub async fn join(self) -> anyhow::Result<()> {
        let role = self.role;
        self.grpc.task.await.with_context(|| format!("role {role}: gRPC task panicked"))??;
        self.admin.task.await.with_context(|| format!("role {role}: admin task panicked"))??;
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
        format!("role {role}: cannot bind the {what} listener on {addr}; is another kem running? choose other ports with --base-port/--admin-base-port/--http-port (0 = any free port)")
    })
}

fn admin_port(role: Role, settings: &Settings) -> u16 {
    if settings.admin_base_port == 0 { 0 } else { settings.admin_base_port + role.port_offset() }
}

/// The services a role serves.
fn service_names(role: Role) -> &'static [&'static str] {
    match role {
        Role::Identity => &["kem.identity.v1.IdentityService"],
        Role::Service(ServiceName::User) => &["kem.user.v1.UserService"],
        Role::Service(ServiceName::Event) => &["kem.event.v1.EventService"],
        Role::Service(ServiceName::Ai) => &["kem.ai.v1.AiService"],
        Role::Service(ServiceName::Content) => &["kem.content.v1.ContentService"],
        Role::Service(ServiceName::Distribution) => &["kem.distribution.v1.DistributionService"],
        Role::Service(ServiceName::Participation) => &["kem.participation.v1.ParticipationService"],
        Role::Service(ServiceName::Analytics) => &["kem.analytics.v1.AnalyticsService"],
        Role::Gateway => &[],
    }
}

/// The authorization policy of `role`, derived from the contracts.
pub fn policy_for(role: Role, settings: &Settings) -> Policy {
    Policy::from_contracts(
        kem_proto::descriptor_pool(),
        service_names(role),
        &settings.trust_domain,
        &settings.namespace,
        Role::Gateway.as_str(),
    )
}

/// Starts the identity CA role; returns it with the access every other role of this process uses.
pub async fn start_identity(settings: &Settings, shutdown: &Shutdown) -> anyhow::Result<(RunningRole, CaAccess)> {
    let state = CaState::load(settings)?;
    let identity = state.own_identity(settings, shutdown).await?;
    let api = IdentityApi::new(state.ca.clone(), state.credentials.clone());
    let server = RoleServer::new(Role::Identity.as_str())
        .transport(Transport::ServerTls(identity.clone()))
        // The CA's callers have no certificate yet (their token authenticates them), so its
        // health and reflection are open like its issuance endpoint.
        .policy(
            policy_for(Role::Identity, settings)
                .allow_service("grpc.health.v1.Health", Rule::Unauthenticated)
                .allow_service("grpc.reflection.v1.ServerReflection", Rule::Unauthenticated),
            None,
        )
        .add_service(api.into_service());
    let running = serve(Role::Identity, server, identity, settings, shutdown, None).await?;
    let access = CaAccess::InProcess {
        addr: running.grpc_addr.to_string(),
        anchors: state.ca.load().trust_anchors().to_vec(),
        tokens: state.tokens.clone(),
    };
    Ok((running, access))
}

async fn serve(
    role: Role,
    server: RoleServer,
    identity: WorkloadIdentity,
    settings: &Settings,
    shutdown: &Shutdown,
    edge: Option<kem_gateway::EdgeApp>,
) -> anyhow::Result<RunningRole> {
    let listener = bind(settings, role.grpc_port(settings), role, "gRPC").await?;
    let grpc = server.drain_timeout(settings.drain_timeout).serve(listener, shutdown.clone()).await?;
    let admin_listener = bind(settings, admin_port(role, settings), role, "admin").await?;
    let admin = kem_mesh::server::serve_admin(role.as_str(), admin_listener, &grpc, shutdown.clone()).await?;
    let (http_addr, http_task) = match edge {
        Some(router) => {
            let listener = bind(settings, settings.http_port, role, "REST").await?;
            let (addr, task) = kem_gateway::serve(listener, router, shutdown.clone())
                .context("gateway: cannot start the REST edge")?;
            (Some(addr), Some(task))
        }
        None => (None, None),
    };
    Ok(RunningRole { role, grpc_addr: grpc.addr, admin_addr: admin.addr, http_addr, grpc, identity, admin, http_task })
}

/// The REST edge of the gateway role, calling every service over the mesh as `identity`.
async fn edge_router(
    identity: &WorkloadIdentity,
    settings: &Settings,
    shared: &ProcessShared,
    shutdown: &Shutdown,
) -> anyhow::Result<kem_gateway::EdgeApp> {
    let mut upstreams = Upstreams::new();
    let mut user = None;
    for service in ServiceName::ALL {
        let addr = shared
            .directory
            .get(service.as_str())
            .with_context(|| format!("no address known for the {} service", service.as_str()))?;
        let peer = crate::mesh::spiffe_id(settings, service.as_str())?;
        // A Kubernetes headless service resolves to one address per pod (or a fixed list names
        // replicas on one machine); the balanced client re-resolves, spreads load by latency,
        // ejects failing pods and retries idempotent calls.
        let resolver = Resolver::parse(&addr)
            .map_err(|e| anyhow::anyhow!("upstream address of the {} service: {e}", service.as_str()))?;
        let name = service_names(Role::Service(service)).first().copied().unwrap_or_default();
        let channel = upstream(BalancedChannel::new(identity, name, &peer, resolver, ClientConfig::default())?);
        if service == ServiceName::User {
            user = Some(channel.clone());
        }
        for name in service_names(Role::Service(service)) {
            upstreams.insert(*name, channel.clone());
        }
    }
    let user = user.context("no user service upstream")?;
    // Revoked access tokens (logout) reach the edge by polling the user service; the list is
    // loaded before any token is accepted and kept when the user service is unreachable.
    let revocations = RevocationList::new(Arc::new(UserServiceRevocations(user.clone())));
    revocations.spawn_sync(kem_gateway::auth::revocations::POLL_PERIOD, shutdown.clone());
    let auth =
        JwtAuthenticator::with_revocations(JWT_ISSUER, JWT_AUDIENCE, Arc::new(UserServiceKeys(user)), revocations);
    auth.spawn_refresh(Duration::from_secs(60), shutdown.clone());
    let cache = crate::platform::cache(Role::Gateway.as_str(), settings).await?;
    let config = EdgeConfig {
        trusted_proxies: TrustedProxies::parse(&settings.trusted_proxies).context("invalid --trusted-proxies")?,
        media: Some(media_edge(settings)?),
        ..EdgeConfig::default()
    };
    config.admission.register_metrics(&kem_mesh::telemetry::Registry::global());
    let edge = Arc::new(Edge {
        routes: RouteTable::from_pool(kem_proto::descriptor_pool())?,
        upstreams,
        auth: auth.clone(),
        limiter: EdgeLimiter::new(&shared.configs.edge_limits.clone().unwrap_or_default()),
        idempotency: IdempotencyStore::new(cache, Duration::from_secs(24 * 3600)),
        config,
    });
    Ok(kem_gateway::router(edge, Some(auth), &settings.cors_origins))
}

/// The edge's public media route (`/media/{token}`): links are signed by distribution and
/// checked here with the same key (`KEM_MEDIA_URL_KEY` / `_FILE`; in one process both find the
/// development key under the data dir). A production process requires a configured key: a
/// development key would sign links no other replica could check.
fn media_edge(settings: &Settings) -> anyhow::Result<Arc<kem_gateway::media::MediaEdge>> {
    let mut keys = kem_kit::config::read_from(&kem_kit::config::ProcessEnv, kem_kit::media::MediaKeySettings::read)
        .context("the gateway's media link key settings")?;
    if settings.providers == kem_kit::external::ProviderPolicy::RequireReal {
        keys.require_configured_key = true;
    }
    let signer = kem_kit::media::load(&keys, &settings.data_dir).context("the gateway's media link key")?;
    let clock: Arc<dyn kem_kit::clock::Clock> = Arc::new(kem_kit::clock::SystemClock);
    Ok(Arc::new(kem_gateway::media::MediaEdge::new(signer, clock)))
}

/// Issuer and audience of end-user access tokens (the user service signs with these).
pub const JWT_ISSUER: &str = "kem-user";
/// Audience of end-user access tokens.
pub const JWT_AUDIENCE: &str = "kem-api";

/// Starts `role` (not the identity CA) with certificates from `ca`; it runs until `shutdown`.
/// `shared` holds what the roles of this process share (addresses, the queue, the service
/// settings [`preflight`] resolved); only [`start_all_with`] calls it, after that preflight.
async fn start(
    role: Role,
    settings: &Settings,
    ca: &CaAccess,
    shutdown: &Shutdown,
    shared: &ProcessShared,
) -> anyhow::Result<RunningRole> {
    let identity = ca.identity(settings, role.as_str(), shutdown).await?;
    let gateway = crate::mesh::spiffe_id(settings, Role::Gateway.as_str())?;
    let server = RoleServer::new(role.as_str())
        .transport(Transport::MutualTls(identity.clone()))
        .policy(policy_for(role, settings), Some(gateway));
    let server = match role {
        Role::Identity => anyhow::bail!("the identity CA is started with start_identity"),
        Role::Service(service) => {
            let ctx = crate::platform::service_context(service, settings, &identity, shared, shutdown).await?;
            // Overload is shed fast (UNAVAILABLE marked overloaded, which the mesh client sends
            // to another replica) instead of queueing until deadlines pass.
            let server = server.admission(Admission::new(AdmissionConfig::default()));
            mount_service(service, server, ctx, &shared.configs).await?
        }
        // The edge exposes only health and reflection over gRPC; its API is REST.
        Role::Gateway => server,
    };
    let edge =
        if role == Role::Gateway { Some(edge_router(&identity, settings, shared, shutdown).await?) } else { None };
    let running = serve(role, server, identity, settings, shutdown, edge).await?;
    shared.started(role, running.grpc_addr, settings);
    Ok(running)
}

/// Starts `service` on its context and mounts its gRPC API.
async fn mount_service(
    service: ServiceName,
    server: RoleServer,
    ctx: ServiceContext,
    configs: &ServiceConfigs,
) -> anyhow::Result<RoleServer> {
    match service {
        ServiceName::User => mount::<kem_user::User>(server, ctx, configs.user.as_ref(), check_token_names).await,
        ServiceName::Event => mount::<kem_event::Event>(server, ctx, configs.event.as_ref(), no_check).await,
        ServiceName::Ai => mount::<kem_ai::Ai>(server, ctx, configs.ai.as_ref(), no_check).await,
        ServiceName::Content => mount::<kem_content::Content>(server, ctx, configs.content.as_ref(), no_check).await,
        ServiceName::Distribution => {
            mount::<kem_distribution::Distribution>(server, ctx, configs.distribution.as_ref(), no_check).await
        }
        ServiceName::Participation => {
            mount::<kem_participation::Participation>(server, ctx, configs.participation.as_ref(), no_check).await
        }
        ServiceName::Analytics => {
            mount::<kem_analytics::Analytics>(server, ctx, configs.analytics.as_ref(), no_check).await
        }
    }
}

/// The one way a role starts a service: with the settings [`preflight`] resolved (the embedding
/// program's, else the service's environment) and checked against the provider policy; `check`
/// refuses settings the rest of this process cannot work with.
async fn mount<S: KemService>(
    server: RoleServer,
    ctx: ServiceContext,
    resolved: Option<&S::Config>,
    check: fn(&S::Config) -> anyhow::Result<()>,
) -> anyhow::Result<RoleServer> {
    let failed = || format!("the {} service failed to start", S::NAME);
    let config = resolved
        .cloned()
        .with_context(|| format!("the {} service's settings were not resolved before its start", S::NAME))
        .with_context(failed)?;
    check(&config).with_context(failed)?;
    for stand_in in kem_kit::external::StandIns::stand_ins(&config) {
        tracing::warn!(service = S::NAME, stand_in = %stand_in, "running on a LOCAL stand-in: its results are labelled local and are not real");
    }
    Ok(server.add_service(S::start(ctx, config).await.with_context(failed)?))
}

fn no_check<T>(_: &T) -> anyhow::Result<()> {
    Ok(())
}

/// The gateway verifies access tokens against [`JWT_ISSUER`] and [`JWT_AUDIENCE`]; a user
/// service signing for other names would issue tokens no request could use.
fn check_token_names(config: &kem_user::UserConfig) -> anyhow::Result<()> {
    anyhow::ensure!(
        config.tokens.issuer == JWT_ISSUER && config.tokens.audience == JWT_AUDIENCE,
        "the user service signs tokens for issuer {:?} / audience {:?}, but the gateway expects {JWT_ISSUER:?} / {JWT_AUDIENCE:?}; unset KEM_JWT_ISSUER / KEM_JWT_AUDIENCE",
        config.tokens.issuer,
        config.tokens.audience
    );
    Ok(())
}

/// Starts several roles. With the identity CA among them, it starts first and the others get
/// their certificates from it in-process; otherwise they use the CA configured in `settings`.
/// On the first failure the roles already started are shut down.
pub async fn start_all(roles: &[Role], settings: &Settings, shutdown: &Shutdown) -> anyhow::Result<Vec<RunningRole>> {
    start_all_with(roles, settings, ServiceConfigs::default(), shutdown).await
}

/// Reads the settings of every service among `roles` that the caller did not give (once, from
/// the environment) and refuses the start before anything listens or asks the identity CA when
/// one of them would run on a local stand-in the process's provider policy forbids: a
/// misconfigured `kem serve` fails in a second, naming every missing variable of every service.
fn preflight(roles: &[Role], settings: &Settings, configs: &mut ServiceConfigs) -> anyhow::Result<()> {
    fn resolve<S: KemService>(
        given: &mut Option<S::Config>,
        policy: kem_kit::external::ProviderPolicy,
        problems: &mut Vec<String>,
    ) {
        if given.is_none() {
            match S::config_from_env() {
                Ok(config) => *given = Some(config),
                Err(error) => return problems.push(format!("the {} service's settings: {error}", S::NAME)),
            }
        }
        if let Some(config) = given.as_ref()
            && let Err(refused) = policy.check(S::NAME, config)
        {
            problems.push(refused.to_string());
        }
    }
    let policy = settings.providers;
    let mut problems = Vec::new();
    for role in roles {
        let Role::Service(service) = role else { continue };
        match service {
            ServiceName::User => resolve::<kem_user::User>(&mut configs.user, policy, &mut problems),
            ServiceName::Event => resolve::<kem_event::Event>(&mut configs.event, policy, &mut problems),
            ServiceName::Ai => resolve::<kem_ai::Ai>(&mut configs.ai, policy, &mut problems),
            ServiceName::Content => resolve::<kem_content::Content>(&mut configs.content, policy, &mut problems),
            ServiceName::Distribution => {
                resolve::<kem_distribution::Distribution>(&mut configs.distribution, policy, &mut problems)
            }
            ServiceName::Participation => {
                resolve::<kem_participation::Participation>(&mut configs.participation, policy, &mut problems)
            }
            ServiceName::Analytics => {
                resolve::<kem_analytics::Analytics>(&mut configs.analytics, policy, &mut problems)
            }
        }
    }
    anyhow::ensure!(problems.is_empty(), "kem cannot start:\n- {}", problems.join("\n- "));
    Ok(())
}

/// [`start_all`] with service settings given by the caller instead of the environment.
pub async fn start_all_with(
    roles: &[Role],
    settings: &Settings,
    configs: ServiceConfigs,
    shutdown: &Shutdown,
) -> anyhow::Result<Vec<RunningRole>> {
    let mut configs = configs;
    preflight(roles, settings, &mut configs)?;
    let mut running = Vec::with_capacity(roles.len());
    let result = async {
        let ca = if roles.contains(&Role::Identity) {
            let (identity, access) = start_identity(settings, shutdown).await?;
            running.push(identity);
            access
        } else {
            CaAccess::from_settings(settings)?
        };
        // Services before the edge, so the gateway knows where they listen.
        let mut ordered: Vec<Role> = roles.iter().copied().filter(|r| *r != Role::Identity).collect();
        ordered.sort_by_key(|r| *r == Role::Gateway);
        let shared = ProcessShared::new(settings, configs);
        for role in ordered {
            running.push(start(role, settings, &ca, shutdown, &shared).await?);
        }
        anyhow::Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(running),
        Err(error) => {
            shutdown.trigger();
            for r in running {
                let _ = r.join().await;
            }
            Err(error)
        }
    }
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
