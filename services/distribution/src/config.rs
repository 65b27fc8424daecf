//! The distribution service's settings: which provider each channel uses (real, with its
//! credentials and client settings, or the built-in local one), how hard each channel is retried,
//! and how the scheduler runs.
//!
//! Every channel has its own [`ChannelPolicy`] (deadline of a step, retries, polling bounds,
//! concurrency) next to its own provider client settings (per-request timeout, breaker), so one
//! channel's limits never bound another.

use std::collections::BTreeMap;
use std::time::Duration;

use kem_kit::Secret;
use kem_kit::external::{ProviderConfig, ProviderMode};

use crate::channels::{instagram, kakao, naver, partner};
use crate::model::{Channel, RetryPolicy};
use crate::partner_server::PartnerServerConfig;

/// How one channel is worked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelPolicy {
    /// Longest a single step (one attempt or poll, all its provider calls included) may take; past
    /// it the step is abandoned and counted as PROVIDER_UNAVAILABLE. Other channels never wait
    /// for it.
    pub deadline: Duration,
    /// Retries and polling.
    pub retry: RetryPolicy,
    /// Steps of this channel run at once (per replica); a slow channel only fills its own slots.
    pub concurrency: usize,
}

impl ChannelPolicy {
    /// Production defaults of `channel`.
    pub fn default_for(channel: Channel) -> ChannelPolicy {
        let retry = RetryPolicy {
            max_attempts: 5,
            backoff_initial: Duration::from_secs(60),
            backoff_max: Duration::from_secs(30 * 60),
            min_poll: Duration::from_secs(5),
            max_poll: Duration::from_secs(300),
        };
        match channel {
            Channel::Instagram => ChannelPolicy {
                deadline: Duration::from_secs(120),
                retry: RetryPolicy { max_poll: Duration::from_secs(3_600), ..retry },
                concurrency: 8,
            },
            Channel::KakaoChannel | Channel::NaverBlog => ChannelPolicy {
                deadline: Duration::from_secs(30),
                retry: RetryPolicy { max_attempts: 3, ..retry },
                concurrency: 8,
            },
            Channel::UridongneTv | Channel::RingoBiz | Channel::GenieTv => {
                ChannelPolicy { deadline: Duration::from_secs(40), retry, concurrency: 8 }
            }
        }
    }
}

/// Instagram: the real Graph API (with its access token) or `local:instagram-graph`.
#[derive(Debug, Clone)]
pub struct InstagramConfig {
    /// Real (client settings + access token) or local.
    pub mode: ProviderMode,
    /// Account and flow settings.
    pub settings: instagram::InstagramSettings,
}

/// Kakao: NAVER Cloud SENS (with its secret key) or `local:kakao-sens`.
#[derive(Debug, Clone)]
pub struct KakaoConfig {
    /// Real (client settings + secret key) or local.
    pub mode: ProviderMode,
    /// The SENS account.
    pub settings: kakao::SensSettings,
}

/// A Naver Cafe the Naver channel posts to.
#[derive(Debug, Clone)]
pub struct CafeConfig {
    /// Cafe API client settings.
    pub provider: ProviderConfig,
    /// The member's access token (Naver Login).
    pub access_token: Secret,
    /// The cafe and board.
    pub cafe: naver::CafeSettings,
}

/// One KT partner channel: a real partner (client settings + client secret) or the built-in
/// local partner server.
#[derive(Debug, Clone)]
pub struct PartnerConfig {
    /// Real or local.
    pub mode: ProviderMode,
    /// OAuth2 client id.
    pub client_id: String,
}

