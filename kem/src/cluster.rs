//! `kem up --processes`: every role as its own OS process, like pods on one machine.
//!
//! The supervisor starts the identity CA, mints a join token per workload from the CA's key,
//! then starts each service (several replicas where asked, each on its own ports) and finally the
//! gateway, all talking mTLS over loopback. Replicas of a service are reached through a fixed
//! endpoint list (`--upstreams event=host:a|host:b`), so the balanced mesh clients spread load
//! across them and eject one that dies. A child that exits unexpectedly is restarted on the same
//! ports after a short backoff — what a kubelet does — so a test can `kill -9` one and watch the
//! platform recover.
//!
//! Ports: replica `r` of a role uses base port `base + 10·r` (and admin `admin + 10·r`), so
//! replica 0 has exactly the ports `kem up` would give the role.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::Settings;
use crate::roles::{Role, ServiceName};

/// Spacing between replicas' base ports (roles use offsets 0–8).
const REPLICA_PORT_STRIDE: u16 = 10;
/// Most replicas of one role.
pub const MAX_REPLICAS: u16 = 4;
/// How long a child may take to print `kem: ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause before restarting a child that died.
const RESTART_BACKOFF: Duration = Duration::from_millis(500);

/// One process of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Its role.
    pub role: Role,
    /// Replica number (0-based).
    pub replica: u16,
    /// Its `--base-port`.
    pub base_port: u16,
    /// Its `--admin-base-port`.
    pub admin_base_port: u16,
}

impl ProcessSpec {
    /// The gRPC address this process listens on.
    pub fn grpc_addr(&self, settings: &Settings) -> String {
        format!("{}:{}", crate::config::loopback_for(settings.listen_host), self.base_port + self.role.port_offset())
    }

    /// `event#1`.
    pub fn name(&self) -> String {
        format!("{}#{}", self.role, self.replica)
    }
}

/// The processes to run: every role once, `replicas` of the named services.
pub fn plan(settings: &Settings, replicas: &BTreeMap<ServiceName, u16>) -> anyhow::Result<Vec<ProcessSpec>> {
    anyhow::ensure!(
        settings.base_port != 0 && settings.admin_base_port != 0,
        "`kem up --processes` needs fixed ports (--base-port, --admin-base-port); pick free ones with `kem::cluster::free_base_ports`"
    );
    let mut specs = Vec::new();
    for role in Role::all() {
        let count = match role {
            Role::Service(service) => replicas.get(&service).copied().unwrap_or(1),
            _ => 1,
        };
        anyhow::ensure!((1..=MAX_REPLICAS).contains(&count), "replicas of {role} must be 1 to {MAX_REPLICAS}");
        for replica in 0..count {
            let shift = replica * REPLICA_PORT_STRIDE;
            specs.push(ProcessSpec {
                role,
                replica,
                base_port: settings.base_port.checked_add(shift).context("base port too high for the replicas")?,
                admin_base_port: settings
                    .admin_base_port
                    .checked_add(shift)
                    .context("admin base port too high for the replicas")?,
            });
        }
    }
    Ok(specs)
}

/// `--upstreams` naming every replica of every service: `event=h:a|h:b,…`.
pub fn upstreams(specs: &[ProcessSpec], settings: &Settings) -> String {
    let mut by_service: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for spec in specs {
        if let Role::Service(service) = spec.role {
            by_service.entry(service.as_str()).or_default().push(spec.grpc_addr(settings));
        }
    }
    by_service
        .into_iter()
        .map(|(service, addrs)| format!("{service}={}", addrs.join("|")))
        .collect::<Vec<_>>()
        .join(",")
}

/// A base port, an admin base port and an HTTP port under which every replica's ports are free
/// right now. They are picked below the kernel's ephemeral range (32768+ on Linux), where no
/// outgoing connection of another process can take one between this check and the bind.
pub fn free_base_ports() -> anyhow::Result<(u16, u16)> {
    free_ports().map(|(base, admin, _)| (base, admin))
}

