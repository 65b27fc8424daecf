//! Event-by-id cache-aside (Redis in production, in-process for `kem up`), invalidated on every
//! change, and the facts of the public view (the event and whether it was drawn) kept only
//! [`PUBLIC_TTL`], since a draw happens at participation and the event cannot tell. Cache failures
//! never reach a caller: they degrade to the database.
//!
//! Invalidation is "delete after commit, and once more a moment later": a reader that loaded the
//! old row just before the commit may write it back after the first delete; the second delete
//! removes that stale entry, so staleness is bounded by `REINVALIDATE_AFTER` instead of the TTL.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kem_kit::cache::{Cache, CacheAside, CacheStats};

use crate::app::ports::RepoError;
use crate::domain::event::Event;
use crate::domain::public::PublicFacts;

use super::repository::SqlEventRepository;

/// Delay of the second invalidation.
const REINVALIDATE_AFTER: Duration = Duration::from_millis(500);

/// How long a "no such event" answer is cached (protects the database from repeated lookups of
/// unknown ids; ids are server-assigned UUIDs, so an id never appears after being absent).
const NEGATIVE_TTL: Duration = Duration::from_secs(10);

/// How long the public view's facts are reused: public pages are read by every participant, and
/// a draw made at participation shows within this. Publication and ending invalidate it at once.
pub const PUBLIC_TTL: Duration = Duration::from_secs(5);

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
        format!("event:v2:{id}")
    }

    fn public_key(id: &str) -> String {
        format!("public-event:v1:{id}")
    }

    /// The event, from the cache or else from `repository` (then cached).
    pub async fn event(&self, repository: &SqlEventRepository, id: &str) -> Result<Option<Event>, RepoError> {
        self.aside
            .get_or_load_optional(&Self::key(id), self.ttl, Some(NEGATIVE_TTL), || repository.find_event(id))
            .await
    }

    /// The public view's facts of event `id`, from the cache or else from `load` (then cached
    /// for [`PUBLIC_TTL`]; "not public" as long).
    pub async fn public_facts<F, Fut>(&self, id: &str, load: F) -> Result<Option<PublicFacts>, RepoError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<PublicFacts>, RepoError>>,
    {
        self.aside.get_or_load_optional(&Self::public_key(id), PUBLIC_TTL, Some(PUBLIC_TTL), load).await
    }

    /// Forgets the public view's facts (a draw was just made).
    pub async fn invalidate_public(&self, id: &str) {
        self.aside.invalidate(&Self::public_key(id)).await;
    }

    /// Forgets the event (and its public view) after it changed.
    pub async fn invalidate(&self, id: &str) {
        let keys = [Self::key(id), Self::public_key(id)];
        for key in &keys {
            self.aside.invalidate(key).await;
        }
        let aside = self.aside.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REINVALIDATE_AFTER).await;
            for key in &keys {
                aside.invalidate(key).await;
            }
        });
    }
}
