//! Configuration: command-line flags, then `KEM_*` environment variables, then an optional TOML
//! file, then built-in defaults — the first that sets a value wins.
//!
//! clap resolves flag-over-environment for every option; this module layers the file and the
//! defaults underneath and produces one typed [`Settings`] that is printed (secrets redacted) at
//! start, so an operator always sees the configuration a process actually runs with.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
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

/// Options shared by every subcommand. Each can be given as a flag or a `KEM_*` variable.
#[derive(Args, Debug, Default, Clone)]
pub struct ConfigArgs {
    /// TOML configuration file; values in it are overridden by environment variables and flags.
    #[arg(long, env = "KEM_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address every listener binds to [default: 127.0.0.1].
    #[arg(long, env = "KEM_LISTEN_HOST", global = true)]
    pub listen_host: Option<IpAddr>,
    /// First gRPC port; roles use base+0 identity, +1 user, +2 event, +3 ai, +4 content,
    /// +5 distribution, +6 participation, +7 analytics, +8 gateway. 0 picks free ports [default: 7100].
    #[arg(long, env = "KEM_BASE_PORT", global = true)]
    pub base_port: Option<u16>,
    /// Port of the REST edge (gateway). 0 picks a free port [default: 8080].
    #[arg(long, env = "KEM_HTTP_PORT", global = true)]
    pub http_port: Option<u16>,
    /// Directory for embedded state (dev CA, local databases, blobs) [default: .kem].
    #[arg(long, env = "KEM_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, env = "KEM_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,
    /// Log filter in `tracing` syntax, e.g. `info,kem_mesh=debug` [default: info].
    #[arg(long, env = "KEM_LOG", global = true)]
    pub log_level: Option<String>,
    /// Seconds in-flight requests may take to finish after SIGTERM [default: 10].
    #[arg(long, env = "KEM_DRAIN_TIMEOUT_SECS", global = true)]
    pub drain_timeout_secs: Option<u64>,
    /// SPIFFE trust domain of workload identities [default: kem.local].
    #[arg(long, env = "KEM_TRUST_DOMAIN", global = true)]
    pub trust_domain: Option<String>,
    /// Namespace part of workload identities [default: kem].
    #[arg(long, env = "KEM_NAMESPACE", global = true)]
    pub namespace: Option<String>,
    /// Address (host:port) of the identity CA [default: 127.0.0.1:<base-port>].
    #[arg(long, env = "KEM_IDENTITY_ADDR", global = true)]
    pub identity_addr: Option<String>,
    /// PEM trust bundle used to verify the identity CA before the first certificate arrives
    /// [default: <ca-dir>/trust-bundle.pem].
    #[arg(long, env = "KEM_TRUST_ANCHORS", global = true)]
    pub trust_anchors: Option<PathBuf>,
    /// File holding this workload's bootstrap token: a join token from `kem join-token`, or a
    /// Kubernetes projected ServiceAccount token (re-read on every renewal).
    #[arg(long, env = "KEM_IDENTITY_TOKEN_FILE", global = true)]
    pub identity_token_file: Option<PathBuf>,
    /// Directory of the identity CA's material (issuer, trust bundle, join-token key)
    /// [default: <data-dir>/identity].
    #[arg(long, env = "KEM_CA_DIR", global = true)]
    pub ca_dir: Option<PathBuf>,
    /// Lifetime of workload certificates in seconds [default: 86400].
    #[arg(long, env = "KEM_LEAF_LIFETIME_SECS", global = true)]
    pub leaf_lifetime_secs: Option<u64>,
    /// First admin (plaintext health-probe) port; roles add the same offsets as gRPC ports
    /// [default: base-port + 100; 0 when base-port is 0].
    #[arg(long, env = "KEM_ADMIN_BASE_PORT", global = true)]
    pub admin_base_port: Option<u16>,
    /// Backend addresses for the gateway, `service=host:port` comma-separated (e.g.
    /// `user=kem-user:7101,event=kem-event:7102`) [default: listen host with the role ports].
    #[arg(long, env = "KEM_UPSTREAMS", global = true)]
    pub upstreams: Option<String>,
    /// Redis URL for shared caches (gateway idempotency keys, service caches); without it each
    /// process uses an in-process cache.
    #[arg(long, env = "KEM_REDIS_URL", global = true)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key this deployment writes (`<prefix><service>:…`) [default: kem:].
    #[arg(long, env = "KEM_CACHE_PREFIX", global = true)]
    pub cache_prefix: Option<String>,
    /// Databases by service, `service=url` comma-separated, e.g.
    /// `user=postgres://…/kem_user,queue=postgres://…/kem_queue`. A service missing here uses
    /// `KEM_<SERVICE>_DATABASE_URL`, then `DATABASE_URL` (one service per pod), then an embedded
    /// SQLite file under the data dir. `queue` is the store-backed queue every service shares
    /// (only `KEM_QUEUE_DATABASE_URL`, never `DATABASE_URL`, can set it otherwise).
    #[arg(long, env = "KEM_DATABASE_URLS", global = true)]
    pub database_urls: Option<String>,
    /// Azure Service Bus connection string (`Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…`);
    /// when set, the queues are Service Bus queues instead of the store-backed queue.
    #[arg(long, env = "KEM_SERVICEBUS_CONNECTION_STRING", global = true)]
    pub servicebus_connection_string: Option<String>,
    /// Origins allowed by CORS at the edge, comma-separated [default: none].
    #[arg(long, env = "KEM_CORS_ORIGINS", global = true)]
    pub cors_origins: Option<String>,
    /// Proxies (CIDRs) whose X-Forwarded-For the edge believes, e.g. the Application Gateway subnet.
    #[arg(long, env = "KEM_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
}

