//! Password hashing with argon2id (PHC strings), off the async runtime.
//!
//! Hashing and verifying take tens of milliseconds of CPU and `memory_kib` of memory each, so
//! they run on the blocking pool behind a semaphore: a burst of sign-ins queues instead of
//! starving the runtime's workers or exhausting memory.

use std::sync::Arc;

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version};
use rand::RngCore as _;
use tokio::sync::Semaphore;

use crate::config::PasswordSettings;

/// Why a password could not be hashed or checked (a defect or a resource problem, never a wrong
/// password).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The configured parameters are out of argon2's range.
    #[error(
        "invalid argon2id parameters (m={memory_kib} KiB, t={iterations}, p={parallelism}): {source}; \
         set KEM_ARGON2_MEMORY_KIB and KEM_ARGON2_ITERATIONS within argon2's range"
    )]
    Params {
        /// Memory.
        memory_kib: u32,
        /// Passes.
        iterations: u32,
        /// Lanes.
        parallelism: u32,
        /// argon2's complaint.
        #[source]
        source: argon2::Error,
    },
    /// argon2 failed to hash (a salt or output it could not encode: a defect).
    #[error("password hashing failed (nothing was stored): {0}")]
    Failed(#[source] argon2::password_hash::Error),
    /// The blocking hashing task panicked or was cancelled.
    #[error("the password hashing task was lost: {0}")]
    TaskLost(#[source] tokio::task::JoinError),
    /// The hasher's concurrency limit was closed (the service is stopping).
    #[error("the password hasher is closed (the service is stopping): {0}")]
    Closed(#[source] tokio::sync::AcquireError),
    /// A stored hash is not a PHC string this service can read.
    #[error(
        "a stored password hash is unreadable (not an argon2 PHC string; check how the owners row was written): {0}"
    )]
    Stored(#[source] argon2::password_hash::Error),
}

/// Hashes and verifies passwords with the configured argon2id cost.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of a random password: verified against when the account does not exist, so an
    /// unknown email costs the same time as a wrong password.
    decoy: Arc<str>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("m_cost", &self.params.m_cost())
            .field("t_cost", &self.params.t_cost())
            .field("p_cost", &self.params.p_cost())
            .finish()
    }
}

impl PasswordHasher {
    /// A hasher with `settings` (computes the decoy hash once).
    pub async fn new(settings: PasswordSettings) -> Result<PasswordHasher, HashError> {
        let params =
            Params::new(settings.memory_kib, settings.iterations, settings.parallelism, None).map_err(|e| {
                HashError::Params {
                    memory_kib: settings.memory_kib,
                    iterations: settings.iterations,
                    parallelism: settings.parallelism,
                    source: e,
                }
            })?;
        let mut hasher = PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(settings.max_concurrent.max(1))),
            decoy: Arc::from(""),
        };
        let mut random = [0u8; 24];
        rand::rng().fill_bytes(&mut random);
        hasher.decoy = Arc::from(hasher.hash(format!("{random:?}")).await?);
        Ok(hasher)
    }

    fn argon2(params: Params) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
    }

    /// The PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) of `password` with a fresh salt.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let params = self.params.clone();
        self.blocking(move || {
            let mut salt = [0u8; 16];
            rand::rng().fill_bytes(&mut salt);
            let salt = SaltString::encode_b64(&salt).map_err(HashError::Failed)?;
            Self::argon2(params)
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(HashError::Failed)
        })
        .await
    }

    /// Whether `password` matches `stored` (its own parameters are used). With no stored hash
    /// (unknown account) a decoy is verified and the answer is `false`, taking the same time.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, HashError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.decoy.to_string());
        let params = self.params.clone();
        let matched = self
            .blocking(move || {
                let parsed = PasswordHash::new(&hash).map_err(HashError::Stored)?;
                match Self::argon2(params).verify_password(password.as_bytes(), &parsed) {
                    Ok(()) => Ok(true),
                    Err(argon2::password_hash::Error::Password) => Ok(false),
                    Err(e) => Err(HashError::Stored(e)),
                }
            })
            .await?;
        Ok(known && matched)
    }

    /// Whether `stored` was made with other parameters than the configured ones (it is then
    /// re-hashed at the next successful sign-in).
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else { return true };
        if parsed.algorithm.as_str() != "argon2id" {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(HashError::Closed)?;
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(HashError::TaskLost)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_salted_argon2id_and_verify() {
        let hasher = PasswordHasher::new(PasswordSettings::TESTING).await.expect("hasher");
        let a = hasher.hash("correct-horse-1".into()).await.expect("hash");
        let b = hasher.hash("correct-horse-1".into()).await.expect("hash");
        assert!(a.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(hasher.verify("correct-horse-1".into(), Some(a.clone())).await.expect("verify"));
        assert!(!hasher.verify("correct-horse-2".into(), Some(a.clone())).await.expect("verify"));
        assert!(!hasher.verify("anything".into(), None).await.expect("decoy"), "unknown accounts never match");
        assert!(!hasher.needs_rehash(&a));
        assert!(matches!(hasher.verify("x".into(), Some("not a hash".into())).await, Err(HashError::Stored(_))));
    }

    #[tokio::test]
    async fn hashes_made_with_other_parameters_need_a_rehash() {
        let cheap = PasswordHasher::new(PasswordSettings::TESTING).await.expect("hasher");
        let stronger = PasswordHasher::new(PasswordSettings { memory_kib: 512, ..PasswordSettings::TESTING })
            .await
            .expect("hasher");
        let old = cheap.hash("correct-horse-1".into()).await.expect("hash");
        assert!(stronger.needs_rehash(&old));
        assert!(stronger.verify("correct-horse-1".into(), Some(old)).await.expect("old params still verify"));
        assert!(stronger.needs_rehash("garbage"));
    }

    #[tokio::test]
    async fn out_of_range_parameters_are_refused() {
        let bad = PasswordSettings { memory_kib: 1, ..PasswordSettings::TESTING };
        let error = PasswordHasher::new(bad).await.expect_err("refused");
        assert!(matches!(error, HashError::Params { .. }), "{error:?}");
        let cause = std::error::Error::source(&error).expect("argon2's own error is kept as the source");
        assert!(!cause.to_string().is_empty());
        assert!(error.to_string().contains("KEM_ARGON2_MEMORY_KIB"), "tells the operator what to set: {error}");
    }
}
