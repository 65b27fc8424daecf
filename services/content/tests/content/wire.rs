//! The service `start` returns, served over mTLS with the policy from the contracts: owners reach
//! the public methods through the gateway, only the event service reaches GetImage.

use std::time::Duration;

use kem_kit::runtime::with_owner;
use kem_proto::kem::common::v1 as common;
use kem_proto::kem::content::v1 as content;
use tonic::{Code, Request};

use crate::support::*;

#[tokio::test]
async fn the_mesh_admits_owners_through_the_gateway_and_the_event_service_for_get_image() {
    let h = Harness::start(test_config()).await;
    let addr = h.serve(test_config()).await;
    let mut job = request("job-wire", "event-wire", OWNER);
    job.sizes = vec![size(common::Channel::Instagram, 100, 100)];
    job.styles = styles(&[common::ImageStyle::Simple]);
    h.send(&job).await;
    let image_id = h.outcome("job-wire", Duration::from_secs(60)).await.images().image_ids[0].clone();

    let mut gateway = h.client(addr, "gateway").await;
    let listed = gateway
        .list_images(with_owner(
            Request::new(content::ListImagesRequest { event_id: "event-wire".into(), style: 0 }),
            OWNER,
        ))
        .await
        .expect("list through the gateway")
        .into_inner();
    assert_eq!(listed.images.len(), 1);
    let bytes = gateway
        .get_image_content(with_owner(
            Request::new(content::GetImageContentRequest { image_id: image_id.clone() }),
            OWNER,
        ))
        .await
        .expect("bytes through the gateway")
        .into_inner();
    assert_eq!(bytes.content_type, "image/png");
    let denied = gateway
        .get_image(Request::new(content::GetImageRequest { image_id: image_id.clone() }))
        .await
        .expect_err("GetImage is internal");
    assert_eq!(denied.code(), Code::PermissionDenied);

    let mut event = h.client(addr, "event").await;
    let got =
        event.get_image(Request::new(content::GetImageRequest { image_id })).await.expect("event may").into_inner();
    assert_eq!(got.owner_id, OWNER);
    // A peer that is not the gateway cannot claim an owner: the metadata is stripped.
    let anonymous = event
        .list_images(with_owner(
            Request::new(content::ListImagesRequest { event_id: "event-wire".into(), style: 0 }),
            OWNER,
        ))
        .await
        .expect_err("owner methods need the gateway");
    assert!(matches!(anonymous.code(), Code::PermissionDenied | Code::Unauthenticated), "{anonymous:?}");
    h.cleanup().await;
}
