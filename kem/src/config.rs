//! Configuration: command-line flags, then `KEM_*` environment variables, then an optional TOML
//! file, then built-in defaults — the first that sets a value wins.
//!
//! Every option is declared once ([`ConfigArgs`]): clap reads the flags, the kit's configuration
//! reader the variables (any of them may be given as `NAME_FILE`, and every bad one is reported at
//! once), serde the file. The layers are merged into one typed [`Settings`] that is printed
//! (secrets redacted) at start, so an operator always sees the configuration a process runs with.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use kem_kit::config::{ProcessEnv, Reader, Source, parse};
use serde::Deserialize;

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for Azure Monitor / any log shipper).
    Json,
}

/// Declares the process options once: each becomes a command-line flag (`--base-port`), a
/// `KEM_*` variable read through the kit's configuration reader (with the `_FILE` convention and
/// every bad variable reported at once) and a key of the TOML file, all of the same type.
macro_rules! options {
    ($(
        $(#[doc = $doc:literal])*
        $field:ident: $ty:ty = $var:literal, $read:ident($parser:expr);
    )*) => {
        /// Options shared by every subcommand. Each can be given as a flag, a `KEM_*` variable
        /// (or `KEM_*_FILE`) or a key of the `--config` TOML file, in that order of precedence.
        #[derive(Args, Deserialize, Debug, Default, Clone)]
        #[serde(deny_unknown_fields, default)]
        pub struct ConfigArgs {
            /// TOML configuration file; values in it are overridden by environment variables and
            /// flags. Env: `KEM_CONFIG`.
            #[arg(long, global = true)]
            #[serde(skip)]
            pub config: Option<PathBuf>,
            $(
                $(#[doc = $doc])*
                #[doc = concat!("Env: `", $var, "`.")]
                #[arg(long, global = true)]
                pub $field: Option<$ty>,
            )*
        }

        impl ConfigArgs {
            /// The options set in the environment; bad values are recorded in `env`.
            fn read_env(env: &mut Reader<'_>) -> ConfigArgs {
                ConfigArgs {
                    config: env.get("KEM_CONFIG", parse::path()),
                    $($field: env.$read($var, $parser),)*
                }
            }

            /// Each option from `self`, else from `lower`.
            fn or(self, lower: ConfigArgs) -> ConfigArgs {
                ConfigArgs { config: self.config.or(lower.config), $($field: self.$field.or(lower.$field),)* }
            }
        }
    };
}

options! {
    /// Address every listener binds to [default: 127.0.0.1].
    listen_host: IpAddr = "KEM_LISTEN_HOST", get(parse::from_str::<IpAddr>("an IP address, e.g. 0.0.0.0"));
    /// First gRPC port; roles use base+0 identity, +1 user, +2 event, +3 ai, +4 content,
    /// +5 distribution, +6 participation, +7 analytics, +8 gateway. 0 picks free ports [default: 7100].
    base_port: u16 = "KEM_BASE_PORT", get(parse::number::<u16>());
    /// Port of the REST edge (gateway). 0 picks a free port [default: 8080].
    http_port: u16 = "KEM_HTTP_PORT", get(parse::number::<u16>());
    /// Directory for embedded state (dev CA, local databases, blobs) [default: .kem].
    data_dir: PathBuf = "KEM_DATA_DIR", get(parse::path());
    /// Log format [default: text].
    log_format: LogFormat = "KEM_LOG_FORMAT", get(parse::one_of([("text", LogFormat::Text), ("json", LogFormat::Json)]));
    /// Log filter in `tracing` syntax, e.g. `info,kem_mesh=debug` [default: info].
    log_level: String = "KEM_LOG", get(parse::text());
    /// Seconds in-flight requests may take to finish after SIGTERM [default: 10].
    drain_timeout_secs: u64 = "KEM_DRAIN_TIMEOUT_SECS", get(parse::number::<u64>());
    /// SPIFFE trust domain of workload identities [default: kem.local].
    trust_domain: String = "KEM_TRUST_DOMAIN", get(parse::text());
    /// Namespace part of workload identities [default: kem].
    namespace: String = "KEM_NAMESPACE", get(parse::text());
    /// Address (host:port) of the identity CA [default: 127.0.0.1:<base-port>].
    identity_addr: String = "KEM_IDENTITY_ADDR", get(parse::text());
    /// PEM trust bundle used to verify the identity CA before the first certificate arrives
    /// [default: <ca-dir>/trust-bundle.pem].
    trust_anchors: PathBuf = "KEM_TRUST_ANCHORS", get(parse::path());
    /// File holding this workload's bootstrap token: a join token from `kem join-token`, or a
    /// Kubernetes projected ServiceAccount token (re-read on every renewal).
    identity_token_file: PathBuf = "KEM_IDENTITY_TOKEN_FILE", get(parse::path());
    /// Directory of the identity CA's material (issuer, trust bundle, join-token key)
    /// [default: <data-dir>/identity].
    ca_dir: PathBuf = "KEM_CA_DIR", get(parse::path());
    /// Lifetime of workload certificates in seconds [default: 86400].
    leaf_lifetime_secs: u64 = "KEM_LEAF_LIFETIME_SECS", get(parse::number::<u64>());
    /// First admin (plaintext health-probe) port; roles add the same offsets as gRPC ports
    /// [default: base-port + 100; 0 when base-port is 0].
    admin_base_port: u16 = "KEM_ADMIN_BASE_PORT", get(parse::number::<u16>());
    /// Backend addresses for the gateway, `service=host:port` comma-separated (e.g.
    /// `user=kem-user:7101,event=kem-event:7102`) [default: listen host with the role ports].
    upstreams: String = "KEM_UPSTREAMS", get(parse::text());
    /// Redis URL for shared caches (gateway idempotency keys, service caches); without it each
    /// process uses an in-process cache.
    redis_url: String = "KEM_REDIS_URL", get_secret(parse::text());
    /// Prefix of every Redis key this deployment writes (`<prefix><service>:…`) [default: kem:].
    cache_prefix: String = "KEM_CACHE_PREFIX", get(parse::text());
    /// Databases by service, `service=url` comma-separated, e.g.
    /// `user=postgres://…/kem_user,queue=postgres://…/kem_queue`. A service missing here uses
    /// `KEM_<SERVICE>_DATABASE_URL`, then `DATABASE_URL` (one service per pod), then an embedded
    /// SQLite file under the data dir. `queue` is the store-backed queue every service shares
    /// (only `KEM_QUEUE_DATABASE_URL`, never `DATABASE_URL`, can set it otherwise).
    database_urls: String = "KEM_DATABASE_URLS", get_secret(parse::text());
    /// Azure Service Bus connection string (`Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…`);
    /// when set, the queues are Service Bus queues instead of the store-backed queue.
    servicebus_connection_string: String = "KEM_SERVICEBUS_CONNECTION_STRING", get_secret(parse::text());
    /// Origins allowed by CORS at the edge, comma-separated [default: none].
    cors_origins: String = "KEM_CORS_ORIGINS", get(parse::text());
    /// Proxies (CIDRs) whose X-Forwarded-For the edge believes, e.g. the Application Gateway subnet.
    trusted_proxies: String = "KEM_TRUSTED_PROXIES", get(parse::text());
}

/// The resolved configuration of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Address every listener binds to.
    pub listen_host: IpAddr,
    /// First gRPC port (0: every role picks a free port).
    pub base_port: u16,
    /// REST edge port (0: free port).
    pub http_port: u16,
    /// Directory for embedded state.
    pub data_dir: PathBuf,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// Bound on the graceful drain after SIGTERM.
    pub drain_timeout: Duration,
    /// SPIFFE trust domain.
    pub trust_domain: String,
    /// Namespace of workload identities.
    pub namespace: String,
    /// The identity CA's address.
    pub identity_addr: String,
    /// Bootstrap trust bundle file.
    pub trust_anchors: PathBuf,
    /// This workload's bootstrap token file, if any.
    pub identity_token_file: Option<PathBuf>,
    /// The CA's material directory.
    pub ca_dir: PathBuf,
    /// Workload certificate lifetime.
    pub leaf_lifetime: Duration,
    /// First admin port (0: free ports).
    pub admin_base_port: u16,
    /// Gateway backend overrides: service name → `host:port`.
    pub upstreams: std::collections::BTreeMap<String, String>,
    /// Shared cache (Redis) URL.
    pub redis_url: Option<kem_kit::Secret>,
    /// Prefix of every Redis key.
    pub cache_prefix: String,
    /// Database URLs by service (and `queue`), overriding the environment and the embedded default.
    pub database_urls: std::collections::BTreeMap<String, kem_kit::Secret>,
    /// Azure Service Bus connection string (queues on Service Bus when set).
    pub servicebus_connection_string: Option<kem_kit::Secret>,
    /// CORS origins.
    pub cors_origins: Vec<String>,
    /// Trusted proxy CIDRs.
    pub trusted_proxies: Vec<String>,
    /// Where the file layer came from, if any.
    pub config_file: Option<PathBuf>,
    /// Whether services may run on their built-in local stand-ins: `kem up` (and an embedding
    /// program, by default) allows them, labelled; `kem serve` / `kem gateway` require real
    /// providers unless `KEM_ALLOW_LOCAL_PROVIDERS=1` (see [`kem_kit::external::ProviderPolicy`]).
    pub providers: kem_kit::external::ProviderPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            base_port: 7100,
            http_port: 8080,
            data_dir: PathBuf::from(".kem"),
            log_format: LogFormat::Text,
            log_level: "info".to_owned(),
            drain_timeout: Duration::from_secs(10),
            trust_domain: "kem.local".to_owned(),
            namespace: "kem".to_owned(),
            identity_addr: "127.0.0.1:7100".to_owned(),
            trust_anchors: PathBuf::from(".kem/identity/trust-bundle.pem"),
            identity_token_file: None,
            ca_dir: PathBuf::from(".kem/identity"),
            leaf_lifetime: Duration::from_secs(24 * 3600),
            admin_base_port: 7200,
            upstreams: Default::default(),
            redis_url: None,
            cache_prefix: "kem:".to_owned(),
            database_urls: Default::default(),
            servicebus_connection_string: None,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            config_file: None,
            providers: kem_kit::external::ProviderPolicy::AllowLocal,
        }
    }
}

