//! Renewal proofs: how a workload that holds a valid certificate renews it without presenting its
//! bootstrap credential again.
//!
//! Join tokens are single-use, yet a workload renews every ~17 hours (70% of 24 h) for as long as
//! it runs. Re-presenting the join token would either spend it at the first renewal or force every
//! token to be reusable. Instead the workload proves it is the holder of its current certificate,
//! as SPIRE agents do with their SVID:
//!
//! ```text
//! kemrn1.<base64url(leaf DER)>[.<base64url(intermediate DER)>…].<base64url(ECDSA P-256 signature)>
//! ```
//!
//! The signature, by the current certificate's private key, covers a fixed context string and the
//! new CSR's DER. The CA accepts the proof when the chain verifies against its current trust bundle
//! for client authentication, the certificate has not expired, and the signature checks out; it
//! then grants the certificate's own SPIFFE ID, and `CertificateAuthority::issue` still requires
//! the CSR to ask for exactly that. The proof is bound to one CSR, whose key only the workload
//! holds: a copy of it is worth nothing to anyone else, so it needs no ledger.
//!
//! Why a proof in the request rather than mutual TLS to the CA: the CA's listener must accept
//! clients without a certificate (bootstrapping ones), and the proof keeps renewal inside the
//! identity module with one code path for the CA's gRPC API whatever the transport does.
//!
//! What this means for an operator: a workload whose certificate expired (the CA was unreachable
//! for a whole lifetime) can no longer renew with it and falls back to its bootstrap token; a
//! single-use token is spent by then, so it needs a new one. That is the price of single-use
//! tokens, and the reason `kem up`'s own tokens are reusable.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, UnparsedPublicKey};
use rustls_pki_types::{CertificateDer, UnixTime};

use super::{CredentialError, CredentialKind, Grant, MAX_TOKEN_LEN, Redemption};
use crate::tls::verify::{PeerRole, verify_peer};

/// Every renewal proof starts with this (format version 1).
pub const PREFIX: &str = "kemrn1.";

/// Domain separation: a signature made for a renewal can never be mistaken for one made for
/// anything else with the same key (a TLS handshake signs other, structured, content).
const CONTEXT: &[u8] = b"kem identity renewal v1\0";

/// Leaf plus intermediates: the mesh has one issuer under the anchor, so 4 is generous.
const MAX_CHAIN_LEN: usize = 4;

/// Why a workload could not build a renewal proof.
#[derive(Debug, thiserror::Error)]
pub enum RenewalProofError {
    /// The key is not an ECDSA P-256 PKCS#8 key.
    #[error("the current workload key cannot sign a renewal proof: {0}; only ECDSA P-256 (PKCS#8) keys can")]
    Key(ring::error::KeyRejected),
    /// The signing operation failed.
    #[error("signing the renewal proof failed")]
    Signing(ring::error::Unspecified),
    /// No certificate to prove possession of.
    #[error("a renewal proof needs the current certificate chain, and it is empty")]
    EmptyChain,
}

fn message(csr_der: &[u8]) -> Vec<u8> {
    [CONTEXT, csr_der].concat()
}

fn rejected(reason: impl Into<String>) -> CredentialError {
    CredentialError::Rejected { reason: reason.into() }
}

fn malformed(reason: impl Into<String>) -> CredentialError {
    CredentialError::Malformed { reason: format!("renewal proof: {}", reason.into()) }
}

/// Whether `token` is a renewal proof (rather than a bootstrap credential).
pub fn is_renewal_proof(token: &str) -> bool {
    token.trim_start().starts_with(PREFIX)
}