/// [`free_base_ports`] plus a free port for the REST edge.
pub fn free_ports() -> anyhow::Result<(u16, u16, u16)> {
    let span = REPLICA_PORT_STRIDE * MAX_REPLICAS;
    for _ in 0..200 {
        let base = rand::random_range(10_000..30_000u16);
        let admin = base + span;
        let http = admin + span;
        let all_free = (base..=http).all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        if all_free {
            return Ok((base, admin, http));
        }
    }
    anyhow::bail!("no free range of {} ports found on 127.0.0.1", 2 * span + 1)
}

/// A running child and what it announced.
struct Running {
    spec: ProcessSpec,
    child: Child,
    announced: Vec<String>,
}

/// The supervised processes.
pub struct Cluster {
    settings: Settings,
    specs: Vec<ProcessSpec>,
    running: Arc<Mutex<Vec<Running>>>,
    stopping: Arc<std::sync::atomic::AtomicBool>,
    restarts: Arc<std::sync::atomic::AtomicU64>,
    exe: PathBuf,
    upstreams: String,
    env: Vec<(String, String)>,
}

impl Cluster {
    /// Starts every process of `specs` in order (CA, services, gateway), each ready before the next.
    pub fn start(exe: PathBuf, settings: &Settings, specs: Vec<ProcessSpec>) -> anyhow::Result<Cluster> {
        Cluster::start_with_env(exe, settings, specs, Vec::new())
    }

