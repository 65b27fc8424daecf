//! kem roles started in-process on free ports, exactly as the binary starts them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use kem::mesh::CaAccess;
use kem::{Role, RunningRole, Settings};
use kem_mesh::Shutdown;
use kem_mesh::client::MeshChannel;
use kem_mesh::identity::WorkloadIdentity;

/// A set of running roles; shut down and drained by [`TestPlatform::stop`].
pub struct TestPlatform {
    shutdown: Shutdown,
    roles: Vec<RunningRole>,
    /// The settings the roles were started with.
    pub settings: Settings,
    backing: Option<Backing>,
    _data_dir: Option<crate::TempDir>,
}

/// Test-owned databases and Redis keys behind a [`TestPlatform::start_backed`] platform.
struct Backing {
    databases: Vec<crate::postgres::TestDatabase>,
    redis: crate::redis::TestRedis,
}

impl TestPlatform {
    /// Starts `roles` like [`TestPlatform::start`], with every service on its own fresh
    /// PostgreSQL database, the queue on another, and caches in Redis under a fresh prefix — the
    /// production storage layout. Everything is removed by [`TestPlatform::stop`].
    pub async fn start_backed(roles: &[Role]) -> TestPlatform {
        Self::start_backed_with(roles, kem::platform::ServiceConfigs::default()).await
    }

    /// [`TestPlatform::start_backed`] with the services' own settings given (providers, limits).
    pub async fn start_backed_with(roles: &[Role], configs: kem::platform::ServiceConfigs) -> TestPlatform {
        Self::start_backed_adjusted(roles, configs, |_| {}).await
    }

    /// [`TestPlatform::start_backed_with`] with the roles' settings adjusted by `adjust` as well
    /// (e.g. a REST port known in advance, for a public base URL that must name it).
    pub async fn start_backed_adjusted(
        roles: &[Role],
        configs: kem::platform::ServiceConfigs,
        adjust: impl FnOnce(&mut Settings),
    ) -> TestPlatform {
        let mut databases = Vec::new();
        let mut urls = std::collections::BTreeMap::new();
        let mut names: Vec<&str> =
            roles.iter().filter_map(|r| matches!(r, Role::Service(_)).then_some(r.as_str())).collect();
        if !names.is_empty() {
            names.push("queue");
        }
        for name in names {
            let db = crate::postgres::TestDatabase::create().await;
            urls.insert(name.to_owned(), kem_kit::Secret::new(db.url()));
            databases.push(db);
        }
        let redis = crate::redis::TestRedis::new().await;
        let backing = Backing { databases, redis };
        let prefix = backing.redis.prefix.clone();
        let mut platform = Self::start_configured(
            roles,
            move |settings| {
                settings.database_urls = urls;
                settings.redis_url = Some(kem_kit::Secret::new(crate::redis::redis_url()));
                settings.cache_prefix = prefix;
                adjust(settings);
            },
            configs,
        )
        .await;
        platform.backing = Some(backing);
        platform
    }

    /// Starts `roles` on loopback with free ports and a private data directory.
    pub async fn start(roles: &[Role]) -> TestPlatform {
        Self::start_with(roles, |_| {}).await
    }

    /// Starts `roles` with settings adjusted by `adjust` (ports and data dir are the test's).
    pub async fn start_with(roles: &[Role], adjust: impl FnOnce(&mut Settings)) -> TestPlatform {
        Self::start_configured(roles, adjust, kem::platform::ServiceConfigs::default()).await
    }

    async fn start_configured(
        roles: &[Role],
        adjust: impl FnOnce(&mut Settings),
        configs: kem::platform::ServiceConfigs,
    ) -> TestPlatform {
        let temp = crate::TempDir::new("platform");
        let dir = temp.0.clone();
        let mut settings = Settings {
            base_port: 0,
            admin_base_port: 0,
            http_port: 0,
            ca_dir: dir.join("identity"),
            data_dir: dir.clone(),
            drain_timeout: Duration::from_secs(5),
            ..Settings::default()
        };
        adjust(&mut settings);
        let shutdown = Shutdown::new();
        let running = kem::roles::start_all_with(roles, &settings, configs, &shutdown)
            .await
            .unwrap_or_else(|e| panic!("cannot start roles {roles:?}: {e:#}"));
        TestPlatform { shutdown, roles: running, settings, backing: None, _data_dir: Some(temp) }
    }

    /// Every role `kem up` runs.
    pub async fn start_all() -> TestPlatform {
        Self::start(&Role::all()).await
    }

    /// gRPC address of `role`.
    pub fn grpc_addr(&self, role: Role) -> SocketAddr {
        self.find(role).grpc_addr
    }

    /// The database URL of `name` (a service, or `queue`) on a [`TestPlatform::start_backed`]
    /// platform.
    pub fn database_url(&self, name: &str) -> String {
        self.settings
            .database_urls
            .get(name)
            .map(|url| url.expose().to_owned())
            .unwrap_or_else(|| panic!("no test database for {name}; start the platform with start_backed"))
    }

    /// REST address of the gateway.
    pub fn http_addr(&self) -> SocketAddr {
        self.find(Role::Gateway).http_addr.unwrap_or_else(|| panic!("the gateway role has no HTTP listener"))
    }

    /// Admin (plaintext health) address of `role`.
    pub fn admin_addr(&self, role: Role) -> SocketAddr {
        self.find(role).admin_addr
    }

    /// A mesh identity for `workload` from this platform's CA, as a test client joining the mesh.
    pub async fn workload_identity(&self, workload: &str) -> WorkloadIdentity {
        let ca = self.grpc_addr(Role::Identity).to_string();
        let access = CaAccess::local(&self.settings, &ca).unwrap_or_else(|e| panic!("CA access: {e:#}"));
        access
            .identity(&self.settings, workload, &self.shutdown)
            .await
            .unwrap_or_else(|e| panic!("identity for {workload}: {e:#}"))
    }

    /// A mesh channel from `from` to `role`, verifying the role's identity.
    pub fn channel(&self, from: &WorkloadIdentity, role: Role) -> MeshChannel {
        let peer = kem::mesh::spiffe_id(&self.settings, role.as_str()).unwrap_or_else(|e| panic!("{e:#}"));
        MeshChannel::new(from, &self.grpc_addr(role).to_string(), &peer).unwrap_or_else(|e| panic!("channel: {e}"))
    }

    /// gRPC addresses by role.
    pub fn grpc_addrs(&self) -> HashMap<Role, SocketAddr> {
        self.roles.iter().map(|r| (r.role, r.grpc_addr)).collect()
    }

    fn find(&self, role: Role) -> &RunningRole {
        self.roles.iter().find(|r| r.role == role).unwrap_or_else(|| panic!("role {role} was not started"))
    }

    /// Triggers shutdown and waits for every role to drain.
    pub async fn stop(self) {
        self.shutdown.trigger();
        for role in self.roles {
            let name = role.role;
            role.join().await.unwrap_or_else(|e| panic!("role {name} failed while draining: {e:#}"));
        }
        if let Some(backing) = self.backing {
            for db in backing.databases {
                db.drop_now().await;
            }
            backing.redis.cleanup().await;
        }
    }
}
