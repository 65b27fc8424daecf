//! Event-by-id cache-aside (Redis in production, in-process for `kem up`), invalidated on every
//! change. Cache failures never reach a caller: they degrade to the database.
//!
//! Invalidation is "delete after commit, and once more a moment later": a reader that loaded the
//! old row just before the commit may write it back after the first delete; the second delete
//! removes that stale entry, so staleness is bounded by `REINVALIDATE_AFTER` instead of the TTL.

use std::sync::Arc;
use std::time::Duration;

use kem_kit::cache::{Cache, CacheAside, CacheStats};

use crate::app::ports::RepoError;
use crate::domain::event::Event;

use super::repository::SqlEventRepository;

/// Delay of the second invalidation.
const REINVALIDATE_AFTER: Duration = Duration::from_millis(500);

/// How long a "no such event" answer is cached (protects the database from repeated lookups of
/// unknown ids; ids are server-assigned UUIDs, so an id never appears after being absent).
const NEGATIVE_TTL: Duration = Duration::from_secs(10);

/// Cache-aside of events by id.
#[derive(Clone, Debug)]
pub struct CachedEvents {
    aside: CacheAside,
    ttl: Duration,
}

impl CachedEvents {
    /// Over `cache` (already prefixed per service), entries living `ttl`.
    pub fn new(cache: Arc<dyn Cache>, ttl: Duration) -> CachedEvents {
        CachedEvents { aside: CacheAside::new(cache), ttl }
    }

    /// Hit/miss/error counters.
    pub fn stats(&self) -> CacheStats {
        self.aside.counters().snapshot()
    }

    fn key(id: &str) -> String {
        // The version in the key changes whenever the cached type does.
        format!("event:v1:{id}")
    }

    /// The event, from the cache or else from `repository` (then cached).
    pub async fn event(&self, repository: &SqlEventRepository, id: &str) -> Result<Option<Event>, RepoError> {
        self.aside
            .get_or_load_optional(&Self::key(id), self.ttl, Some(NEGATIVE_TTL), || repository.find_event(id))
            .await
    }

    /// Forgets the event after it changed.
    pub async fn invalidate(&self, id: &str) {
        let key = Self::key(id);
        self.aside.invalidate(&key).await;
        let aside = self.aside.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REINVALIDATE_AFTER).await;
            aside.invalidate(&key).await;
        });
    }
}
