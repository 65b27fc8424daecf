//! Interop: a Python `grpcio` client (BoringSSL, a completely separate TLS and HTTP/2 stack) with a
//! certificate from our CA calls a kem server over mTLS; without a certificate it is refused.
//! `scripts/test` installs grpcio; if it is missing this test fails and says so.

use std::process::Command;

use kem_mesh::Shutdown;
use kem_mesh::identity::ca::to_pem;
use kem_mesh::testing::TestCa;

use crate::support::{HOUR, echo_policy, echo_server};

const CLIENT: &str = r#"
import sys, grpc
addr, ca, cert, key, target = sys.argv[1:6]
root = open(ca, 'rb').read()
if cert == '-':
    creds = grpc.ssl_channel_credentials(root_certificates=root)
else:
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=open(key, 'rb').read(),
                                         certificate_chain=open(cert, 'rb').read())
channel = grpc.secure_channel(addr, creds, options=[('grpc.ssl_target_name_override', target)])
check = channel.unary_unary('/grpc.health.v1.Health/Check', request_serializer=lambda b: b,
                            response_deserializer=lambda b: b)
try:
    print('OK', check(b'', timeout=10).hex())
except grpc.RpcError as e:
    print('ERR', e.code().name)
"#;

fn python_has_grpcio() -> bool {
    Command::new("python3").args(["-c", "import grpc"]).status().map(|s| s.success()).unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_client_with_our_certificate_gets_through_and_without_one_does_not() {
    assert!(
        python_has_grpcio(),
        "python3 with grpcio is required for the interop test: run scripts/test (it installs it) or `python3 -m pip install grpcio`"
    );
    let ca = TestCa::new();
    let shutdown = Shutdown::new();
    let server = echo_server(&ca.identity("event", HOUR).await, echo_policy(), &shutdown).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let (issued, key) = ca.ca.load().issue_local(&TestCa::id("participation"), Some(HOUR)).expect("client cert");
    let chain: String = std::iter::once(&issued.leaf).chain(issued.intermediates.iter()).map(to_pem).collect();
    let bundle: String = issued.trust_anchors.iter().map(to_pem).collect();
    let (ca_file, cert_file, key_file) =
        (dir.path().join("ca.pem"), dir.path().join("client.pem"), dir.path().join("client.key"));
    std::fs::write(&ca_file, bundle).expect("write ca");
    std::fs::write(&cert_file, chain).expect("write cert");
    std::fs::write(&key_file, key.serialize_pem()).expect("write key");

    let run = |cert: &std::path::Path| {
        let out = Command::new("python3")
            .args(["-c", CLIENT, &server.addr.to_string()])
            .arg(&ca_file)
            .arg(cert)
            .arg(&key_file)
            .arg(TestCa::id("event").dns_name())
            .output()
            .expect("run python");
        assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // The python client bounds itself (timeout=10); block_in_place keeps the server's runtime going.
    let with_cert = tokio::task::block_in_place(|| run(&cert_file));
    // grpc.health.v1.HealthCheckResponse{status: SERVING} encodes as 08 01.
    assert_eq!(with_cert, "OK 0801");
    let without = tokio::task::block_in_place(|| run(std::path::Path::new("-")));
    assert_eq!(without, "ERR UNAVAILABLE", "no client certificate → refused at the handshake");
    shutdown.trigger();
}
