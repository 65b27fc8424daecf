//! Cached answers with generation-based invalidation.
//!
//! Answers are cached per *scope* (`event:<id>`, `owner:<id>`) under a key that includes the
//! scope's current generation, a random token kept in the cache under `gen:<scope>`. New data
//! invalidates a scope by giving it a new generation. Unlike deleting the cached entry, this is
//! safe against the cache-aside race in which a read that loaded *before* a write stores its
//! answer *after* the write's invalidation: that answer lands under the old generation, which
//! nobody reads any more.
//!
//! Nothing here ever fails a request: when the generation cannot be read the answer is computed
//! from the database and not cached; when an invalidation cannot be written the old answer may
//! live until its TTL, which bounds staleness (the contract's `CacheInfo.max_age`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kem_kit::cache::{Cache, CacheAside, CacheStats};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Version of the cached answers' layout: bump it when the views change shape.
const LAYOUT: &str = "v1";

/// How long an "unknown event" answer is cached (new facts invalidate it anyway).
const NEGATIVE_TTL: Duration = Duration::from_secs(30);

/// A cached answer and whether it came from the cache.
#[derive(Debug, Clone)]
pub struct Cached<T> {
    /// The answer (`None`: not found).
    pub value: Option<T>,
    /// True when this call did not compute it.
    pub from_cache: bool,
}

/// The cache of owner-facing answers.
#[derive(Debug, Clone)]
pub struct ViewCache {
    aside: CacheAside,
    ttl: Duration,
    degraded: Arc<AtomicBool>,
}

impl ViewCache {
    /// Answers cached for `ttl` in `cache`.
    pub fn new(cache: Arc<dyn Cache>, ttl: Duration) -> ViewCache {
        ViewCache { aside: CacheAside::new(cache), ttl, degraded: Arc::default() }
    }

    /// How long answers are cached.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Hits, misses and loads so far.
    pub fn stats(&self) -> CacheStats {
        self.aside.counters().snapshot()
    }

    /// The answer of `scope`, from the cache or from `load` (then cached; concurrent misses of
    /// one scope load once).
    pub async fn get_or_load<T, E, F, Fut>(&self, scope: &str, load: F) -> Result<Cached<T>, E>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let Some(generation) = self.generation(scope).await else {
            return Ok(Cached { value: load().await?, from_cache: false });
        };
        let key = format!("{LAYOUT}:{scope}:{generation}");
        let loaded = AtomicBool::new(false);
        let value = self
            .aside
            .get_or_load_optional(&key, self.ttl, Some(NEGATIVE_TTL.min(self.ttl)), || {
                loaded.store(true, Ordering::Relaxed);
                load()
            })
            .await?;
        Ok(Cached { value, from_cache: !loaded.load(Ordering::Relaxed) })
    }

    /// Makes every cached answer of `scope` unreachable.
    pub async fn invalidate(&self, scope: &str) {
        let generation = format!("{:016x}", rand::random::<u64>());
        // Outlives every answer cached under the previous generation, so an expired generation
        // can never bring an old answer back.
        let keep = self.ttl.saturating_mul(2).saturating_add(Duration::from_secs(60));
        match self.aside.cache().set(&generation_key(scope), Bytes::from(generation), keep).await {
            Ok(()) => self.recovered(),
            Err(error) => self.failed(&error, "invalidate"),
        }
    }

    async fn generation(&self, scope: &str) -> Option<String> {
        match self.aside.cache().get(&generation_key(scope)).await {
            Ok(Some(bytes)) => {
                self.recovered();
                Some(String::from_utf8_lossy(&bytes).into_owned())
            }
            Ok(None) => {
                self.recovered();
                Some("0".to_owned())
            }
            Err(error) => {
                self.failed(&error, "read");
                None
            }
        }
    }

    fn failed(&self, error: &dyn std::fmt::Display, operation: &str) {
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(%error, operation, "analytics cache unavailable: answers come from the database, uncached");
        }
    }

    fn recovered(&self) {
        if self.degraded.load(Ordering::Relaxed) && self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!("analytics cache available again");
        }
    }
}

fn generation_key(scope: &str) -> String {
    format!("gen:{scope}")
}

/// The scope of one event's analytics.
pub fn event_scope(event_id: &str) -> String {
    format!("event:{event_id}")
}

/// The scope of one owner's dashboard.
pub fn owner_scope(owner_id: &str) -> String {
    format!("owner:{owner_id}")
}

#[cfg(test)]
mod tests {
    use kem_kit::cache::MemoryCache;

    use super::*;

    fn cache() -> ViewCache {
        ViewCache::new(Arc::new(MemoryCache::new(100)), Duration::from_secs(60))
    }

    async fn read(cache: &ViewCache, scope: &str, value: u32) -> Cached<u32> {
        cache.get_or_load(scope, || async move { Ok::<_, String>(Some(value)) }).await.expect("infallible")
    }

    #[tokio::test]
    async fn answers_are_cached_until_their_scope_is_invalidated() {
        let cache = cache();
        let first = read(&cache, "event:e", 1).await;
        assert_eq!((first.value, first.from_cache), (Some(1), false));
        let second = read(&cache, "event:e", 2).await;
        assert_eq!((second.value, second.from_cache), (Some(1), true));
        assert_eq!(read(&cache, "event:other", 3).await.value, Some(3), "scopes are separate");
        cache.invalidate("event:e").await;
        let third = read(&cache, "event:e", 4).await;
        assert_eq!((third.value, third.from_cache), (Some(4), false));
        assert_eq!(read(&cache, "event:other", 5).await.value, Some(3), "other scopes keep their answers");
    }

    #[tokio::test]
    async fn a_load_that_raced_an_invalidation_is_never_served() {
        let cache = cache();
        // A read loads the old figures, the data changes and invalidates, then the read stores.
        let racing = cache
            .get_or_load("owner:o", || async {
                cache.invalidate("owner:o").await;
                Ok::<_, String>(Some(1_u32))
            })
            .await
            .expect("infallible");
        assert_eq!(racing.value, Some(1));
        let next = read(&cache, "owner:o", 2).await;
        assert_eq!((next.value, next.from_cache), (Some(2), false), "the stale answer went to the old generation");
    }

    #[tokio::test]
    async fn not_found_is_cached_and_invalidated_too() {
        let cache = cache();
        let missing =
            cache.get_or_load("event:new", || async { Ok::<Option<u32>, String>(None) }).await.expect("infallible");
        assert_eq!((missing.value, missing.from_cache), (None, false));
        let again = read(&cache, "event:new", 1).await;
        assert_eq!((again.value, again.from_cache), (None, true));
        cache.invalidate("event:new").await;
        assert_eq!(read(&cache, "event:new", 1).await.value, Some(1));
    }
}
