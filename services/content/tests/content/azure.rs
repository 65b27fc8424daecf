//! The Azure Blob Storage adapter against its contract server (Shared Key signatures verified by
//! an independent implementation), alone and as the service's blob store.

use std::time::Duration;

use bytes::Bytes;
use kem_content::BlobConfig;
use kem_content::app::{BlobError, BlobStore};
use kem_content::infra::blob::{AzureBlobConfig, AzureBlobStore};
use kem_kit::Secret;
use kem_proto::kem::common::v1 as common;
use tonic::Code;

use crate::contracts::{ACCOUNT, ACCOUNT_KEY, AzureServer, CONTAINER};
use crate::support::*;

fn azure_config(server: &AzureServer, key: &str) -> AzureBlobConfig {
    AzureBlobConfig {
        account: ACCOUNT.into(),
        key: Secret::new(key),
        container: CONTAINER.into(),
        endpoint: server.endpoint(),
        timeout: Duration::from_secs(2),
        root_ca_pem: None,
    }
}

#[tokio::test]
async fn put_and_get_blob_speak_the_signed_rest_contract() {
    let server = AzureServer::start().await;
    let store = AzureBlobStore::new(&azure_config(&server, ACCOUNT_KEY)).expect("adapter");
    let key = "images/ab/abcdef.png";
    assert_eq!(store.get(key).await.expect("get"), None, "404 BlobNotFound is an absent blob");
    store.put(key, Bytes::from_static(b"\x89PNG fake"), "image/png").await.expect("put");
    assert_eq!(store.get(key).await.expect("get"), Some(Bytes::from_static(b"\x89PNG fake")));
    // Content addresses: a second put of the key is refused by If-None-Match (409) and is fine.
    store.put(key, Bytes::from_static(b"\x89PNG fake"), "image/png").await.expect("idempotent put");
    assert_eq!(server.blob_count(), 1);
    assert!(server.auth_failures().is_empty(), "every signature verified: {:?}", server.auth_failures());

    // Names that need encoding are signed over their encoded path.
    store.put("images/x y/é+.png", Bytes::from_static(b"b"), "image/png").await.expect("put encoded");
    assert_eq!(store.get("images/x y/é+.png").await.expect("get"), Some(Bytes::from_static(b"b")));
    assert!(server.auth_failures().is_empty(), "{:?}", server.auth_failures());

    // ServerBusy is retried.
    server.busy(1);
    let gets = server.gets();
    assert_eq!(store.get(key).await.expect("get"), Some(Bytes::from_static(b"\x89PNG fake")));
    assert_eq!(server.gets(), gets + 1, "one 503, then the answer");

    // A wrong key is refused with 403 AuthenticationFailed: a configuration failure, not retried.
    let wrong = AzureBlobStore::new(&azure_config(&server, "d3Jvbmcta2V5")).expect("adapter");
    let puts = server.puts();
    let error = wrong.put("images/zz/z.png", Bytes::from_static(b"z"), "image/png").await.expect_err("refused");
    assert!(matches!(error, BlobError::Failed { .. }), "{error:?}");
    assert!(error.to_string().contains("AuthenticationFailed"), "the provider's answer is in the message: {error}");
    let source = std::error::Error::source(&error).expect("the provider's error is the source");
    assert!(source.to_string().contains("AuthenticationFailed"), "{source}");
    assert_eq!(server.auth_failures().len(), 1);
    assert_eq!(server.puts(), puts, "nothing stored");
}

#[tokio::test]
async fn the_service_stores_and_serves_images_from_azure() {
    let server = AzureServer::start().await;
    let mut config = test_config();
    config.blob = BlobConfig::Azure(azure_config(&server, ACCOUNT_KEY));
    let h = Harness::start(config).await;
    let mut job = request("job-az", "event-az", OWNER);
    job.sizes = vec![size(common::Channel::NaverBlog, 150, 100)];
    h.send(&job).await;
    let ids = h.outcome("job-az", Duration::from_secs(60)).await.images().image_ids.clone();
    assert_eq!(ids.len(), 3);
    assert_eq!(server.blob_count(), 3, "every image's bytes are in the container");
    let bytes = h.bytes(OWNER, &ids[0]).await.expect("bytes from Azure");
    assert_eq!(bytes.content_type, "image/png");
    assert!(server.auth_failures().is_empty());
    // Nothing under the local data dir.
    assert!(!h.ctx.data_dir.join("blobs").exists());

    server.busy(20);
    let down = h.bytes(OWNER, &ids[0]).await.expect_err("store down");
    assert_eq!((down.code(), status_reason(&down).as_str()), (Code::Unavailable, "kem.content/BLOB_STORE_UNAVAILABLE"));
    server.busy(0);
    server.corrupt_all();
    let lost = h.bytes(OWNER, &ids[1]).await.expect_err("corrupt bytes");
    assert_eq!((lost.code(), status_reason(&lost).as_str()), (Code::DataLoss, "kem.content/IMAGE_BYTES_LOST"));
    h.cleanup().await;
}
