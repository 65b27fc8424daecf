//! The participation service's settings: its personal-data keys and how long event facts are
//! cached.

use std::path::PathBuf;
use std::time::Duration;

use kem_kit::Secret;

use crate::pii::keys::{self, PiiKeyError, PiiKeySettings};

/// Everything [`start`](crate::start) needs besides the platform context.
#[derive(Debug, Clone)]
pub struct ParticipationConfig {
    /// Personal-data keys (see [`pii::keys`](crate::pii::keys)).
    pub pii: PiiKeySettings,
    /// How long GetEventForParticipation answers are reused for entries and owner listings.
    pub event_cache_ttl: Duration,
}

impl Default for ParticipationConfig {
    /// No configured key (a development key is generated under the data dir) and a 15 s event
    /// cache.
    fn default() -> Self {
        ParticipationConfig { pii: PiiKeySettings::default(), event_cache_ttl: Duration::from_secs(15) }
    }
}

/// A setting in the environment that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ParticipationConfigError {
    /// A variable has a value of the wrong form (secret values are never repeated).
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is expected.
        reason: String,
    },
}

/// Environment variables [`ParticipationConfig::from_env`] reads.
pub mod env {
    /// AES-256 key of personal data, base64 of 32 bytes.
    pub const PII_KEY: &str = "KEM_PARTICIPATION_PII_KEY";
    /// File holding that base64 key (e.g. an Azure Key Vault CSI mount); used when `PII_KEY` is
    /// unset.
    pub const PII_KEY_FILE: &str = "KEM_PARTICIPATION_PII_KEY_FILE";
    /// Earlier AES keys, comma-separated base64, still needed to read rows they encrypted.
    pub const PII_PREVIOUS_KEYS: &str = "KEM_PARTICIPATION_PII_PREVIOUS_KEYS";
    /// HMAC key of phone hashes, base64 of at least 32 bytes (default: derived from the AES key).
    pub const PHONE_HASH_KEY: &str = "KEM_PARTICIPATION_PHONE_HASH_KEY";
    /// `true` to refuse starting without a configured AES key (production).
    pub const REQUIRE_PII_KEY: &str = "KEM_PARTICIPATION_REQUIRE_PII_KEY";
    /// Event-facts cache TTL in milliseconds (default 15000, at most 60000).
    pub const EVENT_CACHE_TTL_MS: &str = "KEM_PARTICIPATION_EVENT_CACHE_TTL_MS";
}

fn invalid(var: &'static str, reason: impl Into<String>) -> ParticipationConfigError {
    ParticipationConfigError::Invalid { var, reason: reason.into() }
}

/// The reason a key was refused, without repeating the variable (or the value).
fn key_reason(error: PiiKeyError) -> String {
    match error {
        PiiKeyError::Invalid { reason, .. } => reason.to_owned(),
        other => other.to_string(),
    }
}

impl ParticipationConfig {
    /// Settings from the environment (see [`env`](mod@env)); anything unset keeps its [`Default`]. Every
    /// variable may instead name a file with `<VAR>_FILE` (Key Vault CSI mounts), the kit's
    /// [`env_or_file`](kem_kit::secret::env_or_file). A key file that cannot be read does not
    /// silently fall back to a development key: `KEM_PARTICIPATION_PII_KEY_FILE` stays set and
    /// [`start`](crate::start) fails naming it.
    pub fn from_env() -> Result<ParticipationConfig, ParticipationConfigError> {
        ParticipationConfig::from_lookup(kem_kit::secret::env_or_file)
    }

    /// Like [`from_env`](Self::from_env) with variables from `lookup` (tests).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ParticipationConfig, ParticipationConfigError> {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut config = ParticipationConfig::default();

