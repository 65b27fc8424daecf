//! mTLS for every hop: rustls (ring provider), TLS 1.3 only, ALPN `h2`, both sides verify the
//! peer's chain against the current trust bundle and its SPIFFE ID.
//!
//! Certificates and trust anchors are read from the [`WorkloadIdentity`] on every handshake, so a
//! renewal or a trust-bundle change takes effect on the next connection with no restart.
//! Session resumption is off: a resumed session would skip certificate verification and keep
//! an old identity alive past rotation.

pub mod verify;

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, Resumption};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, Error as TlsError, ServerConfig, SignatureScheme,
};

use crate::identity::{SpiffeId, WorkloadIdentity};
use verify::{PeerRole, verify_peer};

/// ALPN protocol of every mesh connection.
pub const ALPN_H2: &[u8] = b"h2";

/// The one crypto provider in the tree: ring, with AES-128-GCM preferred.
///
/// Mesh records are small (one or a few RPCs each), so record crypto is a per-call cost; AES-128
/// runs 10 rounds to AES-256's 14 and is what BoringSSL (Envoy, gRPC core) prefers on CPUs with
/// AES instructions. AES-256-GCM and ChaCha20-Poly1305 stay offered for peers that want them.
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::cipher_suite::{
        TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256,
    };
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384, TLS13_CHACHA20_POLY1305_SHA256];
    Arc::new(provider)
}

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the TLS configuration: {0}")]
pub struct TlsConfigError(#[from] TlsError);

#[derive(Debug)]
struct IdentityResolver(WorkloadIdentity);

impl ResolvesServerCert for IdentityResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.certified_key())
    }
}

impl ResolvesClientCert for IdentityResolver {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.certified_key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn verify_signature13(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    provider: &CryptoProvider,
) -> Result<HandshakeSignatureValid, TlsError> {
    rustls::crypto::verify_tls13_signature(message, cert, dss, &provider.signature_verification_algorithms)
}

/// Verifies client certificates against the identity's current trust bundle.
#[derive(Debug)]
struct MeshClientVerifier {
    identity: WorkloadIdentity,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for MeshClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, TlsError> {
        let anchors = self.identity.trust_anchors();
        verify_peer(end_entity, intermediates, &anchors, self.identity.id().trust_domain(), PeerRole::Client, now)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        Err(TlsError::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_signature13(message, cert, dss, &self.provider)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Verifies a server's chain and that it is the identity we meant to reach.
#[derive(Debug)]
struct MeshServerVerifier {
    identity: Option<WorkloadIdentity>,
    bootstrap_anchors: Vec<rustls::pki_types::TrustAnchor<'static>>,
    trust_domain: String,
    expected: SpiffeId,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for MeshServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let anchors = match &self.identity {
            Some(identity) => identity.trust_anchors(),
            None => Arc::new(self.bootstrap_anchors.clone()),
        };
        let id = verify_peer(end_entity, intermediates, &anchors, &self.trust_domain, PeerRole::Server, now)?;
        if id != self.expected {
            return Err(TlsError::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(Arc::new(
                verify::IdentityError(format!("expected server {} but it presented {id}", self.expected)),
            )))));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        Err(TlsError::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_signature13(message, cert, dss, &self.provider)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Server side of mesh mTLS: presents the identity's certificate, requires and verifies a client
/// certificate.
pub fn server_config(identity: &WorkloadIdentity) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let provider = provider();
    let verifier = Arc::new(MeshClientVerifier { identity: identity.clone(), provider: provider.clone() });
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(IdentityResolver(identity.clone())));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Server side without client authentication: only the identity CA uses it, because workloads
/// that come to it for their first certificate have none yet (their token authenticates them).
pub fn server_config_without_client_auth(identity: &WorkloadIdentity) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(IdentityResolver(identity.clone())));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Client side of mesh mTLS towards a server that must be `expected`.
pub fn client_config(identity: &WorkloadIdentity, expected: &SpiffeId) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = provider();
    let verifier = MeshServerVerifier {
        identity: Some(identity.clone()),
        bootstrap_anchors: Vec::new(),
        trust_domain: identity.id().trust_domain().to_owned(),
        expected: expected.clone(),
        provider: provider.clone(),
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(Arc::new(IdentityResolver(identity.clone())));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// Client side without a client certificate, for a workload's first call to the identity CA:
/// the CA's certificate is verified against bootstrap trust anchors.
pub fn bootstrap_client_config(
    anchors: &[CertificateDer<'static>],
    trust_domain: &str,
    expected: &SpiffeId,
) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = provider();
    let bootstrap_anchors = anchors
        .iter()
        .map(|der| webpki::anchor_from_trusted_cert(der).map(|a| a.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    let verifier = MeshServerVerifier {
        identity: None,
        bootstrap_anchors,
        trust_domain: trust_domain.to_owned(),
        expected: expected.clone(),
        provider: provider.clone(),
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rustls::{CipherSuite, ClientConnection, ServerConnection};

    use super::*;
    use crate::testing::TestCa;

    /// Runs a handshake in memory and returns the suite both ends settled on.
    fn negotiate(client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> Option<CipherSuite> {
        let name = rustls_pki_types::ServerName::try_from("event.kem.svc").ok()?.to_owned();
        let mut client = ClientConnection::new(client, name).ok()?;
        let mut server = ServerConnection::new(server).ok()?;
        for _ in 0..10 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).ok()?;
            }
            server.read_tls(&mut wire.as_slice()).ok()?;
            server.process_new_packets().ok()?;
            let mut wire = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut wire).ok()?;
            }
            client.read_tls(&mut wire.as_slice()).ok()?;
            client.process_new_packets().ok()?;
            if !client.is_handshaking() && !server.is_handshaking() {
                let (c, s) = (client.negotiated_cipher_suite()?, server.negotiated_cipher_suite()?);
                return (c.suite() == s.suite()).then_some(c.suite());
            }
        }
        None
    }

    #[tokio::test]
    async fn mesh_connections_settle_on_aes_128_gcm() {
        let ca = TestCa::new();
        let server = ca.identity("event", Duration::from_secs(600)).await;
        let client = ca.identity("gateway", Duration::from_secs(600)).await;
        let suite = negotiate(
            client_config(&client, &TestCa::id("event")).expect("client config"),
            server_config(&server).expect("server config"),
        );
        assert_eq!(suite, Some(CipherSuite::TLS13_AES_128_GCM_SHA256));
    }
}
