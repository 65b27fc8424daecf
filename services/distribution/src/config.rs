//! The distribution service's settings: which provider each channel uses (real, with its
//! credentials and client settings, or the built-in local one), how hard each channel is retried,
//! and how the scheduler runs.
//!
//! Every channel has its own [`ChannelPolicy`] (deadline of a step, retries, polling bounds,
//! concurrency) next to its own provider client settings (per-request timeout, breaker), so one
//! channel's limits never bound another.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use kem_kit::Secret;
use kem_kit::config::{self, ConfigError, GivenFile, Parse, ProcessEnv, Reader, parse};
use kem_kit::external::{ProviderConfig, ProviderMode};
use kem_kit::sealing::keys::{self, KeySettings};

use crate::domain::{Channel, RetryPolicy};
use crate::infra::channels::{instagram, kakao, naver, partner};
use crate::infra::connections as login;
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

/// Instagram: the Graph API with each owner's own professional account, connected through
/// Instagram Login with the Meta app's credentials, or `local:instagram-graph`.
#[derive(Debug, Clone)]
pub struct InstagramConfig {
    /// Real (Graph client settings + the app secret) or local.
    pub mode: ProviderMode,
    /// Instagram App ID (real mode).
    pub app_id: String,
    /// The OAuth host of the code exchange (`https://api.instagram.com`).
    pub oauth_url: String,
    /// The consent screen's host (`https://www.instagram.com`).
    pub authorize_url: String,
    /// Permissions asked of the owner.
    pub scopes: Vec<String>,
    /// Flow settings.
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

/// Naver Login: the application owners log in to, so articles go to their own cafe board.
#[derive(Debug, Clone)]
pub struct NaverLoginConfig {
    /// Client ID.
    pub client_id: String,
    /// Client Secret.
    pub client_secret: Secret,
    /// Login host client settings (`https://nid.naver.com`).
    pub auth: ProviderConfig,
    /// API host client settings (`https://openapi.naver.com`: the member profile, Cafe posts).
    pub api: ProviderConfig,
}

/// The channel connections: the token key and the refresh job.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// The AES-256 key tokens are sealed with.
    pub token_keys: KeySettings,
    /// How often the refresh job looks for tokens due for a refresh.
    pub refresh_interval: Duration,
    /// How often expired attempts are purged.
    pub purge_interval: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            token_keys: KeySettings::default(),
            refresh_interval: Duration::from_secs(60),
            purge_interval: Duration::from_secs(3_600),
        }
    }
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
    /// Base URL of the REST edge: platforms fetch images from its signed media links
    /// `<base>/media/<token>` (see [`signed_image_url`](crate::infra::channels::signed_image_url)),
    /// entry pages are under `<base>/e/{id}`, and owners' OAuth callbacks come back to it.
    pub public_base_url: String,
    /// Instagram.
    pub instagram: InstagramConfig,
    /// Kakao Channel.
    pub kakao: KakaoConfig,
    /// Naver Login for posting to owners' cafes, or `None` for owner-assisted blog publishing only.
    pub naver: Option<NaverLoginConfig>,
    /// Channel connections.
    pub connections: ConnectionSettings,
    /// The key that signs the public media links (`<base>/media/<token>`) platforms fetch images
    /// from; the gateway checks them with the same key.
    pub media_keys: kem_kit::media::MediaKeySettings,
    /// The insights job (Instagram posts' numbers → analytics), run when Instagram is real.
    pub insights: crate::app::insights::InsightsSettings,
    /// 우리동네TV, 링고비즈, 지니TV.
    pub partners: BTreeMap<Channel, PartnerConfig>,
    /// The in-process partner server partner channels without credentials use.
    pub local_partner: PartnerServerConfig,
    /// The KT partner channels whose (real) partner publishes each owner's campaigns through the
    /// owner's store account, connected by the per-store authorization of `partner/v1`
    /// (`KEM_PARTNER_<CH>_STORE_ACCOUNTS`, on by default with a real partner). A real partner
    /// left out publishes through the platform's client credentials; a local one ignores it.
    pub partner_store_accounts: BTreeSet<Channel>,
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
    /// How long one page of Kakao recipients (participation's ListMarketingRecipients) may take.
    pub recipient_lookup_timeout: Duration,
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
            let vars = [env::INSTAGRAM_APP_SECRET, env::INSTAGRAM_APP_ID];
            stand_ins.push((Channel::Instagram, vars.map(str::to_owned).to_vec()));
        }
        if self.kakao.mode.is_local() {
            let vars = [env::SENS_SECRET_KEY, env::SENS_ACCESS_KEY, env::SENS_SERVICE_ID];
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
            public_base_url: DEFAULT_PUBLIC_BASE_URL.to_owned(),
            instagram: InstagramConfig {
                mode: local(instagram::PROVIDER),
                app_id: String::new(),
                oauth_url: login::instagram::DEFAULT_OAUTH_URL.to_owned(),
                authorize_url: login::instagram::DEFAULT_AUTHORIZE_URL.to_owned(),
                scopes: login::instagram::SCOPES.iter().map(|s| (*s).to_owned()).collect(),
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
            naver: None,
            connections: ConnectionSettings::default(),
            media_keys: kem_kit::media::MediaKeySettings::default(),
            insights: crate::app::insights::InsightsSettings::default(),
            partners: [Channel::UridongneTv, Channel::RingoBiz, Channel::GenieTv]
                .into_iter()
                .map(|c| (c, PartnerConfig { mode: local(partner::PROVIDER), client_id: local_client_id(c) }))
                .collect(),
            local_partner: PartnerServerConfig::default(),
            partner_store_accounts: BTreeSet::new(),
            policies: Channel::ALL.into_iter().map(|c| (c, ChannelPolicy::default_for(c))).collect(),
            scan_interval: Duration::from_secs(1),
            lease_margin: Duration::from_secs(30),
            owner_cache_ttl: Duration::from_secs(300),
            owner_lookup_timeout: Duration::from_secs(3),
            recipient_lookup_timeout: Duration::from_secs(5),
            consumer_concurrency: 4,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// The public base URL `kem up` uses: the edge on loopback, which no platform can reach.
pub const DEFAULT_PUBLIC_BASE_URL: &str = "http://127.0.0.1:8080";

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
    /// Instagram App Secret of the Meta app (Instagram Login); selects the real Instagram API,
    /// each owner publishing through the account they connected.
    pub const INSTAGRAM_APP_SECRET: &str = "KEM_INSTAGRAM_APP_SECRET";
    /// Instagram App ID (required with the secret).
    pub const INSTAGRAM_APP_ID: &str = "KEM_INSTAGRAM_APP_ID";
    /// OAuth host of the code exchange (default `https://api.instagram.com`).
    pub const INSTAGRAM_OAUTH_URL: &str = "KEM_INSTAGRAM_OAUTH_URL";
    /// Host of the consent screen (default `https://www.instagram.com`).
    pub const INSTAGRAM_AUTHORIZE_URL: &str = "KEM_INSTAGRAM_AUTHORIZE_URL";
    /// Graph host (default `https://graph.instagram.com`, Instagram Login's).
    pub const INSTAGRAM_BASE_URL: &str = "KEM_INSTAGRAM_BASE_URL";
    /// Removed: one platform-wide token published every owner's posts.
    pub const REMOVED_INSTAGRAM_ACCESS_TOKEN: &str = "KEM_INSTAGRAM_ACCESS_TOKEN";
    /// Removed with it.
    pub const REMOVED_INSTAGRAM_USER_ID: &str = "KEM_INSTAGRAM_USER_ID";
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
    /// Removed: one platform-wide Kakao channel sent every owner's messages (each owner now
    /// connects their own channel, registered as a sender profile of the SENS service).
    pub const REMOVED_SENS_PLUS_FRIEND_ID: &str = "KEM_SENS_PLUS_FRIEND_ID";
    /// SENS host (default `https://sens.apigw.ntruss.com`).
    pub const SENS_BASE_URL: &str = "KEM_SENS_BASE_URL";
    /// Per-request timeout in ms (default 10000).
    pub const SENS_TIMEOUT_MS: &str = "KEM_SENS_TIMEOUT_MS";
    /// `false` sends at night too (default `true`: Kakao's 20:00–08:00 KST ad restriction).
    pub const SENS_QUIET_HOURS: &str = "KEM_SENS_QUIET_HOURS";
    /// Client Secret of the Naver Login application; enables owners to connect Naver and
    /// publish to their own cafe board.
    pub const NAVER_CLIENT_SECRET: &str = "KEM_NAVER_CLIENT_SECRET";
    /// Client ID (required with the secret).
    pub const NAVER_CLIENT_ID: &str = "KEM_NAVER_CLIENT_ID";
    /// Naver Login host (default `https://nid.naver.com`).
    pub const NAVER_AUTH_URL: &str = "KEM_NAVER_AUTH_URL";
    /// Naver API host (default `https://openapi.naver.com`): the member profile and Cafe posts.
    pub const NAVER_API_URL: &str = "KEM_NAVER_API_URL";
    /// Older name of [`NAVER_API_URL`], still read when that is unset.
    pub const NAVER_CAFE_BASE_URL: &str = "KEM_NAVER_CAFE_BASE_URL";
    /// Per-request timeout in ms (default 10000).
    pub const NAVER_CAFE_TIMEOUT_MS: &str = "KEM_NAVER_CAFE_TIMEOUT_MS";
    /// Removed: one platform-wide member token posted every owner's articles.
    pub const REMOVED_NAVER_CAFE_ACCESS_TOKEN: &str = "KEM_NAVER_CAFE_ACCESS_TOKEN";
    /// Removed with it (each owner picks their board when connecting).
    pub const REMOVED_NAVER_CAFE_CLUB_ID: &str = "KEM_NAVER_CAFE_CLUB_ID";
    /// Removed with it.
    pub const REMOVED_NAVER_CAFE_MENU_ID: &str = "KEM_NAVER_CAFE_MENU_ID";
    /// Base64 AES-256 key the owners' tokens are sealed with (or `_FILE`, e.g. a Key Vault mount).
    /// Required with a real Instagram or Naver Login and with REQUIRE_PROVIDERS; otherwise a
    /// development key is generated under the data dir.
    pub const TOKEN_KEY: &str = "KEM_DISTRIBUTION_TOKEN_KEY";
    /// Earlier token keys, comma-separated, still opening tokens sealed before a rotation.
    pub const TOKEN_PREVIOUS_KEYS: &str = "KEM_DISTRIBUTION_TOKEN_PREVIOUS_KEYS";
    /// Seconds between refresh-job rounds (default 60).
    pub const TOKEN_REFRESH_INTERVAL_SECS: &str = "KEM_DISTRIBUTION_TOKEN_REFRESH_INTERVAL_SECS";
    /// How often each published Instagram post's numbers are read, in seconds, at least 3600
    /// (default 3600).
    pub const INSIGHTS_INTERVAL_SECS: &str = "KEM_DISTRIBUTION_INSIGHTS_INTERVAL_SECS";
    /// Attempts per delivery before a retryable failure is final (default 5; 3 for Kakao and Naver).
    pub const MAX_ATTEMPTS: &str = "KEM_DISTRIBUTION_MAX_ATTEMPTS";
    /// Scheduler scan interval in ms (default 1000).
    pub const SCAN_INTERVAL_MS: &str = "KEM_DISTRIBUTION_SCAN_INTERVAL_MS";
    /// `true` refuses to start while any channel is on its local stand-in (which reports
    /// PUBLISHED with `local.invalid` links) or the public base URL is unset: production sets it.
    /// Default `false`: `kem up` keeps the labelled stand-ins. Naver without a cafe is not a
    /// stand-in (it prepares the article for the owner and says so).
    pub const REQUIRE_PROVIDERS: &str = "KEM_DISTRIBUTION_REQUIRE_PROVIDERS";

    /// `KEM_PARTNER_<CHANNEL>_<SUFFIX>`, e.g. `KEM_PARTNER_GENIE_TV_BASE_URL`. Suffixes: `API_KEY`
    /// (the client secret; selects the real partner), `BASE_URL`, `CLIENT_ID`, `TIMEOUT_MS`,
    /// `STORE_ACCOUNTS` (`true` by default: owners connect their store accounts at the partner).
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

        config.media_keys = kem_kit::media::MediaKeySettings::read(vars);
        // Meta asks for hourly polling at most (PROVIDERS.md §10).
        let every = parse::seconds().at_least(Duration::from_secs(3_600));
        if let Some(interval) = vars.get(env::INSIGHTS_INTERVAL_SECS, every) {
            config.insights.interval = interval;
        }

        // Removed platform-wide tokens: a deployment still setting one fails loudly, naming what
        // replaced it, instead of silently publishing through nobody's account.
        let instagram_instead = format!(
            "is no longer read: each owner connects their own Instagram account; set {} and {} (the Meta app's \
             Instagram Login credentials) and remove it",
            env::INSTAGRAM_APP_ID,
            env::INSTAGRAM_APP_SECRET
        );
        let naver_instead = format!(
            "is no longer read: each owner connects Naver and picks their cafe board; set {} and {} (the Naver \
             Login application) and remove it",
            env::NAVER_CLIENT_ID,
            env::NAVER_CLIENT_SECRET
        );
        let kakao_instead = format!(
            "is no longer read: each owner connects their own Kakao Talk Channel, registered as a sender profile of \
             the SENS Biz Message service {} names; remove it",
            env::SENS_SERVICE_ID
        );
        for (removed, instead) in [
            (env::REMOVED_SENS_PLUS_FRIEND_ID, &kakao_instead),
            (env::REMOVED_INSTAGRAM_ACCESS_TOKEN, &instagram_instead),
            (env::REMOVED_INSTAGRAM_USER_ID, &instagram_instead),
            (env::REMOVED_NAVER_CAFE_ACCESS_TOKEN, &naver_instead),
            (env::REMOVED_NAVER_CAFE_CLUB_ID, &naver_instead),
            (env::REMOVED_NAVER_CAFE_MENU_ID, &naver_instead),
        ] {
            if vars.secret(removed).is_some() {
                vars.broken(removed, instead.as_str());
            }
        }

        // Instagram
        let secret = vars.secret(env::INSTAGRAM_APP_SECRET);
        let base = vars.get(env::INSTAGRAM_BASE_URL, url()).unwrap_or_else(|| instagram::DEFAULT_BASE_URL.to_owned());
        let provider = timed(vars, instagram::provider_config(base), env::INSTAGRAM_TIMEOUT_MS);
        if let Some(oauth) = vars.get(env::INSTAGRAM_OAUTH_URL, url()) {
            config.instagram.oauth_url = oauth;
        }
        if let Some(authorize) = vars.get(env::INSTAGRAM_AUTHORIZE_URL, url()) {
            config.instagram.authorize_url = authorize;
        }
        if secret.is_some()
            && let Some(app_id) = vars.require(env::INSTAGRAM_APP_ID, parse::text(), &needs(env::INSTAGRAM_APP_SECRET))
        {
            config.instagram.app_id = app_id;
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
        config.instagram.mode = ProviderMode::select(provider, secret);

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
        }
        if let Some(quiet) = vars.get(env::SENS_QUIET_HOURS, parse::flag()) {
            config.kakao.settings.quiet_hours = quiet;
        }
        config.kakao.mode = ProviderMode::select(provider, secret);

        // Naver Login (Cafe posting with each owner's account)
        if let Some(client_secret) = vars.secret(env::NAVER_CLIENT_SECRET) {
            let because = needs(env::NAVER_CLIENT_SECRET);
            let client_id = vars.require(env::NAVER_CLIENT_ID, parse::text(), &because);
            let auth =
                vars.get(env::NAVER_AUTH_URL, url()).unwrap_or_else(|| login::naver::DEFAULT_AUTH_URL.to_owned());
            let api = vars
                .get(env::NAVER_API_URL, url())
                .or_else(|| vars.get(env::NAVER_CAFE_BASE_URL, url()))
                .unwrap_or_else(|| naver::DEFAULT_BASE_URL.to_owned());
            let api = timed(vars, naver::provider_config(api), env::NAVER_CAFE_TIMEOUT_MS);
            if let Some(client_id) = client_id {
                let auth = login::naver::provider_config(auth);
                config.naver = Some(NaverLoginConfig { client_id, client_secret, auth, api });
            }
        }

        // The key of the owners' tokens
        let given = vars.given(env::TOKEN_KEY);
        config.connections.token_keys.key_file = given.file.as_ref().map(|file| file.path.clone());
        let key = match (given.value, given.file) {
            (Some(key), _) => Some((key, None)),
            (None, Some(GivenFile { path, contents: Ok(key) })) if !key.is_empty() => Some((key, Some(path))),
            (None, _) => None,
        };
        if let Some((key, file)) = key {
            config.connections.token_keys.key =
                vars.check_secret(env::TOKEN_KEY, &key, file, aes_key(env::TOKEN_KEY)).map(Secret::new);
        }
        if let Some(previous) =
            vars.get_secret(env::TOKEN_PREVIOUS_KEYS, parse::list(aes_key(env::TOKEN_PREVIOUS_KEYS)))
        {
            config.connections.token_keys.previous_keys = previous.into_iter().map(Secret::new).collect();
        }
        let interval = parse::seconds().within(Duration::from_secs(1), Duration::from_secs(3_600));
        if let Some(interval) = vars.get(env::TOKEN_REFRESH_INTERVAL_SECS, interval) {
            config.connections.refresh_interval = interval;
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
            let store_accounts = vars.get(&env::partner(channel, "STORE_ACCOUNTS"), parse::flag()).unwrap_or(true);
            if store_accounts && !mode.is_local() {
                config.partner_store_accounts.insert(channel);
            }
            config.partners.insert(channel, PartnerConfig { mode, client_id });
        }

        // No fake success in production: with REQUIRE_PROVIDERS, a channel on its stand-in, or
        // image URLs on the local default base, is a configuration problem, so the process does
        // not start. A channel whose variables already have a problem is reported by that one.
        let require_providers = vars.get(env::REQUIRE_PROVIDERS, parse::flag()).unwrap_or(false);
        // Owners' tokens outlive the process: a generated key beside the data would lose them
        // with a pod, so a real login provider (or production) needs a configured key.
        config.connections.token_keys.require_configured_key = require_providers
            || !config.instagram.mode.is_local()
            || config.naver.is_some()
            || !config.partner_store_accounts.is_empty();
        if require_providers {
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

/// A base64 AES-256 key (the value is never shown in an error).
fn aes_key(var: &'static str) -> impl Parse<Output = String> {
    parse::custom("base64 of exactly 32 bytes", move |key: &str| {
        keys::decode_key(key, var).map(|_| key.to_owned()).map_err(|e| e.to_string())
    })
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

impl kem_kit::external::StandIns for DistributionConfig {
    /// Every channel on its stand-in, and what only `kem up` may improvise: generated keys for
    /// the owners' tokens and the media links (a key beside one pod's data loses the tokens and
    /// breaks the links of every other replica), and the loopback default as the public base URL
    /// (platforms could fetch nothing from it).
    fn stand_ins(&self) -> Vec<kem_kit::external::StandIn> {
        use kem_kit::external::StandIn;
        let mut stand_ins: Vec<StandIn> = DistributionConfig::stand_ins(self)
            .into_iter()
            .map(|(channel, vars)| StandIn::new(format!("{channel} channel (local stand-in, nothing is posted)"), vars))
            .collect();
        if self.connections.token_keys.key.is_none() && self.connections.token_keys.key_file.is_none() {
            let vars = [format!("{}_FILE", env::TOKEN_KEY), env::TOKEN_KEY.to_owned()];
            stand_ins.push(StandIn::new("owners' channel token key (a generated development key)", vars));
        }
        if self.media_keys.key.is_none() && self.media_keys.key_file.is_none() {
            let vars = [kem_kit::media::names::KEY_FILE, kem_kit::media::names::KEY];
            stand_ins.push(StandIn::new("media link signing key (a generated development key)", vars));
        }
        if self.public_base_url == DEFAULT_PUBLIC_BASE_URL {
            let what = "public base URL (the loopback default: platforms could fetch no image from it)";
            stand_ins.push(StandIn::new(what, [env::PUBLIC_BASE_URL]));
        }
        stand_ins
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Base64 of 32 bytes.
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn config(vars: &[(&str, &str)]) -> Result<DistributionConfig, DistributionConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        DistributionConfig::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn without_credentials_every_channel_is_local() {
        let c = config(&[]).expect("defaults");
        assert!(c.instagram.mode.is_local());
        assert!(c.kakao.mode.is_local());
        assert!(c.naver.is_none());
        assert!(!c.connections.token_keys.require_configured_key, "kem up generates a development key");
        assert_eq!(c.partners.len(), 3);
        assert!(c.partners.values().all(|p| p.mode.is_local()));
        assert_eq!(c.public_base_url, "http://127.0.0.1:8080");
        assert_eq!(c.policies.len(), 6);
    }

    #[test]
    fn credentials_select_real_providers_with_their_settings() {
        let c = config(&[
            (env::PUBLIC_BASE_URL, "https://kem.example/"),
            (env::INSTAGRAM_APP_SECRET, "app-secret"),
            (env::INSTAGRAM_APP_ID, "990602627938098"),
            (env::INSTAGRAM_BASE_URL, "http://127.0.0.1:9"),
            (env::INSTAGRAM_OAUTH_URL, "http://127.0.0.1:10/"),
            (env::INSTAGRAM_TIMEOUT_MS, "1500"),
            (env::SENS_SECRET_KEY, "s3cret"),
            (env::SENS_ACCESS_KEY, "AK"),
            (env::SENS_SERVICE_ID, "ncp:kkobizmsg:kr:1:kem"),
            (env::SENS_QUIET_HOURS, "false"),
            (env::NAVER_CLIENT_SECRET, "naver-secret"),
            (env::NAVER_CLIENT_ID, "naver-client"),
            (env::NAVER_AUTH_URL, "http://127.0.0.1:11"),
            (env::NAVER_API_URL, "http://127.0.0.1:12"),
            (env::TOKEN_KEY, KEY),
            (env::TOKEN_PREVIOUS_KEYS, &format!("{KEY},{KEY}")),
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
                assert_eq!(credentials.expose(), "app-secret");
            }
            ProviderMode::Local { .. } => panic!("an app secret was configured"),
        }
        assert_eq!(c.instagram.app_id, "990602627938098");
        assert_eq!(c.instagram.oauth_url, "http://127.0.0.1:10");
        assert_eq!(c.instagram.authorize_url, "https://www.instagram.com");
        assert_eq!(c.instagram.scopes.len(), 3);
        assert!(!c.kakao.mode.is_local());
        assert_eq!(c.kakao.settings.service_id, "ncp:kkobizmsg:kr:1:kem");
        assert!(!c.kakao.settings.quiet_hours);
        let naver = c.naver.as_ref().expect("Naver Login");
        assert_eq!((naver.client_id.as_str(), naver.client_secret.expose()), ("naver-client", "naver-secret"));
        assert_eq!(
            (naver.auth.base_url.as_str(), naver.api.base_url.as_str()),
            ("http://127.0.0.1:11", "http://127.0.0.1:12")
        );
        assert_eq!(c.connections.token_keys.key.as_ref().map(|k| k.expose()), Some(KEY));
        assert_eq!(c.connections.token_keys.previous_keys.len(), 2);
        assert!(c.connections.token_keys.require_configured_key, "real logins keep tokens: no development key");
        let genie = &c.partners[&Channel::GenieTv];
        assert!(!genie.mode.is_local());
        assert_eq!(genie.client_id, "kem-genie");
        assert!(c.partners[&Channel::RingoBiz].mode.is_local());
        // A real partner takes the owners' store accounts unless told otherwise; a local one never.
        assert_eq!(c.partner_store_accounts.iter().copied().collect::<Vec<_>>(), vec![Channel::GenieTv]);
        assert_eq!(c.policy(Channel::GenieTv).deadline, Duration::from_millis(2500));
        assert!(c.policies.values().all(|p| p.retry.max_attempts == 2));
    }

    #[test]
    fn a_real_partner_can_keep_the_platforms_account() {
        let c = config(&[
            ("KEM_PARTNER_GENIE_TV_API_KEY", "k"),
            ("KEM_PARTNER_GENIE_TV_BASE_URL", "http://127.0.0.1:9/partner/v1"),
            ("KEM_PARTNER_GENIE_TV_STORE_ACCOUNTS", "false"),
            ("KEM_PARTNER_RINGO_BIZ_STORE_ACCOUNTS", "true"),
        ])
        .expect("valid");
        assert!(!c.partners[&Channel::GenieTv].mode.is_local());
        assert!(c.partner_store_accounts.is_empty(), "off for 지니TV, and 링고비즈 is local");
        assert!(!c.connections.token_keys.require_configured_key);
        let error = config(&[("KEM_PARTNER_GENIE_TV_STORE_ACCOUNTS", "maybe")]).expect_err("not a flag").to_string();
        assert!(error.contains("KEM_PARTNER_GENIE_TV_STORE_ACCOUNTS"), "{error}");
    }

    #[test]
    fn require_providers_refuses_every_stand_in_naming_its_channel_and_variables() {
        let error = config(&[(env::REQUIRE_PROVIDERS, "true")]).expect_err("all local").to_string();
        for named in [
            "INSTAGRAM is on its local stand-in",
            "KAKAO_CHANNEL",
            "GENIE_TV",
            env::INSTAGRAM_APP_SECRET,
            env::INSTAGRAM_APP_ID,
            env::SENS_SECRET_KEY,
            env::SENS_SERVICE_ID,
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
            (env::INSTAGRAM_APP_SECRET.to_owned(), "s".to_owned()),
            (env::INSTAGRAM_APP_ID.to_owned(), "990".to_owned()),
            (env::TOKEN_KEY.to_owned(), KEY.to_owned()),
            (env::SENS_SECRET_KEY.to_owned(), "s".to_owned()),
            (env::SENS_ACCESS_KEY.to_owned(), "a".to_owned()),
            (env::SENS_SERVICE_ID.to_owned(), "svc".to_owned()),
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
            (vec![(env::INSTAGRAM_APP_SECRET, "t")], env::INSTAGRAM_APP_ID),
            (vec![(env::NAVER_CLIENT_SECRET, "t")], env::NAVER_CLIENT_ID),
            (vec![(env::TOKEN_KEY, "not a key")], env::TOKEN_KEY),
            (vec![(env::TOKEN_PREVIOUS_KEYS, "%%%")], env::TOKEN_PREVIOUS_KEYS),
            (vec![(env::SENS_SECRET_KEY, "s"), (env::SENS_ACCESS_KEY, "a")], env::SENS_SERVICE_ID),
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

    #[test]
    fn the_removed_platform_wide_tokens_fail_naming_their_replacement() {
        for (removed, named) in [
            (env::REMOVED_SENS_PLUS_FRIEND_ID, env::SENS_SERVICE_ID),
            (env::REMOVED_INSTAGRAM_ACCESS_TOKEN, env::INSTAGRAM_APP_SECRET),
            (env::REMOVED_INSTAGRAM_USER_ID, env::INSTAGRAM_APP_ID),
            (env::REMOVED_NAVER_CAFE_ACCESS_TOKEN, env::NAVER_CLIENT_SECRET),
            (env::REMOVED_NAVER_CAFE_CLUB_ID, env::NAVER_CLIENT_ID),
            (env::REMOVED_NAVER_CAFE_MENU_ID, env::NAVER_CLIENT_ID),
        ] {
            let error = config(&[(removed, "EAAB-secret-value")]).expect_err(removed).to_string();
            assert!(error.contains(removed) && error.contains(named), "{error}");
            assert!(!error.contains("EAAB-secret-value"), "the old token is redacted: {error}");
        }
    }

    #[test]
    fn production_needs_a_configured_token_key() {
        let c = config(&[(env::REQUIRE_PROVIDERS, "false")]).expect("local");
        assert!(!c.connections.token_keys.require_configured_key);
        let c = config(&[(env::INSTAGRAM_APP_SECRET, "s"), (env::INSTAGRAM_APP_ID, "1")]).expect("real Instagram");
        assert!(c.connections.token_keys.require_configured_key);
        assert!(c.stand_ins().iter().all(|(channel, _)| *channel != Channel::Instagram));
    }
}
