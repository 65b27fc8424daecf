//! `kem bench mesh`: the cost of the mesh on one unary RPC between two processes on loopback.
//!
//! The same echo RPC (64-byte payload) is served three ways, each by a separate server process:
//! - `tonic-plaintext`: a bare tonic server and channel (the baseline);
//! - `kem-plaintext`: kem's role server (own accept loop, authorization layer) without TLS;
//! - `kem-mtls`: kem's role server and mesh channel with mTLS (TLS 1.3, both sides verified).
//!
//! For each: throughput at saturation (closed loop, fixed concurrency) and latency at a fixed
//! open-loop rate; then the ratios against the baseline.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use kem_mesh::authz::{DefaultPolicy, Policy, Rule};
use kem_mesh::balance::Resolver;
use kem_mesh::client::connect::plaintext_channel;
use kem_mesh::client::{BalancedChannel, ClientConfig, MeshChannel};
use kem_mesh::identity::ca::{CaPolicy, CertificateAuthority, to_pem};
use kem_mesh::identity::workload::FileSource;
use kem_mesh::identity::{SpiffeId, WorkloadIdentity};
use kem_mesh::testing::echo::{self, EchoServer};
use kem_mesh::{RoleServer, Shutdown, Transport};
use kem_proto::contract::Idempotency;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;

use super::load::{Contender, Plan, boxed, compare, print_table, versus};

const TRUST_DOMAIN: &str = "kem.bench";
const PAYLOAD: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Options of `kem bench mesh`.
#[derive(Args, Debug, Clone)]
pub struct MeshBenchArgs {
    /// Seconds of each measurement.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    /// Interleaved rounds (throughput is the median of the rounds; latency pools them).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Measure only this mode (for profiling one of them), e.g. kem-mtls.
    #[arg(long)]
    pub only: Option<String>,
    /// Open-loop rate for the latency measurement (calls per second).
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// Concurrent callers for the saturation measurement.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

/// Server flavours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// Bare tonic, plaintext.
    TonicPlaintext,
    /// kem role server, plaintext.
    KemPlaintext,
    /// kem role server, mTLS.
    KemMtls,
    /// kem role server, mTLS, called through the full client stack (deadline, retry budget,
    /// P2C balancer, metrics, traces) instead of a bare mesh channel.
    KemMtlsStack,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::TonicPlaintext => "tonic-plaintext",
            Mode::KemPlaintext => "kem-plaintext",
            Mode::KemMtls => "kem-mtls",
            Mode::KemMtlsStack => "kem-mtls+stack",
        }
    }
}

fn id(service: &str) -> anyhow::Result<SpiffeId> {
    Ok(SpiffeId::new(TRUST_DOMAIN, "kem", service)?)
}

/// Writes certificates for `service` into `dir` (chain, key, bundle) from `ca`.
fn write_identity(ca: &CertificateAuthority, dir: &Path, service: &str) -> anyhow::Result<FileSource> {
    let (issued, key) = ca.issue_local(&id(service)?, Some(Duration::from_secs(3600)))?;
    let source = FileSource {
        chain: dir.join(format!("{service}.pem")),
        key: dir.join(format!("{service}.key")),
        anchors: dir.join("bundle.pem"),
    };
    let chain: String = std::iter::once(&issued.leaf).chain(issued.intermediates.iter()).map(to_pem).collect();
    std::fs::write(&source.chain, chain)?;
    std::fs::write(&source.key, key.serialize_pem())?;
    std::fs::write(&source.anchors, issued.trust_anchors.iter().map(to_pem).collect::<String>())?;
    Ok(source)
}

async fn identity_from(dir: &Path, service: &str, shutdown: &Shutdown) -> anyhow::Result<WorkloadIdentity> {
    let source = FileSource {
        chain: dir.join(format!("{service}.pem")),
        key: dir.join(format!("{service}.key")),
        anchors: dir.join("bundle.pem"),
    };
    Ok(WorkloadIdentity::start(id(service)?, Arc::new(source), Duration::from_secs(5), shutdown.clone()).await?)
}

/// The server side (`kem bench-serve`): serves echo in `mode` on a free port, prints
/// `listening <addr>`, runs until stdin closes.
pub async fn serve(mode: Mode, cert_dir: PathBuf) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = Shutdown::new();
    match mode {
        Mode::TonicPlaintext => {
            // TCP_NODELAY as tonic sets it when it binds the port itself (serve_with_incoming
            // leaves it to the caller): the baseline must be tonic at its best, not with Nagle.
            let stream = tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let _ = tonic::transport::Server::builder()
                    .add_service(EchoServer::default())
                    .serve_with_incoming_shutdown(stream, async move { stop.wait().await })
                    .await;
            });
        }
        Mode::KemPlaintext => {
            RoleServer::new("bench")
                .reflection(false)
                .add_service(EchoServer::default())
                .serve(listener, shutdown.clone())
                .await?;
        }
        Mode::KemMtls | Mode::KemMtlsStack => {
            let identity = identity_from(&cert_dir, "event", &shutdown).await?;
            let policy = Policy::new(TRUST_DOMAIN, "kem", DefaultPolicy::Deny)
                .allow_service(echo::SERVICE, Rule::AllAuthenticated);
            RoleServer::new("bench")
                .transport(Transport::MutualTls(identity))
                .policy(policy, None)
                .reflection(false)
                .add_service(EchoServer::default())
                .serve(listener, shutdown.clone())
                .await?;
        }
    }
    println!("listening {addr}");
    // The parent closes our stdin when it is done (or dies): that is the stop signal.
    let mut line = String::new();
    let _ = BufReader::new(tokio::io::stdin()).read_line(&mut line).await;
    shutdown.trigger();
    Ok(())
}

