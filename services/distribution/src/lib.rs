//! The distribution service (clean/hexagonal): delivers a published event to each of its
//! channels — 우리동네TV, 링고비즈 and 지니TV through the KT partner contract, Instagram through the
//! Graph API content publishing flow, Naver as a ready-to-post article (or a Naver Cafe post),
//! Kakao Channel through NAVER Cloud SENS — and reports each outcome to analytics.
//!
//! The crate reads top-down:
//! - [`api`]: the tonic adapter of `kem.distribution.v1.DistributionService` (GetStatus, Retry,
//!   the channel connections): proto ↔ domain, errors → `google.rpc` statuses;
//! - [`app`]: the use cases — accept a job exactly once (the inbox), report and re-queue
//!   deliveries, advance one held delivery by a step, and the owners' channel connections
//!   (Instagram Login, Naver Login, the owner's store account at a KT partner through the
//!   per-store authorization of `partner/v1`, the owner's Kakao Talk Channel as a SENS sender profile:
//!   connect, list, remove, check, refresh / re-check);
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
//! Mesh peers it calls: user (`GetOwner`: store profiles for the channels), event
//! (`GetEventForDistribution`: a publication whose job has not arrived yet, so GetStatus answers
//! PENDING from the moment PublishEvent answers) and participation (`ListMarketingRecipients`:
//! the people a Kakao message goes to).
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
use kem_kit::runtime::periodic::Periodic;
use kem_kit::sealing::keys::{self, KeyError, KeyNames};
use kem_kit::store::{Migrations, StoreError};

pub use api::DistributionApi;
pub use config::{ChannelPolicy, DistributionConfig, DistributionConfigError, PartnerConfig};
pub use domain::Channel;
pub use infra::local::PartnerServerConfig;
pub use kem_proto::kem::distribution::v1::distribution_service_server::DistributionServiceServer;

use app::connections::{Logins, Need};
use app::{Connections, DeliveryWorker, DistributionCore};
use domain::{LoginProvider, ProviderLabel};
use infra::channels::instagram::GraphInstagram;
use infra::channels::kakao::SensKakao;
use infra::channels::naver::{AssistedNaver, CafeNaver};
use infra::channels::partner::PartnerClient;
use infra::channels::{self, ChannelClient};
use infra::connections::ConnectionStore;
use infra::connections::instagram::{InstagramApp, InstagramLogin};
use infra::connections::kakao::KakaoSenders;
use infra::connections::naver::{NaverApp, NaverLogin};
use infra::connections::partner::{PartnerApp, PartnerLogin};
use infra::kakao_sends::KakaoSends;
use infra::local::{LocalInstagram, LocalKakao, PartnerServer};
use infra::{DispatchSettings, Dispatcher, Lane, MeshOwners, MeshPublications, MeshRecipients, Repository, consumer};

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
    /// The key the owners' tokens are sealed with cannot be had.
    #[error("distribution service: {0}")]
    TokenKey(#[from] KeyError),
    /// The media link signing key cannot be loaded.
    #[error("distribution service: {0}")]
    MediaKey(#[from] kem_kit::media::MediaKeyError),
}

/// The key of the owners' tokens, in errors and logs.
pub const TOKEN_KEY_NAMES: KeyNames = KeyNames {
    key_var: config::env::TOKEN_KEY,
    file_var: "KEM_DISTRIBUTION_TOKEN_KEY_FILE",
    previous_var: config::env::TOKEN_PREVIOUS_KEYS,
    dev_file: "distribution-token.key",
    what: "channel token encryption key",
};

/// Scopes the key ids of sealed tokens (never changes, or stored tokens no longer open).
const TOKEN_KEY_LABEL: &[u8] = b"kem.distribution.token.key-id\0";

/// The path of the OAuth callback on the public edge.
pub const OAUTH_CALLBACK_PATH: &str = "/api/v1/channels/oauth/callback";

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
    let clients = channel_clients(&config, &ctx).await?;
    let connections = Arc::new(connections(&config, &ctx, &clients)?);
    spawn_connection_jobs(&config, &ctx, &connections);
    spawn_insights_job(&config, &ctx, &repo, &connections)?;
    let lanes = clients
        .into_iter()
        .map(|client| {
            let policy = config.policy(client.channel());
            Lane::new(client, policy)
        })
        .collect();
    let owners =
        MeshOwners::new(ctx.peers.clone(), ctx.cache.clone(), config.owner_cache_ttl, config.owner_lookup_timeout);
    let worker = DeliveryWorker::new(
        repo.clone(),
        owners,
        connections.clone(),
        waker,
        config.public_base_url.clone(),
        kem_kit::media::MediaLinks::new(
            &config.public_base_url,
            kem_kit::media::load(&config.media_keys, &ctx.data_dir)?,
        ),
        ctx.clock.clone(),
    );
    let settings = DispatchSettings { scan_interval: config.scan_interval, lease_margin: config.lease_margin };
    let dispatcher = Dispatcher::new(repo.clone(), lanes, worker, settings, ctx.clock.clone());
    dispatcher.spawn(ctx.shutdown.clone(), config.drain_timeout);
    let publications = MeshPublications::new(ctx.peers.clone());
    let core = Arc::new(DistributionCore::new(
        repo,
        dispatcher,
        publications,
        connections,
        ctx.service.clone(),
        ctx.clock.clone(),
    ));
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
        ProviderMode::Real { config: provider, .. } => {
            Arc::new(GraphInstagram::new(provider.clone(), config.instagram.settings.clone())?)
        }
        ProviderMode::Local { .. } => Arc::new(LocalInstagram),
    });
    clients.push(match &config.naver {
        Some(naver) => Arc::new(CafeNaver::new(naver.api.clone())?),
        None => {
            tracing::info!(
                "no Naver Cafe configured: the Naver channel prepares ready-to-post articles for owner-assisted \
                 publishing (Naver has no blog write API)"
            );
            Arc::new(AssistedNaver)
        }
    });
    clients.push(match &config.kakao.mode {
        ProviderMode::Real { config: provider, credentials } => Arc::new(SensKakao::new(
            provider.clone(),
            credentials.clone(),
            config.kakao.settings.clone(),
            MeshRecipients::new(ctx.peers.clone(), config.recipient_lookup_timeout),
            KakaoSends::new(ctx.store.clone()),
        )?),
        ProviderMode::Local { .. } => Arc::new(LocalKakao),
    });
    Ok(clients)
}

