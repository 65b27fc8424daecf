//! Caching that never fails a request.
//!
//! - [`Cache`]: the byte-level contract (get / set with a TTL / delete) with two implementations,
//!   [`RedisCache`] (`fred`, production and tests) and [`MemoryCache`] (`moka`, in-process, for
//!   `kem up`), plus typed JSON helpers in [`CacheExt`];
//! - [`CacheAside`]: what services use: `get_or_load` with single-flight per key, optional negative
//!   caching and best-effort writes. A failing cache (Redis down, slow, returning garbage) only
//!   increments [`CacheCounters::errors`]: reads fall through to the loader and writes are skipped,
//!   so no caller ever sees an error because of the cache.
//!
//! The raw [`Cache`] methods do return errors, so that `CacheAside` can count them; service code
//! should not call them on a request path without the same care.

mod aside;
mod memory;
mod redis;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use aside::{CacheAside, CacheCounters, CacheStats};
pub use memory::MemoryCache;
pub use redis::{RedisCache, RedisCacheConfig};

/// A key-value cache of bytes with a time to live per entry.
#[async_trait::async_trait]
pub trait Cache: Send + Sync + 'static {
    /// What the cache is, for logs: `redis` or `memory`.
    fn backend(&self) -> &'static str;

    /// The value under `key`, `None` when absent or expired.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError>;

    /// Stores `value` under `key` for `ttl` (a zero TTL is stored as 1 ms: it expires at once).
    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError>;

    /// Removes `key`; removing an absent key is not an error.
    async fn delete(&self, key: &str) -> Result<(), CacheError>;

    /// Stores `value` only if `key` is absent; `true` when this call stored it. Used for claims
    /// (idempotency keys) that every replica must agree on, so it must be atomic: of any number
    /// of concurrent calls for one key, exactly one returns `true` (Redis `SET NX PX`, moka's
    /// entry API). There is no default: a check-then-set would let two claims win.
    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Duration) -> Result<bool, CacheError>;
}

/// Why a cache operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// The backend could not carry out the operation (unreachable, timed out, refused).
    #[error("{backend} cache: {operation} {key:?} failed: {reason}")]
    Backend {
        /// `redis` or `memory`.
        backend: &'static str,
        /// `GET`, `SET` or `DEL`.
        operation: &'static str,
        /// The key, without the backend's prefix.
        key: String,
        /// The backend's error.
        reason: String,
    },
    /// A cached value is not what the reader expected (another type, or an older format).
    #[error("cached value under {key:?} cannot be decoded: {reason}; it is treated as a miss")]
    Decode {
        /// The key.
        key: String,
        /// What did not parse.
        reason: String,
    },
    /// A value could not be serialized for caching.
    #[error("value for {key:?} cannot be encoded as JSON: {reason}")]
    Encode {
        /// The key.
        key: String,
        /// The serializer's error.
        reason: String,
    },
    /// The cache could not be set up from its configuration.
    #[error("invalid cache configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
}

/// Typed JSON helpers for every [`Cache`] (including `dyn Cache`).
pub trait CacheExt: Cache {
    /// The value under `key` decoded from JSON; a value that does not decode is a
    /// [`CacheError::Decode`].
    fn get_json<'a, T: DeserializeOwned>(
        &'a self,
        key: &'a str,
    ) -> impl Future<Output = Result<Option<T>, CacheError>> + Send + 'a {
        async move {
            let Some(bytes) = self.get(key).await? else { return Ok(None) };
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| CacheError::Decode { key: key.to_owned(), reason: e.to_string() })
        }
    }

    /// Stores `value` as JSON under `key` for `ttl`.
    fn set_json<'a, T: Serialize + ?Sized>(
        &'a self,
        key: &'a str,
        value: &T,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), CacheError>> + Send + 'a {
        let encoded = serde_json::to_vec(value)
            .map(Bytes::from)
            .map_err(|e| CacheError::Encode { key: key.to_owned(), reason: e.to_string() });
        async move { self.set(key, encoded?, ttl).await }
    }
}

impl<C: Cache + ?Sized> CacheExt for C {}

/// The TTL a backend stores: at least 1 ms, since Redis refuses `PX 0`.
fn effective_ttl(ttl: Duration) -> Duration {
    ttl.max(Duration::from_millis(1))
}
