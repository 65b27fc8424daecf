//! The use cases of the user service: registration with business verification, sign-in
//! sessions, profiles, signing keys, one file per group, and the [`UserError`] they fail with.
//! Transport-free: the gRPC adapter (`api`) maps requests in and [`UserError`]s out; the adapters
//! they run on (tables, NTS, keys, hashing) are in `infra`.

mod error;
pub mod ids;
mod profile;
mod registration;
pub mod revocations;
mod session;
pub mod verification;

use std::sync::Arc;
use std::time::Duration;

use kem_kit::cache::CacheAside;
/// Where "now" comes from: the kit's injected clock (a `ManualClock` in tests about time).
pub use kem_kit::clock::Clock;
use kem_kit::store::millis;

pub use error::{REASON_BUSINESS_NUMBER, REASON_INVALID_FIELDS, UserError};
pub use profile::ProfileInput;
pub use registration::Registration;
pub use revocations::{Revocation, RevocationPage};
pub use session::{REASON_WRONG_PASSWORD, TokenPair};
pub use verification::{BusinessVerifier, VerifyError};

use crate::config::UserConfig;
use crate::domain::{BusinessNumber, FieldViolation, Verification};
use crate::infra::credentials::PasswordHasher;
use crate::infra::keyring::{KeyRing, PublishedKey};
use crate::infra::repository::Repository;

/// The user service's use cases and what they run on.
#[derive(Debug)]
pub struct UserCore {
    repo: Repository,
    verifier: BusinessVerifier,
    keys: Arc<KeyRing>,
    hasher: PasswordHasher,
    owners: CacheAside,
    config: UserConfig,
    clock: Arc<dyn Clock>,
}

impl UserCore {
    /// Assembles the use cases, reading "now" from `clock` (sessions, throttle windows, token
    /// issue times, purges; the verifier has its own handle on the same clock).
    pub fn new(
        repo: Repository,
        verifier: BusinessVerifier,
        keys: Arc<KeyRing>,
        hasher: PasswordHasher,
        owners: CacheAside,
        config: UserConfig,
        clock: Arc<dyn Clock>,
    ) -> UserCore {
        UserCore { repo, verifier, keys, hasher, owners, config, clock }
    }

    /// Now, in milliseconds since the Unix epoch, from the injected clock.
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The signing key ring (rotation, published keys).
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    /// The business verifier (NTS provider, breaker).
    pub fn verifier(&self) -> &BusinessVerifier {
        &self.verifier
    }

    /// The configuration.
    pub fn config(&self) -> &UserConfig {
        &self.config
    }

    /// VerifyBusinessNumber: a pure lookup; inactive and unknown businesses are results, not
    /// errors.
    pub async fn verify_business_number(&self, input: &str) -> Result<Verification, UserError> {
        let number = BusinessNumber::parse(input)
            .map_err(|e| UserError::invalid(vec![FieldViolation::new("businessNumber", e.to_string())]))?;
        self.verifier.verify(&number).await.map_err(|error| {
            if error.is_quota() {
                UserError::NtsQuota { retry_after: error.retry_after(), cause: error }
            } else {
                UserError::NtsUnavailable { retry_after: error.retry_after(), cause: error }
            }
        })
    }

    /// GetSigningKeys: the keys verifiers must accept now, current first.
    pub async fn signing_keys(&self) -> Vec<PublishedKey> {
        self.keys.published().await
    }

    /// One round of background upkeep: key reload/rotation, purge of expired rows.
    pub async fn maintain(&self) {
        if let Err(error) = self.keys.maintain().await {
            tracing::warn!(%error, "signing key maintenance failed; retrying next round");
        }
        let now = self.clock.now();
        let ago = |d: Duration| millis(now.checked_sub(d).unwrap_or(now));
        if let Err(error) = self.repo.purge_sessions(ago(Duration::from_secs(24 * 3600))).await {
            tracing::warn!(%error, "cannot purge expired refresh tokens");
        }
        let login = &self.config.login;
        let purged = self
            .repo
            .purge_login_throttle(
                millis(now),
                ago(login.account_quiet),
                ago(login.address_window),
                ago(login.known_address_ttl),
            )
            .await;
        if let Err(error) = purged {
            tracing::warn!(%error, "cannot purge old sign-in throttle counters");
        }
        if let Err(error) = self.repo.purge_revocations(millis(now)).await {
            tracing::warn!(%error, "cannot purge expired access-token revocations");
        }
        if let Err(error) = self.repo.purge_verifications(millis(now)).await {
            tracing::warn!(%error, "cannot purge expired business verifications");
        }
    }
}

/// Milliseconds of a duration, saturating.
fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
