//! The distribution service (clean/hexagonal): delivers a published event to each of its
//! channels — 우리동네TV, 링고비즈 and 지니TV through the KT partner contract, Instagram through the
//! Graph API content publishing flow, Naver as a ready-to-post article (or a Naver Cafe post),
//! Kakao Channel through NAVER Cloud SENS — and reports each outcome to analytics.
//!
//! The crate reads top-down:
//! - [`api`]: the tonic adapter of `kem.distribution.v1.DistributionService` (GetStatus, Retry):
//!   proto ↔ domain, errors → `google.rpc` statuses;
//! - [`app`]: the use cases — accept a job exactly once (the inbox), report and re-queue
//!   deliveries, and advance one held delivery by a step;
//! - [`domain`]: pure rules — channels (the kit's vocabulary, [`kem_kit::channel`]), the delivery
//!   state machine, retries, keys, text per channel;
//! - [`infra`]: every adapter — the tables on PostgreSQL or embedded SQLite (same SQL), the
//!   provider clients, the per-channel scheduler, the `distribution-jobs` consumer, the queue
//!   messages, the mesh clients of user and event, and the local stand-ins under
//!   [`infra::local`] (among them the partner side of `partner/v1`, run in-process by `kem up`).
//!
//! Messaging: consumes `distribution-jobs` (`kem.messaging.v1.DistributionJob`, message id
//! `dist:<event_id>`); produces `kem.messaging.v1.AnalyticsEvent` with a `ChannelOutcome` on
//! `analytics-aggregation` through the outbox, in the same transaction as the delivery's
//! PUBLISHED/FAILED transition (message id `dist:<event_id>:<channel>:<seq>`). Reach reported by a
//! channel travels in that `ChannelOutcome` (no RecordChannelMetrics call).
//!
//! Mesh peers it calls: user (`GetOwner`: store profiles for the channels) and event
//! (`GetEventForDistribution`: a publication whose job has not arrived yet, so GetStatus answers
//! PENDING from the moment PublishEvent answers).
//!
//! Only [`config`] and this file sit at the crate root.
//!
//! A role mounts it as [`Distribution`] (a [`KemService`](kem_kit::runtime::KemService)), which
//! is [`start`]`(ctx, `[`DistributionConfig::from_env`]`()?)`.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod config;
pub mod domain;
pub mod infra;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use kem_kit::Secret;
use kem_kit::external::{ProviderConfigError, ProviderMode};
use kem_kit::runtime::ServiceContext;
use kem_kit::store::{Migrations, StoreError};

pub use api::DistributionApi;
pub use config::{ChannelPolicy, DistributionConfig, DistributionConfigError};
pub use domain::Channel;
pub use infra::local::PartnerServerConfig;
pub use kem_proto::kem::distribution::v1::distribution_service_server::DistributionServiceServer;

use app::{DeliveryWorker, DistributionCore};
use infra::channels::instagram::GraphInstagram;
use infra::channels::kakao::SensKakao;
use infra::channels::naver::{AssistedNaver, CafeNaver};
use infra::channels::partner::PartnerClient;
use infra::channels::{self, ChannelClient};
use infra::local::{LocalInstagram, LocalKakao, PartnerServer};
use infra::{DispatchSettings, Dispatcher, Lane, MeshOwners, MeshPublications, Repository, consumer};

/// The service's migrations (PostgreSQL and SQLite sets).
pub static MIGRATIONS: LazyLock<Migrations> =
    LazyLock::new(|| Migrations::new(sqlx::migrate!("migrations/postgres"), sqlx::migrate!("migrations/sqlite")));

