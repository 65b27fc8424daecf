//! A keyed GCRA rate limiter, bounded in memory, with time passed in.
//!
//! **Why GCRA** (the Generic Cell Rate Algorithm, i.e. a token bucket expressed as one timestamp):
//! it admits exactly the same traffic as a token bucket of the same rate and burst, but keeps a
//! single `Instant` per key (the *theoretical arrival time*, TAT) instead of a token count plus a
//! last-refill time, needs no refill arithmetic or background timer, and gives `Retry-After` and
//! `RateLimit-Reset` directly as `TAT - now`. Above all, a key whose TAT is in the past is
//! *indistinguishable* from a key never seen, so idle entries can be dropped at any time without
//! changing any decision: that is what keeps memory bounded for free.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// Keys a limiter holds at most unless configured otherwise.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Longest accepted `per` window, which also bounds every instant the limiter computes.
const MAX_PER: Duration = Duration::from_secs(24 * 60 * 60);
/// Largest accepted burst.
const MAX_BURST: u32 = 1_000_000;
/// Shards of the key map (a power of two), so concurrent requests rarely contend on one lock.
const SHARDS: usize = 16;
/// Below this many keys the limiter uses one shard (per-shard caps would be too small to be fair).
const MIN_KEYS_FOR_SHARDING: usize = 1024;

/// A rate: `rate` requests per `per`, with bursts of up to `burst` requests at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    rate: u32,
    per: Duration,
    burst: u32,
    /// `per / rate`: the steady-state spacing between two requests.
    interval: Duration,
    /// `interval * (burst - 1)`: how far ahead of `now` the TAT may run and still admit a request.
    tolerance: Duration,
}

/// Why a [`RateLimit`] is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// `rate` or `burst` is zero (use no limiter at all for "unlimited", and a route block for "none").
    #[error("rate limit needs rate >= 1 and burst >= 1 (got rate {rate}, burst {burst})")]
    Zero {
        /// Configured rate.
        rate: u32,
        /// Configured burst.
        burst: u32,
    },
    /// `per` is zero, longer than a day, or so short that `per / rate` is under a nanosecond.
    #[error("rate limit window {per:?} for rate {rate} must be between 1 ns per request and 24 h")]
    Window {
        /// Configured window.
        per: Duration,
        /// Configured rate.
        rate: u32,
    },
    /// `burst` is above 1,000,000.
    #[error("rate limit burst {burst} is above the maximum of {MAX_BURST}")]
    Burst {
        /// Configured burst.
        burst: u32,
    },
}

impl RateLimit {
    /// `rate` requests per `per`, bursts of up to `burst`.
    pub fn new(rate: u32, per: Duration, burst: u32) -> Result<Self, RateLimitError> {
        if rate == 0 || burst == 0 {
            return Err(RateLimitError::Zero { rate, burst });
        }
        if burst > MAX_BURST {
            return Err(RateLimitError::Burst { burst });
        }
        if per.is_zero() || per > MAX_PER || per.as_nanos() < u128::from(rate) {
            return Err(RateLimitError::Window { per, rate });
        }
        Ok(Self::checked(rate, per, burst))
    }

    /// `rate` requests per second, bursts of up to `burst`.
    pub fn per_second(rate: u32, burst: u32) -> Result<Self, RateLimitError> {
        Self::new(rate, Duration::from_secs(1), burst)
    }

    /// `rate` requests per minute, bursts of up to `burst`.
    pub fn per_minute(rate: u32, burst: u32) -> Result<Self, RateLimitError> {
        Self::new(rate, Duration::from_secs(60), burst)
    }

    /// For built-in defaults: evaluated in `const` items, so a bad literal fails the build.
    pub(crate) const fn checked(rate: u32, per: Duration, burst: u32) -> Self {
        assert!(rate > 0 && burst > 0 && burst <= MAX_BURST, "rate and burst must be positive");
        assert!(per.as_nanos() >= rate as u128 && per.as_secs() <= MAX_PER.as_secs(), "window out of range");
        let interval = Duration::from_nanos((per.as_nanos() / rate as u128) as u64);
        Self { rate, per, burst, interval, tolerance: interval.saturating_mul(burst - 1) }
    }

    /// Requests per window.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// The window.
    pub fn per(&self) -> Duration {
        self.per
    }

    /// Most requests admitted at once; what `RateLimit-Limit` reports.
    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Steady-state spacing between requests (`per / rate`).
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Time for an exhausted key to earn its whole burst back; an entry idle this long is dropped.
    pub fn full_refill(&self) -> Duration {
        self.tolerance.saturating_add(self.interval)
    }
}

