//! A service's platform context for a test: its own PostgreSQL database, a Redis key prefix and
//! a store-backed queue in that database.

use std::sync::Arc;

use kem_kit::Secret;
use kem_kit::cache::{Cache, MemoryCache, RedisCache, RedisCacheConfig};
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
            shutdown: Shutdown::new(),
        };
        TestService { ctx, db, redis, queue, _data_dir: data_dir }
    }

    /// Stops the service's workers, then drops its database and Redis keys.
    pub async fn cleanup(self) {
        self.ctx.shutdown.trigger();
        // Let background workers observe the shutdown before their database disappears.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
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
        shutdown: Shutdown::new(),
    }
}
