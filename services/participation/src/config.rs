//! The participation service's settings: its personal-data keys and how long event facts are
//! cached.

use std::time::Duration;

use kem_kit::Secret;
use kem_kit::config::{self, ConfigError, GivenFile, Parse, ProcessEnv, Reader, parse};

use crate::app::NotifierSettings;
use crate::infra::pii::keys::{self, PiiKeyError, PiiKeySettings};
use crate::infra::sms::sens::{self, SensSettings};

/// Everything [`start`](crate::start) needs besides the platform context.
#[derive(Debug, Clone)]
pub struct ParticipationConfig {
    /// Personal-data keys (see [`pii::keys`](crate::infra::pii::keys)).
    pub pii: PiiKeySettings,
    /// How long GetEventForParticipation answers are reused for entries and owner listings.
    pub event_cache_ttl: Duration,
    /// The SENS account SMS go through; `None`: the labelled local stand-in (`kem up`).
    pub sms: Option<SensSettings>,
    /// Refuse to start on the SMS stand-in (production: winners must really be told).
    pub require_sms: bool,
    /// How the winner notifier runs.
    pub notifier: NotifierSettings,
}

impl Default for ParticipationConfig {
    /// No configured key (a development key is generated under the data dir), a 15 s event
    /// cache, the SMS stand-in and the default notifier.
    fn default() -> Self {
        ParticipationConfig {
            pii: PiiKeySettings::default(),
            event_cache_ttl: Duration::from_secs(15),
            sms: None,
            require_sms: false,
            notifier: NotifierSettings::default(),
        }
    }
}

/// Every variable in the environment that cannot be used, each with what is expected (key values
/// are never repeated: the kit's reader redacts secrets; see [`kem_kit::config`]).
pub type ParticipationConfigError = ConfigError;

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
    /// SENS API host (default `https://sens.apigw.ntruss.com`).
    pub const SENS_BASE_URL: &str = "KEM_SENS_SMS_BASE_URL";
    /// SENS access key id. The SENS settings below are all set (the real SENS) or none (the
    /// local stand-in, which sends nothing).
    pub const SENS_ACCESS_KEY: &str = "KEM_SENS_ACCESS_KEY";
    /// SENS secret key (or `KEM_SENS_SECRET_KEY_FILE`).
    pub const SENS_SECRET_KEY: &str = "KEM_SENS_SECRET_KEY";
    /// SENS SMS service id, `ncp:sms:kr:<n>:<name>`.
    pub const SENS_SERVICE_ID: &str = "KEM_SENS_SMS_SERVICE_ID";
    /// The registered calling number, digits (hyphens allowed).
    pub const SENS_FROM: &str = "KEM_SENS_SMS_FROM";
    /// `true` to refuse starting on the SMS stand-in (production).
    pub const REQUIRE_SMS: &str = "KEM_PARTICIPATION_REQUIRE_SMS";
    /// How often the winner notifier looks for messages to send, in milliseconds (default 5000).
    pub const NOTIFY_INTERVAL_MS: &str = "KEM_PARTICIPATION_NOTIFY_INTERVAL_MS";
}

