//! The shared test harness. Every integration and end-to-end test builds on it, so that
//! each test gets isolated state and leaves nothing behind:
//! - [`postgres::TestDatabase`]: a fresh PostgreSQL database per test, migrated, dropped after;
//! - [`redis::TestRedis`]: a Redis connection and a key prefix per test, keys deleted after;
//! - [`net::free_port`]: a port nobody is listening on;
//! - [`service::TestService`]: one service's platform context (database, Redis prefix, queue);
//! - [`mesh::serve`]: a service (or a peer's fake) over mTLS with the contracts' policy;
//! - [`roles::TestPlatform`]: any set of kem roles started in-process on free ports;
//! - [`otlp::Collector`]: an in-process OTLP trace collector keeping every exported span;
//! - [`status`]: the code, `ErrorInfo` and `BadRequest` details of a failed call;
//! - [`wait`]: [`eventually`], a bounded poll instead of a guessed sleep.
//!
//! Backing services are **required**: when PostgreSQL or Redis cannot be reached the harness
//! panics with the address it tried and how to start it — a test never skips silently.
#![forbid(unsafe_code)]

pub mod contracts;
pub mod mesh;
pub mod net;
pub mod otlp;
pub mod postgres;
pub mod redis;
pub mod roles;
pub mod service;
pub mod status;
pub mod wait;

pub use wait::{eventually, eventually_holds};

/// A directory under the system temp dir, removed on drop (kept tiny to avoid a dependency).
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Creates `kem-test-<what>-<random>`.
    pub fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("kem-test-{what}-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A short random suffix for names that must not collide between parallel tests.
pub fn unique_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..12).map(|_| char::from(b'a' + rng.random_range(0..26u8))).collect()
}