        if let Some(key) = var(env::PII_KEY) {
            keys::decode_aes_key(&key, env::PII_KEY).map_err(|e| invalid(env::PII_KEY, key_reason(e)))?;
            config.pii.key = Some(Secret::new(key));
        }
        config.pii.key_file = var(env::PII_KEY_FILE).map(PathBuf::from);
        if let Some(list) = var(env::PII_PREVIOUS_KEYS) {
            for key in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                keys::decode_aes_key(key, env::PII_PREVIOUS_KEYS)
                    .map_err(|e| invalid(env::PII_PREVIOUS_KEYS, key_reason(e)))?;
                config.pii.previous_keys.push(Secret::new(key));
            }
        }
        if let Some(key) = var(env::PHONE_HASH_KEY) {
            keys::decode_hash_key(&key, env::PHONE_HASH_KEY)
                .map_err(|e| invalid(env::PHONE_HASH_KEY, key_reason(e)))?;
            config.pii.phone_hash_key = Some(Secret::new(key));
        }
        if let Some(flag) = var(env::REQUIRE_PII_KEY) {
            config.pii.require_configured_key = match flag.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return Err(invalid(env::REQUIRE_PII_KEY, format!("{flag:?} is not true or false"))),
            };
        }
        if let Some(ms) = var(env::EVENT_CACHE_TTL_MS) {
            let ms = ms.parse::<u64>().ok().filter(|ms| (1..=60_000).contains(ms)).ok_or_else(|| {
                invalid(env::EVENT_CACHE_TTL_MS, format!("{ms:?} is not milliseconds between 1 and 60000"))
            })?;
            config.event_cache_ttl = Duration::from_millis(ms);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<ParticipationConfig, ParticipationConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        ParticipationConfig::from_lookup(|name| vars.get(name).cloned())
    }

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn defaults_generate_a_development_key_and_cache_briefly() {
        let c = config(&[]).expect("defaults");
        assert!(c.pii.key.is_none() && c.pii.key_file.is_none() && !c.pii.require_configured_key);
        assert_eq!(c.event_cache_ttl, Duration::from_secs(15));
    }

    #[test]
    fn keys_and_settings_are_read_and_checked() {
        let c = config(&[
            (env::PII_KEY, KEY),
            (env::PII_PREVIOUS_KEYS, &format!("{KEY}, {KEY}")),
            (env::PHONE_HASH_KEY, KEY),
            (env::REQUIRE_PII_KEY, "true"),
            (env::EVENT_CACHE_TTL_MS, "2500"),
            (env::PII_KEY_FILE, "/mnt/kv/pii-key"),
        ])
        .expect("valid");
        assert_eq!(c.pii.key.as_ref().map(Secret::expose), Some(KEY));
        assert_eq!(c.pii.previous_keys.len(), 2);
        assert!(c.pii.require_configured_key);
        assert_eq!(c.event_cache_ttl, Duration::from_millis(2500));
        assert_eq!(c.pii.key_file, Some(PathBuf::from("/mnt/kv/pii-key")));
        assert!(!format!("{c:?}").contains(KEY), "keys are redacted in Debug");
    }

    #[test]
    fn keys_come_from_mounted_files_and_an_unreadable_file_is_not_ignored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("pii-key");
        std::fs::write(&path, format!("{KEY}\n")).expect("write key");
        let mounted = |file: String| {
            move |name: &str| {
                let lookup = |var: &str| (var == "KEM_PARTICIPATION_PII_KEY_FILE").then(|| file.clone());
                kem_kit::secret::value_or_file(name, lookup)
            }
        };
        let c = ParticipationConfig::from_lookup(mounted(path.display().to_string())).expect("valid");
        assert_eq!(c.pii.key.as_ref().map(Secret::expose), Some(KEY));
        let missing = dir.path().join("absent").display().to_string();
        let c = ParticipationConfig::from_lookup(mounted(missing.clone())).expect("parsed");
        assert!(c.pii.key.is_none());
        assert_eq!(c.pii.key_file, Some(PathBuf::from(&missing)));
        let error = crate::pii::keys::PiiKeys::load(&c.pii, dir.path()).expect_err("no silent development key");
        assert!(error.to_string().contains("absent"), "{error}");
    }

    #[test]
    fn bad_values_name_the_variable_but_not_the_secret() {
        for (var, value) in [
            (env::PII_KEY, "c2hvcnQ="),
            (env::PII_PREVIOUS_KEYS, "%%%"),
            (env::PHONE_HASH_KEY, "c2hvcnQ="),
            (env::REQUIRE_PII_KEY, "maybe"),
            (env::EVENT_CACHE_TTL_MS, "0"),
            (env::EVENT_CACHE_TTL_MS, "15s"),
        ] {
            let error = config(&[(var, value)]).expect_err(var).to_string();
            assert!(error.contains(var), "{error}");
            if var != env::REQUIRE_PII_KEY && !var.ends_with("_MS") {
                assert!(!error.contains(value), "{error}");
            }
        }
    }
}