/// The SENS account, when `vars` configure one: all of access key, secret key, service id and
/// calling number, or none (then `None`: the stand-in); some of them is a problem naming the
/// missing ones.
fn sens_settings(vars: &mut Reader<'_>) -> Option<SensSettings> {
    let base_url = vars.get(env::SENS_BASE_URL, parse::http_url().without_trailing_slash());
    let access_key = vars.get(env::SENS_ACCESS_KEY, parse::text());
    let secret_key = vars.secret(env::SENS_SECRET_KEY);
    let service_id = vars.get(env::SENS_SERVICE_ID, parse::text());
    let digits = parse::custom("a calling number of digits, e.g. 0212345678", |from: &str| {
        let digits: String = from.chars().filter(|c| *c != '-').collect();
        if (8..=12).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(digits)
        } else {
            Err("must be a registered calling number of 8-12 digits".to_owned())
        }
    });
    let from = vars.get(env::SENS_FROM, digits);
    let given = [
        (env::SENS_ACCESS_KEY, access_key.is_some()),
        (env::SENS_SECRET_KEY, secret_key.is_some()),
        (env::SENS_SERVICE_ID, service_id.is_some()),
        (env::SENS_FROM, from.is_some()),
    ];
    if given.iter().all(|(_, set)| !set) {
        return None;
    }
    for (var, set) in given {
        if !set {
            vars.missing(var, "the other SENS settings are set: SMS needs all of them (or none, for the stand-in)");
        }
    }
    Some(SensSettings {
        base_url: base_url.unwrap_or_else(|| sens::DEFAULT_BASE_URL.to_owned()),
        access_key: access_key?,
        secret_key: secret_key?,
        service_id: service_id?,
        from: from?,
        timeout: Duration::from_secs(10),
    })
}

/// The reason a key was refused, without repeating the variable (or the value).
fn key_reason(error: PiiKeyError) -> String {
    match error {
        PiiKeyError::Invalid { reason, .. } => reason.to_owned(),
        other => other.to_string(),
    }
}

/// A base64 AES-256 key, kept as text (the [`PiiKeys`](crate::infra::pii::keys::PiiKeys) decode
/// it).
fn aes_key(var: &'static str) -> impl Parse<Output = String> {
    parse::custom("base64 of exactly 32 bytes", move |key: &str| {
        keys::decode_aes_key(key, var).map(|_| key.to_owned()).map_err(key_reason)
    })
}

impl ParticipationConfig {
    /// Settings from the environment (see [`env`](mod@env)); anything unset keeps its [`Default`].
    /// Every variable may instead come from a file named by `<NAME>_FILE` (Key Vault CSI mounts).
    /// The AES key is the exception the module documents: `KEM_PARTICIPATION_PII_KEY_FILE` is a
    /// setting of its own, used when `KEM_PARTICIPATION_PII_KEY` is unset, and a key file that
    /// cannot be read does not silently fall back to a development key: it stays set and
    /// [`start`](crate::start) fails naming it.
    pub fn from_env() -> Result<ParticipationConfig, ParticipationConfigError> {
        config::read_from(&ProcessEnv, ParticipationConfig::read)
    }

    /// Like [`from_env`](Self::from_env) with variables from `lookup` (tests).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ParticipationConfig, ParticipationConfigError> {
        config::read_from(&lookup, ParticipationConfig::read)
    }

    /// Reads the [`env`](mod@env) variables from `vars`, recording every bad one there and keeping
    /// the default in its place, so a process can read several services' settings and report all
    /// their problems together.
    pub fn read(vars: &mut Reader<'_>) -> ParticipationConfig {
        let mut config = ParticipationConfig::default();

        // The key wins over its file; a readable file is checked now, an unreadable one is left
        // to `PiiKeys::load`, which reads `key_file` again and fails naming it.
        let given = vars.given(env::PII_KEY);
        config.pii.key_file = given.file.as_ref().map(|file| file.path.clone());
        let key = match (given.value, given.file) {
            (Some(key), _) => Some((key, None)),
            (None, Some(GivenFile { path, contents: Ok(key) })) if !key.is_empty() => Some((key, Some(path))),
            (None, _) => None,
        };
        if let Some((key, file)) = key {
            config.pii.key = vars.check_secret(env::PII_KEY, &key, file, aes_key(env::PII_KEY)).map(Secret::new);
        }
        let previous = parse::list(aes_key(env::PII_PREVIOUS_KEYS));
        if let Some(previous) = vars.get_secret(env::PII_PREVIOUS_KEYS, previous) {
            config.pii.previous_keys = previous.into_iter().map(Secret::new).collect();
        }
        let hash_key = parse::custom("base64 of at least 32 bytes", |key: &str| {
            keys::decode_hash_key(key, env::PHONE_HASH_KEY).map(|_| key.to_owned()).map_err(key_reason)
        });
        config.pii.phone_hash_key = vars.get_secret(env::PHONE_HASH_KEY, hash_key).map(Secret::new);
        if let Some(required) = vars.get(env::REQUIRE_PII_KEY, parse::flag()) {
            config.pii.require_configured_key = required;
        }
        let ttl = parse::millis().within(Duration::from_millis(1), Duration::from_secs(60));
        if let Some(ttl) = vars.get(env::EVENT_CACHE_TTL_MS, ttl) {
            config.event_cache_ttl = ttl;
        }
        config.sms = sens_settings(vars);
        if let Some(required) = vars.get(env::REQUIRE_SMS, parse::flag()) {
            config.require_sms = required;
        }
        let interval = parse::millis().within(Duration::from_millis(10), Duration::from_secs(600));
        if let Some(interval) = vars.get(env::NOTIFY_INTERVAL_MS, interval) {
            config.notifier.interval = interval;
        }
        config
    }
}

