//! What the identity CA agrees to sign, through its gRPC API: ECDSA P-256 keys only, single-use
//! join tokens (durably, and under concurrency), reusable tokens when minted so, and renewals that
//! authenticate with the current certificate instead of spending the join token again.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kem_mesh::Shutdown;
use kem_mesh::identity::WorkloadIdentity;
use kem_mesh::identity::ca::{certificate_request, generate_key};
use kem_mesh::identity::credential::{CredentialVerifier, JoinTokens, ReplayLedger, renewal};
use kem_mesh::identity::service::{RemoteSource, TokenSource};
use kem_mesh::testing::{TRUST_DOMAIN, TestCa};
use kem_proto::kem::identity::v1::identity_service_client::IdentityServiceClient;
use kem_proto::kem::identity::v1::{IssueCertificateRequest, IssueCertificateResponse, issue_certificate_request::Csr};
use rcgen::KeyPair;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::bootstrap::{ca_client, identity_ca_with};
use crate::support::HOUR;

/// An RSA-2048 CSR for `participation` with the right SANs and a valid signature (see the
/// comment on the unit test that shares it in `identity/ca.rs` for how it was made).
const RSA_2048_CSR_PEM: &str = include_str!("../../src/identity/testdata/rsa2048-participation.csr.pem");

fn verifier(tokens: &JoinTokens, ledger_dir: &Path) -> CredentialVerifier {
    CredentialVerifier::new(Some((tokens.clone(), ReplayLedger::open(ledger_dir).expect("ledger"))), None)
}

fn csr(alg: &'static rcgen::SignatureAlgorithm, service: &str) -> Csr {
    let key = KeyPair::generate_for(alg).expect("key");
    Csr::CsrDer(certificate_request(&TestCa::id(service), &key).expect("csr"))
}

async fn ask(
    client: &mut IdentityServiceClient<Channel>,
    csr: Csr,
    token: &str,
) -> Result<IssueCertificateResponse, Status> {
    client
        .issue_certificate(IssueCertificateRequest {
            csr: Some(csr),
            token: token.to_owned(),
            requested_lifetime: None,
        })
        .await
        .map(tonic::Response::into_inner)
}

fn reason(status: &Status) -> String {
    kem_proto::status::error_info_of(status).map(|info| info.reason).unwrap_or_default()
}

