//! The user service: small-business owners, their credentials and sign-in sessions,
//! access-token signing keys, and business registration number verification at the National Tax
//! Service (NTS).
//!
//! The crate reads top-down:
//! - [`api`]: the tonic adapter of `kem.user.v1.UserService` (proto ↔ domain, errors → statuses
//!   with `google.rpc` details);
//! - [`app`]: the use cases (Register, Login/Refresh/Logout, profiles, business verification
//!   through its two-tier cache, revocations, signing keys) and the [`UserError`](app::UserError)
//!   they fail with;
//! - [`domain`]: pure rules, free of I/O — email, password policy, phone, business number
//!   checksum, profiles and update masks, sign-in throttling;
//! - [`infra`]: the adapters — the tables on PostgreSQL or embedded SQLite (same SQL), the NTS
//!   status API client and its local stand-in (`infra::local`), the signing key ring, argon2id
//!   password hashing.
//!
//! A role starts it with [`start`]`(ctx, `[`UserConfig::from_env`]`()?)`.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod infra;

use std::sync::{Arc, LazyLock};

use kem_kit::cache::CacheAside;
use kem_kit::external::ProviderConfigError;
use kem_kit::runtime::ServiceContext;
use kem_kit::store::{Migrations, StoreError};
use kem_proto::kem::user::v1::user_service_server::UserServiceServer;

pub use api::UserApi;
pub use config::{LoginThrottle, PasswordSettings, TokenSettings, UserConfig, UserConfigError, VerificationTtl};

use crate::app::{BusinessVerifier, UserCore};
use crate::infra::nts::{self, NtsProvider};
use crate::infra::{HashError, KeyRing, KeyRingError, PasswordHasher, Repository};

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

kem_kit::kem_service! {
    /// The user service as a role mounts it (`kem serve user`, `kem up`).
    pub struct User = "user";
    config: UserConfig, UserConfigError;
    start: start => UserServiceServer<UserApi>, UserStartError;
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
    let verifier = BusinessVerifier::new(nts, repo.clone(), cache.clone(), config.verification_ttl, ctx.clock.clone());
    let keys = Arc::new(
        KeyRing::load(repo.clone(), config.tokens.clone(), config.maintenance_interval, ctx.clock.clone()).await?,
    );
    let hasher = PasswordHasher::new(config.password).await?;
    let interval = config.maintenance_interval;
    let core = Arc::new(UserCore::new(repo, verifier, keys, hasher, cache, config, ctx.clock.clone()));
    spawn_maintenance(core.clone(), interval, ctx.shutdown.clone());
    tracing::info!(service = %ctx.service, store = %ctx.store.target(), cache = ctx.cache.backend(), "user service started");
    Ok(UserApi::new(core))
}

/// Runs maintenance `interval` after the start and after each round ends, until `shutdown`; a
/// round in progress finishes.
fn spawn_maintenance(core: Arc<UserCore>, interval: std::time::Duration, shutdown: kem_mesh::Shutdown) {
    kem_kit::runtime::periodic::Periodic::resting("user maintenance", interval).spawn(shutdown, move || {
        let core = core.clone();
        async move { core.maintain().await }
    });
}
