//! Hostile ids at the boundary: a NUL (`/images/%00/content`), punctuation or a 16,000
//! character id is INVALID_ARGUMENT naming the field before the database is asked (PostgreSQL
//! refused NUL with a 500 before), and no status — nor, over the mesh, any trailer — carries more
//! than a short excerpt of it.

use kem_kit::runtime::with_owner;
use kem_proto::kem::content::v1 as content;
use kem_proto::kem::content::v1::content_service_server::ContentService;
use tonic::{Code, Request, Status};

use kem_testkit::status::{MESSAGE_MAX, expect_invalid_field};

use crate::support::*;

fn garbage() -> [String; 5] {
    ["x".repeat(16_000), "\u{0}".into(), "%00".into(), "../../etc/passwd".into(), "이미지".into()]
}

fn assert_invalid<T: std::fmt::Debug>(result: Result<T, Status>, field: &str) {
    expect_invalid_field(result, field);
}

#[tokio::test]
async fn malformed_ids_are_invalid_arguments_before_the_database() {
    let h = Harness::start(test_config()).await;
    for bad in garbage() {
        assert_invalid(h.list(OWNER, &bad).await, "eventId");
        assert_invalid(h.bytes(OWNER, &bad).await, "imageId");
        let request = Request::new(content::GetImageRequest { image_id: bad.clone() });
        assert_invalid(h.api.get_image(request).await, "imageId");
    }
    // A well-formed id that does not exist is NOT_FOUND, and says so briefly.
    let missing = h.bytes(OWNER, "3c5d2b1a-0000-4000-8000-000000000000").await.expect_err("missing");
    assert_eq!(missing.code(), Code::NotFound);
    assert!(missing.message().len() <= MESSAGE_MAX);
    h.cleanup().await;
}

#[tokio::test]
async fn huge_ids_over_the_mesh_leave_the_connection_usable() {
    let h = Harness::start(test_config()).await;
    let addr = h.serve(test_config()).await;
    let mut gateway = h.client(addr, "gateway").await;
    for bad in garbage() {
        let request = with_owner(Request::new(content::GetImageContentRequest { image_id: bad.clone() }), OWNER);
        assert_invalid(gateway.get_image_content(request).await, "imageId");
        let request = with_owner(Request::new(content::ListImagesRequest { event_id: bad, style: 0 }), OWNER);
        assert_invalid(gateway.list_images(request).await, "eventId");
    }
    // The same connection still answers.
    let request = with_owner(Request::new(content::ListImagesRequest { event_id: "event-ok".into(), style: 0 }), OWNER);
    gateway.list_images(request).await.expect("the stream survived");
    h.cleanup().await;
}