fn assert_replay_refused(result: Result<IssueCertificateResponse, Status>) {
    let status = result.expect_err("a spent single-use token must be refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(reason(&status), "TOKEN_ALREADY_USED", "{status:?}");
    assert!(
        status.message().contains("join token already used; mint a new one with `kem join-token`"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn only_p256_keys_are_signed_and_a_refused_key_does_not_spend_the_token() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let tokens = JoinTokens::generate(TRUST_DOMAIN).expect("tokens");
    let ledger_dir = tempfile::tempdir().expect("tempdir");
    let serving = identity_ca_with(&ca, verifier(&tokens, ledger_dir.path()), &shutdown).await;
    let mut client = ca_client(&ca, &serving);
    let token = tokens.mint(&TestCa::id("participation"), HOUR).expect("mint");

    let refused = [
        ("RSA 2048-bit", Csr::CsrPem(RSA_2048_CSR_PEM.to_owned())),
        ("P-384", csr(&rcgen::PKCS_ECDSA_P384_SHA384, "participation")),
        ("Ed25519", csr(&rcgen::PKCS_ED25519, "participation")),
    ];
    for (received, request) in refused {
        let status = ask(&mut client, request, &token).await.expect_err(received);
        assert_eq!(status.code(), Code::InvalidArgument, "{received}: {status:?}");
        assert_eq!(reason(&status), "UNSUPPORTED_KEY", "{received}: {status:?}");
        // The message names what was received and what is accepted.
        assert!(
            status.message().contains(received) && status.message().contains("P-256"),
            "{received}: {}",
            status.message()
        );
    }

    // The same single-use token was not spent by the refusals: a P-256 CSR gets its certificate.
    let issued = ask(&mut client, csr(&rcgen::PKCS_ECDSA_P256_SHA256, "participation"), &token).await.expect("P-256");
    assert_eq!(issued.spiffe_id, TestCa::id("participation").to_string());
    assert_replay_refused(ask(&mut client, csr(&rcgen::PKCS_ECDSA_P256_SHA256, "participation"), &token).await);
    shutdown.trigger();
}

#[tokio::test]
async fn a_single_use_token_is_refused_the_second_time_even_after_a_ca_restart() {
    let ca = TestCa::new();
    let tokens = JoinTokens::generate(TRUST_DOMAIN).expect("tokens");
    let ledger_dir = tempfile::tempdir().expect("tempdir");
    let token = tokens.mint(&TestCa::id("event"), HOUR).expect("mint");
    let p256 = || csr(&rcgen::PKCS_ECDSA_P256_SHA256, "event");

    let first_run = Shutdown::new();
    let serving = identity_ca_with(&ca, verifier(&tokens, ledger_dir.path()), &first_run).await;
    let mut client = ca_client(&ca, &serving);
    ask(&mut client, p256(), &token).await.expect("first use");
    assert_replay_refused(ask(&mut client, p256(), &token).await);
    first_run.trigger();
    serving.task.await.expect("join").expect("drained");

    // A new CA process: nothing in memory, the ledger reopened from the same directory.
    let second_run = Shutdown::new();
    let serving = identity_ca_with(&ca, verifier(&tokens, ledger_dir.path()), &second_run).await;
    let mut client = ca_client(&ca, &serving);
    assert_replay_refused(ask(&mut client, p256(), &token).await);
    // ... while a fresh token still works.
    let fresh = tokens.mint(&TestCa::id("event"), HOUR).expect("mint");
    ask(&mut client, p256(), &fresh).await.expect("a new token");
    second_run.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_requests_with_one_single_use_token_get_exactly_one_certificate() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let tokens = JoinTokens::generate(TRUST_DOMAIN).expect("tokens");
    let ledger_dir = tempfile::tempdir().expect("tempdir");
    let serving = identity_ca_with(&ca, verifier(&tokens, ledger_dir.path()), &shutdown).await;
    let token = tokens.mint(&TestCa::id("user"), HOUR).expect("mint");

    const CONTENDERS: usize = 20;
    let start = Arc::new(tokio::sync::Barrier::new(CONTENDERS));
    let requests: Vec<_> = (0..CONTENDERS)
        .map(|_| {
            let (mut client, token, start) = (ca_client(&ca, &serving), token.clone(), start.clone());
            let request = csr(&rcgen::PKCS_ECDSA_P256_SHA256, "user");
            tokio::spawn(async move {
                start.wait().await;
                ask(&mut client, request, &token).await
            })
        })
        .collect();
    let mut issued = 0;
    for request in requests {
        match request.await.expect("task") {
            Ok(_) => issued += 1,
            Err(status) => assert_replay_refused(Err(status)),
        }
    }
    assert_eq!(issued, 1, "exactly one of {CONTENDERS} concurrent uses of a single-use token succeeds");
    shutdown.trigger();
}

#[tokio::test]
async fn a_reusable_token_works_more_than_once() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let tokens = JoinTokens::generate(TRUST_DOMAIN).expect("tokens");
    let ledger_dir = tempfile::tempdir().expect("tempdir");
    let serving = identity_ca_with(&ca, verifier(&tokens, ledger_dir.path()), &shutdown).await;
    let mut client = ca_client(&ca, &serving);
    let token = tokens.mint_reusable(&TestCa::id("gateway"), HOUR).expect("mint");
    for _ in 0..2 {
        let issued =
            ask(&mut client, csr(&rcgen::PKCS_ECDSA_P256_SHA256, "gateway"), &token).await.expect("reusable token");
        assert_eq!(issued.spiffe_id, TestCa::id("gateway").to_string());
    }
    shutdown.trigger();
}

#[tokio::test]
async fn a_workload_renews_with_its_certificate_without_spending_its_token_again() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let tokens = JoinTokens::generate(TRUST_DOMAIN).expect("tokens");
    let ledger_dir = tempfile::tempdir().expect("tempdir");
    let serving = identity_ca_with(&ca, verifier(&tokens, ledger_dir.path()), &shutdown).await;
    let token = tokens.mint(&TestCa::id("participation"), HOUR).expect("mint");
    let source = RemoteSource::new(
        serving.addr.to_string(),
        TestCa::id("identity"),
        ca.ca.load().trust_anchors().to_vec(),
        TokenSource::Static(token.clone()),
        // Renewal at ~70% of 2 s: two renewals within a few seconds.
        Some(Duration::from_secs(2)),
    );
    let identity = WorkloadIdentity::start(
        TestCa::id("participation"),
        Arc::new(source),
        Duration::from_secs(5),
        shutdown.clone(),
    )
    .await
    .expect("bootstrap with the single-use token");
    let first_serial = identity.serial();

    let mut generations = identity.generations();
    tokio::time::timeout(Duration::from_secs(20), generations.wait_for(|g| *g >= 2))
        .await
        .expect("two renewals within 20 s")
        .expect("identity alive");
    assert_ne!(identity.serial(), first_serial, "renewed certificates are new certificates");

    // The token was spent by the bootstrap and only then: presenting it now is a replay.
    let mut client = ca_client(&ca, &serving);
    assert_replay_refused(ask(&mut client, csr(&rcgen::PKCS_ECDSA_P256_SHA256, "participation"), &token).await);
    shutdown.trigger();
}

#[tokio::test]
async fn a_renewal_proof_only_renews_the_identity_of_its_certificate() {
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let tokens = JoinTokens::generate(TRUST_DOMAIN).expect("tokens");
    let ledger_dir = tempfile::tempdir().expect("tempdir");
    let serving = identity_ca_with(&ca, verifier(&tokens, ledger_dir.path()), &shutdown).await;
    let mut client = ca_client(&ca, &serving);

    let (issued, key) = ca.ca.load().issue_local(&TestCa::id("participation"), Some(HOUR)).expect("certificate");
    let mut chain = vec![issued.leaf];
    chain.extend(issued.intermediates);
    let new_key = generate_key().expect("key");

    let own = certificate_request(&TestCa::id("participation"), &new_key).expect("csr");
    let proof = renewal::prove(&chain, &key.serialize_der(), &own).expect("prove");
    let renewed = ask(&mut client, Csr::CsrDer(own), &proof).await.expect("renewal of its own identity");
    assert_eq!(renewed.spiffe_id, TestCa::id("participation").to_string());

    let other = certificate_request(&TestCa::id("gateway"), &new_key).expect("csr");
    let proof = renewal::prove(&chain, &key.serialize_der(), &other).expect("prove");
    let status = ask(&mut client, Csr::CsrDer(other), &proof).await.expect_err("another identity");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(reason(&status), "IDENTITY_NOT_ALLOWED");
    shutdown.trigger();
}