/// Builds the proof that the holder of `chain` (leaf first) and its private key `key_pkcs8` asks
/// for the certificate in `csr_der`.
pub fn prove(chain: &[CertificateDer<'_>], key_pkcs8: &[u8], csr_der: &[u8]) -> Result<String, RenewalProofError> {
    if chain.is_empty() {
        return Err(RenewalProofError::EmptyChain);
    }
    let rng = SystemRandom::new();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, key_pkcs8, &rng).map_err(RenewalProofError::Key)?;
    let signature = key.sign(&rng, &message(csr_der)).map_err(RenewalProofError::Signing)?;
    let mut proof = String::from(PREFIX);
    for cert in chain.iter().take(MAX_CHAIN_LEN) {
        proof.push_str(&URL_SAFE_NO_PAD.encode(cert.as_ref()));
        proof.push('.');
    }
    proof.push_str(&URL_SAFE_NO_PAD.encode(signature.as_ref()));
    Ok(proof)
}

/// Verifies a renewal proof for `csr_der` against the CA's current `trust_anchors` at `now`, and
/// returns the identity of the certificate it proves possession of.
pub fn verify(
    proof: &str,
    csr_der: &[u8],
    trust_anchors: &[CertificateDer<'static>],
    trust_domain: &str,
    now: SystemTime,
) -> Result<Grant, CredentialError> {
    if proof.len() > MAX_TOKEN_LEN {
        return Err(malformed(format!("it is {} bytes long, more than the {MAX_TOKEN_LEN} accepted", proof.len())));
    }
    let rest =
        proof.trim().strip_prefix(PREFIX).ok_or_else(|| malformed(format!("it does not start with {PREFIX:?}")))?;
    let segments: Vec<&str> = rest.split('.').collect();
    let Some((signature, chain)) = segments.split_last() else {
        return Err(malformed("it is empty"));
    };
    if chain.is_empty() || chain.len() > MAX_CHAIN_LEN {
        return Err(malformed(format!("it carries {} certificates; 1 to {MAX_CHAIN_LEN} are expected", chain.len())));
    }
    let decode = |segment: &str, what: &str| {
        URL_SAFE_NO_PAD.decode(segment).map_err(|e| malformed(format!("the {what} is not base64url: {e}")))
    };
    let signature = decode(signature, "signature")?;
    let chain = chain
        .iter()
        .map(|segment| decode(segment, "certificate").map(CertificateDer::from))
        .collect::<Result<Vec<_>, _>>()?;
    let (leaf, intermediates) = chain.split_first().ok_or_else(|| malformed("it carries no certificate"))?;

    // The certificate: issued by this CA's current bundle, for client authentication, unexpired.
    let anchors: Vec<_> = trust_anchors
        .iter()
        .filter_map(|der| webpki::anchor_from_trusted_cert(der).ok().map(|a| a.to_owned()))
        .collect();
    let at = UnixTime::since_unix_epoch(now.duration_since(UNIX_EPOCH).unwrap_or_default());
    let identity = verify_peer(leaf, intermediates, &anchors, trust_domain, PeerRole::Client, at).map_err(|e| {
        rejected(format!(
            "the certificate presented for renewal is not valid here ({e}); bootstrap again with a join token or \
             ServiceAccount token"
        ))
    })?;

    // Possession of its key, for exactly this CSR.
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| malformed(format!("the certificate cannot be parsed: {e}")))?;
    let spki = parsed.public_key();
    let p256 = spki.algorithm.algorithm == x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
        && spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok())
            == Some(x509_parser::oid_registry::OID_EC_P256);
    if !p256 {
        return Err(rejected(format!(
            "the certificate of {identity} does not carry an ECDSA P-256 key, so it cannot renew; bootstrap again"
        )));
    }
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, spki.subject_public_key.data.as_ref())
        .verify(&message(csr_der), &signature)
        .map_err(|_| {
            rejected(format!("the renewal proof for {identity} was not made with its certificate's key for this CSR"))
        })?;
    let not_after = u64::try_from(parsed.validity().not_after.timestamp()).unwrap_or(0);
    Ok(Grant {
        identity,
        method: CredentialKind::Certificate,
        expires_at: UNIX_EPOCH.checked_add(Duration::from_secs(not_after)),
        redemption: Redemption::Repeatable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SpiffeId;
    use crate::identity::ca::{CaPolicy, CertificateAuthority, certificate_request, generate_key};

    fn participation() -> SpiffeId {
        SpiffeId::new("kem.test", "kem", "participation").expect("valid id")
    }

    struct Holder {
        ca: CertificateAuthority,
        chain: Vec<CertificateDer<'static>>,
        key: Vec<u8>,
    }

    fn holder() -> Holder {
        let (ca, _) = CertificateAuthority::generate("kem.test", CaPolicy::default()).expect("ca");
        let (issued, key) = ca.issue_local(&participation(), Some(Duration::from_secs(600))).expect("issued");
        let mut chain = vec![issued.leaf];
        chain.extend(issued.intermediates);
        Holder { ca, chain, key: key.serialize_der() }
    }

    fn new_csr() -> Vec<u8> {
        certificate_request(&participation(), &generate_key().expect("key")).expect("csr")
    }

    fn check(h: &Holder, proof: &str, csr: &[u8], now: SystemTime) -> Result<Grant, CredentialError> {
        verify(proof, csr, h.ca.trust_anchors(), "kem.test", now)
    }

    #[test]
    fn the_holder_of_a_valid_certificate_renews_its_own_identity() {
        let h = holder();
        let csr = new_csr();
        let proof = prove(&h.chain, &h.key, &csr).expect("prove");
        let grant = check(&h, &proof, &csr, SystemTime::now()).expect("valid proof");
        assert_eq!(grant.identity, participation());
        assert_eq!(grant.method, CredentialKind::Certificate);
        assert_eq!(grant.redemption, Redemption::Repeatable);
        assert!(is_renewal_proof(&proof));
        // The CA then signs the new CSR for that identity.
        h.ca.issue(&csr, &grant.identity, None).expect("renewed");
    }

    #[test]
    fn a_proof_is_bound_to_its_csr() {
        let h = holder();
        let csr = new_csr();
        let proof = prove(&h.chain, &h.key, &csr).expect("prove");
        let err = check(&h, &proof, &new_csr(), SystemTime::now()).expect_err("another CSR");
        assert!(matches!(&err, CredentialError::Rejected { reason } if reason.contains("this CSR")), "{err:?}");
    }

    #[test]
    fn another_key_or_another_ca_or_an_expired_certificate_is_refused() {
        let h = holder();
        let csr = new_csr();
        let stranger = generate_key().expect("key").serialize_der();
        let err = check(&h, &prove(&h.chain, &stranger, &csr).expect("prove"), &csr, SystemTime::now())
            .expect_err("signed with a key that is not the certificate's");
        assert!(matches!(err, CredentialError::Rejected { .. }), "{err:?}");

        let other = holder();
        let proof = prove(&other.chain, &other.key, &csr).expect("prove");
        let err = check(&h, &proof, &csr, SystemTime::now()).expect_err("issued by another CA");
        assert!(matches!(&err, CredentialError::Rejected { reason } if reason.contains("not valid here")), "{err:?}");

        let proof = prove(&h.chain, &h.key, &csr).expect("prove");
        let err = check(&h, &proof, &csr, SystemTime::now() + Duration::from_secs(3600)).expect_err("expired");
        assert!(matches!(err, CredentialError::Rejected { .. }), "{err:?}");
        assert_eq!(err.code(), tonic::Code::Unauthenticated);
    }

    #[test]
    fn garbage_is_malformed() {
        let h = holder();
        let csr = new_csr();
        let huge = format!("{PREFIX}{}.sig", "A".repeat(MAX_TOKEN_LEN));
        for bad in ["kemrn1.", "kemrn1.sig", "kemrn1.!!.sig", "kemrn1.a.b.c.d.e.f", "kemjt2.a.b", huge.as_str()] {
            let err = check(&h, bad, &csr, SystemTime::now()).expect_err("garbage");
            assert!(matches!(err, CredentialError::Malformed { .. }), "{bad:?} gave {err:?}");
        }
        assert!(matches!(prove(&[], &h.key, &csr), Err(RenewalProofError::EmptyChain)));
    }
}
