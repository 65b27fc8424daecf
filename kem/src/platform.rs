//! What the service roles of one process share, and the [`ServiceContext`] each one starts with.
//!
//! Storage: each service owns its database (`--database-urls`, `KEM_<SERVICE>_DATABASE_URL`,
//! `DATABASE_URL`, else the embedded SQLite file `<data-dir>/db/<service>.db`). Queues: Azure
//! Service Bus when a connection string is configured, otherwise the store-backed queue in its own
//! database (`queue` — the embedded `<data-dir>/db/queue.db` for `kem up`), which every service of
//! the deployment must share: a producer's outbox relay publishes into it and the consumers of
//! other services receive from it. Caches: Redis (`--redis-url`) under `<cache-prefix><service>:`,
//! otherwise in-process.

use std::sync::Arc;

use anyhow::Context;
use kem_kit::cache::{Cache, MemoryCache, RedisCache, RedisCacheConfig};
use kem_kit::clock::SystemClock;
use kem_kit::config::ProcessEnv;
use kem_kit::queue::Queue;
use kem_kit::queue::servicebus::{ServiceBusConfig, ServiceBusQueue};
use kem_kit::queue::store::StoreQueue;
use kem_kit::runtime::{PeerDirectory, Peers, ServiceContext};
use kem_kit::store::{Store, StoreConfig};
use kem_mesh::Shutdown;
use kem_mesh::identity::WorkloadIdentity;
use tokio::sync::OnceCell;

use crate::Settings;
use crate::roles::{Role, ServiceName};

/// Entries of an in-process cache per service (`kem up`).
const MEMORY_CACHE_ENTRIES: u64 = 50_000;

/// Each role's own settings (providers, limits). `None` reads the service's environment
/// variables (or the built-in defaults) when it starts; tests set them directly, since a process
/// has one environment.
#[derive(Clone, Debug, Default)]
pub struct ServiceConfigs {
    /// The gateway's rate limits (production defaults otherwise).
    pub edge_limits: Option<kem_gateway::protect::EdgeLimits>,
    /// The user service.
    pub user: Option<kem_user::UserConfig>,
    /// The event service.
    pub event: Option<kem_event::EventConfig>,
    /// The AI service.
    pub ai: Option<kem_ai::AiConfig>,
    /// The analytics service.
    pub analytics: Option<kem_analytics::AnalyticsConfig>,
    /// The participation service.
    pub participation: Option<kem_participation::ParticipationConfig>,
    /// The content service.
    pub content: Option<kem_content::ContentConfig>,
    /// The distribution service.
    pub distribution: Option<kem_distribution::DistributionConfig>,
}

/// Shared by the roles of one process.
#[derive(Clone, Default)]
pub struct ProcessShared {
    /// Where every service listens, filled as roles start (and from `--upstreams`).
    pub directory: PeerDirectory,
    /// Service settings given by the embedding program (else each service's environment).
    pub configs: ServiceConfigs,
    queue: Arc<OnceCell<Arc<dyn Queue>>>,
}

impl ProcessShared {
    /// The directory seeded with `--upstreams` overrides and each service's configured port.
    pub fn new(settings: &Settings, configs: ServiceConfigs) -> ProcessShared {
        let shared = ProcessShared { configs, ..ProcessShared::default() };
        let host =
            settings.identity_addr.rsplit_once(':').map(|(h, _)| h.to_owned()).unwrap_or_else(|| "127.0.0.1".into());
        for service in ServiceName::ALL {
            let addr = match settings.upstreams.get(service.as_str()) {
                Some(addr) => addr.clone(),
                None => format!("{host}:{}", Role::Service(service).grpc_port(settings)),
            };
            shared.directory.insert(service.as_str(), addr);
        }
        shared
    }

    /// Records a role started in this process (its address beats the configured one, unless an
    /// explicit `--upstreams` override names it).
    pub fn started(&self, role: Role, addr: std::net::SocketAddr, settings: &Settings) {
        if let Role::Service(service) = role
            && !settings.upstreams.contains_key(service.as_str())
        {
            self.directory.insert(service.as_str(), addr.to_string());
        }
    }

    /// The queue every service of this process uses, connected on first use.
    pub async fn queue(&self, settings: &Settings) -> anyhow::Result<Arc<dyn Queue>> {
        self.queue.get_or_try_init(|| connect_queue(settings)).await.cloned()
    }
}

