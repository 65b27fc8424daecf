//! The user service's settings: which NTS to call, how tokens are signed, how passwords are
//! hashed, when sign-in locks, how long verifications are cached.

use std::path::PathBuf;
use std::time::Duration;

use kem_kit::config::{self, ConfigError, Parse, ProcessEnv, Reader, parse};
use kem_kit::external::ProviderMode;

use crate::infra::nts;

/// Everything [`start`](crate::start) needs besides the platform context.
#[derive(Debug, Clone)]
pub struct UserConfig {
    /// The real NTS API (with its client settings and service key) or the local stand-in.
    pub nts: ProviderMode,
    /// Access and refresh tokens, signing keys.
    pub tokens: TokenSettings,
    /// argon2id cost.
    pub password: PasswordSettings,
    /// Sign-in throttling: per (account, client address) lockout, per-account progressive delay.
    pub login: LoginThrottle,
    /// How long NTS answers are reused.
    pub verification_ttl: VerificationTtl,
    /// How long an owner profile stays in the cache (invalidated on change anyway).
    pub owner_cache_ttl: Duration,
    /// Period of the background maintenance (key reload and rotation, purge of expired rows).
    pub maintenance_interval: Duration,
}

/// Token settings.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `iss` of access tokens (the gateway expects `kem-user`).
    pub issuer: String,
    /// `aud` of access tokens (the gateway expects `kem-api`).
    pub audience: String,
    /// Access-token lifetime (15 minutes).
    pub access_ttl: Duration,
    /// Refresh-token lifetime from issue (14 days; every refresh issues a new one).
    pub refresh_ttl: Duration,
    /// A PKCS#8 PEM ES256 key to sign with (e.g. a Key Vault mount); when unset, keys are
    /// generated and kept in the user database, shared by the replicas.
    pub signing_key_file: Option<PathBuf>,
    /// Rotate generated keys after this long (`None`: never automatically).
    pub rotation_interval: Option<Duration>,
    /// How long the gateway may cache the key set (GetSigningKeys `cache_ttl`).
    pub jwks_cache_ttl: Duration,
}

/// argon2id parameters (the cost of hashing and verifying one password).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordSettings {
    /// Memory in KiB (OWASP: 19,456 = 19 MiB).
    pub memory_kib: u32,
    /// Passes (OWASP: 2).
    pub iterations: u32,
    /// Lanes (OWASP: 1).
    pub parallelism: u32,
    /// Hashes computed at once at most (each takes `memory_kib` and a core), so a login burst
    /// queues instead of exhausting memory.
    pub max_concurrent: usize,
}

impl PasswordSettings {
    /// OWASP's recommended argon2id minimum: m = 19 MiB, t = 2, p = 1.
    pub const PRODUCTION: PasswordSettings =
        PasswordSettings { memory_kib: 19_456, iterations: 2, parallelism: 1, max_concurrent: 4 };

    /// A cheap cost for tests only (never for real passwords).
    pub const TESTING: PasswordSettings =
        PasswordSettings { memory_kib: 256, iterations: 1, parallelism: 1, max_concurrent: 4 };
}

pub use crate::domain::login_throttle::LoginThrottle;

/// How long NTS answers are reused, by status: a business status changes rarely, and an
/// inactive or unknown number is worth re-asking sooner (the owner may have just fixed it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerificationTtl {
    /// 계속사업자.
    pub active: Duration,
    /// 휴업자 / 폐업자.
    pub inactive: Duration,
    /// Not registered.
    pub unregistered: Duration,
    /// How long an answer stays in Redis (the database tier keeps it for the TTLs above).
    pub hot: Duration,
}

impl Default for UserConfig {
    /// Production settings with the local NTS stand-in (tests and `kem up`).
    fn default() -> Self {
        UserConfig {
            nts: ProviderMode::Local { provider: nts::PROVIDER.to_owned() },
            tokens: TokenSettings {
                issuer: "kem-user".to_owned(),
                audience: "kem-api".to_owned(),
                access_ttl: kem_kit::jwt::DEFAULT_ACCESS_TTL,
                refresh_ttl: Duration::from_secs(14 * 24 * 3600),
                signing_key_file: None,
                rotation_interval: Some(Duration::from_secs(30 * 24 * 3600)),
                jwks_cache_ttl: Duration::from_secs(300),
            },
            password: PasswordSettings::PRODUCTION,
            login: LoginThrottle::default(),
            verification_ttl: VerificationTtl {
                active: Duration::from_secs(6 * 3600),
                inactive: Duration::from_secs(3600),
                unregistered: Duration::from_secs(10 * 60),
                hot: Duration::from_secs(10 * 60),
            },
            owner_cache_ttl: Duration::from_secs(300),
            maintenance_interval: Duration::from_secs(30),
        }
    }
}

