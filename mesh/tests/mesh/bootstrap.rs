//! A workload's first certificate from the identity CA over the network.

use std::sync::Arc;
use std::time::Duration;

use kem_mesh::Shutdown;
use kem_mesh::authz::Policy;
use kem_mesh::identity::WorkloadIdentity;
use kem_mesh::identity::ca::{certificate_request, generate_key};
use kem_mesh::identity::credential::{CredentialVerifier, JoinTokens, ReplayLedger};
use kem_mesh::identity::service::{IdentityApi, RemoteSource, TokenSource};
use kem_mesh::server::{RoleServer, Serving, Transport};
use kem_mesh::testing::{NAMESPACE, TRUST_DOMAIN, TestCa};
use kem_proto::kem::identity::v1::identity_service_client::IdentityServiceClient;
use kem_proto::kem::identity::v1::{IssueCertificateRequest, issue_certificate_request::Csr};
use rustls::pki_types::ServerName;
use tokio::net::TcpListener;
use tonic::Code;

use crate::support::HOUR;

async fn identity_ca(ca: &TestCa, tokens: JoinTokens, ledger_dir: &std::path::Path, shutdown: &Shutdown) -> Serving {
    let ledger = ReplayLedger::open(ledger_dir).expect("ledger");
    identity_ca_with(ca, CredentialVerifier::new(Some((tokens, ledger)), None), shutdown).await
}

/// Serves the identity CA of `ca` accepting `credentials`, as `kem identity` does.
pub async fn identity_ca_with(ca: &TestCa, credentials: CredentialVerifier, shutdown: &Shutdown) -> Serving {
    let own = ca.identity("identity", HOUR).await;
    let api = IdentityApi::new(ca.ca.clone(), Arc::new(credentials));
    let policy = Policy::from_contracts(
        kem_proto::descriptor_pool(),
        &["kem.identity.v1.IdentityService"],
        TRUST_DOMAIN,
        NAMESPACE,
        "gateway",
    );
    RoleServer::new("identity")
        .transport(Transport::ServerTls(own))
        .policy(policy, None)
        .add_service(api.into_service())
        .serve(TcpListener::bind("127.0.0.1:0").await.expect("bind"), shutdown.clone())
        .await
        .expect("serve identity")
}

pub fn ca_client(ca: &TestCa, serving: &Serving) -> IdentityServiceClient<tonic::transport::Channel> {
    let anchors = ca.ca.load().trust_anchors().to_vec();
    let config = kem_mesh::tls::bootstrap_client_config(&anchors, TRUST_DOMAIN, &TestCa::id("identity")).expect("tls");
    let name = ServerName::try_from(TestCa::id("identity").dns_name()).expect("name");
    let channel =
        kem_mesh::client::connect::tls_channel(&serving.addr.to_string(), config, name, Duration::from_secs(1))
            .expect("channel");
    IdentityServiceClient::new(channel)
}

#[tokio::test]
async fn a_workload_bootstraps_with_a_join_token_and_keeps_its_key() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let tokens = JoinTokens::generate(TRUST_DOMAIN).expect("tokens");
    let token = tokens.mint(&TestCa::id("participation"), HOUR).expect("mint");
    let ledger_dir = tempfile::tempdir().expect("tempdir");
    let serving = identity_ca(&ca, tokens, ledger_dir.path(), &shutdown).await;
    let source = RemoteSource::new(
        serving.addr.to_string(),
        TestCa::id("identity"),
        ca.ca.load().trust_anchors().to_vec(),
        TokenSource::Static(token),
        Some(Duration::from_secs(600)),
    );
    let identity = WorkloadIdentity::start(
        TestCa::id("participation"),
        Arc::new(source),
        Duration::from_secs(5),
        shutdown.clone(),
    )
    .await
    .expect("bootstrap over the network");
    assert_eq!(identity.id(), &TestCa::id("participation"));
    let left = identity.not_after().duration_since(std::time::SystemTime::now()).expect("valid");
    assert!(left > Duration::from_secs(500) && left <= Duration::from_secs(600), "{left:?}");
    shutdown.trigger();
}

#[tokio::test]
async fn a_csr_for_another_identity_than_the_token_grants_is_refused() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let tokens = JoinTokens::generate(TRUST_DOMAIN).expect("tokens");
    let gateway_token = tokens.mint(&TestCa::id("gateway"), HOUR).expect("mint");
    let ledger_dir = tempfile::tempdir().expect("tempdir");
    let serving = identity_ca(&ca, tokens, ledger_dir.path(), &shutdown).await;
    let key = generate_key().expect("key");
    let csr = certificate_request(&TestCa::id("participation"), &key).expect("csr");
    let mut client = ca_client(&ca, &serving);
    let status = client
        .issue_certificate(IssueCertificateRequest {
            csr: Some(Csr::CsrDer(csr.clone())),
            token: gateway_token,
            requested_lifetime: None,
        })
        .await
        .expect_err("identity mismatch");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let info = kem_proto::status::error_info_of(&status).expect("error info");
    assert_eq!(info.reason, "IDENTITY_NOT_ALLOWED");

    let status = client
        .issue_certificate(IssueCertificateRequest {
            csr: Some(Csr::CsrDer(csr)),
            token: "kemjt1.forged.sig".into(),
            requested_lifetime: None,
        })
        .await
        .expect_err("bad token");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    shutdown.trigger();
}
