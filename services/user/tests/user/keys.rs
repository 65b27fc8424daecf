//! Signing keys: what GetSigningKeys publishes (and the gateway verifies with), rotation that
//! keeps earlier tokens valid, replicas sharing one key, keys from a file.

use std::time::{Duration, SystemTime};

use kem_kit::jwt::SigningKey;
use kem_kit::store::query;
use kem_proto::kem::user::v1 as pb;
use kem_proto::kem::user::v1::user_service_client::UserServiceClient;
use kem_proto::kem::user::v1::user_service_server::UserService;
use kem_testkit::eventually_holds;
use tonic::Request;

use crate::support::*;

async fn published(api: &kem_user::UserApi) -> pb::GetSigningKeysResponse {
    api.get_signing_keys(Request::new(pb::GetSigningKeysRequest {})).await.expect("keys").into_inner()
}

#[tokio::test]
async fn the_gateway_verifies_tokens_with_the_keys_it_fetches_over_grpc() {
    let h = Harness::start(config()).await;
    register(&h.api, "owner@example.com", ACTIVE).await;
    let pair = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");

    // Mount the service exactly as a role does and call it with the generated client, as
    // gateway::auth::UserServiceKeys does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(h.api.clone().into_service())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let mut client = UserServiceClient::connect(format!("http://{addr}")).await.expect("connect");
    let keys = client.get_signing_keys(pb::GetSigningKeysRequest {}).await.expect("GetSigningKeys").into_inner();
    assert_eq!((keys.issuer.as_str(), keys.audience.as_str()), ("kem-user", "kem-api"));
    assert_eq!(keys.cache_ttl.map(|d| d.seconds), Some(300));
    let current = &keys.keys[0];
    assert_eq!(
        (current.kty.as_str(), current.crv.as_str(), current.alg.as_str(), current.r#use.as_str()),
        ("EC", "P-256", "ES256", "sig")
    );
    assert_eq!(current.not_after, None, "the current key has no end");
    assert_eq!(current.kid, kid_of(&pair.access_token));
    let verifier = kem_kit::jwt::Verifier::new(&jwks(&keys), "kem-user", "kem-api").expect("valid JWKS");
    verifier.verify_now(&pair.access_token).expect("the token verifies");

    // Errors cross the wire with their details.
    let status = client.register(registration("bad", "124-81-00997")).await.expect_err("invalid");
    assert_eq!(violated_fields(&status), ["email", "businessNumber"]);
    assert_eq!(reason(&status), "BUSINESS_NUMBER_CHECKSUM");
    server.abort();
    h.cleanup().await;
}

#[tokio::test]
async fn rotation_keeps_earlier_tokens_valid_until_they_expire() {
    let h = Harness::start(config()).await;
    register(&h.api, "owner@example.com", ACTIVE).await;
    let before = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    let old_kid = kid_of(&before.access_token);

    let new_kid = h.api.rotate_signing_key().await.expect("rotated");
    assert_ne!(new_kid, old_kid);
    let keys = published(&h.api).await;
    let kids: Vec<&str> = keys.keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()], "current first, then the rotated-out key");
    let not_after = keys.keys[1].not_after.expect("the old key has an end");
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock").as_secs() as i64;
    // 15 min access TTL + 30 s leeway + 30 s reload lag.
    assert!((not_after.seconds - now - 960).abs() <= 5, "not_after {} vs now {now}", not_after.seconds);

    let after = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    assert_eq!(kid_of(&after.access_token), new_kid);
    let verifier = verifier(&h.api).await;
    verifier.verify_now(&before.access_token).expect("a token of the old key still verifies");
    verifier.verify_now(&after.access_token).expect("a token of the new key verifies");
    // Refresh signs with the new key too.
    let refreshed = refresh(&h.api, &before.refresh_token).await.expect("refresh");
    assert_eq!(kid_of(&refreshed.access_token), new_kid);
    h.cleanup().await;
}

#[tokio::test]
async fn retired_keys_leave_the_published_set() {
    let mut settings = config();
    settings.tokens.access_ttl = Duration::from_secs(1);
    settings.maintenance_interval = Duration::from_millis(200);
    let h = Harness::start(settings).await;
    let old = h.api.core().keys().current_kid();
    h.api.rotate_signing_key().await.expect("rotated");
    assert_eq!(published(&h.api).await.keys.len(), 2);
    // retire_after = 1 s TTL + 30 s leeway + 0.2 s lag: check the boundary through the stored value.
    let row = query("SELECT retire_after FROM signing_keys WHERE kid = $1")
        .bind(old.as_str())
        .fetch_one(&h.svc.ctx.store)
        .await
        .expect("row");
    let retire_after: i64 = row.get("retire_after").expect("retire_after");
    query("UPDATE signing_keys SET retire_after = $2 WHERE kid = $1")
        .bind(old.as_str())
        .bind(retire_after - 31_500)
        .execute(&h.svc.ctx.store)
        .await
        .expect("move the retirement into the past");
    let keys = published(&h.api).await;
    assert_eq!(keys.keys.len(), 1, "only the current key is left");
    assert_ne!(keys.keys[0].kid, old);
    h.cleanup().await;
}