/// The outcome of one [`RateLimiter::check`], with what the `RateLimit-*` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The burst quota (`RateLimit-Limit`).
    pub limit: u32,
    /// Requests still admitted right now after this one (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Until the whole quota is back (`RateLimit-Reset`).
    pub reset_after: Duration,
    /// When denied: until the next request would be admitted (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl Decision {
    /// Of two decisions for one request (e.g. per IP and per route), the one to act on and report:
    /// a denial over an admission, then the longer wait, then the fewer remaining.
    pub fn most_restrictive(self, other: Decision) -> Decision {
        match (self.allowed, other.allowed) {
            (true, false) => other,
            (false, true) => self,
            (false, false) if other.retry_after > self.retry_after => other,
            (false, false) => self,
            (true, true) if (other.remaining, other.reset_after) < (self.remaining, self.reset_after) => other,
            (true, true) => self,
        }
    }
}

/// A GCRA rate limiter over keys `K` (client IPs, owners, …), thread-safe and memory-bounded.
///
/// Memory: entries idle for [`RateLimit::full_refill`] are swept periodically (dropping them changes
/// no decision); if the map still reaches `max_keys`, the eighth of the entries with the oldest TAT —
/// those closest to a full quota anyway — is evicted. Under a flood of distinct keys this fails open
/// for the evicted keys (they get a fresh quota), which is the price of bounded memory; the per-IP
/// limit in front keeps one client from causing it alone.
#[derive(Debug)]
pub struct RateLimiter<K> {
    limit: RateLimit,
    shards: Box<[Mutex<Shard<K>>]>,
    shard_cap: usize,
    hasher: RandomState,
}

#[derive(Debug)]
struct Shard<K> {
    tats: HashMap<K, Instant>,
    next_sweep: Option<Instant>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter enforcing `limit` per key, holding at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn new(limit: RateLimit) -> Self {
        Self::with_max_keys(limit, DEFAULT_MAX_KEYS)
    }

    /// A limiter enforcing `limit` per key, holding at most `max_keys` keys (at least 1).
    pub fn with_max_keys(limit: RateLimit, max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        let shard_count = if max_keys >= MIN_KEYS_FOR_SHARDING { SHARDS } else { 1 };
        let shards = (0..shard_count).map(|_| Mutex::new(Shard { tats: HashMap::new(), next_sweep: None })).collect();
        // Each shard gets an equal share, so the total never exceeds `max_keys`.
        Self { limit, shards, shard_cap: max_keys / shard_count, hasher: RandomState::new() }
    }

    /// The enforced limit.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Most keys held at once.
    pub fn max_keys(&self) -> usize {
        self.shard_cap * self.shards.len()
    }

    /// Keys currently held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().tats.len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts one request for `key` at `now` and says whether it may proceed.
    ///
    /// A denied request does not consume quota, so a client retrying too early is not pushed
    /// further back.
    pub fn check(&self, key: &K, now: Instant) -> Decision {
        let shard = &self.shards[self.hasher.hash_one(key) as usize % self.shards.len()];
        shard.lock().check(key, now, &self.limit, self.shard_cap)
    }
}

impl<K: Hash + Eq + Clone> Shard<K> {
    fn check(&mut self, key: &K, now: Instant, limit: &RateLimit, cap: usize) -> Decision {
        if self.next_sweep.is_none_or(|at| now >= at) {
            self.tats.retain(|_, tat| *tat > now);
            self.next_sweep = Some(now + limit.full_refill().max(Duration::from_secs(1)));
        }
        let known = self.tats.get(key).copied();
        let tat = known.map_or(now, |tat| tat.max(now));
        let ahead = tat.saturating_duration_since(now);
        if ahead > limit.tolerance {
            return Decision {
                allowed: false,
                limit: limit.burst,
                remaining: 0,
                reset_after: ahead,
                retry_after: Some(ahead - limit.tolerance),
            };
        }
        let new_tat = tat + limit.interval;
        match self.tats.get_mut(key) {
            Some(entry) => *entry = new_tat,
            None => {
                self.make_room(now, cap);
                self.tats.insert(key.clone(), new_tat);
            }
        }
        let used = ahead + limit.interval;
        let left = limit.full_refill().saturating_sub(used).as_nanos() / limit.interval.as_nanos();
        Decision {
            allowed: true,
            limit: limit.burst,
            remaining: u32::try_from(left).unwrap_or(u32::MAX).min(limit.burst),
            reset_after: used,
            retry_after: None,
        }
    }