/// The channel connections: the token keyring, the login clients of the channels whose real
/// provider publishes through the owner's account, and what each channel needs.
fn connections(
    config: &DistributionConfig,
    ctx: &ServiceContext,
    clients: &[Arc<dyn ChannelClient>],
) -> Result<Connections, DistributionStartError> {
    let loaded = keys::load(&config.connections.token_keys, &TOKEN_KEY_NAMES, &ctx.data_dir)?;
    let keyring = Arc::new(loaded.keyring(TOKEN_KEY_LABEL));
    let key_id = keyring.current_key_id();
    let store = ConnectionStore::new(ctx.store.clone(), keyring);
    let redirect_uri = format!("{}{OAUTH_CALLBACK_PATH}", config.public_base_url.trim_end_matches('/'));
    let mut logins = Logins::default();
    if let ProviderMode::Real { config: graph, credentials } = &config.instagram.mode {
        let app = InstagramApp {
            app_id: config.instagram.app_id.clone(),
            app_secret: credentials.clone(),
            authorize_url: config.instagram.authorize_url.clone(),
            api_version: config.instagram.settings.api_version.clone(),
            scopes: config.instagram.scopes.clone(),
            redirect_uri: redirect_uri.clone(),
        };
        let mut oauth = infra::connections::instagram::provider_config(config.instagram.oauth_url.clone());
        oauth.timeout = graph.timeout.min(oauth.timeout);
        oauth.connect_timeout = graph.connect_timeout;
        oauth.backoff = graph.backoff;
        oauth.deadline = oauth.deadline.min(graph.deadline.max(oauth.timeout));
        let mut graph = graph.clone();
        graph.name = infra::connections::instagram::PROVIDER.to_owned() + "-graph";
        logins.instagram = Some(InstagramLogin::new(app, oauth, graph)?);
    }
    if let Some(naver) = &config.naver {
        let app = NaverApp {
            client_id: naver.client_id.clone(),
            client_secret: naver.client_secret.clone(),
            auth_url: naver.auth.base_url.clone(),
            redirect_uri: redirect_uri.clone(),
        };
        let mut api = naver.api.clone();
        api.name = infra::connections::naver::PROVIDER.to_owned() + "-api";
        logins.naver = Some(NaverLogin::new(app, naver.auth.clone(), api)?);
    }
    if let ProviderMode::Real { config: sens, credentials } = &config.kakao.mode {
        let mut list = sens.clone();
        list.name = infra::channels::kakao::PROVIDER.to_owned() + "-channels";
        // A read: safe to repeat after a timeout, unlike a send.
        logins.kakao = Some(KakaoSenders::new(
            list,
            credentials.clone(),
            config.kakao.settings.access_key.clone(),
            config.kakao.settings.service_id.clone(),
        )?);
    }
    for channel in &config.partner_store_accounts {
        let Some(PartnerConfig { mode: ProviderMode::Real { config: provider, credentials }, client_id }) =
            config.partners.get(channel)
        else {
            continue;
        };
        let app = PartnerApp {
            channel: *channel,
            client_id: client_id.clone(),
            client_secret: credentials.clone(),
            base_url: provider.base_url.clone(),
            redirect_uri: redirect_uri.clone(),
        };
        let mut login = provider.clone();
        login.name = format!("{}-login", provider.name);
        logins.partners.insert(*channel, PartnerLogin::new(app, login)?);
    }
    let stand_in =
        |name: &str| format!("{name} is on its local stand-in (kem up): posts are simulated, so no account is needed");
    let mut needs = BTreeMap::new();
    for channel in Channel::ALL {
        let need = match channel {
            Channel::Instagram if logins.instagram.is_some() => Need::Required(LoginProvider::Instagram),
            Channel::Instagram => Need::NotNeeded(stand_in("Instagram")),
            Channel::NaverBlog if logins.naver.is_some() => Need::Optional(LoginProvider::Naver),
            Channel::NaverBlog => Need::NotNeeded(
                "owner-assisted: each article is prepared for you to post on Naver Blog yourself (Naver has no blog \
                 write API), and cafe posting through Naver Login is not configured on this platform"
                    .to_owned(),
            ),
            Channel::KakaoChannel if logins.kakao.is_some() => Need::Required(LoginProvider::Kakao),
            Channel::KakaoChannel => Need::NotNeeded(stand_in("Kakao Channel")),
            partner if logins.partners.contains_key(&partner) => Need::Required(LoginProvider::Partner(partner)),
            partner => match config.partners.get(&partner) {
                Some(p) if !p.mode.is_local() => Need::NotNeeded(format!(
                    "published through the platform's KT partner account for {}; no account of yours is needed",
                    channels::channel_name(partner)
                )),
                _ => Need::NotNeeded(stand_in(channels::channel_name(partner))),
            },
        };
        needs.insert(channel, need);
    }
    let providers: BTreeMap<Channel, ProviderLabel> = clients.iter().map(|c| (c.channel(), c.provider())).collect();
    tracing::info!(
        %key_id,
        instagram_login = logins.instagram.is_some(),
        naver_login = logins.naver.is_some(),
        kakao_senders = logins.kakao.is_some(),
        partner_store_accounts = logins.partners.len(),
        "channel connections ready"
    );
    Ok(Connections::new(store, logins, needs, providers, ctx.clock.clone()))
}

