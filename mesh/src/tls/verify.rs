//! Peer certificate verification: chain to a current trust anchor, right usage, one SPIFFE ID.
//!
//! Both directions use the same rules; only the extended key usage differs. Hostname checks do
//! not apply (workload certificates name identities, not hosts): the SPIFFE URI SAN is what is
//! compared, against the expected server identity on the client side and against the
//! authorization policy on the server side.

use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use rustls::{CertificateError, Error as TlsError};
use webpki::{EndEntityCert, KeyUsage};

use crate::identity::SpiffeId;

/// Which side of the connection the peer is.
#[derive(Clone, Copy, Debug)]
pub enum PeerRole {
    /// The peer is a server (we are the client).
    Server,
    /// The peer is a client (we are the server).
    Client,
}

fn map_webpki(error: webpki::Error) -> TlsError {
    use webpki::Error as W;
    let cert_error = match error {
        W::CertExpired { .. } => CertificateError::Expired,
        W::CertNotValidYet { .. } => CertificateError::NotValidYet,
        W::UnknownIssuer => CertificateError::UnknownIssuer,
        W::InvalidSignatureForPublicKey | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => {
            CertificateError::BadSignature
        }
        W::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        W::BadDer | W::BadDerTime => CertificateError::BadEncoding,
        other => CertificateError::Other(rustls::OtherError(std::sync::Arc::new(other))),
    };
    TlsError::InvalidCertificate(cert_error)
}

/// The single SPIFFE URI SAN of a certificate.
pub fn spiffe_id_of(cert: &CertificateDer<'_>) -> Result<SpiffeId, TlsError> {
    use x509_parser::extensions::GeneralName;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|_| TlsError::InvalidCertificate(CertificateError::BadEncoding))?;
    let san = parsed
        .subject_alternative_name()
        .map_err(|_| TlsError::InvalidCertificate(CertificateError::BadEncoding))?
        .ok_or_else(|| invalid_identity("the certificate has no subject alternative names"))?;
    let mut ids = san.value.general_names.iter().filter_map(|name| match name {
        GeneralName::URI(uri) if uri.starts_with("spiffe://") => Some(*uri),
        _ => None,
    });
    let (Some(uri), None) = (ids.next(), ids.next()) else {
        return Err(invalid_identity("the certificate must carry exactly one SPIFFE URI SAN"));
    };
    uri.parse().map_err(|e: crate::identity::SpiffeIdError| invalid_identity(&e.to_string()))
}

/// The serial number of a certificate (for rotation bookkeeping and logs).
pub fn serial_of(cert: &CertificateDer<'_>) -> Vec<u8> {
    x509_parser::parse_x509_certificate(cert.as_ref()).map(|(_, c)| c.raw_serial().to_vec()).unwrap_or_default()
}

fn invalid_identity(reason: &str) -> TlsError {
    TlsError::InvalidCertificate(CertificateError::Other(rustls::OtherError(std::sync::Arc::new(IdentityError(
        reason.to_owned(),
    )))))
}

/// A peer presented a certificate whose identity is unacceptable.
#[derive(Debug, thiserror::Error)]
#[error("peer identity rejected: {0}")]
pub struct IdentityError(pub String);

/// Verifies a peer chain against `anchors` at `now` and returns the peer's SPIFFE ID, which must be
/// in `trust_domain`.
pub fn verify_peer(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    anchors: &[TrustAnchor<'static>],
    trust_domain: &str,
    role: PeerRole,
    now: UnixTime,
) -> Result<SpiffeId, TlsError> {
    let cert = EndEntityCert::try_from(end_entity).map_err(map_webpki)?;
    let usage = match role {
        PeerRole::Server => KeyUsage::server_auth(),
        PeerRole::Client => KeyUsage::client_auth(),
    };
    cert.verify_for_usage(webpki::ALL_VERIFICATION_ALGS, anchors, intermediates, now, usage, None, None)
        .map_err(map_webpki)?;
    let id = spiffe_id_of(end_entity)?;
    if id.trust_domain() != trust_domain {
        return Err(invalid_identity(&format!("{id} is not in trust domain {trust_domain}")));
    }
    Ok(id)
}

/// Why a handshake failed, as a short stable label for metrics and logs.
pub fn failure_reason(error: &std::io::Error) -> &'static str {
    let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<TlsError>()) else {
        return match error.kind() {
            std::io::ErrorKind::TimedOut => "timeout",
            std::io::ErrorKind::UnexpectedEof => "eof",
            _ if error.to_string().contains("corrupt message") => "not_tls",
            _ => "io",
        };
    };
    match tls {
        TlsError::InvalidCertificate(CertificateError::Expired) => "expired",
        TlsError::InvalidCertificate(CertificateError::NotValidYet) => "not_yet_valid",
        TlsError::InvalidCertificate(CertificateError::UnknownIssuer) => "unknown_issuer",
        TlsError::InvalidCertificate(CertificateError::BadSignature) => "bad_signature",
        TlsError::InvalidCertificate(CertificateError::InvalidPurpose) => "wrong_usage",
        TlsError::InvalidCertificate(_) => "bad_identity",
        TlsError::NoCertificatesPresented => "no_client_certificate",
        TlsError::InvalidMessage(_) => "not_tls",
        TlsError::PeerIncompatible(_) => "incompatible",
        TlsError::NoApplicationProtocol => "no_alpn",
        TlsError::AlertReceived(_) => "alert_received",
        _ => "other",
    }
}
