//! The edge's small in-memory cache of renditions, bounded in bytes, least recently used out
//! first, with one backend fetch per rendition at a time: a crawler storm on one link (a post
//! going viral, a platform's fetchers retrying in parallel) costs the content service one call,
//! not one per request.
//!
//! A rendition never changes under its key (the image, the variant and — for a partner QR
//! rendition — the QR text name a deterministic conversion of immutable bytes), so entries need
//! no expiry; only memory bounds them.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use kem_kit::media::MediaVariant;
use parking_lot::Mutex;

/// One rendition as the edge serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendition {
    /// `Content-Type`.
    pub content_type: String,
    /// The bytes.
    pub data: Bytes,
    /// Lower-case hex SHA-256 of the bytes (the `ETag`).
    pub sha256: String,
}

/// What a rendition is cached under: everything the bytes depend on. The QR text is part of it,
/// so two partner QR links on one image never share a body (their ETags, the SHA-256 of the
/// bodies, differ with them); the expiry is not, so two links to one rendition share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The image.
    pub image_id: String,
    /// The rendition.
    pub variant: MediaVariant,
    /// The signed QR text ([`MediaVariant::PartnerQr`] only).
    pub qr_text: Option<String>,
}

impl Key {
    /// The rendition a verified token grants.
    pub fn of(grant: &kem_kit::media::MediaGrant) -> Key {
        Key { image_id: grant.image_id.clone(), variant: grant.variant, qr_text: grant.qr_text.clone() }
    }
}

struct Entry {
    rendition: Arc<Rendition>,
    /// The tick of its last use; the smallest is evicted first.
    used: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    bytes: usize,
    tick: u64,
}

/// Renditions in memory, at most `max_bytes` of them; a rendition larger than `max_entry_bytes`
/// is served but never kept (it would evict everything else).
pub struct RenditionCache {
    state: Mutex<State>,
    /// One lock per rendition being fetched: the followers wait on it, then find the leader's
    /// answer in the cache.
    fetching: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    max_bytes: usize,
    max_entry_bytes: usize,
}

impl std::fmt::Debug for RenditionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("RenditionCache")
            .field("entries", &state.entries.len())
            .field("bytes", &state.bytes)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl RenditionCache {
    /// A cache of at most `max_bytes`, keeping renditions up to `max_entry_bytes` each.
    pub fn new(max_bytes: usize, max_entry_bytes: usize) -> RenditionCache {
        RenditionCache {
            state: Mutex::default(),
            fetching: Mutex::default(),
            max_bytes,
            max_entry_bytes: max_entry_bytes.min(max_bytes),
        }
    }

    /// The cached rendition of `key`, marked as just used.
    pub fn get(&self, key: &Key) -> Option<Arc<Rendition>> {
        let mut state = self.state.lock();
        state.tick += 1;
        let tick = state.tick;
        let entry = state.entries.get_mut(key)?;
        entry.used = tick;
        Some(entry.rendition.clone())
    }

    /// Keeps `rendition` under `key`, evicting the least recently used until it fits. Eviction
    /// scans the entries: a few hundred at most (megabytes each), so that is cheaper than
    /// keeping a second ordered index up to date on every hit.
    pub fn insert(&self, key: Key, rendition: Arc<Rendition>) {
        let size = rendition.data.len();
        if size > self.max_entry_bytes {
            return;
        }
        let mut state = self.state.lock();
        state.tick += 1;
        let used = state.tick;
        if let Some(old) = state.entries.insert(key, Entry { rendition, used }) {
            state.bytes -= old.rendition.data.len();
        }
        state.bytes += size;
        while state.bytes > self.max_bytes {
            let Some(oldest) = state.entries.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| k.clone()) else { break };
            if let Some(evicted) = state.entries.remove(&oldest) {
                state.bytes -= evicted.rendition.data.len();
            }
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.state.lock().bytes
    }

    /// The rendition of `key`: cached, or fetched by `fetch` — by one caller at a time per key,
    /// the others waiting for it and then reading what it cached. A failed fetch caches nothing,
    /// and the next waiter tries itself.
    pub async fn get_or_fetch<E, F, Fut>(&self, key: &Key, fetch: F) -> Result<Arc<Rendition>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Rendition, E>>,
    {
        if let Some(hit) = self.get(key) {
            return Ok(hit);
        }
        let lock = self.fetching.lock().entry(key.clone()).or_default().clone();
        // Removes the lock when the last one out leaves, even when a waiter is cancelled (its
        // client went away), so the map holds only renditions being fetched.
        let _cleanup = Cleanup { fetching: &self.fetching, key, lock: lock.clone() };
        let _turn = lock.lock().await;
        if let Some(hit) = self.get(key) {
            return Ok(hit);
        }
        let rendition = Arc::new(fetch().await?);
        self.insert(key.clone(), rendition.clone());
        Ok(rendition)
    }
}