/// The same options as read from a TOML file. Unknown keys are rejected so a typo is an error,
/// not a silently ignored setting.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen_host: Option<IpAddr>,
    base_port: Option<u16>,
    http_port: Option<u16>,
    data_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    drain_timeout_secs: Option<u64>,
    trust_domain: Option<String>,
    namespace: Option<String>,
    identity_addr: Option<String>,
    trust_anchors: Option<PathBuf>,
    identity_token_file: Option<PathBuf>,
    ca_dir: Option<PathBuf>,
    leaf_lifetime_secs: Option<u64>,
    admin_base_port: Option<u16>,
    upstreams: Option<String>,
    redis_url: Option<String>,
    cache_prefix: Option<String>,
    database_urls: Option<String>,
    servicebus_connection_string: Option<String>,
    cors_origins: Option<String>,
    trusted_proxies: Option<String>,
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
        }
    }
}

impl Settings {
    /// Resolves flags/environment (already merged by clap) over the optional file over defaults.
    pub fn resolve(args: &ConfigArgs) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        Self::layer(args, file)
    }

    fn layer(args: &ConfigArgs, file: FileConfig) -> anyhow::Result<Settings> {
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

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
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
        match &self.config_file {
            Some(path) => write!(f, "# file layer: {}", path.display()),
            None => write!(f, "# file layer: none"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> FileConfig {
        toml::from_str(text).expect("valid toml")
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = Settings::layer(&ConfigArgs::default(), FileConfig::default()).expect("valid");
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
        let printed = Settings::layer(&args, FileConfig::default()).expect("valid").to_string();
        assert!(printed.contains("redis://***@cache.internal:6380/0"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }

    #[test]
    fn upstream_overrides_parse() {
        let args =
            ConfigArgs { upstreams: Some("user=kem-user:7101, event=kem-event:7102".into()), ..Default::default() };
        let s = Settings::layer(&args, FileConfig::default()).expect("valid");
        assert_eq!(s.upstreams.get("event").map(String::as_str), Some("kem-event:7102"));
        let bad = ConfigArgs { upstreams: Some("user".into()), ..Default::default() };
        assert!(Settings::layer(&bad, FileConfig::default()).is_err());
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let err = toml::from_str::<FileConfig>("base_prot = 1").expect_err("typo must fail");
        assert!(err.to_string().contains("base_prot"), "{err}");
    }

    #[test]
    fn invalid_values_explain_themselves() {
        let args = ConfigArgs { base_port: Some(65530), ..Default::default() };
        let err = Settings::layer(&args, FileConfig::default()).expect_err("no room");
        assert!(err.to_string().contains("65527"), "{err}");
        let args = ConfigArgs { trust_domain: Some("spiffe://x".into()), ..Default::default() };
        assert!(Settings::layer(&args, FileConfig::default()).is_err());
    }
}
