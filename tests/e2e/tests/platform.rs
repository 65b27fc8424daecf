//! The whole platform started in-process: every role healthy over the network, the edge
//! answering, and a public route reaching its service through the mesh.

use kem_testkit::roles::TestPlatform;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the edge");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read response");
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

async fn http_post(addr: std::net::SocketAddr, path: &str, json: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the edge");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("read response");
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn every_role_is_serving_and_the_edge_answers() {
    let platform = TestPlatform::start_all().await;
    for role in platform.grpc_addrs().keys().copied() {
        let mut health = HealthClient::new(channel(platform.admin_addr(role)).await);
        let status = health
            .check(HealthCheckRequest { service: String::new() })
            .await
            .unwrap_or_else(|e| panic!("{role}: health check failed: {e}"))
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{role}");
    }

    let (status, body) = http_get(platform.http_addr(), "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    // Owner routes need an access token.
    let (status, body) = http_get(platform.http_addr(), "/api/v1/events").await;
    assert_eq!(status, 401, "{body}");
    // A public route goes REST → gateway → mesh (mTLS) → user service; with no NTS key
    // configured, the built-in local provider answers and says so.
    let (status, body) =
        http_post(platform.http_addr(), "/api/v1/business-numbers:verify", r#"{"businessNumber":"1248100998"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("BUSINESS_STATUS_ACTIVE") && body.contains("local:nts"), "{body}");
    let (status, body) = http_get(platform.http_addr(), "/openapi.json").await;
    assert_eq!(status, 200);
    assert!(body.contains("\"openapi\":\"3.1"), "{}", &body[..body.len().min(200)]);

    platform.stop().await;
}

async fn channel(addr: impl std::fmt::Display) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("valid uri")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
}