/// The token refresh job and the purge of expired attempts.
fn spawn_connection_jobs(config: &DistributionConfig, ctx: &ServiceContext, connections: &Arc<Connections>) {
    let refresh = connections.clone();
    Periodic::new("channel token refresh", config.connections.refresh_interval).spawn(
        ctx.shutdown.clone(),
        move || {
            let connections = refresh.clone();
            async move {
                let refreshed = connections.refresh_due().await;
                if refreshed > 0 {
                    tracing::info!(refreshed, "channel tokens refreshed");
                }
            }
        },
    );
    let purge = connections.clone();
    Periodic::resting("connection attempt purge", config.connections.purge_interval).spawn(
        ctx.shutdown.clone(),
        move || {
            let connections = purge.clone();
            async move { connections.purge_attempts().await }
        },
    );
}

/// The insights job, when Instagram or a KT partner is on its real provider (a local stand-in's
/// numbers would be placeholders): each round claims the posts due and reports their numbers to
/// analytics. Rounds run far more often than a post is read, so a new post's numbers are read
/// soon after they are due.
fn spawn_insights_job(
    config: &DistributionConfig,
    ctx: &ServiceContext,
    repo: &Repository,
    connections: &Arc<Connections>,
) -> Result<(), DistributionStartError> {
    let reader = match &config.instagram.mode {
        ProviderMode::Real { config: provider, .. } => Some(infra::insights::InstagramInsights::new(
            infra::insights::provider_config(provider.base_url.clone()),
            config.instagram.settings.api_version.clone(),
        )?),
        ProviderMode::Local { .. } => None,
    };
    let mut partners = BTreeMap::new();
    for (channel, partner) in &config.partners {
        if let ProviderMode::Real { config: provider, credentials } = &partner.mode {
            let client =
                PartnerClient::new(*channel, provider.clone(), partner.client_id.clone(), credentials.clone(), false)?;
            partners.insert(*channel, client);
        }
    }
    if reader.is_none() && partners.is_empty() {
        return Ok(());
    }
    let job = Arc::new(app::insights::InsightsJob::new(
        repo.clone(),
        connections.clone(),
        reader,
        partners,
        ctx.peers.clone(),
        ctx.clock.clone(),
        config.insights,
    ));
    let round = config.insights.interval.min(std::time::Duration::from_secs(60));
    Periodic::resting("channel insights", round).spawn(ctx.shutdown.clone(), move || {
        let job = job.clone();
        async move {
            let round = job.run_once().await;
            if round.recorded > 0 {
                tracing::info!(recorded = round.recorded, "channel insights recorded");
            }
        }
    });
    Ok(())
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