#[tokio::test]
async fn replicas_share_one_key_and_publish_a_rotation_at_once() {
    let h = Harness::start(config()).await;
    let b = h.replica(config()).await;
    assert_eq!(b.core().keys().current_kid(), h.api.core().keys().current_kid(), "one key for all replicas");

    let new_kid = h.api.rotate_signing_key().await.expect("rotated on replica A");
    // Replica B has not reloaded yet, but publishes from the database: the gateway, refreshing
    // on an unknown kid, finds the new key whichever replica it asks.
    assert_eq!(published(&b).await.keys[0].kid, new_kid);
    b.core().keys().reload().await.expect("reload");
    assert_eq!(b.core().keys().current_kid(), new_kid);
    h.cleanup().await;
}

#[tokio::test]
async fn replicas_starting_together_agree_on_one_key() {
    let h = Harness::start(config()).await;
    // Start from an empty key table, then let three replicas race to create the first key.
    query("DELETE FROM current_signing_key").execute(&h.svc.ctx.store).await.expect("clear");
    query("DELETE FROM signing_keys").execute(&h.svc.ctx.store).await.expect("clear");
    let replicas =
        futures_util::future::join_all((0..3).map(|_| kem_user::start_api(h.svc.ctx.clone(), config()))).await;
    let kids: Vec<String> = replicas.into_iter().map(|r| r.expect("started").core().keys().current_kid()).collect();
    assert!(kids.iter().all(|k| *k == kids[0]), "{kids:?}");
    assert_eq!(
        count(&h.svc.ctx.store, "SELECT COUNT(*) AS n FROM signing_keys").await,
        1,
        "the losers' keys were discarded"
    );
    h.cleanup().await;
}

#[tokio::test]
async fn a_key_file_signs_and_only_its_public_half_is_stored() {
    let dir = kem_testkit::TempDir::new("user-keyfile");
    let path = dir.0.join("jwt.pem");
    let first = SigningKey::generate().expect("key");
    std::fs::write(&path, first.pkcs8_pem().expose()).expect("write key");
    let mut settings = config();
    settings.tokens.signing_key_file = Some(path.clone());
    let h = Harness::start(settings.clone()).await;
    register(&h.api, "owner@example.com", ACTIVE).await;
    let pair = login(&h.api, "owner@example.com", PASSWORD).await.expect("login");
    assert_eq!(kid_of(&pair.access_token), first.kid());
    let row = query("SELECT private_pem FROM signing_keys WHERE kid = $1")
        .bind(first.kid().to_owned())
        .fetch_one(&h.svc.ctx.store)
        .await
        .expect("row");
    assert_eq!(row.get::<Option<String>>("private_pem").expect("column"), None, "the private key stays in the file");
    assert!(h.api.rotate_signing_key().await.is_err(), "file keys rotate by replacing the file");

    // The mounted secret is replaced (Key Vault rotation): the new key signs after a reload and
    // the old one stays published.
    let second = SigningKey::generate().expect("key");
    std::fs::write(&path, second.pkcs8_pem().expose()).expect("replace key");
    h.api.core().keys().reload().await.expect("reload");
    assert_eq!(h.api.core().keys().current_kid(), second.kid());
    let kids: Vec<String> = published(&h.api).await.keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, [second.kid().to_owned(), first.kid().to_owned()]);
    verifier(&h.api).await.verify_now(&pair.access_token).expect("the old file key's token still verifies");

    // An unreadable file stops the start with a clear error.
    let mut broken = settings;
    broken.tokens.signing_key_file = Some(dir.0.join("missing.pem"));
    let error = kem_user::start_api(h.svc.ctx.clone(), broken).await.expect_err("missing file").to_string();
    assert!(error.contains("KEM_JWT_SIGNING_KEY_FILE"), "{error}");
    h.cleanup().await;
}

#[tokio::test]
async fn key_rotation_happens_on_schedule() {
    let mut settings = config();
    settings.tokens.rotation_interval = Some(Duration::from_millis(300));
    settings.maintenance_interval = Duration::from_millis(100);
    let h = Harness::start(settings).await;
    let first = h.api.core().keys().current_kid();
    eventually_holds("a scheduled rotation", Duration::from_secs(10), || h.api.core().keys().current_kid() != first)
        .await;
    assert!(published(&h.api).await.keys.iter().any(|k| k.kid == first), "the old key stays published");
    h.cleanup().await;
}