impl kem_kit::external::StandIns for ParticipationConfig {
    /// The local SMS stand-in, and a generated development key for personal data.
    fn stand_ins(&self) -> Vec<kem_kit::external::StandIn> {
        use kem_kit::external::StandIn;
        let mut stand_ins = Vec::new();
        if self.sms.is_none() {
            let what = "SMS to participants (local:sens: codes and winner notices are only logged)";
            let vars = [env::SENS_SECRET_KEY, env::SENS_ACCESS_KEY, env::SENS_SERVICE_ID, env::SENS_FROM];
            stand_ins.push(StandIn::new(what, vars));
        }
        if self.pii.key.is_none() && self.pii.key_file.is_none() {
            let what = "personal-data encryption key (a development key generated under the data dir)";
            stand_ins.push(StandIn::new(what, [env::PII_KEY_FILE, env::PII_KEY]));
        }
        stand_ins
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

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
        let mounted = |file: String| move |name: &str| (name == "KEM_PARTICIPATION_PII_KEY_FILE").then(|| file.clone());
        let c = ParticipationConfig::from_lookup(mounted(path.display().to_string())).expect("valid");
        assert_eq!(c.pii.key.as_ref().map(Secret::expose), Some(KEY));
        let missing = dir.path().join("absent").display().to_string();
        let c = ParticipationConfig::from_lookup(mounted(missing.clone())).expect("parsed");
        assert!(c.pii.key.is_none());
        assert_eq!(c.pii.key_file, Some(PathBuf::from(&missing)));
        let error = crate::infra::pii::keys::PiiKeys::load(&c.pii, dir.path()).expect_err("no silent development key");
        assert!(error.to_string().contains("absent"), "{error}");
    }

    #[test]
    fn sens_is_all_or_nothing() {
        let c = config(&[]).expect("defaults");
        assert!(c.sms.is_none() && !c.require_sms, "no SENS settings: the stand-in");
        let c = config(&[
            (env::SENS_ACCESS_KEY, "AK"),
            (env::SENS_SECRET_KEY, "SK-secret"),
            (env::SENS_SERVICE_ID, "ncp:sms:kr:1:kem"),
            (env::SENS_FROM, "02-1234-5678"),
            (env::REQUIRE_SMS, "true"),
        ])
        .expect("valid");
        let sms = c.sms.as_ref().expect("SENS");
        assert_eq!((sms.base_url.as_str(), sms.from.as_str()), (sens::DEFAULT_BASE_URL, "0212345678"));
        assert!(c.require_sms);
        assert!(!format!("{c:?}").contains("SK-secret"), "the secret is redacted");
        let error = config(&[(env::SENS_ACCESS_KEY, "AK"), (env::SENS_FROM, "0212345678")])
            .expect_err("half a SENS account")
            .to_string();
        assert!(error.contains(env::SENS_SECRET_KEY) && error.contains(env::SENS_SERVICE_ID), "{error}");
        assert!(!error.contains("KEM_SENS_ACCESS_KEY is missing"), "{error}");
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
