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
use kem_kit::config::{self, ConfigError, Parse, ProcessEnv, Reader, parse};
use kem_kit::external::{ProviderConfig, ProviderMode};

use crate::domain::{Channel, RetryPolicy};
use crate::infra::channels::{instagram, kakao, naver, partner};
use crate::infra::local::partner_server::PartnerServerConfig;

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
    /// Base URL of the REST edge: images are public under `<base>/api/v1/public/images/{id}` (see
    /// [`image_url`](crate::infra::channels::image_url)), entry pages under `<base>/e/{id}`.
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
    /// The channels on their built-in local stand-in, each with the variables that put it on
    /// its real provider (the credential first).
    pub fn stand_ins(&self) -> Vec<(Channel, Vec<String>)> {
        let mut stand_ins = Vec::new();
        if self.instagram.mode.is_local() {
            let vars = [env::INSTAGRAM_ACCESS_TOKEN, env::INSTAGRAM_USER_ID];
            stand_ins.push((Channel::Instagram, vars.map(str::to_owned).to_vec()));
        }
        if self.kakao.mode.is_local() {
            let vars = [env::SENS_SECRET_KEY, env::SENS_ACCESS_KEY, env::SENS_SERVICE_ID, env::SENS_PLUS_FRIEND_ID];
            stand_ins.push((Channel::KakaoChannel, vars.map(str::to_owned).to_vec()));
        }
        for (channel, partner) in &self.partners {
            if partner.mode.is_local() {
                let vars = ["API_KEY", "BASE_URL", "CLIENT_ID"].map(|suffix| env::partner(*channel, suffix));
                stand_ins.push((*channel, vars.to_vec()));
            }
        }
        stand_ins
    }

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

/// Every variable in the environment that cannot be used or is missing, each with its value
/// (secrets redacted) and what is expected (the kit's reader; see [`kem_kit::config`]).
pub type DistributionConfigError = ConfigError;

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
    /// Per-request timeout in ms, positive (default 20000).
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
    /// `true` refuses to start while any channel is on its local stand-in (which reports
    /// PUBLISHED with `local.invalid` links) or the public base URL is unset: production sets it.
    /// Default `false`: `kem up` keeps the labelled stand-ins. Naver without a cafe is not a
    /// stand-in (it prepares the article for the owner and says so).
    pub const REQUIRE_PROVIDERS: &str = "KEM_DISTRIBUTION_REQUIRE_PROVIDERS";

    /// `KEM_PARTNER_<CHANNEL>_<SUFFIX>`, e.g. `KEM_PARTNER_GENIE_TV_BASE_URL`.
    pub fn partner(channel: crate::domain::Channel, suffix: &str) -> String {
        format!("KEM_PARTNER_{}_{suffix}", channel.as_str())
    }

    /// `KEM_DISTRIBUTION_<CHANNEL>_DEADLINE_MS`: the step deadline of a channel.
    pub fn deadline(channel: crate::domain::Channel) -> String {
        format!("KEM_DISTRIBUTION_{}_DEADLINE_MS", channel.as_str())
    }
}

impl DistributionConfig {
    /// Settings from the environment (see [`env`]); anything unset keeps its [`Default`]. Each
    /// channel uses its real provider exactly when its credential is set:
    /// `KEM_INSTAGRAM_ACCESS_TOKEN`, `KEM_SENS_SECRET_KEY`, `KEM_NAVER_CAFE_ACCESS_TOKEN`,
    /// `KEM_PARTNER_<CHANNEL>_API_KEY` (the partner client secret, with
    /// `KEM_PARTNER_<CHANNEL>_CLIENT_ID` and `_BASE_URL`). Every variable may come from a file
    /// named by `<NAME>_FILE`.
    pub fn from_env() -> Result<DistributionConfig, DistributionConfigError> {
        config::read_from(&ProcessEnv, DistributionConfig::read)
    }

