//! The ai service (clean/hexagonal: [`api`] → [`app`] → [`domain`] ← [`infra`]): trend analysis
//! and exactly three event recommendations, generated with the Claude Messages API (or the
//! built-in, clearly labelled local stand-in when no API key is configured).
//!
//! - `GetTrends` (owners, through the edge) and `GenerateRecommendations` (mesh, for the event
//!   service) share one model path: a structured prompt asking for JSON only, a strict parser,
//!   one repair attempt, then a clear error — never a half-parsed result.
//! - Results are cached for 24 hours keyed by the SHA-256 of the normalised inputs (Redis in
//!   production, in-process for `kem up`), so identical requests never ask the model twice.
//! - The `ai-event-generation` consumer generates recommendations for event jobs and reports them
//!   with `EventService/ReportJobResult`; a job ledger and the kit's inbox give at-least-once
//!   delivery an exactly-once effect.
//!
//! The crate reads top-down:
//! - [`api`]: the tonic adapter of `kem.ai.v1.AiService` — [`api::convert`] maps protobuf ↔
//!   domain (also for `infra`'s consumer and reporter), [`api::status`] maps errors to statuses;
//! - [`app`]: the use cases and their ports (the language model, the job reporter, the job
//!   ledger: each with two implementations really used);
//! - [`domain`]: pure rules — vocabularies (channels are the kit's), input validation and
//!   hashing, per-channel copy limits, prompts, the strict parser;
//! - [`infra`]: the adapters — the Claude client, the built-in local stand-in
//!   ([`infra::local`]: its data tables, generator and copy writing), the mesh reporter, the
//!   ledger, the consumer, the metrics.
//!
//! Only [`config`] and this file sit at the crate root.
//!
//! Start it with [`start`]; configure it with [`AiConfig`] (see [`config::env`]).
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod infra;

use std::sync::{Arc, LazyLock};

use kem_kit::cache::CacheAside;
use kem_kit::external::{ProviderClient, ProviderConfigError, ProviderMode};
use kem_kit::runtime::ServiceContext;
use kem_kit::store::{Migrations, StoreError};
use kem_proto::kem::ai::v1::ai_service_server::AiServiceServer;

pub use api::AiApi;
pub use config::{AiConfig, AiConfigError};

use app::cache::ResultCache;
use app::generation::ModelPath;
use app::jobs::JobService;
use app::metrics::AiMetrics;
use app::ports::LanguageModel;
use app::recommendations::RecommendationService;
use app::trends::TrendService;
use infra::claude::ClaudeClient;
use infra::local::LocalModel;
use infra::telemetry::AiTelemetry;

/// The ai service's own tables (the job ledger), for PostgreSQL and SQLite.
static MIGRATIONS: LazyLock<Migrations> =
    LazyLock::new(|| Migrations::new(sqlx::migrate!("migrations/postgres"), sqlx::migrate!("migrations/sqlite")));

/// The ai service's migrations (applied by [`start`]; exposed for tools and tests).
pub fn migrations() -> &'static Migrations {
    &MIGRATIONS
}

/// Why the ai service could not start.
#[derive(Debug, thiserror::Error)]
pub enum AiStartError {
    /// Its migrations failed.
    #[error("ai service: migrations failed: {0}")]
    Migrate(#[from] StoreError),
    /// The Claude client settings are unusable.
    #[error("ai service: {0}")]
    Provider(#[from] ProviderConfigError),
}

kem_kit::kem_service! {
    /// The ai service as a role mounts it (`kem serve ai`, `kem up`).
    pub struct Ai = "ai";
    config: AiConfig, AiConfigError;
    start: start => AiServiceServer<AiApi>, AiStartError;
}

/// Starts the ai service on `ctx`: runs its migrations, spawns the `ai-event-generation`
/// consumer and the ledger purge (both stop on `ctx.shutdown`), registers its metrics, and
/// returns the gRPC service to mount.
pub async fn start(ctx: ServiceContext, config: AiConfig) -> Result<AiServiceServer<AiApi>, AiStartError> {
    ctx.store.migrate(&MIGRATIONS).await?;
    let metrics = Arc::new(AiMetrics::default());
    let (model, client): (Arc<dyn LanguageModel>, Option<ProviderClient>) = match &config.claude {
        ProviderMode::Real { config: provider, credentials } => {
            let client = ProviderClient::new(provider.clone())?;
            tracing::info!(provider = %client.name(), model = %config.model, base_url = %provider.base_url,
                timeout = ?provider.timeout, "ai service: recommendations come from Claude");
            (Arc::new(ClaudeClient::new(client.clone(), credentials.clone(), config.model.clone())), Some(client))
        }
        ProviderMode::Local { .. } => {
            tracing::warn!(provider = %config.claude.source_label(),
                "ai service: no Claude API key (KEM_CLAUDE_API_KEY): trends and recommendations come from the \
                 built-in LOCAL stand-in, labelled PROVIDER_KIND_LOCAL — deterministic demo data, not Claude");
            (Arc::new(LocalModel), None)
        }
    };
    let cache = CacheAside::new(ctx.cache.clone());
    let path = Arc::new(ModelPath::new(model.clone(), metrics.clone()));
    let trends = TrendService::new(
        path.clone(),
        ResultCache::new(cache.clone(), "trends", config.cache_ttl),
        config.trends_max_tokens,
    );
    let recommendations = RecommendationService::new(
        trends.clone(),
        path,
        ResultCache::new(cache.clone(), "recommendations", config.cache_ttl),
        config.recommendations_max_tokens,
    );
    infra::telemetry::register(
        &config.metrics,
        AiTelemetry { metrics: metrics.clone(), source: model.source(), provider: client, cache },
    );
    let jobs = Arc::new(JobService::new(
        recommendations.clone(),
        Arc::new(infra::reporter::MeshJobReporter::new(ctx.peers.clone(), config.report_timeout)),
        Arc::new(infra::ledger::StoreJobLedger::new(ctx.store.clone(), ctx.clock.clone())),
        config.jobs,
        metrics,
        ctx.clock.clone(),
    ));
    infra::consumer::spawn(ctx.queue.clone(), jobs, config.consumer.clone(), ctx.shutdown.clone());
    infra::ledger::spawn_purge(ctx.store.clone(), ctx.clock.clone(), config.ledger_retention, ctx.shutdown.clone());
    Ok(AiServiceServer::new(AiApi::new(trends, recommendations, config.request_budget)))
}