impl Settings {
    /// Resolves flags over the process environment over the optional file over defaults.
    pub fn resolve(args: &ConfigArgs) -> anyhow::Result<Settings> {
        Self::resolve_from(args, &ProcessEnv)
    }

    /// [`Settings::resolve`] with the environment read from `source`. Every bad variable is
    /// reported at once, before the file is read.
    pub fn resolve_from(args: &ConfigArgs, source: &impl Source) -> anyhow::Result<Settings> {
        let env = kem_kit::config::read_from(source, ConfigArgs::read_env)?;
        let args = args.clone().or(env);
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => ConfigArgs::default(),
        };
        Self::layer(&args, file)
    }

    fn layer(args: &ConfigArgs, file: ConfigArgs) -> anyhow::Result<Settings> {
        let d = Settings::default();
        let listen_host = args.listen_host.or(file.listen_host).unwrap_or(d.listen_host);
        let base_port = args.base_port.or(file.base_port).unwrap_or(d.base_port);
        let data_dir = args.data_dir.clone().or(file.data_dir).unwrap_or(d.data_dir);
        let ca_dir = args.ca_dir.clone().or(file.ca_dir).unwrap_or_else(|| data_dir.join("identity"));
        let settings = Settings {
            listen_host,
            base_port,
            http_port: args.http_port.or(file.http_port).unwrap_or(d.http_port),
            data_dir,
            log_format: args.log_format.or(file.log_format).unwrap_or(d.log_format),
            log_level: args.log_level.clone().or(file.log_level).unwrap_or(d.log_level),
            drain_timeout: args
                .drain_timeout_secs
                .or(file.drain_timeout_secs)
                .map(Duration::from_secs)
                .unwrap_or(d.drain_timeout),
            trust_domain: args.trust_domain.clone().or(file.trust_domain).unwrap_or(d.trust_domain),
            namespace: args.namespace.clone().or(file.namespace).unwrap_or(d.namespace),
            identity_addr: args
                .identity_addr
                .clone()
                .or(file.identity_addr)
                .unwrap_or_else(|| format!("{}:{base_port}", loopback_for(listen_host))),
            trust_anchors: args
                .trust_anchors
                .clone()
                .or(file.trust_anchors)
                .unwrap_or_else(|| ca_dir.join("trust-bundle.pem")),
            identity_token_file: args.identity_token_file.clone().or(file.identity_token_file),
            ca_dir,
            leaf_lifetime: args
                .leaf_lifetime_secs
                .or(file.leaf_lifetime_secs)
                .map(Duration::from_secs)
                .unwrap_or(d.leaf_lifetime),
            admin_base_port: args.admin_base_port.or(file.admin_base_port).unwrap_or(if base_port == 0 {
                0
            } else {
                base_port.saturating_add(100)
            }),
            upstreams: parse_pairs(args.upstreams.clone().or(file.upstreams))?,
            redis_url: args.redis_url.clone().or(file.redis_url).map(kem_kit::Secret::new),
            cache_prefix: args.cache_prefix.clone().or(file.cache_prefix).unwrap_or(d.cache_prefix),
            database_urls: parse_pairs(args.database_urls.clone().or(file.database_urls))
                .context("invalid --database-urls / KEM_DATABASE_URLS (service=url,…)")?
                .into_iter()
                .map(|(k, v)| (k, kem_kit::Secret::new(v)))
                .collect(),
            servicebus_connection_string: args
                .servicebus_connection_string
                .clone()
                .or(file.servicebus_connection_string)
                .map(kem_kit::Secret::new),
            cors_origins: list(args.cors_origins.clone().or(file.cors_origins)),
            trusted_proxies: list(args.trusted_proxies.clone().or(file.trusted_proxies)),
            config_file: args.config.clone(),
            // Decided by the command (see `kem/src/main.rs`), not by a setting.
            providers: d.providers,
        };
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.base_port != 0 && u32::from(self.base_port) + 8 > u32::from(u16::MAX) {
            anyhow::bail!("base port {} leaves no room for the 9 role ports; choose one below 65527", self.base_port);
        }
        if self.trust_domain.is_empty() || self.trust_domain.contains(['/', ':', ' ']) {
            anyhow::bail!("trust domain {:?} is not a valid SPIFFE trust domain (e.g. kem.local)", self.trust_domain);
        }
        if self.admin_base_port != 0 && u32::from(self.admin_base_port) + 8 > u32::from(u16::MAX) {
            anyhow::bail!("admin base port {} leaves no room for the 9 role ports", self.admin_base_port);
        }
        if self.leaf_lifetime < Duration::from_secs(1) {
            anyhow::bail!("leaf lifetime must be at least 1 second");
        }
        if self.namespace.is_empty() || self.namespace.contains(['/', ' ']) {
            anyhow::bail!("namespace {:?} must be a non-empty name without '/' or spaces", self.namespace);
        }
        Ok(())
    }
}

