//! Load runs with a fault injected mid-load, on a platform of OS processes (`kem up --processes`)
//! backed by a private Redis and PostgreSQL databases, so the fault touches nothing else.
//!
//! Each run reports what the platform promises under the fault: accepted writes lost, duplicate
//! effects, the error budget spent (answers that were neither success nor an expected 4xx), and
//! how long after the fault ended errors kept happening (recovery time).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::time::Instant;

use super::backing::{Databases, PrivatePostgres, PrivateRedis};
use super::stats::Stats;
use super::{LoadArgs, LoadReport};
use crate::Settings;
use crate::cluster::{Cluster, free_ports, plan};
use crate::roles::{Role, ServiceName};

/// What goes wrong during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fault {
    /// Nothing (the baseline).
    None,
    /// `kill -9` one replica of event and one of participation; the supervisor restarts them.
    KillReplicas,
    /// `kill -9` the analytics process (its queue consumer mid-batch); restarted.
    KillAnalytics,
    /// Redis unreachable for a while, then back.
    RedisOutage,
    /// The PostgreSQL server restarts (every connection of every service is cut).
    PostgresRestart,
    /// Workload certificates live a few seconds, so every process renews them during the load.
    LeafRotation,
    /// The KT partner API of 우리동네TV hangs for the whole run (a local server that accepts and
    /// never answers, token endpoint included): those deliveries must fail on their own deadline
    /// while every other channel and every entry goes on. (A partner channel, because Instagram
    /// now publishes only through each owner's own connected account, which a load run's
    /// owners do not have.)
    ProviderHang,
}

/// How a fault run goes.
#[derive(Debug, Clone)]
pub struct FaultOptions {
    /// The load (its `target` is replaced by the platform's edge).
    pub load: LoadArgs,
    /// The fault.
    pub fault: Fault,
    /// How long an outage lasts (Redis).
    pub outage: Duration,
    /// The `kem` executable to run the processes with.
    pub exe: PathBuf,
    /// PostgreSQL admin URL to create the run's databases on (unused for `postgres-restart`,
    /// which starts its own server).
    pub postgres_admin_url: String,
}

/// What a fault run measured.
#[derive(Debug, Clone)]
pub struct FaultReport {
    /// The fault.
    pub fault: Fault,
    /// The load's report.
    pub load: LoadReport,
    /// Processes restarted by the supervisor.
    pub restarts: u64,
    /// From the end of the fault to the last request that spent the error budget (zero when
    /// none failed after it).
    pub recovery: Duration,
    /// How long the fault lasted.
    pub fault_duration: Duration,
}

impl FaultReport {
    /// One line for the results table.
    pub fn line(&self) -> String {
        let c = &self.load.consistency;
        format!(
            "fault={:?} accepted={} stored={} lost={} duplicate-effects={} duplicates-409={}/{} (unanswered {}) analytics={}/{} channels-final={}/{} (failed {}) error-budget={}/{} restarts={} fault-duration={:.1}s recovery={:.1}s",
            self.fault,
            c.accepted,
            c.stored,
            c.lost,
            c.duplicate_effects,
            c.duplicates_409,
            c.duplicates_sent,
            c.duplicates_unanswered,
            c.analytics_matching,
            c.events,
            c.channels_final,
            c.channels,
            c.channels_failed,
            self.load.budget.1,
            self.load.budget.0,
            self.restarts,
            self.fault_duration.as_secs_f64(),
            self.recovery.as_secs_f64()
        )
    }
}

