//! Renders by key: Redis (in-process for `kem up`) in front of the `renders` table. The table is the
//! source of truth, so a cache outage only costs database reads, never a second provider call.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::cache::{Cache, CacheAside, CacheStats};

use crate::app::ports::RepoError;
use crate::domain::image::Render;

use super::repository::SqlImageRepository;

/// How long a "no render under this key" answer is cached: short, since a render appears as soon
/// as the first request for it finishes.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);

/// Cache-aside of renders by key.
#[derive(Clone)]
pub struct CachedRenders {
    aside: CacheAside,
    repository: Arc<SqlImageRepository>,
    ttl: Duration,
}

impl std::fmt::Debug for CachedRenders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedRenders").field("aside", &self.aside).field("ttl", &self.ttl).finish()
    }
}

impl CachedRenders {
    /// Over `cache` (prefixed per service) and `repository`; entries live `ttl` (the render
    /// lifetime: freshness is checked by the caller on the render's own creation time).
    pub fn new(cache: Arc<dyn Cache>, repository: Arc<SqlImageRepository>, ttl: Duration) -> CachedRenders {
        CachedRenders { aside: CacheAside::new(cache), repository, ttl }
    }

    /// Hit/miss/error counters.
    pub fn stats(&self) -> CacheStats {
        self.aside.counters().snapshot()
    }

    /// The cache-aside (for metrics).
    pub fn aside(&self) -> &CacheAside {
        &self.aside
    }

    fn key(render_key: &str) -> String {
        format!("render:v1:{render_key}")
    }

    /// The render under `key`, if stored (fresh or not).
    pub async fn find(&self, key: &str) -> Result<Option<Render>, RepoError> {
        let repository = self.repository.clone();
        self.aside
            .get_or_load_optional(&Self::key(key), self.ttl, Some(NEGATIVE_TTL), || async move {
                repository.find_render(key).await
            })
            .await
    }

    /// Stores a render and caches it.
    pub async fn save(&self, render: &Render) -> Result<(), RepoError> {
        self.repository.save_render(render).await?;
        self.aside.put(&Self::key(&render.render_key), render, self.ttl).await;
        Ok(())
    }
}
