//! The user service (layered: handler → service → repository): small-business owners, their
//! credentials and sign-in sessions, access-token signing keys, and business registration number
//! verification at the National Tax Service (NTS).
//!
//! - [`handler`]: the gRPC adapter of `kem.user.v1.UserService` (statuses with `google.rpc`
//!   details);
//! - [`service`]: the use cases (Register, Login/Refresh/Logout, profiles, verification);
//! - [`repository`]: the tables, on PostgreSQL or embedded SQLite (same SQL);
//! - [`model`]: the rules, free of I/O (email, password policy, phone, business number checksum,
//!   update masks);
//! - [`nts`]: the NTS status API client and its local stand-in; [`tokens`]: signing keys;
//!   [`credentials`]: argon2id.
//!
//! A role starts it with [`start`]`(ctx, `[`UserConfig::from_env`]`()?)`.
#![forbid(unsafe_code)]

pub mod config;
pub mod credentials;
pub mod handler;
pub mod ids;
pub mod model;
pub mod nts;
pub mod repository;
pub mod service;
pub mod tokens;

use std::sync::{Arc, LazyLock};

use kem_kit::cache::CacheAside;
use kem_kit::external::ProviderConfigError;
use kem_kit::runtime::ServiceContext;
use kem_kit::store::{Migrations, StoreError};
use kem_proto::kem::user::v1::user_service_server::UserServiceServer;

pub use config::{LoginThrottle, PasswordSettings, TokenSettings, UserConfig, UserConfigError, VerificationTtl};
pub use handler::UserApi;

use credentials::{HashError, PasswordHasher};
use nts::NtsProvider;
use repository::Repository;
use service::{BusinessVerifier, UserCore};
use tokens::{KeyRing, KeyRingError};

/// The user service's migrations (PostgreSQL and SQLite sets).
pub static MIGRATIONS: LazyLock<Migrations> =
    LazyLock::new(|| Migrations::new(sqlx::migrate!("migrations/postgres"), sqlx::migrate!("migrations/sqlite")));

/// Why the user service could not start.
#[derive(Debug, thiserror::Error)]
pub enum UserStartError {
    /// The migrations failed.
    #[error("user service migrations: {0}")]
    Migrate(#[from] StoreError),
    /// The NTS client settings are invalid.
    #[error("user service NTS client: {0}")]
    Nts(#[from] ProviderConfigError),
    /// The signing keys could not be loaded or created.
    #[error("user service signing keys: {0}")]
    Keys(#[from] KeyRingError),
    /// The password hashing parameters are invalid.
    #[error("user service password hashing: {0}")]
    Password(#[from] HashError),
}

/// Starts the user service: migrates its tables, loads (or creates) the signing keys, spawns the
/// maintenance task (key reload and rotation, purge of expired rows; it stops with
/// `ctx.shutdown`) and returns the tonic service to mount.
pub async fn start(ctx: ServiceContext, config: UserConfig) -> Result<UserServiceServer<UserApi>, UserStartError> {
    Ok(start_api(ctx, config).await?.into_service())
}

/// Like [`start`], returning the [`UserApi`] itself (tests call its methods directly; operators'
/// tooling may rotate keys through it).
pub async fn start_api(ctx: ServiceContext, config: UserConfig) -> Result<UserApi, UserStartError> {
    ctx.store.migrate(&MIGRATIONS).await?;
    let repo = Repository::new(ctx.store.clone());
    let nts = NtsProvider::new(&config.nts)?;
    if let NtsProvider::Local(_) = nts {
        tracing::warn!(provider = %nts.label(), examples = ?nts::EXAMPLES,
            "business numbers are checked by the LOCAL NTS stand-in (demo data): numbers 000-02-xxxxx answer \
             suspended, 000-03-xxxxx closed, 000-00-xxxxx unregistered, every other checksum-valid number active");
    }
    let cache = CacheAside::new(ctx.cache.clone());
    let verifier = BusinessVerifier::new(nts, repo.clone(), cache.clone(), config.verification_ttl);
    let keys = Arc::new(KeyRing::load(repo.clone(), config.tokens.clone(), config.maintenance_interval).await?);
    let hasher = PasswordHasher::new(config.password).await?;
    let interval = config.maintenance_interval;
    let core = Arc::new(UserCore::new(repo, verifier, keys, hasher, cache, config));
    spawn_maintenance(core.clone(), interval, ctx.shutdown.clone());
    tracing::info!(service = %ctx.service, store = %ctx.store.target(), cache = ctx.cache.backend(), "user service started");
    Ok(UserApi::new(core))
}

fn spawn_maintenance(core: Arc<UserCore>, interval: std::time::Duration, shutdown: kem_mesh::Shutdown) {
    shutdown.clone().spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.wait() => return,
            }
            core.maintain().await;
        }
    });
}