/// Why the distribution service could not start.
#[derive(Debug, thiserror::Error)]
pub enum DistributionStartError {
    /// The migrations failed.
    #[error("distribution service migrations: {0}")]
    Migrate(#[from] StoreError),
    /// A provider client's settings are invalid.
    #[error("distribution service provider client: {0}")]
    Provider(#[from] ProviderConfigError),
    /// The local partner server could not start.
    #[error("distribution service: cannot start the local partner server: {0}")]
    LocalPartner(#[from] std::io::Error),
}

kem_kit::kem_service! {
    /// The distribution service as a role mounts it (`kem serve distribution`, `kem up`).
    pub struct Distribution = "distribution";
    config: DistributionConfig, DistributionConfigError;
    start: start => DistributionServiceServer<DistributionApi>, DistributionStartError;
}

/// Starts the distribution service: migrates its tables, starts the outbox relay, the
/// `distribution-jobs` consumer, the per-channel scheduler (and, for partner channels without
/// credentials, the local partner server), all stopping with `ctx.shutdown`, and returns the
/// tonic service to mount.
pub async fn start(
    ctx: ServiceContext,
    config: DistributionConfig,
) -> Result<DistributionServiceServer<DistributionApi>, DistributionStartError> {
    Ok(start_api(ctx, config).await?.into_service())
}

/// Like [`start`], returning the [`DistributionApi`] itself (tests call its methods directly).
pub async fn start_api(
    ctx: ServiceContext,
    config: DistributionConfig,
) -> Result<DistributionApi, DistributionStartError> {
    ctx.store.migrate(&MIGRATIONS).await?;
    let repo = Repository::new(ctx.store.clone());
    let waker = ctx.spawn_outbox_relay();
    let lanes = channel_clients(&config, &ctx)
        .await?
        .into_iter()
        .map(|client| {
            let policy = config.policy(client.channel());
            Lane::new(client, policy)
        })
        .collect();
    let owners =
        MeshOwners::new(ctx.peers.clone(), ctx.cache.clone(), config.owner_cache_ttl, config.owner_lookup_timeout);
    let worker = DeliveryWorker::new(repo.clone(), owners, waker, config.public_base_url.clone(), ctx.clock.clone());
    let settings = DispatchSettings { scan_interval: config.scan_interval, lease_margin: config.lease_margin };
    let dispatcher = Dispatcher::new(repo.clone(), lanes, worker, settings, ctx.clock.clone());
    dispatcher.spawn(ctx.shutdown.clone(), config.drain_timeout);
    let publications = MeshPublications::new(ctx.peers.clone());
    let core = Arc::new(DistributionCore::new(repo, dispatcher, publications, ctx.service.clone(), ctx.clock.clone()));
    consumer::spawn(&ctx, core.clone(), config.consumer_concurrency);
    consumer::spawn_inbox_purge(&ctx);
    for channel in Channel::ALL {
        if let Some(client) = core.dispatcher().client(channel) {
            tracing::info!(channel = %channel, provider = %client.provider().name, "distribution channel ready");
        }
    }
    tracing::info!(service = %ctx.service, store = %ctx.store.target(), cache = ctx.cache.backend(), "distribution service started");
    Ok(DistributionApi::new(core))
}

/// One client per channel, real or local as configured. Partner channels without credentials
/// share one in-process local partner server.
async fn channel_clients(
    config: &DistributionConfig,
    ctx: &ServiceContext,
) -> Result<Vec<Arc<dyn ChannelClient>>, DistributionStartError> {
    let mut clients: Vec<Arc<dyn ChannelClient>> = Vec::new();
    clients.extend(partner_clients(config, ctx).await?);
    clients.push(match &config.instagram.mode {
        ProviderMode::Real { config: provider, credentials } => {
            Arc::new(GraphInstagram::new(provider.clone(), credentials.clone(), config.instagram.settings.clone())?)
        }
        ProviderMode::Local { .. } => Arc::new(LocalInstagram),
    });
    clients.push(match &config.naver_cafe {
        Some(cafe) => Arc::new(CafeNaver::new(cafe.provider.clone(), cafe.access_token.clone(), cafe.cafe.clone())?),
        None => {
            tracing::info!(
                "no Naver Cafe configured: the Naver channel prepares ready-to-post articles for owner-assisted \
                 publishing (Naver has no blog write API)"
            );
            Arc::new(AssistedNaver)
        }
    });
    clients.push(match &config.kakao.mode {
        ProviderMode::Real { config: provider, credentials } => {
            Arc::new(SensKakao::new(provider.clone(), credentials.clone(), config.kakao.settings.clone())?)
        }
        ProviderMode::Local { .. } => Arc::new(LocalKakao),
    });
    Ok(clients)
}

async fn partner_clients(
    config: &DistributionConfig,
    ctx: &ServiceContext,
) -> Result<Vec<Arc<dyn ChannelClient>>, DistributionStartError> {
    let local: BTreeMap<Channel, Secret> = config
        .partners
        .iter()
        .filter(|(_, p)| p.mode.is_local())
        .map(|(c, _)| (*c, Secret::new(format!("local-{:032x}", rand::random::<u128>()))))
        .collect();
    let server = if local.is_empty() {
        None
    } else {
        let mut server_config: PartnerServerConfig = config.local_partner.clone();
        server_config.clients.extend(local.iter().map(|(c, secret)| (config::local_client_id(*c), secret.clone())));
        Some(PartnerServer::start(server_config, ctx.shutdown.clone()).await?)
    };
    let mut clients: Vec<Arc<dyn ChannelClient>> = Vec::new();
    for (channel, partner) in &config.partners {
        let client = match (&partner.mode, &server, local.get(channel)) {
            (ProviderMode::Real { config: provider, credentials }, _, _) => {
                PartnerClient::new(*channel, provider.clone(), partner.client_id.clone(), credentials.clone(), false)?
            }
            (ProviderMode::Local { .. }, Some(server), Some(secret)) => {
                let provider = channels::partner::provider_config(*channel, server.base_url());
                PartnerClient::new(*channel, provider, config::local_client_id(*channel), secret.clone(), true)?
            }
            (ProviderMode::Local { .. }, _, _) => continue,
        };
        clients.push(Arc::new(client));
    }
    Ok(clients)
}