async fn connect_queue(settings: &Settings) -> anyhow::Result<Arc<dyn Queue>> {
    if let Some(connection) = &settings.servicebus_connection_string {
        let config = ServiceBusConfig::from_connection_string(connection)
            .context("invalid --servicebus-connection-string / KEM_SERVICEBUS_CONNECTION_STRING")?;
        tracing::info!(namespace = %config.namespace, "queues: Azure Service Bus");
        return Ok(Arc::new(ServiceBusQueue::new(config).context("cannot configure the Service Bus client")?));
    }
    let config = kem_kit::config::read_from(&ProcessEnv, |env| {
        let config = match settings.database_urls.get("queue") {
            Some(url) => StoreConfig::new(url.expose()),
            // Deliberately not `DATABASE_URL`: that is one service's own database in a pod, and a
            // queue only works when producers and consumers share it.
            None => match env.secret("KEM_QUEUE_DATABASE_URL") {
                Some(url) => StoreConfig::new(url.expose()),
                None => StoreConfig::embedded(&settings.data_dir, "queue"),
            },
        };
        config.read_pool_size(env, "queue")
    })
    .context("invalid queue store settings")?;
    let store = Store::connect(&config)
        .await
        .with_context(|| format!("cannot open the queue store {}", config.url.redacted()))?;
    store.migrate_kit().await.context("cannot migrate the queue store")?;
    tracing::info!(store = %store.target(), "queues: store-backed");
    Ok(Arc::new(StoreQueue::new(store)))
}

/// The database settings of `service`.
pub fn store_config(service: ServiceName, settings: &Settings) -> anyhow::Result<StoreConfig> {
    let name = service.as_str();
    let mut config = match settings.database_urls.get(name) {
        Some(url) => StoreConfig::new(url.expose()).with_pool_size_from_env(name),
        None => StoreConfig::from_env(name, &settings.data_dir),
    }
    .with_context(|| format!("invalid database settings of the {name} service"))?;
    config.application_name = Some(format!("kem-{name}"));
    Ok(config)
}

/// How long a starting process waits for its first Redis connection. Commands fail fast while
/// the client is not connected (so a dead Redis costs requests nothing), which would otherwise
/// make the very first cache calls of a freshly (re)started process miss for no reason.
const FIRST_REDIS_CONNECTION: std::time::Duration = std::time::Duration::from_secs(2);

/// The cache of `service`: Redis under its prefix, or in-process.
pub async fn cache(service: &str, settings: &Settings) -> anyhow::Result<Arc<dyn Cache>> {
    Ok(match &settings.redis_url {
        Some(url) => {
            let config = RedisCacheConfig::new(url.clone(), format!("{}{service}:", settings.cache_prefix));
            let redis = RedisCache::connect(config).context("cannot configure the Redis cache (--redis-url)")?;
            if !redis.wait_connected(FIRST_REDIS_CONNECTION).await {
                tracing::warn!(%service, "Redis is not reachable yet; starting with the cache degraded to the database");
            }
            Arc::new(redis)
        }
        None => Arc::new(MemoryCache::new(MEMORY_CACHE_ENTRIES)),
    })
}

/// Connects everything `service` needs, as `identity`.
pub async fn service_context(
    service: ServiceName,
    settings: &Settings,
    identity: &WorkloadIdentity,
    shared: &ProcessShared,
    shutdown: &Shutdown,
) -> anyhow::Result<ServiceContext> {
    let name = service.as_str();
    let config = store_config(service, settings)?;
    let store = Store::connect(&config)
        .await
        .with_context(|| format!("the {name} service cannot open its database {}", config.url.redacted()))?;
    store.migrate_kit().await.with_context(|| format!("the {name} service cannot migrate its database"))?;
    let peers = Peers::new(identity.clone(), settings.trust_domain.clone(), settings.namespace.clone())
        .with_directory(shared.directory.clone());
    Ok(ServiceContext {
        service: name.to_owned(),
        store,
        cache: cache(name, settings).await?,
        queue: shared.queue(settings).await?,
        peers,
        data_dir: settings.data_dir.clone(),
        clock: Arc::new(SystemClock),
        shutdown: shutdown.clone(),
    })
}
