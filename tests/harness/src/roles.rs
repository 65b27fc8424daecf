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
    _data_dir: Option<tempfile_dir::TempDir>,
}

mod tempfile_dir {
    /// A directory removed on drop (kept tiny to avoid a dependency for one use).
    pub struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl TestPlatform {
    /// Starts `roles` on loopback with free ports and a private data directory.
    pub async fn start(roles: &[Role]) -> TestPlatform {
        let dir = std::env::temp_dir().join(format!("kem-test-{}", crate::unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let settings = Settings {
            base_port: 0,
            admin_base_port: 0,
            http_port: 0,
            ca_dir: dir.join("identity"),
            data_dir: dir.clone(),
            drain_timeout: Duration::from_secs(5),
            ..Settings::default()
        };
        let shutdown = Shutdown::new();
        let running = kem::roles::start_all(roles, &settings, &shutdown)
            .await
            .unwrap_or_else(|e| panic!("cannot start roles {roles:?}: {e:#}"));
        TestPlatform { shutdown, roles: running, settings, _data_dir: Some(tempfile_dir::TempDir(dir)) }
    }

    /// Every role `kem up` runs.
    pub async fn start_all() -> TestPlatform {
        Self::start(&Role::all()).await
    }

    /// gRPC address of `role`.
    pub fn grpc_addr(&self, role: Role) -> SocketAddr {
        self.find(role).grpc_addr
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
    }
}
