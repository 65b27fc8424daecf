//! Runs the real `kem` binary as a newcomer would and talks to it over the network.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kem::Settings;
use kem::mesh::CaAccess;
use kem_mesh::Shutdown;
use kem_mesh::client::MeshChannel;
use kem_mesh::identity::WorkloadIdentity;
use kem_proto::kem::user::v1::GetMeRequest;
use kem_proto::kem::user::v1::user_service_client::UserServiceClient;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

const HEALTH: &str = "grpc.health.v1.Health";
const REFLECTION: &str = "grpc.reflection.v1.ServerReflection";

/// One announced role.
#[derive(Debug)]
pub(crate) struct Announced {
    pub(crate) role: String,
    pub(crate) grpc: String,
    pub(crate) admin: String,
    pub(crate) http: Option<String>,
}

/// A `kem` child process, killed if the test fails before stopping it.
pub(crate) struct KemProcess {
    child: Child,
    announcements: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for KemProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl KemProcess {
    /// Starts `kem <args>` on free ports and waits for its `kem: ready` line.
    pub(crate) fn start(args: &[&str]) -> KemProcess {
        Self::start_with(args, &[])
    }

    /// Like [`KemProcess::start`] with extra (path) arguments.
    fn start_with(args: &[&str], extra: &[&std::ffi::OsStr]) -> KemProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kem"))
            .args(args)
            .args(extra)
            .args(["--base-port", "0", "--admin-base-port", "0", "--http-port", "0", "--log-level", "warn"])
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("KEM_CONFIG")
            // These processes run without provider accounts on purpose: a labelled demo.
            .env("KEM_ALLOW_LOCAL_PROVIDERS", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kem");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut announcements = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("kem {args:?} did not get ready in 30 s; saw {announcements:?}"));
            if line.starts_with("kem: ready") {
                break;
            }
            announcements.push(line);
        }
        KemProcess { child, announcements, _dir: dir }
    }

    /// The roles from the announcement lines.
    pub(crate) fn roles(&self) -> Vec<Announced> {
        self.announcements
            .iter()
            .filter_map(|line| {
                let mut role = None;
                let mut grpc = None;
                let mut admin = None;
                let mut http = None;
                for field in line.strip_prefix("kem: ")?.split_whitespace() {
                    match field.split_once('=')? {
                        ("role", v) => role = Some(v.to_owned()),
                        ("grpc", v) => grpc = Some(v.to_owned()),
                        ("admin", v) => admin = Some(v.to_owned()),
                        ("http", v) => http = Some(v.to_owned()),
                        _ => {}
                    }
                }
                Some(Announced { role: role?, grpc: grpc?, admin: admin?, http })
            })
            .collect()
    }