/// Everything [`start`](crate::start) needs besides the platform context.
#[derive(Debug, Clone)]
pub struct DistributionConfig {
    /// Base URL under which the REST edge serves images publicly (`<base>/api/v1/images/{id}/content`).
    pub public_base_url: String,
    /// Instagram.
    pub instagram: InstagramConfig,
    /// Kakao Channel.
    pub kakao: KakaoConfig,
    /// Naver: a cafe to post to, or `None` for owner-assisted blog publishing only.
    pub naver_cafe: Option<CafeConfig>,
    /// 우리동네TV, 링고비즈, 지니TV.
    pub partners: BTreeMap<Channel, PartnerConfig>,
    /// The in-process partner server partner channels without credentials use.
    pub local_partner: PartnerServerConfig,
    /// Per-channel step deadline, retries, polling and concurrency.
    pub policies: BTreeMap<Channel, ChannelPolicy>,
    /// How often the scheduler looks for due work when nothing woke it.
    pub scan_interval: Duration,
    /// How long past a step's deadline its hold lasts (then another worker may take it over).
    pub lease_margin: Duration,
    /// How long owner profiles are cached.
    pub owner_cache_ttl: Duration,
    /// Deadline of the user service lookup.
    pub owner_lookup_timeout: Duration,
    /// Jobs handled at once from `distribution-jobs`.
    pub consumer_concurrency: usize,
    /// On shutdown, how long running steps may take to finish (the rest are recovered later).
    pub drain_timeout: Duration,
}

impl DistributionConfig {
    /// The policy of `channel`.
    pub fn policy(&self, channel: Channel) -> ChannelPolicy {
        self.policies.get(&channel).copied().unwrap_or_else(|| ChannelPolicy::default_for(channel))
    }
}

