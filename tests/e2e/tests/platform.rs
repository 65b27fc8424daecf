//! The whole platform started in-process: every role healthy over the network, the edge
//! answering, and a public route reaching its service through the mesh.

use kem_testkit::roles::TestPlatform;
use serde_json::json;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::Rest;

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

    let edge = Rest::new(platform.http_addr());
    let (status, body) = edge.get_bytes("/healthz").await;
    assert_eq!((status, String::from_utf8_lossy(&body).trim()), (200, "ok"));
    // Owner routes need an access token.
    edge.get("/api/v1/events").await.expect(401);
    // A public route goes REST → gateway → mesh (mTLS) → user service; with no NTS key
    // configured, the built-in local provider answers and says so.
    let verified = edge.post("/api/v1/business-numbers:verify", json!({"businessNumber": "1248100998"})).await;
    let body = verified.expect(200).body.to_string();
    assert!(body.contains("BUSINESS_STATUS_ACTIVE") && body.contains("local:nts"), "{body}");
    let (status, body) = edge.get_bytes("/openapi.json").await;
    let body = String::from_utf8_lossy(&body);
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