    /// Like [`from_env`](Self::from_env) with variables from `lookup` (tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<DistributionConfig, DistributionConfigError> {
        config::read_from(&lookup, DistributionConfig::read)
    }

    /// Reads the [`env`] variables from `vars`, recording every bad or missing one there and
    /// keeping the default in its place, so a process can read several services' settings and
    /// report all their problems together. A channel's provider settings are read whether or not
    /// its credential is set, except Naver Cafe's and the partners', which only matter with one.
    pub fn read(vars: &mut Reader<'_>) -> DistributionConfig {
        let url = || parse::http_url().without_trailing_slash();
        let needs = |credential: &str| format!("{credential} is set, so it must be set too");
        let mut config = DistributionConfig::default();
        let public_base_url = vars.get(env::PUBLIC_BASE_URL, url());
        if let Some(base) = public_base_url.clone() {
            config.public_base_url = base;
        }

        // Instagram
        let token = vars.secret(env::INSTAGRAM_ACCESS_TOKEN);
        let base = vars.get(env::INSTAGRAM_BASE_URL, url()).unwrap_or_else(|| instagram::DEFAULT_BASE_URL.to_owned());
        let provider = timed(vars, instagram::provider_config(base), env::INSTAGRAM_TIMEOUT_MS);
        if token.is_some()
            && let Some(user_id) =
                vars.require(env::INSTAGRAM_USER_ID, parse::text(), &needs(env::INSTAGRAM_ACCESS_TOKEN))
        {
            config.instagram.settings.user_id = user_id;
        }
        let version = parse::custom("a Graph API version such as v21.0", |v: &str| {
            if v.starts_with('v') && !v.contains('/') {
                Ok(v.to_owned())
            } else {
                Err("must look like v21.0".to_owned())
            }
        });
        if let Some(version) = vars.get(env::INSTAGRAM_API_VERSION, version) {
            config.instagram.settings.api_version = version;
        }
        let recheck = parse::seconds().at_least(Duration::from_secs(1));
        if let Some(recheck) = vars.get(env::INSTAGRAM_QUOTA_RECHECK_SECS, recheck) {
            config.instagram.settings.quota_recheck = recheck;
        }
        config.instagram.mode = ProviderMode::select(provider, token);

        // Kakao through SENS
        let secret = vars.secret(env::SENS_SECRET_KEY);
        let base = vars.get(env::SENS_BASE_URL, url()).unwrap_or_else(|| kakao::DEFAULT_BASE_URL.to_owned());
        let provider = timed(vars, kakao::provider_config(base), env::SENS_TIMEOUT_MS);
        if secret.is_some() {
            let because = needs(env::SENS_SECRET_KEY);
            let settings = &mut config.kakao.settings;
            let mut required = |name: &str, field: &mut String| {
                if let Some(value) = vars.require(name, parse::text(), &because) {
                    *field = value;
                }
            };
            required(env::SENS_ACCESS_KEY, &mut settings.access_key);
            required(env::SENS_SERVICE_ID, &mut settings.service_id);
            required(env::SENS_PLUS_FRIEND_ID, &mut settings.plus_friend_id);
        }
        if let Some(quiet) = vars.get(env::SENS_QUIET_HOURS, parse::flag()) {
            config.kakao.settings.quiet_hours = quiet;
        }
        config.kakao.mode = ProviderMode::select(provider, secret);

        // Naver Cafe
        if let Some(access_token) = vars.secret(env::NAVER_CAFE_ACCESS_TOKEN) {
            let base = vars.get(env::NAVER_CAFE_BASE_URL, url()).unwrap_or_else(|| naver::DEFAULT_BASE_URL.to_owned());
            let provider = timed(vars, naver::provider_config(base), env::NAVER_CAFE_TIMEOUT_MS);
            let because = needs(env::NAVER_CAFE_ACCESS_TOKEN);
            let club_id = vars.require(env::NAVER_CAFE_CLUB_ID, parse::text(), &because);
            let menu_id = vars.require(env::NAVER_CAFE_MENU_ID, parse::text(), &because);
            if let (Some(club_id), Some(menu_id)) = (club_id, menu_id) {
                let cafe = naver::CafeSettings { club_id, menu_id };
                config.naver_cafe = Some(CafeConfig { provider, access_token, cafe });
            }
        }

        // KT partner channels
        for channel in [Channel::UridongneTv, Channel::RingoBiz, Channel::GenieTv] {
            let key_var = env::partner(channel, "API_KEY");
            let secret = vars.secret(&key_var);
            let client_id = vars.get(&env::partner(channel, "CLIENT_ID"), parse::text());
            let local = || ProviderMode::Local { provider: partner::PROVIDER.to_owned() };
            let mode = match secret {
                Some(secret) => match vars.require(&env::partner(channel, "BASE_URL"), url(), &needs(&key_var)) {
                    Some(base) => {
                        let timeout = env::partner(channel, "TIMEOUT_MS");
                        let provider = timed(vars, partner::provider_config(channel, base), &timeout);
                        ProviderMode::select(provider, Some(secret))
                    }
                    // Reported as missing; the local partner stands in until it is fixed.
                    None => local(),
                },
                None => local(),
            };
            let client_id = match (&mode, client_id) {
                (ProviderMode::Real { .. }, Some(id)) => id,
                (ProviderMode::Real { .. }, None) => "kem".to_owned(),
                (ProviderMode::Local { .. }, _) => local_client_id(channel),
            };
            config.partners.insert(channel, PartnerConfig { mode, client_id });
        }

        // No fake success in production: with REQUIRE_PROVIDERS, a channel on its stand-in, or
        // image URLs on the local default base, is a configuration problem, so the process does
        // not start. A channel whose variables already have a problem is reported by that one.
        if vars.get(env::REQUIRE_PROVIDERS, parse::flag()).unwrap_or(false) {
            let because = |what: &str| format!("{}=true and {what}", env::REQUIRE_PROVIDERS);
            if public_base_url.is_none() {
                vars.missing(
                    env::PUBLIC_BASE_URL,
                    because("platforms must fetch images from the public edge, not the local default"),
                );
            }
            for (channel, variables) in config.stand_ins() {
                if vars.problems().iter().any(|p| variables.iter().any(|v| p.var() == v.as_str())) {
                    continue;
                }
                let what = format!(
                    "{channel} is on its local stand-in (it would report PUBLISHED without posting); set {}",
                    variables.join(", ")
                );
                vars.missing(&variables[0], because(&what));
            }
        }

        // Scheduling
        if let Some(attempts) = vars.get(env::MAX_ATTEMPTS, parse::number::<u32>().within(1, 100)) {
            for policy in config.policies.values_mut() {
                policy.retry.max_attempts = attempts;
            }
        }
        if let Some(interval) = vars.get(env::SCAN_INTERVAL_MS, positive_millis()) {
            config.scan_interval = interval;
        }
        for channel in Channel::ALL {
            if let Some(deadline) = vars.get(&env::deadline(channel), positive_millis()) {
                config.policies.entry(channel).or_insert_with(|| ChannelPolicy::default_for(channel)).deadline =
                    deadline;
            }
        }
        config
    }
}

