//! The guestbook: the smallest complete kem service, to copy when adding an eighth one (see
//! README.md). Visitors sign an event's guestbook; anyone reads it.
//!
//! The crate reads top-down, like every service under `services/`:
//! - [`api`]: the tonic adapter of `kem.guestbook.v1.GuestbookService` (proto ↔ domain, errors →
//!   statuses with `google.rpc` details);
//! - [`app`]: the use cases (Sign, ListEntries) and the [`GuestbookError`] they fail with;
//! - [`domain`]: the rules, free of I/O (what a valid signature, request id and page are);
//! - [`infra`]: the table on PostgreSQL or embedded SQLite (same SQL).
//!
//! A role mounts it through [`kem_kit::runtime::KemService`], implemented by [`Guestbook`].
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod infra;

use std::sync::{Arc, LazyLock};

use kem_kit::config::ConfigError;
use kem_kit::runtime::{KemService, ServiceContext};
use kem_kit::store::{Migrations, StoreError};
use prost_reflect::DescriptorPool;

pub use api::GuestbookApi;
pub use app::{GuestbookApp, GuestbookError};
pub use config::GuestbookConfig;
pub use pb::guestbook_service_server::GuestbookServiceServer;

/// The generated messages, client and server of `kem.guestbook.v1`. Once the proto moves into
/// `proto/kem/`, this becomes a `package!` line in kem-proto instead.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("kem.guestbook.v1");
}

/// The encoded `FileDescriptorSet` of the guestbook proto and its imports, every option kept.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guestbook_descriptor.bin"));

static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    // Produced and validated by the build script from the same sources: a failure is a build
    // defect, not an input error.
    #[allow(clippy::expect_used)]
    DescriptorPool::decode(FILE_DESCRIPTOR_SET).expect("embedded descriptor set is valid")
});

/// The contracts the mesh authorization policy is derived from
/// (`kem_mesh::authz::Policy::from_contracts`): kem's own pool does not know this service, and
/// a policy built from it would deny every call (default deny).
pub fn descriptor_pool() -> &'static DescriptorPool {
    &POOL
}

/// The guestbook's migrations (PostgreSQL and SQLite sets, same tables).
pub static MIGRATIONS: LazyLock<Migrations> =
    LazyLock::new(|| Migrations::new(sqlx::migrate!("migrations/postgres"), sqlx::migrate!("migrations/sqlite")));

/// The service as a role mounts it (`kem/src/roles.rs`, `mount::<kem_example_guestbook::Guestbook>`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Guestbook;

impl KemService for Guestbook {
    const NAME: &'static str = "guestbook";

    type Config = GuestbookConfig;
    type ConfigError = ConfigError;
    // Migrations are all that can fail here; a service that loads keys or providers at start
    // gives them an error enum of its own (e.g. `ParticipationStartError`).
    type StartError = StoreError;
    type Server = GuestbookServiceServer<GuestbookApi>;

    fn config_from_env() -> Result<GuestbookConfig, ConfigError> {
        GuestbookConfig::from_env()
    }

    /// Migrates the guestbook's table, so the role that mounts the server is ready to answer.
    async fn start(ctx: ServiceContext, config: GuestbookConfig) -> Result<Self::Server, StoreError> {
        ctx.store.migrate(&MIGRATIONS).await?;
        let app = GuestbookApp::new(infra::Repository::new(ctx.store.clone()), ctx.clock.clone(), config.clone());
        tracing::info!(service = %ctx.service, store = %ctx.store.target(), ?config, "guestbook service started");
        Ok(GuestbookApi::new(Arc::new(app)).into_service())
    }
}