    /// A mesh identity for `workload`, issued by this process's CA with a token minted from its
    /// key, exactly as an operator would bootstrap a workload by hand.
    async fn workload_identity(&self, workload: &str, ca_addr: &str, shutdown: &Shutdown) -> WorkloadIdentity {
        let settings = Settings {
            data_dir: self._dir.path().to_owned(),
            ca_dir: self._dir.path().join("identity"),
            ..Settings::default()
        };
        let access = CaAccess::local(&settings, ca_addr).expect("CA directory");
        access.identity(&settings, workload, shutdown).await.expect("workload identity from the CA")
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit. Async so this test's own gRPC
    /// connections keep being driven and can answer the server's GOAWAY while it drains.
    pub(crate) async fn terminate(mut self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "kem exited with {status} after SIGTERM");
                return;
            }
            assert!(Instant::now() < deadline, "kem did not drain within 5 s of SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn expected_services(role: &str) -> Vec<String> {
    let business: &[&str] = match role {
        "identity" => &["kem.identity.v1.IdentityService"],
        "user" => &["kem.user.v1.UserService"],
        "event" => &["kem.event.v1.EventService"],
        "ai" => &["kem.ai.v1.AiService"],
        "content" => &["kem.content.v1.ContentService"],
        "distribution" => &["kem.distribution.v1.DistributionService"],
        "participation" => &["kem.participation.v1.ParticipationService"],
        "analytics" => &["kem.analytics.v1.AnalyticsService"],
        "gateway" => &[],
        other => panic!("unexpected role {other}"),
    };
    let mut all: Vec<String> = business.iter().map(|s| s.to_string()).collect();
    all.push(HEALTH.to_owned());
    all.push(REFLECTION.to_owned());
    all.sort();
    all
}

async fn reflected_services(channel: MeshChannel) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        client.server_reflection_info(tokio_stream::once(request)).await.expect("reflection stream").into_inner();
    let response = responses.next().await.expect("one response").expect("response ok");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected reflection response {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

async fn health(addr: &str, service: &str) -> i32 {
    let mut client = HealthClient::new(channel(addr).await);
    client
        .check(HealthCheckRequest { service: service.to_owned() })
        .await
        .unwrap_or_else(|e| panic!("health check of {service:?} on {addr} failed: {e}"))
        .into_inner()
        .status
}

#[tokio::test]
async fn kem_up_serves_every_role_over_mtls_with_health_and_reflection_then_drains_on_sigterm() {
    let kem = KemProcess::start(&["up"]);
    let roles = kem.roles();
    let mut names: Vec<&str> = roles.iter().map(|r| r.role.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["ai", "analytics", "content", "distribution", "event", "gateway", "identity", "participation", "user"]
    );

    // The test joins the mesh as the gateway would: a join token from the CA, then mTLS.
    let shutdown = Shutdown::new();
    let ca_addr = &roles.iter().find(|r| r.role == "identity").expect("identity role").grpc;
    let gateway = kem.workload_identity("gateway", ca_addr, &shutdown).await;
    let settings = Settings::default();

    for role in &roles {
        // Probes: plaintext health on the admin port, as kubelet does.
        assert_eq!(health(&role.admin, "").await, ServingStatus::Serving as i32, "overall health of {}", role.role);
        let expected = expected_services(&role.role);
        for service in expected.iter().filter(|s| s.starts_with("kem.")) {
            assert_eq!(health(&role.admin, service).await, ServingStatus::Serving as i32, "{}: {service}", role.role);
        }
        // Reflection: over mTLS, verifying the role's SPIFFE identity.
        let peer = kem::mesh::spiffe_id(&settings, &role.role).expect("id");
        let channel = MeshChannel::new(&gateway, &role.grpc, &peer).expect("mesh channel");
        assert_eq!(reflected_services(channel).await, expected, "reflection of role {}", role.role);
        assert_eq!(role.http.is_some(), role.role == "gateway", "{}: only the gateway has an HTTP listener", role.role);
    }

    // The gRPC ports refuse plaintext.
    let user = roles.iter().find(|r| r.role == "user").expect("user role");
    let mut plain = HealthClient::new(channel(&user.grpc).await);
    assert!(plain.check(HealthCheckRequest::default()).await.is_err(), "plaintext must be refused on the mesh port");

    // The gateway may call GetMe, but only on behalf of a signed-in owner (x-kem-user-id).
    let peer = kem::mesh::spiffe_id(&settings, "user").expect("id");
    let mut client = UserServiceClient::new(MeshChannel::new(&gateway, &user.grpc, &peer).expect("channel"));
    let status = client.get_me(GetMeRequest::default()).await.expect_err("no owner metadata");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    // ... and a workload the contract does not allow is refused.
    let analytics = kem.workload_identity("analytics", ca_addr, &shutdown).await;
    let mut client = UserServiceClient::new(MeshChannel::new(&analytics, &user.grpc, &peer).expect("channel"));
    let status = client.get_me(GetMeRequest::default()).await.expect_err("denied");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");

    shutdown.trigger();
    kem.terminate().await;
}

#[tokio::test]
async fn kem_serve_runs_exactly_one_service_with_a_join_token_from_kem_identity() {
    let ca = KemProcess::start(&["identity"]);
    let ca_addr = ca.roles()[0].grpc.clone();
    let dir = ca._dir.path().to_owned();
    let token = Command::new(env!("CARGO_BIN_EXE_kem"))
        .args(["join-token", "participation", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("kem join-token");
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token_file = dir.join("participation.token");
    std::fs::write(&token_file, &token.stdout).expect("write token");

    let kem = KemProcess::start_with(
        &["serve", "participation", "--identity-addr", &ca_addr, "--identity-token-file"],
        &[
            token_file.as_os_str(),
            std::ffi::OsStr::new("--trust-anchors"),
            dir.join("identity/trust-bundle.pem").as_os_str(),
        ],
    );
    let roles = kem.roles();
    assert_eq!(roles.len(), 1, "{roles:?}");
    assert_eq!(roles[0].role, "participation");
    assert_eq!(
        health(&roles[0].admin, "kem.participation.v1.ParticipationService").await,
        ServingStatus::Serving as i32
    );
    kem.terminate().await;
    ca.terminate().await;
}

#[test]
fn kem_serve_refuses_local_stand_ins_naming_every_missing_variable() {
    // `kem serve` is how production runs kem: without provider credentials it must not start on
    // the stand-ins (which would report fake successes). It fails before it listens or asks the
    // CA, naming each stand-in and the variables that replace it.
    for (service, named) in [
        ("distribution", &["INSTAGRAM", "KAKAO_CHANNEL", "GENIE_TV", "KEM_SENS_SECRET_KEY"][..]),
        ("participation", &["KEM_SENS_SECRET_KEY", "KEM_PARTICIPATION_PII_KEY_FILE"][..]),
        ("ai", &["KEM_CLAUDE_API_KEY"][..]),
        ("content", &["KEM_STABILITY_API_KEY"][..]),
        ("user", &["KEM_NTS_SERVICE_KEY"][..]),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let started = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_kem"))
            .args(["serve", service, "--base-port", "0", "--admin-base-port", "0", "--log-level", "off", "--data-dir"])
            .arg(dir.path())
            .env_remove("KEM_CONFIG")
            .env_remove("KEM_ALLOW_LOCAL_PROVIDERS")
            .output()
            .expect("run kem");
        assert!(!out.status.success(), "kem serve {service} started on stand-ins");
        let err = String::from_utf8_lossy(&out.stderr);
        for name in named.iter().chain(&["KEM_ALLOW_LOCAL_PROVIDERS", "local stand-in"]) {
            assert!(err.contains(name), "kem serve {service}: {name} is named in: {err}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20), "the refusal is immediate");
    }
}

#[test]
fn kem_serve_without_a_token_explains_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("bundle.pem"), "").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_kem"))
        .env("KEM_ALLOW_LOCAL_PROVIDERS", "1")
        .args(["serve", "user", "--base-port", "0", "--log-level", "off", "--trust-anchors"])
        .arg(dir.path().join("missing.pem"))
        .output()
        .expect("run kem");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--trust-anchors"), "{err}");
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["up", "--help"],
        &["serve", "--help"],
        &["gateway", "--help"],
        &["identity", "--help"],
        &["config", "--help"],
        &["join-token", "--help"],
        &["bench", "--help"],
        &["bench", "mesh", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kem")).args(args).output().expect("run kem");
        assert!(out.status.success(), "kem {args:?} failed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage:"), "kem {args:?}: {text}");
    }
}

#[test]
fn a_busy_port_is_an_actionable_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_kem"))
        .args(["identity", "--base-port", &port, "--admin-base-port", "0", "--log-level", "off", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run kem");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot bind") && err.contains("--base-port"), "{err}");
}

async fn channel(addr: impl std::fmt::Display) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}