/// A positive whole number of milliseconds.
fn positive_millis() -> impl Parse<Output = Duration> {
    parse::millis().at_least(Duration::from_millis(1))
}

/// `provider` with its per-request timeout from `name`, when set (the overall deadline never
/// shorter than one request).
fn timed(vars: &mut Reader<'_>, mut provider: ProviderConfig, name: &str) -> ProviderConfig {
    if let Some(timeout) = vars.get(name, positive_millis()) {
        provider.timeout = timeout;
        provider.deadline = provider.deadline.max(timeout);
    }
    provider
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
    fn require_providers_refuses_every_stand_in_naming_its_channel_and_variables() {
        let error = config(&[(env::REQUIRE_PROVIDERS, "true")]).expect_err("all local").to_string();
        for named in [
            "INSTAGRAM is on its local stand-in",
            "KAKAO_CHANNEL",
            "GENIE_TV",
            env::INSTAGRAM_ACCESS_TOKEN,
            env::INSTAGRAM_USER_ID,
            env::SENS_SECRET_KEY,
            env::SENS_PLUS_FRIEND_ID,
            "KEM_PARTNER_URIDONGNE_TV_API_KEY",
            "KEM_PARTNER_RINGO_BIZ_BASE_URL",
            "KEM_PARTNER_GENIE_TV_CLIENT_ID",
            env::PUBLIC_BASE_URL,
            env::REQUIRE_PROVIDERS,
        ] {
            assert!(error.contains(named), "{named} is named: {error}");
        }
        assert_eq!(config(&[(env::REQUIRE_PROVIDERS, "false")]).map(|c| c.stand_ins().len()).ok(), Some(5));
        assert!(config(&[(env::REQUIRE_PROVIDERS, "perhaps")]).is_err());

        // Every channel real, the public base URL set: it starts. Naver without a cafe is no stand-in.
        let mut vars = vec![
            (env::REQUIRE_PROVIDERS.to_owned(), "true".to_owned()),
            (env::PUBLIC_BASE_URL.to_owned(), "https://kem.example".to_owned()),
            (env::INSTAGRAM_ACCESS_TOKEN.to_owned(), "EAAB".to_owned()),
            (env::INSTAGRAM_USER_ID.to_owned(), "1784".to_owned()),
            (env::SENS_SECRET_KEY.to_owned(), "s".to_owned()),
            (env::SENS_ACCESS_KEY.to_owned(), "a".to_owned()),
            (env::SENS_SERVICE_ID.to_owned(), "svc".to_owned()),
            (env::SENS_PLUS_FRIEND_ID.to_owned(), "@kem".to_owned()),
        ];
        for channel in [Channel::UridongneTv, Channel::RingoBiz, Channel::GenieTv] {
            vars.push((env::partner(channel, "API_KEY"), "k".to_owned()));
            vars.push((env::partner(channel, "BASE_URL"), "https://partner.example/partner/v1".to_owned()));
        }
        let all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let c = config(&all).expect("every channel is real");
        assert!(c.stand_ins().is_empty());

        // One channel left on its stand-in: only it is named.
        let without_genie: Vec<(&str, &str)> =
            all.iter().copied().filter(|(k, _)| !k.starts_with("KEM_PARTNER_GENIE_TV")).collect();
        let error = config(&without_genie).expect_err("genie is local").to_string();
        assert!(error.contains("KEM_PARTNER_GENIE_TV_API_KEY"), "{error}");
        assert!(!error.contains("KEM_INSTAGRAM") && !error.contains("KEM_PARTNER_RINGO"), "{error}");
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