impl Default for DistributionConfig {
    /// Production settings with every channel on its built-in local provider (tests, `kem up`).
    fn default() -> Self {
        let local = |name: &str| ProviderMode::Local { provider: name.to_owned() };
        DistributionConfig {
            public_base_url: "http://127.0.0.1:8080".to_owned(),
            instagram: InstagramConfig {
                mode: local(instagram::PROVIDER),
                settings: instagram::InstagramSettings::default(),
            },
            kakao: KakaoConfig {
                mode: local(kakao::PROVIDER),
                settings: kakao::SensSettings {
                    advertisement: true,
                    quiet_hours: true,
                    ..kakao::SensSettings::default()
                },
            },
            naver_cafe: None,
            partners: [Channel::UridongneTv, Channel::RingoBiz, Channel::GenieTv]
                .into_iter()
                .map(|c| (c, PartnerConfig { mode: local(partner::PROVIDER), client_id: local_client_id(c) }))
                .collect(),
            local_partner: PartnerServerConfig::default(),
            policies: Channel::ALL.into_iter().map(|c| (c, ChannelPolicy::default_for(c))).collect(),
            scan_interval: Duration::from_secs(1),
            lease_margin: Duration::from_secs(30),
            owner_cache_ttl: Duration::from_secs(300),
            owner_lookup_timeout: Duration::from_secs(3),
            consumer_concurrency: 4,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// The client id a partner channel uses with the local partner server.
pub fn local_client_id(channel: Channel) -> String {
    format!("kem-local-{}", channel.slug().replace('_', "-"))
}

/// A setting in the environment that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DistributionConfigError {
    /// A variable has a value of the wrong form.
    #[error("{var}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: String,
        /// What it holds (never a secret).
        value: String,
        /// What is expected.
        reason: &'static str,
    },
    /// Credentials are configured without the settings they need.
    #[error("{var} is set, so {missing} must be set too")]
    Incomplete {
        /// The credential that selects the real provider.
        var: String,
        /// What is missing.
        missing: String,
    },
}

/// Environment variables [`DistributionConfig::from_env`] reads.
pub mod env {
    /// Base URL of the public REST edge, for image URLs providers fetch (default `http://127.0.0.1:8080`).
    pub const PUBLIC_BASE_URL: &str = "KEM_PUBLIC_BASE_URL";
    /// Instagram Graph access token; selects the real Instagram API.
    pub const INSTAGRAM_ACCESS_TOKEN: &str = "KEM_INSTAGRAM_ACCESS_TOKEN";
    /// IG user id of the professional account (required with the token).
    pub const INSTAGRAM_USER_ID: &str = "KEM_INSTAGRAM_USER_ID";
    /// Graph host (default `https://graph.facebook.com`; `https://graph.instagram.com` for Instagram Login).
    pub const INSTAGRAM_BASE_URL: &str = "KEM_INSTAGRAM_BASE_URL";
    /// Graph API version (default `v21.0`).
    pub const INSTAGRAM_API_VERSION: &str = "KEM_INSTAGRAM_API_VERSION";
    /// Per-request timeout in ms (default 20000).
    pub const INSTAGRAM_TIMEOUT_MS: &str = "KEM_INSTAGRAM_TIMEOUT_MS";
    /// Seconds before an exhausted 24 h publishing quota is checked again (default 3600).
    pub const INSTAGRAM_QUOTA_RECHECK_SECS: &str = "KEM_INSTAGRAM_QUOTA_RECHECK_SECS";
    /// SENS access key id.
    pub const SENS_ACCESS_KEY: &str = "KEM_SENS_ACCESS_KEY";
    /// SENS secret key; selects the real SENS API.
    pub const SENS_SECRET_KEY: &str = "KEM_SENS_SECRET_KEY";
    /// SENS Biz Message service id.
    pub const SENS_SERVICE_ID: &str = "KEM_SENS_SERVICE_ID";
    /// Kakao channel id (`plusFriendId`, e.g. `@kem`).
    pub const SENS_PLUS_FRIEND_ID: &str = "KEM_SENS_PLUS_FRIEND_ID";
    /// SENS host (default `https://sens.apigw.ntruss.com`).
    pub const SENS_BASE_URL: &str = "KEM_SENS_BASE_URL";
    /// Per-request timeout in ms (default 10000).
    pub const SENS_TIMEOUT_MS: &str = "KEM_SENS_TIMEOUT_MS";
    /// `false` sends at night too (default `true`: Kakao's 20:00–08:00 KST ad restriction).
    pub const SENS_QUIET_HOURS: &str = "KEM_SENS_QUIET_HOURS";
    /// Naver Cafe member access token; enables posting to the cafe.
    pub const NAVER_CAFE_ACCESS_TOKEN: &str = "KEM_NAVER_CAFE_ACCESS_TOKEN";
    /// Cafe club id.
    pub const NAVER_CAFE_CLUB_ID: &str = "KEM_NAVER_CAFE_CLUB_ID";
    /// Cafe board (menu) id.
    pub const NAVER_CAFE_MENU_ID: &str = "KEM_NAVER_CAFE_MENU_ID";
    /// Naver API host (default `https://openapi.naver.com`).
    pub const NAVER_CAFE_BASE_URL: &str = "KEM_NAVER_CAFE_BASE_URL";
    /// Per-request timeout in ms (default 10000).
    pub const NAVER_CAFE_TIMEOUT_MS: &str = "KEM_NAVER_CAFE_TIMEOUT_MS";
    /// Attempts per delivery before a retryable failure is final (default 5; 3 for Kakao and Naver).
    pub const MAX_ATTEMPTS: &str = "KEM_DISTRIBUTION_MAX_ATTEMPTS";
    /// Scheduler scan interval in ms (default 1000).
    pub const SCAN_INTERVAL_MS: &str = "KEM_DISTRIBUTION_SCAN_INTERVAL_MS";

    /// `KEM_PARTNER_<CHANNEL>_<SUFFIX>`, e.g. `KEM_PARTNER_GENIE_TV_BASE_URL`.
    pub fn partner(channel: crate::model::Channel, suffix: &str) -> String {
        format!("KEM_PARTNER_{}_{suffix}", channel.as_str())
    }

    /// `KEM_DISTRIBUTION_<CHANNEL>_DEADLINE_MS`: the step deadline of a channel.
    pub fn deadline(channel: crate::model::Channel) -> String {
        format!("KEM_DISTRIBUTION_{}_DEADLINE_MS", channel.as_str())
    }
}

impl DistributionConfig {
    /// Settings from the environment (see [`env`]); anything unset keeps its [`Default`]. Each
    /// channel uses its real provider exactly when its credential is set:
    /// `KEM_INSTAGRAM_ACCESS_TOKEN`, `KEM_SENS_SECRET_KEY`, `KEM_NAVER_CAFE_ACCESS_TOKEN`,
    /// `KEM_PARTNER_<CHANNEL>_API_KEY` (the partner client secret, with
    /// `KEM_PARTNER_<CHANNEL>_CLIENT_ID` and `_BASE_URL`). Secrets may come from `<NAME>_FILE`.
    pub fn from_env() -> Result<DistributionConfig, DistributionConfigError> {
        DistributionConfig::from_lookup(kem_kit::secret::env_or_file)
    }