/// Starts the platform, runs the load with the fault injected once the entries are under way,
/// tears everything down and reports.
pub async fn run(options: FaultOptions) -> anyhow::Result<FaultReport> {
    let run_id = format!("{:x}", rand::random::<u32>());
    let redis = Arc::new(std::sync::Mutex::new(tokio::task::spawn_blocking(PrivateRedis::start).await??));
    let postgres = if options.fault == Fault::PostgresRestart {
        Some(Arc::new(tokio::task::spawn_blocking(PrivatePostgres::start).await??))
    } else {
        None
    };
    let admin = postgres.as_ref().map(|pg| pg.admin_url()).unwrap_or_else(|| options.postgres_admin_url.clone());
    let mut names: Vec<&str> = ServiceName::ALL.iter().map(|s| s.as_str()).collect();
    names.push("queue");
    let databases = Databases::create(&admin, &run_id, &names).await?;
    let result = run_on(&options, &run_id, &redis, postgres.clone(), &databases).await;
    databases.drop_all().await;
    drop(postgres);
    result
}

async fn run_on(
    options: &FaultOptions,
    run_id: &str,
    redis: &Arc<std::sync::Mutex<PrivateRedis>>,
    postgres: Option<Arc<PrivatePostgres>>,
    databases: &Databases,
) -> anyhow::Result<FaultReport> {
    let data_dir = std::env::temp_dir().join(format!("kem-load-{run_id}"));
    let (base, admin, http) = free_ports()?;
    let redis_url = redis.lock().unwrap_or_else(|p| p.into_inner()).url();
    let settings = Settings {
        base_port: base,
        admin_base_port: admin,
        http_port: http,
        identity_addr: format!("127.0.0.1:{base}"),
        ca_dir: data_dir.join("identity"),
        data_dir: data_dir.clone(),
        trusted_proxies: vec!["127.0.0.1/32".into()],
        redis_url: Some(kem_kit::Secret::new(redis_url)),
        cache_prefix: format!("kem-load-{run_id}:"),
        database_urls: databases.urls.iter().map(|(k, v)| (k.clone(), kem_kit::Secret::new(v))).collect(),
        leaf_lifetime: if options.fault == Fault::LeafRotation {
            Duration::from_secs(6)
        } else {
            Duration::from_secs(86_400)
        },
        drain_timeout: Duration::from_secs(3),
        log_level: "warn".into(),
        ..Settings::default()
    };
    let replicas = BTreeMap::from([(ServiceName::Event, 2), (ServiceName::Participation, 2)]);
    let specs = plan(&settings, &replicas)?;
    let exe = options.exe.clone();
    let start_settings = settings.clone();
    // Debug builds hash passwords slowly; the load is about the platform, not argon2's cost.
    let mut env = vec![
        ("KEM_ARGON2_MEMORY_KIB".to_owned(), "1024".to_owned()),
        ("KEM_ARGON2_ITERATIONS".to_owned(), "1".to_owned()),
        // Eleven processes share one PostgreSQL server (and, in the test suite, other tests do
        // too): small pools keep the run well inside its max_connections (11 × (4 + 2) at most).
        ("DATABASE_MAX_CONNECTIONS".to_owned(), "4".to_owned()),
        ("KEM_QUEUE_DATABASE_MAX_CONNECTIONS".to_owned(), "2".to_owned()),
    ];
    let _black_hole = if options.fault == Fault::ProviderHang {
        let (addr, task) = black_hole().await?;
        for (k, v) in [
            ("KEM_PARTNER_URIDONGNE_TV_API_KEY", "load-test-secret".to_owned()),
            ("KEM_PARTNER_URIDONGNE_TV_CLIENT_ID", "kem-load".to_owned()),
            ("KEM_PARTNER_URIDONGNE_TV_BASE_URL", format!("http://{addr}/partner/v1")),
            // The load's owners connect no store account: campaigns go with the platform's
            // client credentials, so the fault is the partner hanging, not a refusal up front.
            ("KEM_PARTNER_URIDONGNE_TV_STORE_ACCOUNTS", "false".to_owned()),
            ("KEM_PARTNER_URIDONGNE_TV_TIMEOUT_MS", "1000".to_owned()),
            ("KEM_DISTRIBUTION_URIDONGNE_TV_DEADLINE_MS", "2500".to_owned()),
            ("KEM_DISTRIBUTION_MAX_ATTEMPTS", "1".to_owned()),
        ] {
            env.push((k.to_owned(), v));
        }
        Some(AbortOnDrop(task))
    } else {
        None
    };
    let cluster = Arc::new(
        tokio::task::spawn_blocking(move || Cluster::start_with_env(exe, &start_settings, specs, env))
            .await?
            .context("cannot start the platform processes")?,
    );
    let supervisor = {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.supervise())
    };

    let stats = Arc::new(Stats::default());
    let mut load = options.load.clone();
    load.target = format!("http://127.0.0.1:{}", settings.http_port);
    load.forwarded_for = true;
    // The gateway's admin port (one gateway; its port offset is fixed).
    load.edge_metrics = Some(format!("http://127.0.0.1:{}/metrics", admin + Role::Gateway.port_offset()));
    let load_task = {
        let stats = stats.clone();
        tokio::spawn(async move { super::run_with(&load, stats).await })
    };

    // Inject once a quarter of the entries went out.
    let quarter = (options.load.entries / 4).max(1) as u64;
    let injected = loop {
        if load_task.is_finished() {
            break None;
        }
        let sent = stats.snapshot().get(super::ENTER_ROUTE).map(|r| r.total()).unwrap_or(0);
        if sent >= quarter {
            break Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let fault_started = injected.unwrap_or_else(Instant::now);
    if injected.is_some() {
        inject(options, &cluster, redis, postgres.clone()).await?;
    }
    let fault_ended = Instant::now();
    let report = load_task.await.context("the load task panicked")?;
    let restarts = cluster.restarts();
    let stopper = cluster.clone();
    tokio::task::spawn_blocking(move || stopper.stop()).await?;
    let _ = supervisor.await;
    let _ = std::fs::remove_dir_all(&data_dir);
    let load = report?;
    let recovery = stats.last_budget_error().map(|t| t.saturating_duration_since(fault_ended)).unwrap_or_default();
    Ok(FaultReport { fault: options.fault, load, restarts, recovery, fault_duration: fault_ended - fault_started })
}

/// Applies the fault and returns when it is over (the platform's part of the recovery begins).
async fn inject(
    options: &FaultOptions,
    cluster: &Arc<Cluster>,
    redis: &Arc<std::sync::Mutex<PrivateRedis>>,
    postgres: Option<Arc<PrivatePostgres>>,
) -> anyhow::Result<()> {
    let kill = |role: Role, replica: u16| -> anyhow::Result<()> {
        let pid = cluster.pid(role, replica).with_context(|| format!("no process for {role}#{replica}"))?;
        let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -9 {pid} failed");
        Ok(())
    };
    let wait_restarts = |n: u64| async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        while cluster.restarts() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    match options.fault {
        // These last the whole run: nothing to do mid-load.
        Fault::None | Fault::LeafRotation | Fault::ProviderHang => {}
        Fault::KillReplicas => {
            kill(Role::Service(ServiceName::Event), 1)?;
            kill(Role::Service(ServiceName::Participation), 1)?;
            wait_restarts(2).await;
        }
        Fault::KillAnalytics => {
            kill(Role::Service(ServiceName::Analytics), 0)?;
            wait_restarts(1).await;
        }
        Fault::RedisOutage => {
            redis.lock().unwrap_or_else(|p| p.into_inner()).stop();
            tokio::time::sleep(options.outage).await;
            let redis = redis.clone();
            tokio::task::spawn_blocking(move || redis.lock().unwrap_or_else(|p| p.into_inner()).restart()).await??;
        }
        Fault::PostgresRestart => {
            let pg = postgres.context("postgres-restart needs the run's own PostgreSQL")?;
            tokio::task::spawn_blocking(move || pg.restart()).await??;
        }
    }
    Ok(())
}

/// A TCP server that accepts connections and never answers (a hung provider).
async fn black_hole() -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.context("cannot bind the hung provider")?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    Ok((addr, task))
}

/// Aborts the task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
