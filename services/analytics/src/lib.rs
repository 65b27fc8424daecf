//! The analytics service (clean/hexagonal): aggregates per event, channel and hour —
//! participants, delivery outcomes, views and reach, cost per entry and ROI — and the owner
//! dashboard.
//!
//! The crate reads top-down:
//! - [`api`]: the tonic adapter of `kem.analytics.v1.AnalyticsService` (proto ↔ domain, errors →
//!   `google.rpc` statuses);
//! - [`app`]: the use cases — facts applied exactly once through the kit's idempotent inbox,
//!   RecordChannelMetrics (idempotent by report id, latest observation wins), and owner-facing
//!   answers cached for 5 minutes with generation-based invalidation on new data;
//! - [`domain`]: pure rules — facts, validation, cost per entry, ROI, views;
//! - [`infra`]: the kit-backed adapters — the aggregate tables on PostgreSQL or embedded SQLite
//!   (same SQL), the answer cache, the `analytics-aggregation` consumer
//!   (`kem.messaging.v1.AnalyticsEvent`) and the maintenance task.
//!
//! # Where the numbers come from
//!
//! Every figure is derived from the facts on the queue and from RecordChannelMetrics; analytics
//! calls no other service. The owner of an event is learned from `AnalyticsEvent.owner_id` (the
//! event service's facts are authoritative), title, budget, channels and period from the latest
//! `EventStateChanged`, participants from `EntryRecorded`, deliveries from `ChannelOutcome`, and
//! views and reach from RecordChannelMetrics (falling back to what outcomes reported). The value of
//! an entry (for ROI) comes from [`AnalyticsConfig::values`]: the facts carry no business
//! category, so the default value applies until they do.
//!
//! Only [`config`] and this file sit at the crate root.
//!
//! A role mounts it as [`Analytics`] (a [`KemService`](kem_kit::runtime::KemService)), which is
//! [`start`]`(ctx, `[`AnalyticsConfig::from_env`]`()?)`: it migrates its tables, spawns the
//! `analytics-aggregation` consumer and the purge of old idempotency records on `ctx.shutdown`,
//! and returns the tonic service.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod infra;

use std::sync::{Arc, LazyLock};

use kem_kit::runtime::ServiceContext;
use kem_kit::store::{Migrations, StoreError};

pub use api::AnalyticsApi;
pub use config::{AnalyticsConfig, AnalyticsConfigError};
pub use infra::AggregationHandler;
pub use kem_proto::kem::analytics::v1::analytics_service_server::AnalyticsServiceServer;

use app::AnalyticsCore;
use infra::{Repository, ViewCache, consumer, maintenance};

static MIGRATIONS: LazyLock<Migrations> =
    LazyLock::new(|| Migrations::new(sqlx::migrate!("migrations/postgres"), sqlx::migrate!("migrations/sqlite")));

/// The service's schema (PostgreSQL and SQLite), applied by [`start`].
pub fn migrations() -> &'static Migrations {
    &MIGRATIONS
}

/// Why the analytics service could not start.
#[derive(Debug, thiserror::Error)]
pub enum AnalyticsStartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] AnalyticsConfigError),
    /// The schema could not be brought up to date.
    #[error("analytics service migrations failed: {0}")]
    Migrate(#[source] StoreError),
}

kem_kit::kem_service! {
    /// The analytics service as a role mounts it (`kem serve analytics`, `kem up`).
    pub struct Analytics = "analytics";
    config: AnalyticsConfig, AnalyticsConfigError;
    start: start => AnalyticsServiceServer<AnalyticsApi>, AnalyticsStartError;
}

/// Starts the analytics service on `ctx`: migrates its database, spawns the
/// `analytics-aggregation` consumer and the maintenance task (both stop on `ctx.shutdown`), and
/// returns the gRPC service to mount.
pub async fn start(
    ctx: ServiceContext,
    config: AnalyticsConfig,
) -> Result<AnalyticsServiceServer<AnalyticsApi>, AnalyticsStartError> {
    Ok(start_api(ctx, config).await?.into_service())
}

/// Like [`start`], returning the adapter itself (it implements `AnalyticsService`), for tests and
/// in-process callers.
pub async fn start_api(ctx: ServiceContext, config: AnalyticsConfig) -> Result<AnalyticsApi, AnalyticsStartError> {
    config.validate()?;
    ctx.store.migrate(migrations()).await.map_err(AnalyticsStartError::Migrate)?;
    let cache = ViewCache::new(ctx.cache.clone(), config.cache_ttl);
    let core = Arc::new(AnalyticsCore::new(
        Repository::new(ctx.store.clone()),
        cache,
        config.clone(),
        ctx.service.clone(),
        ctx.clock.clone(),
    ));
    let api = AnalyticsApi::new(core.clone());
    consumer::spawn(&ctx, core.clone(), config.consumer_concurrency);
    maintenance::spawn(core, config.maintenance_interval, ctx.shutdown.clone());

    tracing::info!(
        service = %ctx.service,
        database = ctx.store.target(),
        cache = ctx.cache.backend(),
        cache_ttl = ?config.cache_ttl,
        value_per_participant_krw = config.values.default_krw,
        "analytics service started"
    );
    Ok(api)
}