    /// [`Cluster::start`] with extra environment variables for every process (service settings).
    pub fn start_with_env(
        exe: PathBuf,
        settings: &Settings,
        specs: Vec<ProcessSpec>,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<Cluster> {
        let upstreams = upstreams(&specs, settings);
        let cluster = Cluster {
            settings: settings.clone(),
            specs: specs.clone(),
            running: Arc::default(),
            stopping: Arc::default(),
            restarts: Arc::default(),
            exe,
            upstreams,
            env,
        };
        let mut ordered = specs;
        ordered.sort_by_key(|s| match s.role {
            Role::Identity => 0,
            Role::Service(_) => 1,
            Role::Gateway => 2,
        });
        for spec in ordered {
            if spec.role != Role::Identity {
                cluster.ensure_token(&spec)?;
            }
            let running = cluster.spawn(&spec).inspect_err(|_| cluster.stop())?;
            cluster.lock().push(running);
        }
        Ok(cluster)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Running>> {
        self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn token_file(&self, role: Role) -> PathBuf {
        self.settings.data_dir.join("tokens").join(format!("{role}.token"))
    }

    /// Mints the join token `spec`'s workload bootstraps with, fresh at every cluster start (a file
    /// left by an earlier run may hold a token of a format the CA no longer accepts).
    ///
    /// Reusable, on purpose: every replica of a role, and every restart of a killed child, presents
    /// this same file. Renewals do not (they authenticate with the current certificate).
    fn ensure_token(&self, spec: &ProcessSpec) -> anyhow::Result<()> {
        let path = self.token_file(spec.role);
        let tokens = crate::mesh::existing_join_key(&self.settings)?;
        let id = crate::mesh::spiffe_id(&self.settings, spec.role.as_str())?;
        let token = tokens.mint_reusable(&id, Duration::from_secs(30 * 24 * 3600))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, token).with_context(|| format!("cannot write {}", path.display()))?;
        // A reusable token is a bearer credential for the role's identity: owner-only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict {}", path.display()))?;
        }
        Ok(())
    }

    /// Starts one child and waits for its `kem: ready` line.
    fn spawn(&self, spec: &ProcessSpec) -> anyhow::Result<Running> {
        let mut command = Command::new(&self.exe);
        match spec.role {
            Role::Identity => command.arg("identity"),
            Role::Gateway => command.arg("gateway"),
            Role::Service(service) => command.args(["serve", service.as_str()]),
        };
        let s = &self.settings;
        command
            .arg("--base-port")
            .arg(spec.base_port.to_string())
            .arg("--admin-base-port")
            .arg(spec.admin_base_port.to_string())
            .arg("--http-port")
            .arg(s.http_port.to_string())
            .arg("--listen-host")
            .arg(s.listen_host.to_string())
            .arg("--data-dir")
            .arg(&s.data_dir)
            .arg("--ca-dir")
            .arg(&s.ca_dir)
            .arg("--trust-domain")
            .arg(&s.trust_domain)
            .arg("--namespace")
            .arg(&s.namespace)
            .arg("--identity-addr")
            .arg(&s.identity_addr)
            .arg("--leaf-lifetime-secs")
            .arg(s.leaf_lifetime.as_secs().to_string())
            .arg("--upstreams")
            .arg(&self.upstreams)
            .arg("--cache-prefix")
            .arg(&s.cache_prefix)
            .arg("--log-level")
            .arg(&s.log_level)
            .arg("--drain-timeout-secs")
            .arg(s.drain_timeout.as_secs().max(1).to_string())
            .env_remove("KEM_CONFIG")
            // A child is `kem serve`, which refuses local stand-ins by default: it inherits the
            // supervisor's policy (`kem up --processes` allows them).
            .env(
                kem_kit::external::ALLOW_LOCAL_PROVIDERS,
                if s.providers == kem_kit::external::ProviderPolicy::AllowLocal { "1" } else { "0" },
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if spec.role != Role::Identity {
            command.arg("--identity-token-file").arg(self.token_file(spec.role));
        }
        if !s.trusted_proxies.is_empty() {
            command.arg("--trusted-proxies").arg(s.trusted_proxies.join(","));
        }
        command.envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        // Secrets travel in the environment, not on command lines anyone can read in `ps`.
        if let Some(url) = &s.redis_url {
            command.env("KEM_REDIS_URL", url.expose());
        }
        if !s.database_urls.is_empty() {
            let urls: Vec<String> = s.database_urls.iter().map(|(k, v)| format!("{k}={}", v.expose())).collect();
            command.env("KEM_DATABASE_URLS", urls.join(","));
        }
        if let Some(sb) = &s.servicebus_connection_string {
            command.env("KEM_SERVICEBUS_CONNECTION_STRING", sb.expose());
        }
        let mut child = command.spawn().with_context(|| format!("cannot start {}", spec.name()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut announced = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("kem: ready") => break,
                Ok(line) => announced.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    anyhow::bail!("{} exited ({status}) before it was ready (see its log above)", spec.name());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    anyhow::bail!("{} did not get ready within {READY_TIMEOUT:?} (see its log above)", spec.name());
                }
            }
        }
        Ok(Running { spec: spec.clone(), child, announced })
    }

    /// The announcement lines, one per process, with its replica and pid.
    pub fn announcements(&self) -> Vec<String> {
        self.lock()
            .iter()
            .flat_map(|r| {
                let pid = r.child.id();
                let replica = r.spec.replica;
                r.announced.iter().map(move |line| format!("{line} replica={replica} pid={pid}"))
            })
            .collect()
    }

    /// The pid of `role`'s `replica`.
    pub fn pid(&self, role: Role, replica: u16) -> Option<u32> {
        self.lock().iter().find(|r| r.spec.role == role && r.spec.replica == replica).map(|r| r.child.id())
    }

    /// Children restarted so far.
    pub fn restarts(&self) -> u64 {
        self.restarts.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every process.
    pub fn specs(&self) -> &[ProcessSpec] {
        &self.specs
    }

    /// One supervision pass: restarts every child that exited while the cluster is not stopping.
    /// Returns the names of the restarted children.
    pub fn supervise_once(&self) -> Vec<String> {
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return Vec::new();
        }
        let dead: Vec<ProcessSpec> = {
            let mut running = self.lock();
            let mut dead = Vec::new();
            running.retain_mut(|r| match r.child.try_wait() {
                Ok(Some(status)) => {
                    tracing::warn!(process = %r.spec.name(), %status, "process exited; restarting it");
                    dead.push(r.spec.clone());
                    false
                }
                _ => true,
            });
            dead
        };
        let mut restarted = Vec::new();
        for spec in dead {
            std::thread::sleep(RESTART_BACKOFF);
            match self.spawn(&spec) {
                Ok(running) => {
                    self.restarts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    restarted.push(spec.name());
                    self.lock().push(running);
                }
                Err(error) => {
                    tracing::error!(process = %spec.name(), error = %format!("{error:#}"), "restart failed; retrying")
                }
            }
        }
        restarted
    }

    /// Supervises until stopped (a blocking loop; run it on a blocking thread).
    pub fn supervise(&self) {
        while !self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            self.supervise_once();
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM to every child (gateway first, CA last), then waits up to the drain timeout + 5 s
    /// and kills what is left.
    pub fn stop(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut running = std::mem::take(&mut *self.lock());
        running.sort_by_key(|r| match r.spec.role {
            Role::Gateway => 0,
            Role::Service(_) => 1,
            Role::Identity => 2,
        });
        for r in &running {
            let _ = Command::new("kill").args(["-TERM", &r.child.id().to_string()]).status();
        }
        let deadline = Instant::now() + self.settings.drain_timeout + Duration::from_secs(5);
        for r in &mut running {
            loop {
                match r.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = r.child.kill();
                        let _ = r.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        for r in self.lock().iter_mut() {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_get_their_own_ports_and_every_one_is_an_upstream() {
        let settings = Settings::default();
        let replicas = BTreeMap::from([(ServiceName::Event, 2), (ServiceName::Participation, 2)]);
        let specs = plan(&settings, &replicas).expect("plan");
        assert_eq!(specs.len(), 11);
        let event: Vec<String> = specs
            .iter()
            .filter(|s| s.role == Role::Service(ServiceName::Event))
            .map(|s| s.grpc_addr(&settings))
            .collect();
        assert_eq!(event, ["127.0.0.1:7102", "127.0.0.1:7112"]);
        let upstreams = upstreams(&specs, &settings);
        assert!(upstreams.contains("event=127.0.0.1:7102|127.0.0.1:7112"), "{upstreams}");
        assert!(upstreams.contains("participation=127.0.0.1:7106|127.0.0.1:7116"), "{upstreams}");
        let mut ports: Vec<u16> = specs.iter().map(|s| s.base_port + s.role.port_offset()).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), specs.len(), "no two processes share a port");
    }

    #[test]
    fn children_bootstrap_with_a_fresh_reusable_token_even_over_a_stale_file() {
        use kem_mesh::identity::credential::Redemption;
        use kem_mesh::identity::credential::join_token::PREFIX;

        let dir = tempfile::tempdir().expect("tempdir");
        let settings =
            Settings { data_dir: dir.path().to_owned(), ca_dir: dir.path().join("identity"), ..Settings::default() };
        let tokens = crate::mesh::load_or_create_join_key(&settings.ca_dir, &settings.trust_domain).expect("key");
        let specs = plan(&settings, &BTreeMap::new()).expect("plan");
        let cluster = Cluster {
            settings: settings.clone(),
            specs: specs.clone(),
            running: Arc::default(),
            stopping: Arc::default(),
            restarts: Arc::default(),
            exe: PathBuf::new(),
            upstreams: String::new(),
            env: Vec::new(),
        };
        let spec = specs.iter().find(|s| s.role != Role::Identity).expect("a workload");
        let path = cluster.token_file(spec.role);
        std::fs::create_dir_all(path.parent().expect("tokens dir")).expect("mkdir");
        std::fs::write(&path, "kemjt1.left.over").expect("stale token from an older kem");

        cluster.ensure_token(spec).expect("mint");
        let token = std::fs::read_to_string(&path).expect("read");
        assert!(token.starts_with(PREFIX), "{token}");
        // Every restart of a killed child presents this file again: it must be reusable.
        let grant = tokens.verify(&token, std::time::SystemTime::now()).expect("a current token");
        assert_eq!(grant.redemption, Redemption::Repeatable);
        assert_eq!(grant.identity, crate::mesh::spiffe_id(&settings, spec.role.as_str()).expect("id"));
    }

    #[test]
    fn too_many_replicas_or_free_ports_are_refused() {
        let settings = Settings::default();
        assert!(plan(&settings, &BTreeMap::from([(ServiceName::Event, 9)])).is_err());
        let zero = Settings { base_port: 0, admin_base_port: 0, ..Settings::default() };
        assert!(plan(&zero, &BTreeMap::new()).is_err());
    }
}