struct Cleanup<'a> {
    fetching: &'a Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
    key: &'a Key,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let mut fetching = self.fetching.lock();
        // Three references: the map's, this guard's and the caller's `lock`, all of this caller:
        // nobody else is waiting.
        if Arc::strong_count(&self.lock) <= 3 {
            fetching.remove(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn rendition(size: usize) -> Rendition {
        Rendition { content_type: "image/jpeg".into(), data: Bytes::from(vec![0; size]), sha256: "s".into() }
    }

    fn key(n: u8) -> Key {
        Key { image_id: format!("img-{n}"), variant: MediaVariant::Jpeg, qr_text: None }
    }

    fn qr(text: &str) -> Key {
        Key { image_id: "img-1".into(), variant: MediaVariant::PartnerQr, qr_text: Some(text.into()) }
    }

    #[test]
    fn the_least_recently_used_goes_first_and_the_bytes_stay_bounded() {
        let cache = RenditionCache::new(100, 60);
        cache.insert(key(1), Arc::new(rendition(40)));
        cache.insert(key(2), Arc::new(rendition(40)));
        assert!(cache.get(&key(1)).is_some(), "1 is now the most recent");
        cache.insert(key(3), Arc::new(rendition(40)));
        assert!(cache.get(&key(2)).is_none(), "2 was the least recently used");
        assert!(cache.get(&key(1)).is_some() && cache.get(&key(3)).is_some());
        assert_eq!(cache.bytes(), 80);
        cache.insert(key(4), Arc::new(rendition(61)));
        assert!(cache.get(&key(4)).is_none(), "larger than an entry may be: served, not kept");
        cache.insert(key(1), Arc::new(rendition(10)));
        assert_eq!(cache.bytes(), 50, "a replaced entry's bytes are given back");
        assert_eq!((key(1).variant, cache.get(&key(1)).map(|r| r.data.len())), (MediaVariant::Jpeg, Some(10)));
    }

    #[tokio::test]
    async fn two_qr_texts_on_one_image_are_two_renditions() {
        let cache = RenditionCache::new(1_000, 1_000);
        let body = |text: &str| Rendition {
            content_type: "image/png".into(),
            data: Bytes::from(text.as_bytes().to_vec()),
            sha256: text.len().to_string(),
        };
        let a = cache.get_or_fetch(&qr("https://a.example/"), || async { Ok::<_, ()>(body("a")) }).await;
        let b = cache.get_or_fetch(&qr("https://b.example/"), || async { Ok::<_, ()>(body("bb")) }).await;
        assert_eq!(
            (a.map(|r| r.data.clone()), b.map(|r| r.data.clone())),
            (Ok(Bytes::from("a")), Ok(Bytes::from("bb")))
        );
        assert!(cache.get(&qr("https://c.example/")).is_none());
        let without = Key { qr_text: None, ..qr("x") };
        assert!(cache.get(&without).is_none(), "no text is another key than any text");
        assert!(cache.get(&Key { variant: MediaVariant::Original, ..qr("https://a.example/") }).is_none());
        // The same text again (another link, another expiry): the kept body, no fetch.
        let again = cache.get_or_fetch(&qr("https://a.example/"), || async { Err::<Rendition, _>(()) }).await;
        assert_eq!(again.map(|r| r.data.clone()), Ok(Bytes::from("a")));
    }

    #[tokio::test]
    async fn concurrent_misses_on_one_key_fetch_once() {
        let cache = Arc::new(RenditionCache::new(1_000, 1_000));
        let fetches = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, fetches) = (cache.clone(), fetches.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_fetch(&key(1), || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        Ok::<_, ()>(rendition(10))
                    })
                    .await
            }));
        }
        for task in tasks {
            assert_eq!(task.await.expect("task").map(|r| r.data.len()), Ok(10));
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert!(cache.fetching.lock().is_empty(), "no lock left behind");
        // A failure caches nothing: the next caller fetches again.
        let failed = cache.get_or_fetch(&key(2), || async { Err::<Rendition, _>("down") }).await;
        assert_eq!(failed.map(|_| ()), Err("down"));
        let fetched = cache.get_or_fetch(&key(2), || async { Ok::<_, ()>(rendition(5)) }).await;
        assert_eq!(fetched.map(|r| r.data.len()), Ok(5));
    }
}
