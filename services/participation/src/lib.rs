//! The participation service: participants' entries to published events (one per phone and
//! event), their consents, encrypted personal data, and fair, reproducible winner draws with a
//! public audit.
//!
//! The crate reads top-down:
//! - [`api`]: the tonic adapter of `kem.participation.v1.ParticipationService` (proto ↔ domain,
//!   errors → statuses with `google.rpc` details, a published audit → [`DrawRecord`]);
//! - [`app`]: the use cases (Enter, CloseEntries, ListParticipants, DrawWinners,
//!   DrawWinnersOnSchedule, ListWinners, GetPublicWinners, CountEntries, AnonymizeEntries,
//!   ExportParticipants and ListExports, BlockParticipant, ListBlocks and UnblockParticipant,
//!   ListMarketingRecipients),
//!   page tokens, and the [`ParticipationError`](app::ParticipationError) they fail with;
//! - [`domain`]: pure rules, free of I/O — phone and name validation and masking, the age and
//!   terms a consent must confirm, receipt codes, when an event is open, and the exact draw
//!   procedures with [`verify_draw`];
//! - [`infra`]: the adapters — the tables on PostgreSQL or embedded SQLite (same SQL) with the
//!   kit's transactional outbox and the per-event entry gate that makes EndEvent immediate; the
//!   event facts from the event service over the mesh, cached briefly; AES-256-GCM of names and
//!   phones, keyed phone hashes and key loading; the `analytics-aggregation` facts
//!   (`EntryRecorded`, `DrawCompleted`).
//!
//! A role starts it with [`start`]`(ctx, `[`ParticipationConfig::from_env`]`()?)`.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod infra;

use std::sync::{Arc, LazyLock};

use kem_kit::runtime::ServiceContext;
use kem_kit::store::{Migrations, StoreError};

pub use api::ParticipationApi;
pub use api::convert::record_from_audit;
pub use config::{ParticipationConfig, ParticipationConfigError};
pub use domain::draw::{DrawRecord, VerifyError, verify_draw};
pub use kem_proto::kem::participation::v1::participation_service_server::ParticipationServiceServer;

use crate::app::ParticipationCore;
use crate::infra::sms::Sms;
use crate::infra::sms::local::LocalSms;
use crate::infra::sms::sens::SensSms;
use crate::infra::{KeySource, MeshEvents, PiiKeyError, PiiKeys, Repository, notifier};

/// The participation service's migrations (PostgreSQL and SQLite sets).
pub static MIGRATIONS: LazyLock<Migrations> =
    LazyLock::new(|| Migrations::new(sqlx::migrate!("migrations/postgres"), sqlx::migrate!("migrations/sqlite")));

/// Why the participation service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ParticipationStartError {
    /// The migrations failed.
    #[error("participation service migrations: {0}")]
    Migrate(#[from] StoreError),
    /// The personal-data keys could not be loaded or created.
    #[error("participation service personal-data keys: {0}")]
    Keys(#[from] PiiKeyError),
    /// The SENS client cannot be built from its settings.
    #[error("participation service SMS (SENS): {0}")]
    Sms(#[from] kem_kit::external::ProviderConfigError),
    /// KEM_PARTICIPATION_REQUIRE_SMS is set and no SENS account is configured.
    #[error(
        "KEM_PARTICIPATION_REQUIRE_SMS is set but no SENS account is configured: set KEM_SENS_ACCESS_KEY, \
         KEM_SENS_SECRET_KEY, KEM_SENS_SMS_SERVICE_ID and KEM_SENS_SMS_FROM"
    )]
    SmsRequired,
}

kem_kit::kem_service! {
    /// The participation service as a role mounts it (`kem serve participation`, `kem up`).
    pub struct Participation = "participation";
    config: ParticipationConfig, ParticipationConfigError;
    start: start => ParticipationServiceServer<ParticipationApi>, ParticipationStartError;
}

/// Starts the participation service: migrates its tables, loads the personal-data keys (or
/// creates a development key under `ctx.data_dir`), spawns the outbox relay and the winner
/// notifier (both stop with `ctx.shutdown`) and returns the tonic service to mount.
pub async fn start(
    ctx: ServiceContext,
    config: ParticipationConfig,
) -> Result<ParticipationServiceServer<ParticipationApi>, ParticipationStartError> {
    Ok(start_api(ctx, config).await?.into_service())
}

/// Like [`start`], returning the [`ParticipationApi`] itself (tests call its methods directly).
pub async fn start_api(
    ctx: ServiceContext,
    config: ParticipationConfig,
) -> Result<ParticipationApi, ParticipationStartError> {
    let keys = PiiKeys::load(&config.pii, &ctx.data_dir)?;
    // A development key is announced by the kit's loader itself (`kem_kit::sealing::keys`).
    match &keys.source {
        KeySource::Development { .. } => {}
        KeySource::Environment | KeySource::File(_) if config.pii.phone_hash_key.is_none() => tracing::info!(
            "KEM_PARTICIPATION_PHONE_HASH_KEY is unset: phone hashes use a key derived from the personal-data key; \
             pin it explicitly before rotating that key"
        ),
        KeySource::Environment | KeySource::File(_) => {}
    }
    let key_id = keys.cipher.key_id();
    let sms: Sms = match config.sms.clone() {
        Some(settings) => Arc::new(SensSms::new(settings)?),
        None if config.require_sms => return Err(ParticipationStartError::SmsRequired),
        None => {
            tracing::warn!(
                "no SENS account configured: winner notices and one-time codes go to the LOCAL SMS stand-in, which \
                 sends nothing and logs them (set KEM_SENS_ACCESS_KEY, KEM_SENS_SECRET_KEY, KEM_SENS_SMS_SERVICE_ID \
                 and KEM_SENS_SMS_FROM in production)"
            );
            Arc::new(LocalSms)
        }
    };
    let sms_provider = sms.info().name;
    ctx.store.migrate(&MIGRATIONS).await?;
    let waker = ctx.spawn_outbox_relay();
    let repo = Repository::new(ctx.store.clone(), Some(waker));
    let events = MeshEvents::new(ctx.peers.clone(), ctx.cache.clone(), config.event_cache_ttl);
    let core = Arc::new(ParticipationCore::new(repo, events, Arc::new(keys), ctx.clock.clone(), sms, config.notifier));
    ctx.shutdown.spawn(notifier::run(core.clone(), config.notifier.interval, ctx.shutdown.clone()));
    tracing::info!(
        service = %ctx.service, store = %ctx.store.target(), cache = ctx.cache.backend(),
        pii_key_id = %key_id, event_cache_ttl = ?config.event_cache_ttl, sms = %sms_provider,
        "participation service started"
    );
    Ok(ParticipationApi::new(core))
}
