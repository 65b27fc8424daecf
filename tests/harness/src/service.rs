//! A service's platform context for a test: its own PostgreSQL database, a Redis key prefix and
//! a store-backed queue in that database.

use std::sync::Arc;

use kem_kit::Secret;
use kem_kit::cache::{Cache, MemoryCache, RedisCache, RedisCacheConfig};
use kem_kit::clock::SystemClock;
use kem_kit::queue::Queue;
use kem_kit::queue::store::StoreQueue;
use kem_kit::runtime::{Peers, ServiceContext};
use kem_kit::store::{Store, StoreConfig};
use kem_mesh::Shutdown;

use crate::postgres::TestDatabase;
use crate::redis::TestRedis;

/// A [`ServiceContext`] over test-owned resources; [`TestService::cleanup`] removes them.
pub struct TestService {
    /// What the service starts with.
    pub ctx: ServiceContext,
    /// Its database (also holding the queue).
    pub db: TestDatabase,
    /// Its Redis prefix.
    pub redis: TestRedis,
    /// The queue, concretely (depth checks in tests).
    pub queue: StoreQueue,
    _data_dir: crate::TempDir,
}

impl TestService {
    /// A context for `service` with no mesh peers.
    pub async fn new(service: &str) -> TestService {
        TestService::with_peers(service, Peers::none()).await
    }

    /// A context for `service` that reaches other services through `peers`.
    pub async fn with_peers(service: &str, peers: Peers) -> TestService {
        let db = TestDatabase::create().await;
        let store = Store::connect(&StoreConfig::new(db.url()))
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test database {}: {e}", db.name()));
        store.migrate_kit().await.unwrap_or_else(|e| panic!("kit migrations failed: {e}"));
        let redis = TestRedis::new().await;
        let config = RedisCacheConfig::new(Secret::new(crate::redis::redis_url()), redis.prefix.clone());
        let redis_cache =
            RedisCache::connect(config).unwrap_or_else(|e| panic!("cannot configure the Redis cache: {e}"));
        // The client connects in the background; a test starts once it is up, so its first cache
        // operations really reach Redis instead of quietly degrading to the database.
        assert!(
            redis_cache.wait_connected(std::time::Duration::from_secs(10)).await,
            "Redis at {} did not connect within 10 s",
            crate::redis::redis_url()
        );
        let cache: Arc<dyn Cache> = Arc::new(redis_cache);
        let queue = StoreQueue::new(store.clone());
        let shared: Arc<dyn Queue> = Arc::new(queue.clone());
        let data_dir = crate::TempDir::new(&format!("svc-{service}"));
        let ctx = ServiceContext {
            service: service.to_owned(),
            store,
            cache,
            queue: shared,
            peers,
            data_dir: data_dir.0.clone(),
            clock: Arc::new(SystemClock),
            shutdown: Shutdown::new(),
        };
        TestService { ctx, db, redis, queue, _data_dir: data_dir }
    }

    /// Stops the service's workers, then drops its database and Redis keys.
    pub async fn cleanup(self) {
        // Background workers return before their database disappears.
        let drained = self.ctx.shutdown.drained(std::time::Duration::from_secs(10)).await;
        assert!(drained, "the {} service's background workers did not stop within 10 s", self.ctx.service);
        self.ctx.store.close().await;
        self.db.drop_now().await;
        self.redis.cleanup().await;
    }
}

/// A context for `service` as `kem up` runs it: an embedded SQLite file under `dir` (kit tables
/// migrated), the in-process cache, and a store-backed queue in the same file.
pub async fn embedded_context(service: &str, peers: Peers, dir: &std::path::Path) -> ServiceContext {
    let store = Store::connect(&StoreConfig::embedded(dir, service))
        .await
        .unwrap_or_else(|e| panic!("cannot open the SQLite store of {service} under {}: {e}", dir.display()));
    store.migrate_kit().await.unwrap_or_else(|e| panic!("kit migrations on SQLite failed: {e}"));
    ServiceContext {
        service: service.to_owned(),
        queue: Arc::new(StoreQueue::new(store.clone())),
        store,
        cache: Arc::new(MemoryCache::new(10_000)),
        peers,
        data_dir: dir.to_path_buf(),
        clock: Arc::new(SystemClock),
        shutdown: Shutdown::new(),
    }
}

/// What a service under test stands on: a fresh PostgreSQL database with its Redis prefix and
/// store-backed queue, or an embedded SQLite directory with the in-process cache, as `kem up`
/// runs it. [`Backing::cleanup`] stops the context's workers, then removes the data.
pub enum Backing {
    /// The production layout.
    Postgres(Box<TestService>),
    /// `kem up`'s layout, in a directory removed on cleanup.
    Sqlite(tempfile::TempDir),
}

impl Backing {
    /// `service`'s context on a fresh PostgreSQL database, and its backing.
    pub async fn postgres(service: &str, peers: Peers) -> (ServiceContext, Backing) {
        let svc = TestService::with_peers(service, peers).await;
        (svc.ctx.clone(), Backing::Postgres(Box::new(svc)))
    }

    /// `service`'s context on embedded SQLite in a fresh directory, and its backing.
    pub async fn sqlite(service: &str, peers: Peers) -> (ServiceContext, Backing) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        let ctx = embedded_context(service, peers, dir.path()).await;
        (ctx, Backing::Sqlite(dir))
    }

    /// The test's Redis keys (none on SQLite).
    pub async fn redis_keys(&self) -> Vec<String> {
        match self {
            Backing::Postgres(svc) => svc.redis.keys().await,
            Backing::Sqlite(_) => Vec::new(),
        }
    }

    /// Stops `ctx`'s background workers (waiting for them) and removes the data behind it.
    pub async fn cleanup(self, ctx: &ServiceContext) {
        match self {
            Backing::Postgres(svc) => svc.cleanup().await,
            Backing::Sqlite(dir) => {
                let drained = ctx.shutdown.drained(std::time::Duration::from_secs(10)).await;
                assert!(drained, "the {} service's background workers did not stop within 10 s", ctx.service);
                ctx.store.close().await;
                drop(dir);
            }
        }
    }
}