struct ServerProcess {
    child: tokio::process::Child,
    addr: String,
}

async fn spawn_server(mode: Mode, cert_dir: &Path) -> anyhow::Result<ServerProcess> {
    let exe = std::env::current_exe().context("cannot find the kem executable")?;
    let mut child = tokio::process::Command::new(exe)
        .args(["bench-serve", mode.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default().as_str()])
        .arg("--cert-dir")
        .arg(cert_dir)
        .args(["--log-level", "warn"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the benchmark server process")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .context("benchmark server did not start in 30 s")??
        .context("benchmark server exited")?;
    let addr = line.strip_prefix("listening ").context("unexpected server output")?.to_owned();
    Ok(ServerProcess { child, addr })
}

#[derive(Clone)]
enum Client {
    Plain(tonic::transport::Channel),
    Mesh(MeshChannel),
    Stack(BalancedChannel),
}

impl Client {
    async fn call(self) -> Result<(), String> {
        let result = match self {
            Client::Plain(ch) => echo::call(ch, PAYLOAD).await,
            Client::Mesh(ch) => echo::call(ch, PAYLOAD).await,
            Client::Stack(ch) => echo::call(ch, PAYLOAD).await,
        };
        result.map(|_| ()).map_err(|s| s.to_string())
    }
}

/// Runs the mesh benchmark and prints the table and ratios.
pub async fn run(args: MeshBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let ca = CertificateAuthority::generate(TRUST_DOMAIN, CaPolicy::default())?.0;
    write_identity(&ca, &dir, "event")?;
    write_identity(&ca, &dir, "participation")?;
    let shutdown = Shutdown::new();
    println!(
        "kem bench mesh: unary echo, {}-byte payload, client and server in separate processes on loopback",
        PAYLOAD.len()
    );
    println!(
        "{} interleaved rounds, each: saturation with {} concurrent callers for {} s, then open loop at {}/s for {} s (latency from intended send time)\n",
        args.rounds, args.concurrency, args.seconds, args.rate, args.seconds
    );
    let mut modes = vec![Mode::TonicPlaintext, Mode::KemPlaintext, Mode::KemMtls, Mode::KemMtlsStack];
    if let Some(only) = &args.only {
        modes.retain(|mode| mode.name() == only);
        anyhow::ensure!(!modes.is_empty(), "--only {only}: no such mode");
    }
    let mut servers = Vec::new();
    let mut contenders = Vec::new();
    for mode in modes {
        let server = spawn_server(mode, &dir).await?;
        let client = client_for(mode, &server.addr, &dir, &shutdown).await?;
        contenders.push(Contender::new(mode.name(), boxed(move || client.clone().call())).counting(server.child.id()));
        servers.push(server);
    }
    let plan = Plan {
        concurrency: args.concurrency,
        rate: args.rate,
        seconds: Duration::from_secs(args.seconds),
        rounds: args.rounds,
    };
    let outcomes = compare(&contenders, plan).await;
    for mut server in servers {
        drop(server.child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(5), server.child.wait()).await;
    }

    print_table("mode", &outcomes);
    let base = &outcomes[0];
    if args.only.is_some() {
        shutdown.trigger();
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(());
    }
    for outcome in &outcomes[1..] {
        println!("{} vs tonic-plaintext: {}", outcome.name, versus(outcome, base, args.rate));
    }
    println!(
        "targets (kem-mtls): throughput >= 0.85x, p99 added <= +0.200 ms (Istio ztunnel publishes +0.20 ms p99 at 1000 RPS)"
    );
    shutdown.trigger();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn client_for(mode: Mode, addr: &str, cert_dir: &Path, shutdown: &Shutdown) -> anyhow::Result<Client> {
    Ok(match mode {
        Mode::KemMtls => {
            let identity = identity_from(cert_dir, "participation", shutdown).await?;
            Client::Mesh(MeshChannel::new(&identity, addr, &id("event")?)?)
        }
        Mode::KemMtlsStack => {
            let identity = identity_from(cert_dir, "participation", shutdown).await?;
            let config = ClientConfig::default().with_idempotency_override(echo::PATH, Idempotency::NoSideEffects);
            let resolver = Resolver::fixed([addr.to_owned()]);
            Client::Stack(BalancedChannel::new(&identity, echo::SERVICE, &id("event")?, resolver, config)?)
        }
        Mode::TonicPlaintext | Mode::KemPlaintext => Client::Plain(plaintext_channel(addr, Duration::from_secs(1))?),
    })
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("kem-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
