//! kem roles started in-process on free ports, exactly as the binary starts them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use kem::{Role, RunningRole, Settings};
use kem_mesh::Shutdown;

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
            http_port: 0,
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
