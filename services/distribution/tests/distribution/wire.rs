//! The service served over mesh mTLS, as the role serves it: the gateway (with the owner's
//! metadata) may call it; another workload may not.

use kem_distribution::domain::Channel;
use kem_kit::runtime::with_owner;
use kem_mesh::client::MeshChannel;
use kem_mesh::testing::TestCa;
use kem_proto::kem::distribution::v1 as pb;
use kem_proto::kem::distribution::v1::distribution_service_client::DistributionServiceClient;
use tonic::{Code, Request};

use crate::support::*;

#[tokio::test]
async fn the_gateway_reaches_the_service_over_mtls_and_others_are_denied() {
    let h = Harness::start(fast_config()).await;
    h.publish("evt-wire", &[Channel::KakaoChannel]).await;
    h.settled("evt-wire").await;

    let addr = kem_testkit::mesh::serve_as(h.identity.clone(), h.api.clone().into_service(), &h.servers).await;

    let gateway = h.ca.identity("gateway", HOUR).await;
    let channel = MeshChannel::new(&gateway, &addr.to_string(), &TestCa::id("distribution")).expect("channel");
    let mut client = DistributionServiceClient::new(channel);
    let request = with_owner(Request::new(pb::GetStatusRequest { event_id: "evt-wire".into() }), OWNER);
    let status = client.get_status(request).await.expect("the gateway may call GetStatus").into_inner();
    assert_eq!(status.state, pb::DistributionState::Completed as i32);
    let other = with_owner(Request::new(pb::GetStatusRequest { event_id: "evt-wire".into() }), OTHER);
    let status = client.get_status(other).await.expect_err("another owner");
    assert_eq!((status.code(), reason(&status)), (Code::NotFound, "EVENT_NOT_FOUND".to_owned()));

    let event = h.ca.identity("event", HOUR).await;
    let channel = MeshChannel::new(&event, &addr.to_string(), &TestCa::id("distribution")).expect("channel");
    let mut client = DistributionServiceClient::new(channel);
    let request = with_owner(Request::new(pb::GetStatusRequest { event_id: "evt-wire".into() }), OWNER);
    let denied = client.get_status(request).await.expect_err("only the gateway may call owner methods");
    assert_eq!(denied.code(), Code::PermissionDenied);
    h.cleanup().await;
}