/// Every variable in the environment that cannot be used, each with its value and what is
/// expected (the kit's reader; see [`kem_kit::config`]).
pub type UserConfigError = ConfigError;

/// Environment variables [`UserConfig::from_env`] reads.
pub mod env {
    /// NTS base URL (default `https://api.odcloud.kr/api`).
    pub const NTS_BASE_URL: &str = "KEM_NTS_BASE_URL";
    /// NTS (data.go.kr) service key; when unset the local stand-in answers.
    pub const NTS_SERVICE_KEY: &str = "KEM_NTS_SERVICE_KEY";
    /// Per-attempt NTS timeout in milliseconds (default 5000).
    pub const NTS_TIMEOUT_MS: &str = "KEM_NTS_TIMEOUT_MS";
    /// Access-token issuer (default `kem-user`).
    pub const JWT_ISSUER: &str = "KEM_JWT_ISSUER";
    /// Access-token audience (default `kem-api`).
    pub const JWT_AUDIENCE: &str = "KEM_JWT_AUDIENCE";
    /// Access-token lifetime in seconds (default 900).
    pub const JWT_ACCESS_TTL_SECS: &str = "KEM_JWT_ACCESS_TTL_SECS";
    /// Refresh-token lifetime in seconds (default 1209600, 14 days).
    pub const JWT_REFRESH_TTL_SECS: &str = "KEM_JWT_REFRESH_TTL_SECS";
    /// PKCS#8 PEM ES256 signing key file (e.g. a Key Vault CSI mount).
    pub const JWT_SIGNING_KEY_FILE: &str = "KEM_JWT_SIGNING_KEY_FILE";
    /// Automatic rotation of generated keys, in days (default 30; 0 disables).
    pub const JWT_KEY_ROTATION_DAYS: &str = "KEM_JWT_KEY_ROTATION_DAYS";
    /// argon2id memory in KiB (default 19456).
    pub const ARGON2_MEMORY_KIB: &str = "KEM_ARGON2_MEMORY_KIB";
    /// argon2id passes (default 2).
    pub const ARGON2_ITERATIONS: &str = "KEM_ARGON2_ITERATIONS";
    /// Failed sign-ins from one client address that lock that (account, address) pair (default 5).
    pub const LOGIN_MAX_FAILURES: &str = "KEM_LOGIN_MAX_FAILURES";
    /// How long a locked (account, address) pair stays locked, in seconds (default 900).
    pub const LOGIN_LOCKOUT_SECS: &str = "KEM_LOGIN_LOCKOUT_SECS";
    /// Failed sign-ins across all addresses before each further attempt on the account waits a
    /// doubling delay (default 10; 0 disables the per-account delay).
    pub const LOGIN_ACCOUNT_FREE_FAILURES: &str = "KEM_LOGIN_ACCOUNT_FREE_FAILURES";
    /// The longest per-account delay in seconds (default 60).
    pub const LOGIN_ACCOUNT_MAX_DELAY_SECS: &str = "KEM_LOGIN_ACCOUNT_MAX_DELAY_SECS";
}

impl UserConfig {
    /// Settings from the environment (see [`env`](mod@env)); anything unset keeps its [`Default`]. The
    /// real NTS API is used exactly when `KEM_NTS_SERVICE_KEY` is set. Every variable may come
    /// from a file named by `<NAME>_FILE`.
    pub fn from_env() -> Result<UserConfig, UserConfigError> {
        config::read_from(&ProcessEnv, UserConfig::read)
    }