    /// Like [`from_env`](Self::from_env) with variables from `lookup` (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<DistributionConfig, DistributionConfigError> {
        let var = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let invalid = |name: &str, value: String, reason: &'static str| DistributionConfigError::Invalid {
            var: name.to_owned(),
            value,
            reason,
        };
        let millis = |name: &str| -> Result<Option<Duration>, DistributionConfigError> {
            match var(name) {
                None => Ok(None),
                Some(v) => match v.parse::<u64>() {
                    Ok(ms) if ms > 0 => Ok(Some(Duration::from_millis(ms))),
                    _ => Err(invalid(name, v, "must be a positive number of milliseconds")),
                },
            }
        };
        let url = |name: &str, default: &str| -> Result<String, DistributionConfigError> {
            let value = var(name).unwrap_or_else(|| default.to_owned());
            if value.starts_with("https://") || value.starts_with("http://") {
                Ok(value.trim_end_matches('/').to_owned())
            } else {
                Err(invalid(name, value, "must be an http(s) URL"))
            }
        };
        let require = |credential: &str, name: &str| -> Result<String, DistributionConfigError> {
            var(name).ok_or_else(|| DistributionConfigError::Incomplete {
                var: credential.to_owned(),
                missing: name.to_owned(),
            })
        };
        let timed = |mut config: ProviderConfig, name: &str| -> Result<ProviderConfig, DistributionConfigError> {
            if let Some(timeout) = millis(name)? {
                config.timeout = timeout;
                config.deadline = config.deadline.max(timeout);
            }
            Ok(config)
        };
        let mut config = DistributionConfig::default();
        config.public_base_url = url(env::PUBLIC_BASE_URL, &config.public_base_url)?;

        // Instagram
        let token = var(env::INSTAGRAM_ACCESS_TOKEN).map(Secret::new);
        let provider = timed(
            instagram::provider_config(url(env::INSTAGRAM_BASE_URL, instagram::DEFAULT_BASE_URL)?),
            env::INSTAGRAM_TIMEOUT_MS,
        )?;
        if token.is_some() {
            config.instagram.settings.user_id = require(env::INSTAGRAM_ACCESS_TOKEN, env::INSTAGRAM_USER_ID)?;
        }
        if let Some(version) = var(env::INSTAGRAM_API_VERSION) {
            if !version.starts_with('v') || version.contains('/') {
                return Err(invalid(env::INSTAGRAM_API_VERSION, version, "must look like v21.0"));
            }
            config.instagram.settings.api_version = version;
        }
        if let Some(secs) = var(env::INSTAGRAM_QUOTA_RECHECK_SECS) {
            let parsed = secs.parse::<u64>().ok().filter(|s| *s > 0);
            let secs =
                parsed.ok_or_else(|| invalid(env::INSTAGRAM_QUOTA_RECHECK_SECS, secs, "must be positive seconds"))?;
            config.instagram.settings.quota_recheck = Duration::from_secs(secs);
        }
        config.instagram.mode = ProviderMode::select(provider, token);

