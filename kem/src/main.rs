//! `kem`: one binary, every role.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use kem::config::ConfigArgs;
use kem::roles::{self, Role, ServiceName};
use kem::{Settings, telemetry};
use kem_mesh::Shutdown;

/// KT Event Marketing: plan, generate, publish and measure marketing events for small businesses.
#[derive(Parser, Debug)]
#[command(name = "kem", version, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every role on this machine on embedded defaults (nothing to install): in this
    /// process, or with `--processes` each role as its own supervised OS process.
    Up {
        /// Run each role as a separate OS process (restarted when it dies), like pods.
        #[arg(long)]
        processes: bool,
        /// Replicas per service with --processes, e.g. `event=2,participation=2`.
        #[arg(long, default_value = "event=2,participation=2", requires = "processes")]
        replicas: String,
    },
    /// Run one business service (one role per pod in Kubernetes).
    Serve {
        /// Which service.
        service: ServiceName,
    },
    /// Run the REST edge.
    Gateway,
    /// Run the mesh identity CA.
    Identity,
    /// Print the resolved configuration (secrets redacted) and exit.
    Config,
    /// Live success rate, RPS and latency per route from the roles' `/metrics`.
    Top(kem::top::TopArgs),
    /// Drive the platform through the REST edge: owners publish events, participants enter at a
    /// fixed rate (with duplicates), owners poll analytics; then check nothing was lost.
    Load(kem::load::LoadArgs),
    /// Benchmarks that compare kem with a baseline in one run and print ratios.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Benchmark server process (started by `kem bench`).
    #[command(hide = true)]
    BenchServe {
        /// Server flavour.
        mode: kem::bench::mesh::Mode,
        /// Directory with the certificates `kem bench` wrote.
        #[arg(long)]
        cert_dir: std::path::PathBuf,
    },
    /// Mint a join token for a workload from the CA's key (in --ca-dir) and print it: the
    /// bootstrap credential of `kem serve`/`kem gateway` outside Kubernetes. The CA accepts it
    /// once; the workload then renews with its certificate.
    JoinToken {
        /// Workload (service-account) name, e.g. `event` or `gateway`.
        workload: String,
        /// Validity of the token in seconds (until it is used; renewals do not present it).
        #[arg(long, default_value_t = 30 * 24 * 3600)]
        ttl_secs: u64,
        /// Let the CA accept the token any number of times until it expires (for a workload that
        /// must bootstrap again unattended, e.g. restarted by a supervisor). Whoever copies it can
        /// obtain the identity until then: keep --ttl-secs short.
        #[arg(long)]
        reusable: bool,
    },
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Cost of the mesh per RPC: plaintext tonic vs kem plaintext vs kem mTLS, two processes.
    Mesh(kem::bench::mesh::MeshBenchArgs),
    /// Cost of the REST edge: direct gRPC vs REST through kem's gateway vs a static axum bridge.
    Gateway(kem::bench::gateway::GatewayBenchArgs),
    /// Store-backed queue on PostgreSQL: throughput with 1/4/16 consumers and outbox relay lag.
    Queue(kem::bench::queue::QueueBenchArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::resolve(&cli.config)?;
    match &cli.command {
        Command::Config => {
            println!("{settings}");
            return Ok(());
        }
        Command::JoinToken { workload, ttl_secs, reusable } => {
            let tokens = kem::mesh::existing_join_key(&settings)?;
            let id = kem::mesh::spiffe_id(&settings, workload)?;
            let ttl = std::time::Duration::from_secs(*ttl_secs);
            let token = if *reusable { tokens.mint_reusable(&id, ttl)? } else { tokens.mint(&id, ttl)? };
            println!("{token}");
            return Ok(());
        }
        _ => {}
    }
    let _logs = telemetry::init_logging(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    let result = runtime.block_on(run(cli.command, settings));
    // Let blocking workers go before the log guard writes out the last lines.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

async fn run(command: Command, mut settings: Settings) -> anyhow::Result<()> {
    let roles = match command {
        Command::Bench(BenchCommand::Mesh(args)) => return kem::bench::mesh::run(args).await,
        Command::Bench(BenchCommand::Gateway(args)) => return kem::bench::gateway::run(args).await,
        Command::Bench(BenchCommand::Queue(args)) => return kem::bench::queue::run(args).await,
        Command::BenchServe { mode, cert_dir } => return kem::bench::mesh::serve(mode, cert_dir).await,
        Command::Top(args) => return kem::top::run(args, kem::top::default_admin_addrs(&settings)).await,
        Command::Load(args) => {
            let report = match args.fault {
                Some(fault) => {
                    let exe =
                        std::env::current_exe().map_err(|e| anyhow::anyhow!("cannot find the kem executable: {e}"))?;
                    let options = kem::load::faults::FaultOptions {
                        load: args.clone(),
                        fault,
                        outage: std::time::Duration::from_secs(args.outage_secs),
                        exe,
                        postgres_admin_url: args.postgres_admin_url.clone(),
                    };
                    let report = kem::load::faults::run(options).await?;
                    println!("{}", report.line());
                    report.load
                }
                None => kem::load::run(&args).await?,
            };
            print!("{}", report.summary());
            let c = &report.consistency;
            anyhow::ensure!(
                c.lost == 0 && c.duplicate_effects == 0,
                "consistency violated: {} accepted entries lost, {} duplicate effects",
                c.lost,
                c.duplicate_effects
            );
            return Ok(());
        }
        Command::Up { processes: true, replicas } => return run_processes(&settings, &replicas).await,
        Command::Up { processes: false, .. } => Role::all(),
        Command::Serve { service } => {
            settings.providers = production_policy();
            vec![Role::Service(service)]
        }
        Command::Gateway => {
            settings.providers = production_policy();
            vec![Role::Gateway]
        }
        Command::Identity => vec![Role::Identity],
        Command::Config | Command::JoinToken { .. } => return Ok(()),
    };
    tracing::info!(config = %settings.to_string().replace('\n', "; "), "starting kem");
    let traces = telemetry::init_traces(telemetry::trace_service_names(&roles))?;
    let shutdown = Shutdown::new();
    shutdown.trigger_on_os_signals();
    let running = roles::start_all(&roles, &settings, &shutdown).await?;
    for role in &running {
        println!("{}", role.announcement());
    }
    println!("kem: ready roles={}", running.len());
    shutdown.wait().await;
    let mut failed = None;
    for role in running {
        if let Err(error) = role.join().await {
            tracing::error!(%error, "role stopped with an error");
            failed = Some(error);
        }
    }
    telemetry::shutdown_traces(traces).await;
    match failed {
        Some(error) => Err(error),
        None => {
            tracing::info!("drained; bye");
            Ok(())
        }
    }
}

/// The provider policy of a role run on its own (`kem serve`, `kem gateway`: how Kubernetes runs
/// kem): real providers, unless `KEM_ALLOW_LOCAL_PROVIDERS=1` asks for a labelled demo.
fn production_policy() -> kem_kit::external::ProviderPolicy {
    let allow = std::env::var(kem_kit::external::ALLOW_LOCAL_PROVIDERS).ok();
    kem_kit::external::ProviderPolicy::for_production(allow.as_deref())
}

/// `kem up --processes`: supervise one OS process per role until SIGTERM/Ctrl-C.
async fn run_processes(settings: &Settings, replicas: &str) -> anyhow::Result<()> {
    let mut counts = std::collections::BTreeMap::new();
    for item in replicas.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, count) =
            item.split_once('=').ok_or_else(|| anyhow::anyhow!("--replicas item {item:?} must look like event=2"))?;
        let service = <ServiceName as clap::ValueEnum>::from_str(name.trim(), true)
            .map_err(|_| anyhow::anyhow!("--replicas: unknown service {name:?}"))?;
        let count: u16 = count.trim().parse().map_err(|_| anyhow::anyhow!("--replicas: {item:?} needs a number"))?;
        counts.insert(service, count);
    }
    let mut settings = settings.clone();
    if settings.base_port == 0 || settings.admin_base_port == 0 {
        let (base, admin) = kem::cluster::free_base_ports()?;
        settings.base_port = base;
        settings.admin_base_port = admin;
        settings.identity_addr = format!("{}:{base}", kem::config::loopback_for(settings.listen_host));
    }
    let specs = kem::cluster::plan(&settings, &counts)?;
    let exe = std::env::current_exe().map_err(|e| anyhow::anyhow!("cannot find the kem executable: {e}"))?;
    let cluster = std::sync::Arc::new(
        tokio::task::spawn_blocking(move || kem::cluster::Cluster::start(exe, &settings, specs)).await??,
    );
    for line in cluster.announcements() {
        println!("{line}");
    }
    println!("kem: ready roles={} processes={}", Role::all().len(), cluster.specs().len());
    let shutdown = Shutdown::new();
    shutdown.trigger_on_os_signals();
    let supervisor = {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || cluster.supervise())
    };
    shutdown.wait().await;
    let stopper = cluster.clone();
    tokio::task::spawn_blocking(move || stopper.stop()).await?;
    supervisor.await?;
    tracing::info!("every process stopped; bye");
    Ok(())
}
