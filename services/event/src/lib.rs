//! The event service (clean/hexagonal): owners' marketing events, their lifecycle
//! DRAFT → RECOMMENDED → CONTENT_READY → PUBLISHED → ENDED, and the asynchronous jobs (AI
//! recommendations, image generation) started for them.
//!
//! The crate reads top-down:
//! - [`api`]: the tonic adapter of `kem.event.v1.EventService` — [`api::convert`] maps protobuf
//!   ↔ domain (also for `infra`'s queue messages), [`api::status`] maps errors to statuses;
//! - [`app`]: the use cases, one file per group (edit, lifecycle, jobs, queries), calling the
//!   adapters directly and reading "now" from the kit's injected clock;
//! - [`domain`]: pure rules — lifecycle table, validation, jobs, the facts sent on queues;
//! - [`infra`]: the kit-backed adapters — SQL on PostgreSQL or SQLite with the transactional
//!   outbox, Redis/in-process cache, `kem.messaging.v1` encoding, store profiles from the user
//!   service, participation's entry gate and draws, the job-timeout sweeper and the scheduler.
//!
//! Only [`config`] and this file sit at the crate root.
//!
//! Start it with [`start`]: it applies the migrations, starts the outbox relay, the sweeper and the
//! scheduler on the context's shutdown signal, and returns the service to mount.
//!
//! On its own, the scheduler ends every PUBLISHED event at the end of its period (through the
//! EndEvent use case), draws the winners of auto-draw events `KEM_EVENT_AUTO_DRAW_DELAY` after
//! they ended, and has participation anonymize the participants' data `retention_days` after the
//! draw (or the end when nothing was drawn), recording `anonymize_time`; replicas share the work
//! through leases on the events.
//!
//! Messaging: requests go out through the outbox on `ai-event-generation`
//! (`kem.messaging.v1.GenerateRecommendations`), `content-generation` (`GenerateImages`),
//! `distribution-jobs` (`DistributionJob`) and `analytics-aggregation` (`AnalyticsEvent`, one per
//! status change). Workers reply over the mesh with the internal `ReportJobResult` method.
//!
//! Mesh peers it calls: user (`GetOwner`: best effort for work requests, required by PublishEvent
//! for the store name the terms name) and participation (`CloseEntries`, which EndEvent needs
//! before it answers; `DrawWinnersOnSchedule` for auto draws; `CountEntries` for the public
//! view's DRAWN state and the retention's start; `AnonymizeEntries` at the end of the retention).
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod infra;

use std::sync::{Arc, LazyLock};

use kem_kit::runtime::ServiceContext;
use kem_kit::store::{Migrations, StoreError};

pub use api::EventApi;
pub use config::{EventConfig, EventConfigError};
pub use kem_proto::kem::event::v1::event_service_server::EventServiceServer;

use crate::app::{AppSettings, EventApp};
use crate::infra::{
    CachedEvents, MeshConnectionCheck, MeshEntryGate, MeshStoreDirectory, SqlEventRepository, scheduler, sweeper,
};

static MIGRATIONS: LazyLock<Migrations> =
    LazyLock::new(|| Migrations::new(sqlx::migrate!("migrations/postgres"), sqlx::migrate!("migrations/sqlite")));

/// The service's schema (PostgreSQL and SQLite), applied by [`start`].
pub fn migrations() -> &'static Migrations {
    &MIGRATIONS
}

/// The event service's settings from the `KEM_EVENT_*` environment variables (see [`config`]);
/// the same as [`EventConfig::from_env`].
pub fn from_env() -> Result<EventConfig, EventConfigError> {
    EventConfig::from_env()
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum EventStartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] EventConfigError),
    /// The schema could not be brought up to date.
    #[error("event service migrations failed: {0}")]
    Migrate(#[source] StoreError),
}

kem_kit::kem_service! {
    /// The event service as a role mounts it (`kem serve event`, `kem up`).
    pub struct Event = "event";
    config: EventConfig, EventConfigError;
    start: start => EventServiceServer<EventApi>, EventStartError;
}

/// Starts the event service on `ctx`: migrates its database, spawns the outbox relay, the
/// job-timeout sweeper and the scheduler (all stop on `ctx.shutdown`), and returns the gRPC
/// service to mount.
pub async fn start(ctx: ServiceContext, config: EventConfig) -> Result<EventServiceServer<EventApi>, EventStartError> {
    Ok(EventServiceServer::new(start_api(ctx, config).await?))
}

/// Like [`start`], returning the adapter itself (it implements `EventService`), for in-process
/// callers and tests that call the trait methods directly.
pub async fn start_api(ctx: ServiceContext, config: EventConfig) -> Result<EventApi, EventStartError> {
    config.validate()?;
    ctx.store.migrate(migrations()).await.map_err(EventStartError::Migrate)?;
    let waker = ctx.spawn_outbox_relay();
    let repository = SqlEventRepository::new(ctx.store.clone(), waker);
    let cache = CachedEvents::new(ctx.cache.clone(), config.cache_ttl);
    let settings = AppSettings {
        job_timeout: config.job_timeout,
        job_poll_interval: config.job_poll_interval,
        default_page_size: config.default_page_size,
        max_page_size: config.max_page_size,
        public_base_url: config.public_base_url.clone(),
        auto_draw_delay: config.auto_draw_delay,
    };
    let stores = MeshStoreDirectory::new(ctx.peers.clone(), ctx.cache.clone());
    let entries = MeshEntryGate::new(ctx.peers.clone());
    let connections = MeshConnectionCheck::new(ctx.peers.clone());
    let app = Arc::new(EventApp::new(repository, cache, stores, entries, connections, ctx.clock.clone(), settings));
    ctx.shutdown.spawn(sweeper::run(app.clone(), config.job_sweep_interval, ctx.shutdown.clone()));
    ctx.shutdown.spawn(scheduler::run(app.clone(), config.scheduler_interval, ctx.shutdown.clone()));
    tracing::info!(
        service = %ctx.service,
        database = ctx.store.target(),
        cache = ctx.cache.backend(),
        job_timeout = ?config.job_timeout,
        "event service started"
    );
    Ok(EventApi::new(app))
}