        // Kakao through SENS
        let secret = var(env::SENS_SECRET_KEY).map(Secret::new);
        let provider =
            timed(kakao::provider_config(url(env::SENS_BASE_URL, kakao::DEFAULT_BASE_URL)?), env::SENS_TIMEOUT_MS)?;
        if secret.is_some() {
            config.kakao.settings.access_key = require(env::SENS_SECRET_KEY, env::SENS_ACCESS_KEY)?;
            config.kakao.settings.service_id = require(env::SENS_SECRET_KEY, env::SENS_SERVICE_ID)?;
            config.kakao.settings.plus_friend_id = require(env::SENS_SECRET_KEY, env::SENS_PLUS_FRIEND_ID)?;
        }
        if let Some(flag) = var(env::SENS_QUIET_HOURS) {
            config.kakao.settings.quiet_hours = match flag.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return Err(invalid(env::SENS_QUIET_HOURS, flag, "must be true or false")),
            };
        }
        config.kakao.mode = ProviderMode::select(provider, secret);

        // Naver Cafe
        if let Some(token) = var(env::NAVER_CAFE_ACCESS_TOKEN) {
            let provider = timed(
                naver::provider_config(url(env::NAVER_CAFE_BASE_URL, naver::DEFAULT_BASE_URL)?),
                env::NAVER_CAFE_TIMEOUT_MS,
            )?;
            config.naver_cafe = Some(CafeConfig {
                provider,
                access_token: Secret::new(token),
                cafe: naver::CafeSettings {
                    club_id: require(env::NAVER_CAFE_ACCESS_TOKEN, env::NAVER_CAFE_CLUB_ID)?,
                    menu_id: require(env::NAVER_CAFE_ACCESS_TOKEN, env::NAVER_CAFE_MENU_ID)?,
                },
            });
        }

        // KT partner channels
        for channel in [Channel::UridongneTv, Channel::RingoBiz, Channel::GenieTv] {
            let key_var = env::partner(channel, "API_KEY");
            let secret = var(&key_var).map(Secret::new);
            let client_id = var(&env::partner(channel, "CLIENT_ID"));
            let mode = match secret {
                Some(secret) => {
                    let base_var = env::partner(channel, "BASE_URL");
                    let base = require(&key_var, &base_var)?;
                    let base = url(&base_var, &base)?;
                    let provider =
                        timed(partner::provider_config(channel, base), &env::partner(channel, "TIMEOUT_MS"))?;
                    ProviderMode::select(provider, Some(secret))
                }
                None => ProviderMode::Local { provider: partner::PROVIDER.to_owned() },
            };
            let client_id = match (&mode, client_id) {
                (ProviderMode::Real { .. }, Some(id)) => id,
                (ProviderMode::Real { .. }, None) => "kem".to_owned(),
                (ProviderMode::Local { .. }, _) => local_client_id(channel),
            };
            config.partners.insert(channel, PartnerConfig { mode, client_id });
        }

        // Scheduling
        if let Some(v) = var(env::MAX_ATTEMPTS) {
            let attempts = v.parse::<u32>().ok().filter(|n| (1..=100).contains(n));
            let attempts = attempts.ok_or_else(|| invalid(env::MAX_ATTEMPTS, v, "must be 1 to 100"))?;
            for policy in config.policies.values_mut() {
                policy.retry.max_attempts = attempts;
            }
        }
        if let Some(interval) = millis(env::SCAN_INTERVAL_MS)? {
            config.scan_interval = interval;
        }
        for channel in Channel::ALL {
            if let Some(deadline) = millis(&env::deadline(channel))? {
                config.policies.entry(channel).or_insert_with(|| ChannelPolicy::default_for(channel)).deadline =
                    deadline;
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<DistributionConfig, DistributionConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        DistributionConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn without_credentials_every_channel_is_local() {
        let c = config(&[]).expect("defaults");
        assert!(c.instagram.mode.is_local());
        assert!(c.kakao.mode.is_local());
        assert!(c.naver_cafe.is_none());
        assert_eq!(c.partners.len(), 3);
        assert!(c.partners.values().all(|p| p.mode.is_local()));
        assert_eq!(c.public_base_url, "http://127.0.0.1:8080");
        assert_eq!(c.policies.len(), 6);
    }

    #[test]
    fn credentials_select_real_providers_with_their_settings() {
        let c = config(&[
            (env::PUBLIC_BASE_URL, "https://kem.example/"),
            (env::INSTAGRAM_ACCESS_TOKEN, "EAAB"),
            (env::INSTAGRAM_USER_ID, "17841400000"),
            (env::INSTAGRAM_BASE_URL, "http://127.0.0.1:9"),
            (env::INSTAGRAM_TIMEOUT_MS, "1500"),
            (env::SENS_SECRET_KEY, "s3cret"),
            (env::SENS_ACCESS_KEY, "AK"),
            (env::SENS_SERVICE_ID, "ncp:kkobizmsg:kr:1:kem"),
            (env::SENS_PLUS_FRIEND_ID, "@kem"),
            (env::SENS_QUIET_HOURS, "false"),
            (env::NAVER_CAFE_ACCESS_TOKEN, "AAA"),
            (env::NAVER_CAFE_CLUB_ID, "123"),
            (env::NAVER_CAFE_MENU_ID, "4"),
            ("KEM_PARTNER_GENIE_TV_API_KEY", "pk"),
            ("KEM_PARTNER_GENIE_TV_BASE_URL", "https://partner.example/partner/v1"),
            ("KEM_PARTNER_GENIE_TV_CLIENT_ID", "kem-genie"),
            ("KEM_DISTRIBUTION_GENIE_TV_DEADLINE_MS", "2500"),
            (env::MAX_ATTEMPTS, "2"),
        ])
        .expect("valid");
        assert_eq!(c.public_base_url, "https://kem.example");
        match &c.instagram.mode {
            ProviderMode::Real { config, credentials } => {
                assert_eq!(
                    (config.base_url.as_str(), config.timeout),
                    ("http://127.0.0.1:9", Duration::from_millis(1500))
                );
                assert_eq!(credentials.expose(), "EAAB");
            }
            ProviderMode::Local { .. } => panic!("a token was configured"),
        }
        assert_eq!(c.instagram.settings.user_id, "17841400000");
        assert!(!c.kakao.mode.is_local());
        assert_eq!(c.kakao.settings.service_id, "ncp:kkobizmsg:kr:1:kem");
        assert!(!c.kakao.settings.quiet_hours);
        assert_eq!(c.naver_cafe.as_ref().map(|n| n.cafe.menu_id.as_str()), Some("4"));
        let genie = &c.partners[&Channel::GenieTv];
        assert!(!genie.mode.is_local());
        assert_eq!(genie.client_id, "kem-genie");
        assert!(c.partners[&Channel::RingoBiz].mode.is_local());
        assert_eq!(c.policy(Channel::GenieTv).deadline, Duration::from_millis(2500));
        assert!(c.policies.values().all(|p| p.retry.max_attempts == 2));
    }

    #[test]
    fn incomplete_or_malformed_settings_name_the_variable() {
        for (vars, named) in [
            (vec![(env::INSTAGRAM_ACCESS_TOKEN, "t")], env::INSTAGRAM_USER_ID),
            (vec![(env::SENS_SECRET_KEY, "s"), (env::SENS_ACCESS_KEY, "a")], env::SENS_SERVICE_ID),
            (vec![(env::NAVER_CAFE_ACCESS_TOKEN, "t"), (env::NAVER_CAFE_CLUB_ID, "1")], env::NAVER_CAFE_MENU_ID),
            (vec![("KEM_PARTNER_RINGO_BIZ_API_KEY", "k")], "KEM_PARTNER_RINGO_BIZ_BASE_URL"),
            (vec![(env::PUBLIC_BASE_URL, "kem.example")], env::PUBLIC_BASE_URL),
            (vec![(env::SENS_TIMEOUT_MS, "0")], env::SENS_TIMEOUT_MS),
            (vec![(env::MAX_ATTEMPTS, "0")], env::MAX_ATTEMPTS),
            (vec![(env::SENS_QUIET_HOURS, "maybe")], env::SENS_QUIET_HOURS),
            (vec![(env::INSTAGRAM_API_VERSION, "21")], env::INSTAGRAM_API_VERSION),
        ] {
            let error = config(&vars).expect_err(named).to_string();
            assert!(error.contains(named), "{error}");
        }
    }
}
