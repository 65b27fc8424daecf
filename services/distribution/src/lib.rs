//! The distribution service (layered: handler → service → repository, with `channels/` holding
//! one client per provider): delivers a published event to each of its channels — 우리동네TV,
//! 링고비즈 and 지니TV through the KT partner contract, Instagram through the Graph API content
//! publishing flow, Naver as a ready-to-post article (or a Naver Cafe post), Kakao Channel through
//! NAVER Cloud SENS — and reports each outcome to analytics.
//!
//! - [`handler`]: the gRPC adapter of `kem.distribution.v1.DistributionService` (GetStatus, Retry);
//! - [`service`]: the use cases, the `distribution-jobs` consumer (idempotent inbox), the per-channel
//!   scheduler, owner profiles over the mesh, and the queue messages;
//! - [`repository`]: the tables on PostgreSQL or embedded SQLite (same SQL), every state change
//!   guarded so a PUBLISHED delivery is never sent again;
//! - [`model`]: the rules, free of I/O (state machine, retries, keys, text per channel);
//! - [`channels`]: the provider clients and their built-in local stand-ins;
//! - [`partner_server`]: the partner side of `partner/v1`, run in-process by `kem up`.
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
//! A role starts it with [`start`]`(ctx, `[`DistributionConfig::from_env`]`()?)`.
#![forbid(unsafe_code)]

pub mod channels;
pub mod config;
pub mod handler;
pub mod model;
pub mod partner_server;
pub mod repository;
pub mod service;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use kem_kit::Secret;
use kem_kit::external::{ProviderConfigError, ProviderMode};
use kem_kit::outbox::{Consumer, ConsumerOptions, Inbox};
use kem_kit::queue::{ReceivedMessage, names};
use kem_kit::runtime::ServiceContext;
use kem_kit::store::{Migrations, StoreError};

pub use config::{ChannelPolicy, DistributionConfig, DistributionConfigError};
pub use handler::DistributionApi;
pub use kem_proto::kem::distribution::v1::distribution_service_server::DistributionServiceServer;

use channels::ChannelClient;
use channels::instagram::{GraphInstagram, LocalInstagram};
use channels::kakao::{LocalKakao, SensKakao};
use channels::naver::{AssistedNaver, CafeNaver};
use channels::partner::PartnerClient;
use model::Channel;
use partner_server::{PartnerServer, PartnerServerConfig};
use repository::Repository;
use service::events::MeshPublications;
use service::owners::MeshOwners;
use service::{DispatchSettings, Dispatcher, DistributionCore, Lane};

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
    let owners = Arc::new(MeshOwners::new(
        ctx.peers.clone(),
        ctx.cache.clone(),
        config.owner_cache_ttl,
        config.owner_lookup_timeout,
    ));
    let settings = DispatchSettings {
        public_base_url: config.public_base_url.clone(),
        scan_interval: config.scan_interval,
        lease_margin: config.lease_margin,
    };
    let dispatcher = Dispatcher::new(repo.clone(), lanes, owners, waker, settings);
    dispatcher.spawn(ctx.shutdown.clone(), config.drain_timeout);
    let publications = MeshPublications::new(ctx.peers.clone());
    let core = Arc::new(DistributionCore::new(repo, dispatcher, publications, ctx.service.clone()));
    spawn_consumer(&ctx, core.clone(), config.consumer_concurrency);
    spawn_inbox_purge(&ctx);
    for channel in Channel::ALL {
        if let Some(client) = core.dispatcher().client(channel) {
            tracing::info!(channel = %channel, provider = %client.provider().name, "distribution channel ready");
        }
    }
    tracing::info!(service = %ctx.service, store = %ctx.store.target(), cache = ctx.cache.backend(), "distribution service started");
    Ok(DistributionApi::new(core))
}

fn spawn_consumer(ctx: &ServiceContext, core: Arc<DistributionCore>, concurrency: usize) {
    let handler = move |message: ReceivedMessage| {
        let core = core.clone();
        async move { core.accept_job(&message).await.map(drop) }
    };
    let mut options = ConsumerOptions::new(names::DISTRIBUTION_JOBS);
    options.name = ctx.service.clone();
    options.concurrency = concurrency.max(1);
    ctx.shutdown.spawn(Consumer::run(ctx.queue.clone(), handler, options, ctx.shutdown.clone()));
}

/// How long processed job ids are remembered: far beyond any redelivery (Service Bus dedupe
/// window, outbox lease, consumer retries), short enough to keep the inbox small.
const INBOX_RETENTION: Duration = Duration::from_secs(7 * 24 * 3_600);

/// Forgets old inbox records once an hour.
fn spawn_inbox_purge(ctx: &ServiceContext) {
    let (store, shutdown) = (ctx.store.clone(), ctx.shutdown.clone());
    ctx.shutdown.spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3_600)) => {}
                _ = shutdown.wait() => return,
            }
            match Inbox::purge(&store, INBOX_RETENTION).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "old inbox records purged"),
                Err(error) => tracing::warn!(%error, "cannot purge old inbox records; trying again in an hour"),
            }
        }
    });
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
