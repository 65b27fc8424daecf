//! Runs the real `kem` binary as a newcomer would and talks to it over the network.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// A `kem` child process, killed if the test fails before stopping it.
struct KemProcess {
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
    fn start(args: &[&str]) -> KemProcess {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_kem"))
            .args(args)
            .args(["--base-port", "0", "--http-port", "0", "--log-level", "warn"])
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("KEM_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kem");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
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

    /// `(role, grpc address, http address)` from the announcement lines.
    fn roles(&self) -> Vec<(String, String, Option<String>)> {
        self.announcements
            .iter()
            .filter_map(|line| {
                let mut role = None;
                let mut grpc = None;
                let mut http = None;
                for field in line.strip_prefix("kem: ")?.split_whitespace() {
                    match field.split_once('=')? {
                        ("role", v) => role = Some(v.to_owned()),
                        ("grpc", v) => grpc = Some(v.to_owned()),
                        ("http", v) => http = Some(v.to_owned()),
                        _ => {}
                    }
                }
                Some((role?, grpc?, http))
            })
            .collect()
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit. Async so this test's own gRPC
    /// connections keep being driven and can answer the server's GOAWAY while it drains.
    async fn terminate(mut self) {
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

async fn reflected_services(addr: &str) -> Vec<String> {
    let mut client = ServerReflectionClient::new(channel(addr).await);
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
async fn kem_up_serves_every_role_with_health_and_reflection_then_drains_on_sigterm() {
    let kem = KemProcess::start(&["up"]);
    let roles = kem.roles();
    let mut names: Vec<&str> = roles.iter().map(|(r, _, _)| r.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["ai", "analytics", "content", "distribution", "event", "gateway", "identity", "participation", "user"]
    );

    for (role, grpc, http) in &roles {
        let services = reflected_services(grpc).await;
        assert_eq!(services, expected_services(role), "reflection of role {role}");
        assert_eq!(health(grpc, "").await, ServingStatus::Serving as i32, "overall health of {role}");
        for service in services.iter().filter(|s| s.starts_with("kem.")) {
            assert_eq!(health(grpc, service).await, ServingStatus::Serving as i32, "{role}: {service}");
        }
        assert_eq!(http.is_some(), role == "gateway", "{role}: only the gateway has an HTTP listener");
    }
    kem.terminate().await;
}

#[tokio::test]
async fn kem_serve_runs_exactly_one_service() {
    let kem = KemProcess::start(&["serve", "participation"]);
    let roles = kem.roles();
    assert_eq!(roles.len(), 1, "{roles:?}");
    let (role, grpc, _) = &roles[0];
    assert_eq!(role, "participation");
    assert_eq!(reflected_services(grpc).await, expected_services("participation"));
    kem.terminate().await;
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
    let out = Command::new(env!("CARGO_BIN_EXE_kem"))
        .args([
            "serve",
            "user",
            "--base-port",
            &(port.parse::<u16>().expect("port") - 1).to_string(),
            "--log-level",
            "off",
        ])
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