    /// Like [`from_env`](Self::from_env) with variables from `lookup` (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<UserConfig, UserConfigError> {
        config::read_from(&lookup, UserConfig::read)
    }

    /// Reads the [`env`](mod@env) variables from `vars`, recording every bad one there and keeping the
    /// default in its place, so a process can read several services' settings and report all
    /// their problems together.
    pub fn read(vars: &mut Reader<'_>) -> UserConfig {
        let mut config = UserConfig::default();
        let positive = Duration::from_secs(1);

        let base_url = vars
            .get(env::NTS_BASE_URL, parse::http_url().example("https://api.odcloud.kr/api"))
            .unwrap_or_else(|| nts::DEFAULT_BASE_URL.to_owned());
        let mut provider = nts::provider_config(base_url);
        if let Some(timeout) = vars.get(env::NTS_TIMEOUT_MS, parse::millis().at_least(Duration::from_millis(1))) {
            provider.timeout = timeout;
            provider.deadline = provider.deadline.max(provider.timeout);
        }
        config.nts = ProviderMode::select(provider, vars.secret(env::NTS_SERVICE_KEY));

        if let Some(issuer) = vars.get(env::JWT_ISSUER, parse::text()) {
            config.tokens.issuer = issuer;
        }
        if let Some(audience) = vars.get(env::JWT_AUDIENCE, parse::text()) {
            config.tokens.audience = audience;
        }
        if let Some(ttl) = vars.get(env::JWT_ACCESS_TTL_SECS, parse::seconds().at_least(positive)) {
            config.tokens.access_ttl = ttl;
        }
        if let Some(ttl) = vars.get(env::JWT_REFRESH_TTL_SECS, parse::seconds().at_least(positive)) {
            config.tokens.refresh_ttl = ttl;
        }
        config.tokens.signing_key_file = vars.get(env::JWT_SIGNING_KEY_FILE, parse::path());
        if let Some(days) = vars.get(env::JWT_KEY_ROTATION_DAYS, parse::number::<u64>()) {
            config.tokens.rotation_interval = (days > 0).then(|| Duration::from_secs(days.saturating_mul(24 * 3600)));
        }
        if let Some(kib) = vars.get(env::ARGON2_MEMORY_KIB, parse::number::<u32>().at_least(8)) {
            config.password.memory_kib = kib;
        }
        if let Some(t) = vars.get(env::ARGON2_ITERATIONS, parse::number::<u32>().at_least(1)) {
            config.password.iterations = t;
        }
        if let Some(n) = vars.get(env::LOGIN_MAX_FAILURES, parse::number::<u32>().at_least(1)) {
            config.login.address_max_failures = n;
        }
        if let Some(lockout) = vars.get(env::LOGIN_LOCKOUT_SECS, parse::seconds().at_least(positive)) {
            config.login.address_lockout = lockout;
        }
        if let Some(n) = vars.get(env::LOGIN_ACCOUNT_FREE_FAILURES, parse::number::<u32>()) {
            config.login.account_free_failures = n;
        }
        if let Some(delay) = vars.get(env::LOGIN_ACCOUNT_MAX_DELAY_SECS, parse::seconds().at_least(positive)) {
            config.login.account_max_delay = delay;
        }
        config
    }

    /// The default settings with a cheap password hash, for tests.
    pub fn for_tests() -> UserConfig {
        UserConfig { password: PasswordSettings::TESTING, ..UserConfig::default() }
    }
}

impl kem_kit::external::StandIns for UserConfig {
    fn stand_ins(&self) -> Vec<kem_kit::external::StandIn> {
        let mut stand_ins = Vec::new();
        if self.nts.is_local() {
            let what = "NTS business-number checks (local:nts, demo answers)";
            stand_ins.push(kem_kit::external::StandIn::new(what, [env::NTS_SERVICE_KEY]));
        }
        stand_ins
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<UserConfig, UserConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        UserConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_match_the_gateway_and_use_the_local_stand_in() {
        let config = config(&[]).expect("defaults");
        assert!(config.nts.is_local());
        assert_eq!(config.nts.source_label(), "local:nts");
        assert_eq!((config.tokens.issuer.as_str(), config.tokens.audience.as_str()), ("kem-user", "kem-api"));
        assert_eq!(config.tokens.access_ttl, Duration::from_secs(900));
        assert_eq!(config.password, PasswordSettings::PRODUCTION);
    }

    #[test]
    fn a_service_key_selects_the_real_api() {
        let config = config(&[
            (env::NTS_SERVICE_KEY, "abc+def=="),
            (env::NTS_BASE_URL, "http://127.0.0.1:9/api"),
            (env::NTS_TIMEOUT_MS, "1500"),
            (env::JWT_SIGNING_KEY_FILE, "/mnt/kv/jwt.pem"),
            (env::JWT_KEY_ROTATION_DAYS, "0"),
        ])
        .expect("valid");
        match &config.nts {
            ProviderMode::Real { config, credentials } => {
                assert_eq!(config.base_url, "http://127.0.0.1:9/api");
                assert_eq!(config.timeout, Duration::from_millis(1500));
                assert_eq!(config.breaker.failure_rate_threshold, 0.05);
                assert_eq!(credentials.expose(), "abc+def==");
            }
            ProviderMode::Local { .. } => panic!("a key was configured"),
        }
        assert_eq!(config.tokens.signing_key_file, Some(PathBuf::from("/mnt/kv/jwt.pem")));
        assert_eq!(config.tokens.rotation_interval, None);
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            (env::JWT_ACCESS_TTL_SECS, "15m"),
            (env::JWT_ACCESS_TTL_SECS, "0"),
            (env::NTS_BASE_URL, "api.odcloud.kr"),
            (env::ARGON2_MEMORY_KIB, "4"),
            (env::LOGIN_MAX_FAILURES, "0"),
        ] {
            let error = config(&[(var, value)]).expect_err(var).to_string();
            assert!(error.contains(var), "{error}");
        }
    }
}