    /// Frees a slot: first drop idle keys (lossless), then the oldest TATs (closest to a full quota).
    fn make_room(&mut self, now: Instant, cap: usize) {
        if self.tats.len() < cap {
            return;
        }
        self.tats.retain(|_, tat| *tat > now);
        if self.tats.len() < cap {
            return;
        }
        // Evict a batch so the O(n) selection is paid once per cap/8 new keys, not per key.
        let evict = (cap / 8).clamp(1, self.tats.len());
        let mut oldest: Vec<(Instant, K)> = self.tats.iter().map(|(k, tat)| (*tat, k.clone())).collect();
        oldest.select_nth_unstable_by_key(evict - 1, |(tat, _)| *tat);
        for (_, key) in &oldest[..evict] {
            self.tats.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn burst_is_admitted_then_limited() {
        let limiter = RateLimiter::new(RateLimit::per_second(10, 5).expect("limit"));
        let t0 = Instant::now();
        for expected_remaining in (0..5).rev() {
            let d = limiter.check(&"k", t0);
            assert!(d.allowed);
            assert_eq!((d.limit, d.remaining, d.retry_after), (5, expected_remaining, None));
        }
        let denied = limiter.check(&"k", t0);
        assert!(!denied.allowed);
        assert_eq!(denied.remaining, 0);
        assert_eq!(denied.retry_after, Some(ms(100)), "one interval (1 s / 10) until the next slot");
        assert_eq!(denied.reset_after, ms(500), "whole burst back after 5 intervals");
        assert_eq!(limiter.check(&"k", t0), denied, "a denied request consumes nothing");
    }

    #[test]
    fn quota_refills_over_virtual_time() {
        let limiter = RateLimiter::new(RateLimit::per_second(10, 5).expect("limit"));
        let t0 = Instant::now();
        (0..5).for_each(|_| assert!(limiter.check(&"k", t0).allowed));
        assert!(!limiter.check(&"k", t0 + ms(99)).allowed);
        let d = limiter.check(&"k", t0 + ms(100));
        assert!(d.allowed, "one slot back after one interval");
        assert_eq!(d.remaining, 0);
        assert!(!limiter.check(&"k", t0 + ms(100)).allowed);
        // Steady state: exactly one request per interval passes.
        for i in 2..20 {
            assert!(limiter.check(&"k", t0 + ms(100 * i)).allowed, "request {i}");
            assert!(!limiter.check(&"k", t0 + ms(100 * i)).allowed, "second request {i}");
        }
        let rested = limiter.check(&"k", t0 + Duration::from_secs(10));
        assert_eq!((rested.allowed, rested.remaining), (true, 4), "a rested key has its whole burst");
    }

    #[test]
    fn keys_are_independent() {
        let limiter = RateLimiter::new(RateLimit::per_minute(1, 1).expect("limit"));
        let t0 = Instant::now();
        assert!(limiter.check(&1u32, t0).allowed);
        assert!(!limiter.check(&1u32, t0).allowed);
        assert!(limiter.check(&2u32, t0).allowed);
        assert_eq!(limiter.check(&1u32, t0).retry_after, Some(Duration::from_secs(60)));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_keys() {
        let limiter = RateLimiter::with_max_keys(RateLimit::per_second(1, 10).expect("limit"), 10_000);
        let t0 = Instant::now();
        for key in 0..100_000u32 {
            assert!(limiter.check(&key, t0).allowed);
            if key % 10_000 == 0 {
                assert!(limiter.len() <= 10_000);
            }
        }
        assert!(limiter.len() <= 10_000, "{} keys held", limiter.len());
        assert!(limiter.max_keys() <= 10_000);
        // Once every entry has been idle for a full refill, the next sweep drops them all.
        let later = t0 + Duration::from_secs(60);
        for key in 0..SHARDS as u32 * 64 {
            limiter.check(&(1_000_000 + key), later);
        }
        assert!(limiter.len() <= SHARDS * 64, "idle keys swept, {} left", limiter.len());
    }

    #[test]
    fn small_limiters_hold_exactly_their_cap() {
        let limiter = RateLimiter::with_max_keys(RateLimit::per_second(1, 1).expect("limit"), 3);
        let t0 = Instant::now();
        for key in 0..50u8 {
            limiter.check(&key, t0 + ms(u64::from(key)));
        }
        assert_eq!(limiter.len(), 3);
        assert!(!limiter.check(&49u8, t0 + ms(49)).allowed, "the newest key is kept");
    }

    #[test]
    fn bad_limits_are_refused() {
        assert_eq!(RateLimit::per_second(0, 1), Err(RateLimitError::Zero { rate: 0, burst: 1 }));
        assert_eq!(RateLimit::per_second(1, 0), Err(RateLimitError::Zero { rate: 1, burst: 0 }));
        assert!(matches!(RateLimit::new(1, Duration::ZERO, 1), Err(RateLimitError::Window { .. })));
        assert!(matches!(RateLimit::new(1, Duration::from_secs(2 * 86_400), 1), Err(RateLimitError::Window { .. })));
        assert!(matches!(RateLimit::per_second(1, 2_000_000), Err(RateLimitError::Burst { .. })));
    }

    #[test]
    fn most_restrictive_prefers_denials_then_longer_waits_then_fewer_remaining() {
        let ok = |remaining| Decision { allowed: true, limit: 10, remaining, reset_after: ms(1), retry_after: None };
        let no = |wait| Decision {
            allowed: false,
            limit: 10,
            remaining: 0,
            reset_after: ms(wait),
            retry_after: Some(ms(wait)),
        };
        assert_eq!(ok(5).most_restrictive(no(1)), no(1));
        assert_eq!(no(1).most_restrictive(no(9)), no(9));
        assert_eq!(ok(5).most_restrictive(ok(2)), ok(2));
        assert_eq!(ok(2).most_restrictive(ok(5)), ok(2));
    }
}