fn list(value: Option<String>) -> Vec<String> {
    value
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn parse_pairs(value: Option<String>) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for item in list(value) {
        let (name, addr) = item
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("{item:?} must look like name=value (e.g. user=host:port)"))?;
        out.insert(name.trim().to_owned(), addr.trim().to_owned());
    }
    Ok(out)
}

/// The address a local client uses to reach a listener bound to `host`.
pub fn loopback_for(host: IpAddr) -> IpAddr {
    match host {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        other => other,
    }
}

fn read_file(path: &Path) -> anyhow::Result<ConfigArgs> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {} (set by --config / KEM_CONFIG)", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid kem TOML", path.display()))
}

impl fmt::Display for Settings {
    /// The configuration as TOML-like lines; secrets (none yet) print through `kem_kit::Secret`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "listen_host = \"{}\"", self.listen_host)?;
        writeln!(f, "base_port = {}", self.base_port)?;
        writeln!(f, "http_port = {}", self.http_port)?;
        writeln!(f, "data_dir = \"{}\"", self.data_dir.display())?;
        writeln!(f, "log_format = \"{}\"", if self.log_format == LogFormat::Json { "json" } else { "text" })?;
        writeln!(f, "log_level = \"{}\"", self.log_level)?;
        writeln!(f, "drain_timeout_secs = {}", self.drain_timeout.as_secs())?;
        writeln!(f, "trust_domain = \"{}\"", self.trust_domain)?;
        writeln!(f, "namespace = \"{}\"", self.namespace)?;
        writeln!(f, "identity_addr = \"{}\"", self.identity_addr)?;
        writeln!(f, "trust_anchors = \"{}\"", self.trust_anchors.display())?;
        match &self.identity_token_file {
            // The path is not secret; the token inside it is never read here.
            Some(path) => writeln!(f, "identity_token_file = \"{}\"", path.display())?,
            None => writeln!(f, "# identity_token_file: none")?,
        }
        writeln!(f, "ca_dir = \"{}\"", self.ca_dir.display())?;
        writeln!(f, "leaf_lifetime_secs = {}", self.leaf_lifetime.as_secs())?;
        writeln!(f, "admin_base_port = {}", self.admin_base_port)?;
        let upstreams: Vec<String> = self.upstreams.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(f, "upstreams = \"{}\"", upstreams.join(","))?;
        match &self.redis_url {
            Some(url) => writeln!(f, "redis_url = \"{url}\"")?,
            None => writeln!(f, "# redis_url: none (in-process caches)")?,
        }
        writeln!(f, "cache_prefix = \"{}\"", self.cache_prefix)?;
        let databases: Vec<String> = self.database_urls.iter().map(|(k, v)| format!("{k}={}", v.redacted())).collect();
        writeln!(f, "database_urls = \"{}\"", databases.join(","))?;
        match &self.servicebus_connection_string {
            Some(_) => writeln!(f, "servicebus_connection_string = \"***\"")?,
            None => writeln!(f, "# servicebus_connection_string: none (store-backed queues)")?,
        }
        writeln!(f, "cors_origins = \"{}\"", self.cors_origins.join(","))?;
        writeln!(f, "trusted_proxies = \"{}\"", self.trusted_proxies.join(","))?;
        let providers = match self.providers {
            kem_kit::external::ProviderPolicy::AllowLocal => "local stand-ins allowed (labelled)",
            kem_kit::external::ProviderPolicy::RequireReal => "real providers required",
        };
        writeln!(f, "# providers: {providers}")?;
        match &self.config_file {
            Some(path) => write!(f, "# file layer: {}", path.display()),
            None => write!(f, "# file layer: none"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> ConfigArgs {
        toml::from_str(text).expect("valid toml")
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = Settings::layer(&ConfigArgs::default(), ConfigArgs::default()).expect("valid");
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn args_override_file_which_overrides_defaults() {
        let args = ConfigArgs { base_port: Some(9000), ..Default::default() };
        let s = Settings::layer(&args, file("base_port = 8000\nhttp_port = 8181\n")).expect("valid");
        assert_eq!(s.base_port, 9000, "flag/env beats file");
        assert_eq!(s.http_port, 8181, "file beats default");
        assert_eq!(s.log_level, "info", "default when unset");
    }

    #[test]
    fn secrets_are_redacted_when_printed() {
        let args =
            ConfigArgs { redis_url: Some("redis://:hunter2@cache.internal:6380/0".into()), ..Default::default() };
        let printed = Settings::layer(&args, ConfigArgs::default()).expect("valid").to_string();
        assert!(printed.contains("redis://***@cache.internal:6380/0"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn upstream_overrides_parse() {
        let args =
            ConfigArgs { upstreams: Some("user=kem-user:7101, event=kem-event:7102".into()), ..Default::default() };
        let s = Settings::layer(&args, ConfigArgs::default()).expect("valid");
        assert_eq!(s.upstreams.get("event").map(String::as_str), Some("kem-event:7102"));
        let bad = ConfigArgs { upstreams: Some("user".into()), ..Default::default() };
        assert!(Settings::layer(&bad, ConfigArgs::default()).is_err());
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kem.toml");
        std::fs::write(&path, "base_port = 8000\nhttp_port = 8181\nnamespace = \"from-file\"\n").expect("write");
        let env = [
            ("KEM_CONFIG", path.display().to_string()),
            ("KEM_BASE_PORT", "9000".into()),
            ("KEM_HTTP_PORT", "9191".into()),
        ];
        let args = ConfigArgs { http_port: Some(9292), ..Default::default() };
        let s = Settings::resolve_from(&args, &env).expect("valid");
        assert_eq!((s.base_port, s.http_port, s.namespace.as_str()), (9000, 9292, "from-file"));
        assert_eq!(s.config_file.as_deref(), Some(path.as_path()));
    }

    #[test]
    fn every_bad_variable_is_reported_at_once_and_secrets_stay_hidden() {
        let env = [
            ("KEM_BASE_PORT", "seventy"),
            ("KEM_LOG_FORMAT", "xml"),
            ("KEM_LISTEN_HOST", "localhost:1"),
            ("KEM_REDIS_URL_FILE", "/nonexistent/kem-redis-url"),
        ];
        let error = Settings::resolve_from(&ConfigArgs::default(), &env).expect_err("four bad variables");
        let text = format!("{error:#}");
        for var in ["KEM_BASE_PORT", "KEM_LOG_FORMAT", "KEM_LISTEN_HOST", "KEM_REDIS_URL_FILE"] {
            assert!(text.contains(var), "{var} missing from: {text}");
        }
    }

    #[test]
    fn a_secret_can_come_from_a_mounted_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("redis-url");
        std::fs::write(&path, "redis://:hunter2@cache.internal:6380/0\n").expect("write");
        let env = [("KEM_REDIS_URL_FILE", path.display().to_string())];
        let s = Settings::resolve_from(&ConfigArgs::default(), &env).expect("valid");
        assert_eq!(s.redis_url.as_ref().map(kem_kit::Secret::expose), Some("redis://:hunter2@cache.internal:6380/0"));
        assert!(!s.to_string().contains("hunter2"));
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let err = toml::from_str::<ConfigArgs>("base_prot = 1").expect_err("typo must fail");
        assert!(err.to_string().contains("base_prot"), "{err}");
    }

    #[test]
    fn invalid_values_explain_themselves() {
        let args = ConfigArgs { base_port: Some(65530), ..Default::default() };
        let err = Settings::layer(&args, ConfigArgs::default()).expect_err("no room");
        assert!(err.to_string().contains("65527"), "{err}");
        let args = ConfigArgs { trust_domain: Some("spiffe://x".into()), ..Default::default() };
        assert!(Settings::layer(&args, ConfigArgs::default()).is_err());
    }
}
