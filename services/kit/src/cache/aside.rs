//! Cache-aside with single-flight per key and optional negative caching, never failing a caller.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::{Cache, CacheError};

/// Counters of one [`CacheAside`], read by the metrics layer.
#[derive(Debug, Default)]
pub struct CacheCounters {
    /// Reads answered from the cache (negative entries included).
    pub hits: AtomicU64,
    /// Reads answered from the cache with a cached "not found".
    pub negative_hits: AtomicU64,
    /// Reads the cache could not answer (absent, expired, undecodable or failing).
    pub misses: AtomicU64,
    /// Loader calls.
    pub loads: AtomicU64,
    /// Misses that waited for another caller's load of the same key instead of loading.
    pub coalesced: AtomicU64,
    /// Cache operations that failed or returned something undecodable; none reached a caller.
    pub errors: AtomicU64,
}

impl CacheCounters {
    /// A consistent-enough copy for assertions and export.
    pub fn snapshot(&self) -> CacheStats {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            hits: read(&self.hits),
            negative_hits: read(&self.negative_hits),
            misses: read(&self.misses),
            loads: read(&self.loads),
            coalesced: read(&self.coalesced),
            errors: read(&self.errors),
        }
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A copy of [`CacheCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// See [`CacheCounters::hits`].
    pub hits: u64,
    /// See [`CacheCounters::negative_hits`].
    pub negative_hits: u64,
    /// See [`CacheCounters::misses`].
    pub misses: u64,
    /// See [`CacheCounters::loads`].
    pub loads: u64,
    /// See [`CacheCounters::coalesced`].
    pub coalesced: u64,
    /// See [`CacheCounters::errors`].
    pub errors: u64,
}

/// Cache-aside over any [`Cache`]: read the cache, on a miss load from the source and fill the
/// cache.
///
/// - **Single-flight**: concurrent misses of one key call the loader once; the others wait for
///   its result (its error too: the loader's error type must be `Clone`, as `tonic::Status` is).
///   If the loading caller is cancelled, a waiting one takes over.
/// - **Negative caching** ([`get_or_load_optional`](Self::get_or_load_optional)): a "not found"
///   may be cached for its own, usually shorter, TTL.
/// - **Never an error because of the cache**: a failing read is a miss, a failing write is
///   skipped; both only count in [`CacheCounters::errors`] (and log once per outage).
///
/// Values are stored as JSON behind a one-byte tag (`v` value, `n` not found), so a key must
/// always be read through `CacheAside` with one type; put a version in keys whose type changes.
/// Cheap to clone; clones share counters and in-flight loads.
#[derive(Clone)]
pub struct CacheAside {
    inner: Arc<Inner>,
}

struct Inner {
    cache: Arc<dyn Cache>,
    counters: CacheCounters,
    /// Set while the cache is failing, so an outage logs one warning, not one per request.
    degraded: AtomicBool,
    flights: Mutex<HashMap<String, Arc<Flight>>>,
}

/// One load in progress: the leader publishes its (type-erased) result here.
type Flight = watch::Sender<Option<Landed>>;
type Landed = Arc<dyn Any + Send + Sync>;

const VALUE_TAG: u8 = b'v';
const NOT_FOUND_TAG: u8 = b'n';

/// An entry to store and its TTL; `None`: do not cache this value.
type Encoded = Option<(Bytes, Duration)>;

/// How a loaded value goes into the cache and comes back out.
struct Codec<V> {
    /// Value, positive TTL, negative TTL → what to store.
    encode: fn(&V, Duration, Option<Duration>) -> Result<Encoded, serde_json::Error>,
    /// `Ok(None)`: a valid entry this reader cannot use (a negative entry read without negative
    /// caching): a miss.
    decode: fn(&[u8]) -> Result<Option<V>, String>,
}

impl CacheAside {
    /// Cache-aside over `cache`.
    pub fn new(cache: Arc<dyn Cache>) -> Self {
        CacheAside {
            inner: Arc::new(Inner {
                cache,
                counters: CacheCounters::default(),
                degraded: AtomicBool::new(false),
                flights: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The underlying cache.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.inner.cache
    }

    /// Hit, miss, load and error counters.
    pub fn counters(&self) -> &CacheCounters {
        &self.inner.counters
    }

    /// The value under `key`, or what `loader` returns (then cached for `ttl`). Loader errors are
    /// returned as they are and not cached.
    pub async fn get_or_load<T, E, F, Fut>(&self, key: &str, ttl: Duration, loader: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let codec = Codec { encode: encode_value::<T>, decode: decode_value::<T> };
        self.fetch(key, ttl, None, codec, loader).await
    }

    /// Like [`get_or_load`](Self::get_or_load) for a source that may not have the value: a found
    /// value is cached for `ttl`; "not found" is cached for `negative_ttl` when given (protecting
    /// the source from repeated lookups of absent keys), not at all otherwise.
    pub async fn get_or_load_optional<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        negative_ttl: Option<Duration>,
        loader: F,
    ) -> Result<Option<T>, E>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        E: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let codec = Codec { encode: encode_optional::<T>, decode: decode_optional::<T> };
        self.fetch(key, ttl, negative_ttl, codec, loader).await
    }

    /// Stores `value` under `key` (e.g. right after the source changed). Best effort.
    pub async fn put<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        match encode_value(value, ttl, None) {
            Ok(Some((bytes, ttl))) => self.write(key, bytes, ttl).await,
            Ok(None) => {}
            Err(e) => self.failed(CacheError::Encode { key: key.to_owned(), reason: e.to_string() }),
        }
    }

    /// Removes `key` so the next read loads from the source. Best effort: with the cache down the
    /// entry may survive until its TTL, which bounds staleness.
    pub async fn invalidate(&self, key: &str) {
        match self.inner.cache.delete(key).await {
            Ok(()) => self.recovered(),
            Err(e) => self.failed(e),
        }
    }

    async fn fetch<V, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        negative_ttl: Option<Duration>,
        codec: Codec<V>,
        loader: F,
    ) -> Result<V, E>
    where
        V: Clone + Send + Sync + 'static,
        E: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let counters = &self.inner.counters;
        if let Some(value) = self.read(key, &codec).await {
            return Ok(value);
        }
        CacheCounters::bump(&counters.misses);

        let flight = loop {
            let mut receiver = match self.join(key) {
                Role::Lead(flight) => break flight,
                Role::Follow(receiver) => receiver,
            };
            let landed = match receiver.wait_for(Option::is_some).await {
                Ok(landed) => landed.clone(),
                // The loading caller was cancelled before it finished: take over (or follow
                // whoever did).
                Err(_) => continue,
            };
            match landed.as_ref().and_then(|l| l.downcast_ref::<Result<V, E>>()) {
                Some(result) => {
                    CacheCounters::bump(&counters.coalesced);
                    return result.clone();
                }
                // Someone loads the same key as another type: a key-naming bug; stay correct.
                None => {
                    tracing::warn!(key, "cache-aside key read with two different types; loading without single-flight");
                    CacheCounters::bump(&counters.loads);
                    return loader().await;
                }
            }
        };

        let guard = FlightGuard { inner: &self.inner, key, flight };
        CacheCounters::bump(&counters.loads);
        let result = loader().await;
        // Waiters get the result first; the cache write (possibly slow with Redis failing) is ours.
        guard.flight.send_replace(Some(Arc::new(result.clone())));
        if let Ok(value) = &result {
            match (codec.encode)(value, ttl, negative_ttl) {
                Ok(Some((bytes, ttl))) => self.write(key, bytes, ttl).await,
                Ok(None) => {}
                Err(e) => self.failed(CacheError::Encode { key: key.to_owned(), reason: e.to_string() }),
            }
        }
        drop(guard);
        result
    }

    /// The cached value, or `None` for any kind of miss (errors counted).
    async fn read<V>(&self, key: &str, codec: &Codec<V>) -> Option<V> {
        let bytes = match self.inner.cache.get(key).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                self.recovered();
                return None;
            }
            Err(e) => {
                self.failed(e);
                return None;
            }
        };
        self.recovered();
        match (codec.decode)(&bytes) {
            Ok(Some(value)) => {
                CacheCounters::bump(&self.inner.counters.hits);
                if bytes.first() == Some(&NOT_FOUND_TAG) {
                    CacheCounters::bump(&self.inner.counters.negative_hits);
                }
                Some(value)
            }
            Ok(None) => None,
            Err(reason) => {
                self.failed(CacheError::Decode { key: key.to_owned(), reason });
                None
            }
        }
    }

    async fn write(&self, key: &str, bytes: Bytes, ttl: Duration) {
        match self.inner.cache.set(key, bytes, ttl).await {
            Ok(()) => self.recovered(),
            Err(e) => self.failed(e),
        }
    }

    fn join(&self, key: &str) -> Role {
        let mut flights = self.inner.lock_flights();
        if let Some(flight) = flights.get(key) {
            return Role::Follow(flight.subscribe());
        }
        let flight = Arc::new(watch::Sender::new(None));
        flights.insert(key.to_owned(), flight.clone());
        Role::Lead(flight)
    }

    fn failed(&self, error: CacheError) {
        CacheCounters::bump(&self.inner.counters.errors);
        let backend = self.inner.cache.backend();
        if matches!(error, CacheError::Decode { .. } | CacheError::Encode { .. }) {
            tracing::warn!(backend, %error, "cache entry skipped");
        } else if !self.inner.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(backend, %error, "cache unavailable: serving from the source until it recovers");
        } else {
            tracing::debug!(backend, %error, "cache still unavailable");
        }
    }

    fn recovered(&self) {
        if self.inner.degraded.load(Ordering::Relaxed) && self.inner.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!(backend = self.inner.cache.backend(), "cache available again");
        }
    }
}

impl fmt::Debug for CacheAside {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheAside")
            .field("backend", &self.inner.cache.backend())
            .field("counters", &self.inner.counters.snapshot())
            .finish()
    }
}

impl Inner {
    fn lock_flights(&self) -> MutexGuard<'_, HashMap<String, Arc<Flight>>> {
        // The map is only touched in short sections that cannot panic halfway.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

enum Role {
    Lead(Arc<Flight>),
    Follow(watch::Receiver<Option<Landed>>),
}

/// Removes the leader's flight when it finishes *or is cancelled*; waiters of a cancelled flight
/// see the sender closed and retry.
struct FlightGuard<'a> {
    inner: &'a Inner,
    key: &'a str,
    flight: Arc<Flight>,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let mut flights = self.inner.lock_flights();
        if flights.get(self.key).is_some_and(|f| Arc::ptr_eq(f, &self.flight)) {
            flights.remove(self.key);
        }
    }
}

fn tagged<T: Serialize + ?Sized>(tag: u8, value: &T) -> Result<Bytes, serde_json::Error> {
    let mut out = BytesMut::new();
    out.put_u8(tag);
    let mut writer = out.writer();
    serde_json::to_writer(&mut writer, value)?;
    Ok(writer.into_inner().freeze())
}

fn encode_value<T: Serialize>(
    value: &T,
    ttl: Duration,
    _negative: Option<Duration>,
) -> Result<Encoded, serde_json::Error> {
    Ok(Some((tagged(VALUE_TAG, value)?, ttl)))
}

fn encode_optional<T: Serialize>(
    value: &Option<T>,
    ttl: Duration,
    negative: Option<Duration>,
) -> Result<Encoded, serde_json::Error> {
    match value {
        Some(value) => encode_value(value, ttl, None),
        None => Ok(negative.map(|ttl| (Bytes::from_static(&[NOT_FOUND_TAG]), ttl))),
    }
}

fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<Option<T>, String> {
    match bytes.split_first() {
        Some((&VALUE_TAG, json)) => serde_json::from_slice(json).map(Some).map_err(|e| e.to_string()),
        Some((&NOT_FOUND_TAG, _)) => Ok(None),
        _ => Err("not a cache-aside entry (unknown tag)".to_owned()),
    }
}

fn decode_optional<T: DeserializeOwned>(bytes: &[u8]) -> Result<Option<Option<T>>, String> {
    match bytes.split_first() {
        Some((&NOT_FOUND_TAG, _)) => Ok(Some(None)),
        _ => decode_value(bytes).map(|v| v.map(Some)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_not_found_is_distinct_from_null() {
        let (bytes, _) = encode_optional::<Option<u8>>(&Some(None), Duration::ZERO, None)
            .expect("encode")
            .expect("values are always cached");
        assert_eq!(&bytes[..], b"vnull");
        assert_eq!(decode_optional::<Option<u8>>(&bytes), Ok(Some(Some(None))));
        let (neg, ttl) = encode_optional::<u8>(&None, Duration::ZERO, Some(Duration::from_secs(3)))
            .expect("encode")
            .expect("negative caching asked");
        assert_eq!((&neg[..], ttl), (&b"n"[..], Duration::from_secs(3)));
        assert_eq!(decode_optional::<u8>(&neg), Ok(Some(None)));
        assert_eq!(decode_value::<u8>(&neg), Ok(None), "a negative entry is a miss for a plain read");
        assert_eq!(encode_optional::<u8>(&None, Duration::ZERO, None).expect("encode"), None);
        assert!(decode_value::<u8>(b"{\"raw\":1}").is_err());
        assert!(decode_value::<u8>(b"v\"text\"").is_err());
    }
}
