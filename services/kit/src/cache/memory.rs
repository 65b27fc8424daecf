//! The in-process cache `kem up` uses: `moka`, bounded, with a TTL per entry.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;

use super::{Cache, CacheError, effective_ttl};

/// An in-process cache bounded by entry count; each entry expires after its own TTL.
///
/// It cannot fail, and it is not shared between processes: with several replicas, use
/// [`RedisCache`](super::RedisCache).
#[derive(Clone)]
pub struct MemoryCache {
    entries: moka::future::Cache<String, Entry>,
}

#[derive(Clone)]
struct Entry {
    value: Bytes,
    ttl: Duration,
}

/// Expiry from the entry's own TTL, on insert and on overwrite (moka's default keeps the old
/// expiry on overwrite, which would let a refreshed value die early).
struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, entry: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        entry: &Entry,
        _updated_at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl MemoryCache {
    /// Entries kept when no capacity is given.
    pub const DEFAULT_CAPACITY: u64 = 10_000;

    /// A cache holding at most `max_entries` (least recently used ones are evicted first).
    pub fn new(max_entries: u64) -> Self {
        MemoryCache {
            entries: moka::future::Cache::builder()
                .name("kem-memory-cache")
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }

    /// Entries currently held (approximate: expired entries leave lazily).
    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        MemoryCache::new(Self::DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryCache").field("entries", &self.entries.entry_count()).finish()
    }
}

#[async_trait::async_trait]
impl Cache for MemoryCache {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        Ok(self.entries.get(key).await.map(|entry| entry.value))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        self.entries.insert(key.to_owned(), Entry { value, ttl: effective_ttl(ttl) }).await;
        Ok(())
    }

    /// Through moka's entry API with an init future: concurrent initialisations of one key are
    /// coalesced, so exactly one caller inserts (and sees `is_fresh`). An expired entry counts as
    /// absent. (`or_insert` with a plain value is not coalesced: two callers can both see a fresh
    /// entry, which the tests below catch.)
    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Duration) -> Result<bool, CacheError> {
        let entry =
            self.entries.entry(key.to_owned()).or_insert_with(async { Entry { value, ttl: effective_ttl(ttl) } }).await;
        Ok(entry.is_fresh())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.entries.invalidate(key).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 50 concurrent claims of one key, 300 times; with `overwrite`, the winner at once replaces
    /// its claim with its answer (what the idempotency store does), which must open no window
    /// for a second claim to win.
    async fn claims_have_one_winner(overwrite: bool) {
        let cache = MemoryCache::new(1000);
        for round in 0..300 {
            let key = format!("claim-{round}");
            let tasks: Vec<_> = (0..50)
                .map(|_| {
                    let (cache, key) = (cache.clone(), key.clone());
                    tokio::spawn(async move {
                        let won =
                            cache.set_if_absent(&key, Bytes::from_static(b"claim"), Duration::from_secs(60)).await;
                        if overwrite && matches!(won, Ok(true)) {
                            let _ = cache.set(&key, Bytes::from_static(b"done"), Duration::from_secs(600)).await;
                        }
                        won
                    })
                })
                .collect();
            let mut winners = 0;
            for task in tasks {
                if matches!(task.await, Ok(Ok(true))) {
                    winners += 1;
                }
            }
            assert_eq!(winners, 1, "round {round}: {winners} winners");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_claims_of_one_key_have_one_winner() {
        claims_have_one_winner(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overwriting_a_claim_never_lets_a_second_claim_win() {
        claims_have_one_winner(true).await;
    }
}
