//! Business number verification with a two-tier cache: Redis (hot, shared, short TTL) in front of
//! the `business_verifications` table (status-dependent TTL, survives a cache flush), in front of
//! NTS. Failures to reach NTS are never cached; a cache or database failure falls through to the
//! next tier instead of failing the lookup.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use kem_kit::cache::CacheAside;
use kem_kit::clock::Clock;
use kem_kit::external::ProviderError;
use kem_kit::store::millis;

use crate::config::VerificationTtl;
use crate::domain::{BusinessNumber, BusinessStatus, Verification};
use crate::infra::nts::{NtsError, NtsProvider};
use crate::infra::repository::Repository;

/// Retry advice when NTS gave none (a breaker gives its own).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5);

/// Why no verification could be produced.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VerifyError {
    /// NTS failed and nothing fresh is cached.
    #[error(transparent)]
    Nts(#[from] NtsError),
}

impl VerifyError {
    /// When asking again makes sense.
    pub fn retry_after(&self) -> Duration {
        match self {
            VerifyError::Nts(NtsError::Provider(e)) => e.retry_after().unwrap_or(DEFAULT_RETRY_AFTER),
            VerifyError::Nts(NtsError::Contract(_)) => DEFAULT_RETRY_AFTER,
        }
    }

    /// Whether the NTS quota is used up.
    pub fn is_quota(&self) -> bool {
        matches!(self, VerifyError::Nts(e) if e.is_quota())
    }

    /// Whether NTS's breaker refused the call (nothing was sent).
    pub fn is_breaker_open(&self) -> bool {
        matches!(self, VerifyError::Nts(NtsError::Provider(ProviderError::BreakerOpen { .. })))
    }
}

/// Looks business numbers up, through the caches.
#[derive(Debug, Clone)]
pub struct BusinessVerifier {
    nts: Arc<NtsProvider>,
    repo: Repository,
    cache: CacheAside,
    ttl: VerificationTtl,
    clock: Arc<dyn Clock>,
}

impl BusinessVerifier {
    /// A verifier asking `nts`, caching in `cache` (Redis) and `repo` (database), stamping and
    /// expiring answers by `clock`.
    pub fn new(
        nts: NtsProvider,
        repo: Repository,
        cache: CacheAside,
        ttl: VerificationTtl,
        clock: Arc<dyn Clock>,
    ) -> BusinessVerifier {
        BusinessVerifier { nts: Arc::new(nts), repo, cache, ttl, clock }
    }

    /// The NTS provider.
    pub fn provider(&self) -> &NtsProvider {
        &self.nts
    }

    /// How long an answer with `status` is reused.
    pub fn ttl(&self, status: BusinessStatus) -> Duration {
        match status {
            BusinessStatus::Active => self.ttl.active,
            BusinessStatus::Suspended | BusinessStatus::Closed => self.ttl.inactive,
            BusinessStatus::Unregistered => self.ttl.unregistered,
        }
    }

    fn expired(&self, v: &Verification, now: SystemTime) -> bool {
        let until = v.verified_at_ms.saturating_add(i64::try_from(self.ttl(v.status).as_millis()).unwrap_or(i64::MAX));
        until <= millis(now)
    }

    /// The status of `number`: cached if fresh, otherwise asked at NTS (and cached).
    /// Concurrent lookups of one number share one NTS call.
    pub async fn verify(&self, number: &BusinessNumber) -> Result<Verification, VerifyError> {
        let key = format!("nts:v1:{}", number.as_str());
        // Twice at most: a hot entry older than its status TTL is dropped and looked up again.
        for _ in 0..2 {
            let asked = Arc::new(AtomicBool::new(false));
            let loader_asked = asked.clone();
            let mut answer = self
                .cache
                .get_or_load(&key, self.ttl.hot, || async move { self.load(number, &loader_asked).await })
                .await?;
            if self.expired(&answer, self.clock.now()) && !asked.load(Ordering::Relaxed) {
                self.cache.invalidate(&key).await;
                continue;
            }
            answer.cached = !asked.load(Ordering::Relaxed);
            return Ok(answer);
        }
        // The cache keeps handing back an expired entry (cannot delete it): ask NTS directly.
        let asked = AtomicBool::new(false);
        self.load(number, &asked).await
    }

    /// The database tier, then NTS.
    async fn load(&self, number: &BusinessNumber, asked: &AtomicBool) -> Result<Verification, VerifyError> {
        let now = self.clock.now();
        match self.repo.fresh_verification(number.as_str(), millis(now)).await {
            Ok(Some(stored)) if !self.expired(&stored, now) => return Ok(stored),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "verification cache table unavailable; asking NTS"),
        }
        asked.store(true, Ordering::Relaxed);
        let answer = self.nts.lookup(number, self.clock.now()).await?;
        let expires = answer
            .verified_at_ms
            .saturating_add(i64::try_from(self.ttl(answer.status).as_millis()).unwrap_or(i64::MAX));
        if let Err(error) = self.repo.store_verification(&answer, expires).await {
            tracing::warn!(%error, "cannot store the NTS answer; it is cached in Redis only");
        }
        tracing::info!(provider = %answer.source.name, status = ?answer.status, code = %answer.nts_status_code,
            "business number looked up");
        Ok(answer)
    }
}
