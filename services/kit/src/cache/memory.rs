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

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.entries.invalidate(key).await;
        Ok(())
    }
}
