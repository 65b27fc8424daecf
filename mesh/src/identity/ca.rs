//! The identity CA: trust anchor → issuer → workload leaf certificates.
//!
//! The CA only ever sees a workload's CSR, never its private key. It signs a leaf for exactly the
//! identity the bootstrap credential grants; the CSR must ask for that identity and nothing else.
//! Everything else in the CSR (validity, CA flag, key usages) is ignored: the CA decides.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer, pem::PemObject};

use super::spiffe::SpiffeId;

/// Why the CA could not be loaded or could not issue.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The CSR is not a valid PKCS#10 request (or its signature does not verify).
    #[error("the certificate signing request is invalid: {0}")]
    InvalidCsr(String),
    /// The CSR carries a public key of a type or curve the contract does not allow. Workload
    /// certificates are ECDSA P-256 only (DESIGN.md, Mesh → Identity): every peer's TLS stack and
    /// every renewal proof assume it, and a CA that signs whatever it is given would let one
    /// workload pick a weaker or unexpected algorithm for the whole mesh.
    #[error(
        "the CSR's public key is {received}; this CA accepts only {ACCEPTED_KEY}: generate the workload key with \
         P-256 (kem does this itself; other clients must too)"
    )]
    UnsupportedKey {
        /// What the CSR's SubjectPublicKeyInfo carries, e.g. "RSA 2048-bit (rsaEncryption)".
        received: String,
    },
    /// The CSR asks for an identity other than the one the credential grants.
    #[error("the CSR asks for {requested} but the credential grants {granted}")]
    IdentityMismatch {
        /// What the CSR's SANs name.
        requested: String,
        /// What the credential grants.
        granted: SpiffeId,
    },
    /// The granted identity belongs to another trust domain.
    #[error("{identity} is outside this CA's trust domain {trust_domain}")]
    ForeignTrustDomain {
        /// The identity.
        identity: SpiffeId,
        /// The CA's trust domain.
        trust_domain: String,
    },
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(#[from] rcgen::Error),
    /// CA material could not be read or written.
    #[error("CA material at {path}: {source}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// CA material is present but unusable.
    #[error("CA material is unusable: {0}")]
    Material(String),
}

/// The only key type workload certificates may carry, as named in refusals.
pub const ACCEPTED_KEY: &str = "ECDSA P-256 keys (id-ecPublicKey on the named curve prime256v1 / secp256r1)";

/// Checks that a CSR's SubjectPublicKeyInfo is an uncompressed ECDSA P-256 key.
///
/// This reads the algorithm OID and the curve parameter themselves rather than relying on what
/// rcgen manages to parse: rcgen happily carries RSA, P-384 or Ed25519 keys into a certificate.
/// The point is only checked for shape here; the CSR's signature, verified when rcgen parses it,
/// proves the point is on the curve and that the requester holds its private key.
fn check_public_key(csr_der: &[u8]) -> Result<(), CaError> {
    use x509_parser::oid_registry::{
        OID_EC_P256, OID_KEY_TYPE_DSA, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
        OID_PKCS1_RSAENCRYPTION, OID_PKCS1_RSASSAPSS, OID_SIG_ED448, OID_SIG_ED25519,
    };
    use x509_parser::prelude::FromDer as _;
    use x509_parser::public_key::PublicKey;

    let (_, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(csr_der)
        .map_err(|e| CaError::InvalidCsr(format!("not a DER PKCS#10 request: {e}")))?;
    let spki = &csr.certification_request_info.subject_pki;
    let algorithm = &spki.algorithm.algorithm;
    let unsupported = |received: String| Err(CaError::UnsupportedKey { received });
    if *algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
        let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
        let Some(curve) = curve else {
            // Explicit curve parameters (or none) instead of a named curve: RFC 5480 forbids both.
            return unsupported("an EC key without a named curve (explicit or missing curve parameters)".to_owned());
        };
        if curve == OID_EC_P256 {
            let point = spki.subject_public_key.data.as_ref();
            // SEC 1 uncompressed form: 0x04 || X (32 bytes) || Y (32 bytes).
            if point.len() != 65 || point[0] != 0x04 {
                return unsupported(format!(
                    "a P-256 key whose point is not in uncompressed form ({} bytes{})",
                    point.len(),
                    point.first().map(|b| format!(", leading byte {b:#04x}")).unwrap_or_default()
                ));
            }
            return Ok(());
        }
        let name = if curve == OID_NIST_EC_P384 {
            "P-384 (secp384r1)".to_owned()
        } else if curve == OID_NIST_EC_P521 {
            "P-521 (secp521r1)".to_owned()
        } else {
            format!("the curve with OID {curve}")
        };
        return unsupported(format!("an ECDSA key on {name}"));
    }
    let received = if *algorithm == OID_PKCS1_RSAENCRYPTION || *algorithm == OID_PKCS1_RSASSAPSS {
        match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => format!("an RSA {}-bit key", rsa.key_size()),
            _ => "an RSA key".to_owned(),
        }
    } else if *algorithm == OID_SIG_ED25519 {
        "an Ed25519 key".to_owned()
    } else if *algorithm == OID_SIG_ED448 {
        "an Ed448 key".to_owned()
    } else if *algorithm == OID_KEY_TYPE_DSA {
        "a DSA key".to_owned()
    } else {
        format!("a key of unknown algorithm (OID {algorithm})")
    };
    unsupported(received)
}

/// Lifetimes and tolerances of issued certificates.
#[derive(Debug, Clone)]
pub struct CaPolicy {
    /// Default leaf lifetime (24 h).
    pub leaf_lifetime: Duration,
    /// Longest lifetime a workload may request.
    pub max_leaf_lifetime: Duration,
    /// Shortest lifetime (tests use seconds).
    pub min_leaf_lifetime: Duration,
    /// `not_before` is back-dated by this much so peers with a slightly slow clock accept it.
    pub clock_skew: Duration,
}

impl Default for CaPolicy {
    fn default() -> Self {
        CaPolicy {
            leaf_lifetime: Duration::from_secs(24 * 3600),
            max_leaf_lifetime: Duration::from_secs(7 * 24 * 3600),
            min_leaf_lifetime: Duration::from_secs(1),
            clock_skew: Duration::from_secs(60),
        }
    }
}

/// A certificate issued to a workload.
#[derive(Debug, Clone)]
pub struct IssuedCertificate {
    /// The identity it carries.
    pub identity: SpiffeId,
    /// Leaf certificate, DER.
    pub leaf: CertificateDer<'static>,
    /// Intermediates between the leaf and a trust anchor (the issuer), DER.
    pub intermediates: Vec<CertificateDer<'static>>,
    /// The trust bundle: every anchor peers should currently trust.
    pub trust_anchors: Vec<CertificateDer<'static>>,
    /// Start of validity (back-dated by the clock-skew allowance).
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// Serial number, big-endian bytes.
    pub serial: Vec<u8>,
}

/// PEM of a certificate.
pub fn to_pem(der: &CertificateDer<'_>) -> String {
    pem_block("CERTIFICATE", der.as_ref())
}

fn pem_block(tag: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {tag}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {tag}-----\n"));
    out
}

/// Parses every certificate in a PEM bundle.
pub fn certs_from_pem(pem: &str) -> Result<Vec<CertificateDer<'static>>, CaError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| CaError::Material(format!("bad PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(CaError::Material("no certificate in PEM input".into()));
    }
    Ok(certs)
}

fn random_serial() -> SerialNumber {
    use rand::Rng;
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[0] &= 0x7f; // positive INTEGER
    bytes[0] |= 0x01; // no leading zero byte, fixed length
    SerialNumber::from_slice(&bytes)
}

fn ca_params(common_name: &str, validity: Duration, path_len: u8) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "kem");
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + validity;
    params.serial_number = Some(random_serial());
    params.use_authority_key_identifier_extension = true;
    params
}

/// A trust anchor: the long-lived root, kept offline in production.
pub struct TrustAnchor {
    /// The self-signed anchor certificate.
    pub cert: CertificateDer<'static>,
    signer: Issuer<'static, KeyPair>,
}

impl TrustAnchor {
    /// Generates a new anchor valid for `validity` (dev default: 10 years).
    pub fn generate(trust_domain: &str, validity: Duration) -> Result<TrustAnchor, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = ca_params(&format!("kem trust anchor {trust_domain}"), validity, 1);
        let cert = params.self_signed(&key)?.der().clone();
        Ok(TrustAnchor { cert, signer: Issuer::new(params, key) })
    }

    /// Loads an anchor certificate and key from PEM.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<TrustAnchor, CaError> {
        let cert = certs_from_pem(cert_pem)?.remove(0);
        let key = KeyPair::from_pem(key_pem).map_err(|e| CaError::Material(format!("bad anchor key: {e}")))?;
        let signer = Issuer::from_ca_cert_der(&cert, key)
            .map_err(|e| CaError::Material(format!("bad anchor certificate: {e}")))?;
        Ok(TrustAnchor { cert, signer })
    }

    /// The anchor key in PEM (to persist it).
    pub fn key_pem(&self) -> String {
        self.signer.key().serialize_pem()
    }

    /// Signs a new intermediate issuer valid for `validity` (dev default: 1 year).
    pub fn issue_issuer(&self, trust_domain: &str, validity: Duration) -> Result<IssuerKey, CaError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = ca_params(&format!("kem identity issuer {trust_domain}"), validity, 0);
        let cert = params.signed_by(&key, &self.signer)?.der().clone();
        Ok(IssuerKey { cert, chain: Vec::new(), signer: Issuer::new(params, key) })
    }
}

/// The issuer: an intermediate CA that signs workload leaves.
pub struct IssuerKey {
    /// The issuer certificate.
    pub cert: CertificateDer<'static>,
    /// Certificates between the issuer and its anchor (usually none).
    pub chain: Vec<CertificateDer<'static>>,
    signer: Issuer<'static, KeyPair>,
}

impl IssuerKey {
    /// Loads an issuer certificate (optionally followed by its chain) and key from PEM.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<IssuerKey, CaError> {
        let mut certs = certs_from_pem(cert_pem)?;
        let cert = certs.remove(0);
        let key = KeyPair::from_pem(key_pem).map_err(|e| CaError::Material(format!("bad issuer key: {e}")))?;
        let signer = Issuer::from_ca_cert_der(&cert, key)
            .map_err(|e| CaError::Material(format!("bad issuer certificate: {e}")))?;
        Ok(IssuerKey { cert, chain: certs, signer })
    }

    /// The issuer key in PEM (to persist it).
    pub fn key_pem(&self) -> String {
        self.signer.key().serialize_pem()
    }
}

/// The certificate authority of one trust domain.
pub struct CertificateAuthority {
    trust_domain: String,
    issuer: IssuerKey,
    trust_anchors: Vec<CertificateDer<'static>>,
    policy: CaPolicy,
}

/// File names of persisted CA material inside a directory.
pub mod files {
    /// Trust-anchor certificate (public; distribute to every workload).
    pub const ANCHOR_CERT: &str = "anchor.crt";
    /// Trust-anchor key (dev only; keep offline in production).
    pub const ANCHOR_KEY: &str = "anchor.key";
    /// Issuer certificate.
    pub const ISSUER_CERT: &str = "issuer.crt";
    /// Issuer key.
    pub const ISSUER_KEY: &str = "issuer.key";
    /// The trust bundle served to workloads (one or more anchors).
    pub const TRUST_BUNDLE: &str = "trust-bundle.pem";
}

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|source| CaError::Io { path: path.to_owned(), source })
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), CaError> {
    std::fs::write(path, contents).map_err(|source| CaError::Io { path: path.to_owned(), source })?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|source| CaError::Io { path: path.to_owned(), source })?;
    }
    let _ = private;
    Ok(())
}

impl CertificateAuthority {
    /// A CA from an issuer and the trust bundle workloads should use.
    pub fn new(
        trust_domain: &str,
        issuer: IssuerKey,
        trust_anchors: Vec<CertificateDer<'static>>,
        policy: CaPolicy,
    ) -> CertificateAuthority {
        CertificateAuthority { trust_domain: trust_domain.to_owned(), issuer, trust_anchors, policy }
    }

    /// A fresh anchor and issuer in memory (tests, and the first start of a dev CA).
    pub fn generate(trust_domain: &str, policy: CaPolicy) -> Result<(CertificateAuthority, TrustAnchor), CaError> {
        let anchor = TrustAnchor::generate(trust_domain, Duration::from_secs(10 * 365 * 24 * 3600))?;
        let issuer = anchor.issue_issuer(trust_domain, Duration::from_secs(365 * 24 * 3600))?;
        let bundle = vec![anchor.cert.clone()];
        Ok((CertificateAuthority::new(trust_domain, issuer, bundle, policy), anchor))
    }

    /// Production: loads the issuer and trust bundle from files (a Kubernetes secret or a Key
    /// Vault CSI mount); the anchor key is not needed and should not be present.
    pub fn load(dir: &Path, trust_domain: &str, policy: CaPolicy) -> Result<CertificateAuthority, CaError> {
        let issuer = IssuerKey::from_pem(&read(&dir.join(files::ISSUER_CERT))?, &read(&dir.join(files::ISSUER_KEY))?)?;
        let bundle_path = if dir.join(files::TRUST_BUNDLE).exists() { files::TRUST_BUNDLE } else { files::ANCHOR_CERT };
        let anchors = certs_from_pem(&read(&dir.join(bundle_path))?)?;
        Ok(CertificateAuthority::new(trust_domain, issuer, anchors, policy))
    }

    /// Dev: loads the CA from `dir`, generating and persisting an anchor and issuer on first start.
    pub fn load_or_generate(dir: &Path, trust_domain: &str, policy: CaPolicy) -> Result<CertificateAuthority, CaError> {
        if dir.join(files::ISSUER_KEY).exists() {
            return Self::load(dir, trust_domain, policy);
        }
        std::fs::create_dir_all(dir).map_err(|source| CaError::Io { path: dir.to_owned(), source })?;
        let (ca, anchor) = Self::generate(trust_domain, policy)?;
        write(&dir.join(files::ANCHOR_CERT), &to_pem(&anchor.cert), false)?;
        write(&dir.join(files::ANCHOR_KEY), &anchor.key_pem(), true)?;
        write(&dir.join(files::ISSUER_CERT), &to_pem(&ca.issuer.cert), false)?;
        write(&dir.join(files::ISSUER_KEY), &ca.issuer.key_pem(), true)?;
        write(&dir.join(files::TRUST_BUNDLE), &ca.trust_bundle_pem(), false)?;
        tracing::info!(dir = %dir.display(), %trust_domain, "generated a development trust anchor and issuer");
        Ok(ca)
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The issuing policy.
    pub fn policy(&self) -> &CaPolicy {
        &self.policy
    }

    /// The issuer certificate.
    pub fn issuer_cert(&self) -> &CertificateDer<'static> {
        &self.issuer.cert
    }

    /// The issuer key in PEM (for re-wrapping the issuer with a new bundle).
    pub fn issuer_key_pem(&self) -> String {
        self.issuer.key_pem()
    }

    /// The trust bundle.
    pub fn trust_anchors(&self) -> &[CertificateDer<'static>] {
        &self.trust_anchors
    }

    /// The trust bundle as concatenated PEM.
    pub fn trust_bundle_pem(&self) -> String {
        self.trust_anchors.iter().map(to_pem).collect()
    }

    fn lifetime(&self, requested: Option<Duration>) -> Duration {
        requested
            .unwrap_or(self.policy.leaf_lifetime)
            .clamp(self.policy.min_leaf_lifetime, self.policy.max_leaf_lifetime)
    }

    /// Builds the leaf parameters for `identity` (SPIFFE URI SAN plus its DNS form).
    fn leaf_params(&self, identity: &SpiffeId, lifetime: Duration) -> Result<CertificateParams, CaError> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, identity.dns_name());
        params.distinguished_name = dn;
        let uri = identity.uri().try_into().map_err(|e| CaError::Material(format!("identity URI: {e:?}")))?;
        let dns = identity.dns_name().try_into().map_err(|e| CaError::Material(format!("identity DNS name: {e:?}")))?;
        params.subject_alt_names = vec![SanType::URI(uri), SanType::DnsName(dns)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        // X.509 times have one-second resolution: truncate here so the validity the workload
        // schedules its renewal from is exactly the validity peers check.
        let now =
            time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        params.not_before = now - self.policy.clock_skew;
        params.not_after = now + Duration::from_secs(lifetime.as_secs().max(1));
        params.serial_number = Some(random_serial());
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }

    fn finish(
        &self,
        identity: &SpiffeId,
        params: &CertificateParams,
        leaf: CertificateDer<'static>,
    ) -> IssuedCertificate {
        let mut intermediates = vec![self.issuer.cert.clone()];
        intermediates.extend(self.issuer.chain.iter().cloned());
        IssuedCertificate {
            identity: identity.clone(),
            leaf,
            intermediates,
            trust_anchors: self.trust_anchors.clone(),
            not_before: params.not_before.into(),
            not_after: params.not_after.into(),
            serial: params.serial_number.as_ref().map(|s| s.to_bytes()).unwrap_or_default(),
        }
    }

    fn check_domain(&self, identity: &SpiffeId) -> Result<(), CaError> {
        if identity.trust_domain() != self.trust_domain {
            return Err(CaError::ForeignTrustDomain {
                identity: identity.clone(),
                trust_domain: self.trust_domain.clone(),
            });
        }
        Ok(())
    }

    /// Signs a leaf for `granted` from a workload's CSR (DER). The CSR's signature proves the
    /// workload holds the private key; its SANs must name `granted` and nothing else.
    pub fn issue(
        &self,
        csr_der: &[u8],
        granted: &SpiffeId,
        requested_lifetime: Option<Duration>,
    ) -> Result<IssuedCertificate, CaError> {
        self.check_domain(granted)?;
        check_public_key(csr_der)?;
        let csr = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
            .map_err(|e| CaError::InvalidCsr(e.to_string()))?;
        let requested: Vec<String> = csr
            .params
            .subject_alt_names
            .iter()
            .map(|san| match san {
                SanType::URI(uri) => uri.as_str().to_owned(),
                SanType::DnsName(dns) => format!("dns:{}", dns.as_str()),
                other => format!("{other:?}"),
            })
            .collect();
        let uris: Vec<&String> = requested.iter().filter(|s| s.starts_with("spiffe://")).collect();
        let others_ok =
            requested.iter().all(|s| s.starts_with("spiffe://") || *s == format!("dns:{}", granted.dns_name()));
        if uris.len() != 1 || *uris[0] != granted.uri() || !others_ok {
            return Err(CaError::IdentityMismatch { requested: requested.join(", "), granted: granted.clone() });
        }
        let params = self.leaf_params(granted, self.lifetime(requested_lifetime))?;
        let leaf = params.signed_by(&csr.public_key, &self.issuer.signer)?.der().clone();
        Ok(self.finish(granted, &params, leaf))
    }

    /// Issues a leaf and key in-process for the CA's own serving identity. Only the CA uses this:
    /// it is its own workload, so no key ever crosses a process boundary.
    pub fn issue_local(
        &self,
        identity: &SpiffeId,
        lifetime: Option<Duration>,
    ) -> Result<(IssuedCertificate, KeyPair), CaError> {
        self.check_domain(identity)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let params = self.leaf_params(identity, self.lifetime(lifetime))?;
        let leaf = params.signed_by(&key, &self.issuer.signer)?.der().clone();
        Ok((self.finish(identity, &params, leaf), key))
    }
}

/// Builds a CSR (DER) for `identity` signed with `key`: what a workload sends to the CA.
pub fn certificate_request(identity: &SpiffeId, key: &KeyPair) -> Result<Vec<u8>, CaError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, identity.dns_name());
    params.distinguished_name = dn;
    let uri = identity.uri().try_into().map_err(|e| CaError::Material(format!("identity URI: {e:?}")))?;
    let dns = identity.dns_name().try_into().map_err(|e| CaError::Material(format!("identity DNS: {e:?}")))?;
    params.subject_alt_names = vec![SanType::URI(uri), SanType::DnsName(dns)];
    Ok(params.serialize_request(key)?.der().to_vec())
}

/// Generates a workload key (ECDSA P-256).
pub fn generate_key() -> Result<KeyPair, CaError> {
    Ok(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(sa: &str) -> SpiffeId {
        SpiffeId::new("kem.test", "kem", sa).expect("valid id")
    }

    #[test]
    fn issues_a_leaf_for_the_granted_identity_only() {
        let (ca, _) = CertificateAuthority::generate("kem.test", CaPolicy::default()).expect("ca");
        let key = generate_key().expect("key");
        let csr = certificate_request(&id("participation"), &key).expect("csr");
        let issued = ca.issue(&csr, &id("participation"), Some(Duration::from_secs(30))).expect("issued");
        let lifetime = issued.not_after.duration_since(issued.not_before).expect("ordered");
        assert!(lifetime >= Duration::from_secs(30) && lifetime <= Duration::from_secs(30 + 61), "{lifetime:?}");
        assert_eq!(issued.intermediates.len(), 1);
        assert_eq!(issued.serial.len(), 16);

        let err = ca.issue(&csr, &id("gateway"), None).expect_err("CSR asks for another identity");
        assert!(matches!(err, CaError::IdentityMismatch { .. }), "{err}");
    }

    #[test]
    fn rejects_foreign_domains_and_garbage() {
        let (ca, _) = CertificateAuthority::generate("kem.test", CaPolicy::default()).expect("ca");
        let other = SpiffeId::new("evil.test", "kem", "user").expect("id");
        let key = generate_key().expect("key");
        let csr = certificate_request(&other, &key).expect("csr");
        assert!(matches!(ca.issue(&csr, &other, None), Err(CaError::ForeignTrustDomain { .. })));
        assert!(matches!(ca.issue(b"not a csr", &id("user"), None), Err(CaError::InvalidCsr(_))));
    }

    /// An RSA-2048 CSR for `participation` (correct SANs, valid signature), generated once with
    /// `openssl req -new -newkey rsa:2048 -nodes -subj /CN=participation.kem.serviceaccount.identity.kem.test
    /// -addext subjectAltName=URI:spiffe://kem.test/ns/kem/sa/participation,DNS:participation.kem.serviceaccount.identity.kem.test`.
    /// Test data only: kem itself has no RSA or OpenSSL code.
    const RSA_2048_CSR_PEM: &str = include_str!("testdata/rsa2048-participation.csr.pem");

    fn csr_with(alg: &'static rcgen::SignatureAlgorithm, identity: &SpiffeId) -> Vec<u8> {
        let key = KeyPair::generate_for(alg).expect("key");
        certificate_request(identity, &key).expect("csr")
    }

    fn unsupported(ca: &CertificateAuthority, csr: &[u8]) -> String {
        match ca.issue(csr, &id("participation"), None) {
            Err(CaError::UnsupportedKey { received }) => received,
            other => panic!("expected UnsupportedKey, got {other:?}"),
        }
    }

    #[test]
    fn only_p256_keys_are_signed() {
        let (ca, _) = CertificateAuthority::generate("kem.test", CaPolicy::default()).expect("ca");
        let participation = id("participation");

        let p256 = csr_with(&PKCS_ECDSA_P256_SHA256, &participation);
        ca.issue(&p256, &participation, None).expect("P-256 is the contract");

        let received = unsupported(&ca, &csr_with(&rcgen::PKCS_ECDSA_P384_SHA384, &participation));
        assert!(received.contains("P-384"), "{received}");
        let received = unsupported(&ca, &csr_with(&rcgen::PKCS_ED25519, &participation));
        assert!(received.contains("Ed25519"), "{received}");
        let rsa = CertificateSigningRequestDer::from_pem_slice(RSA_2048_CSR_PEM.as_bytes()).expect("PEM CSR");
        let received = unsupported(&ca, rsa.as_ref());
        assert!(received.contains("RSA 2048-bit"), "{received}");

        // The refusal names what was received and what is accepted.
        let err = CaError::UnsupportedKey { received };
        assert!(err.to_string().contains("RSA 2048-bit") && err.to_string().contains("P-256"), "{err}");
    }

    /// Replaces the first occurrence of `from` in `der` with `to` (same length, so every DER length
    /// around it stays valid).
    fn patched(der: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        assert_eq!(from.len(), to.len());
        let at = der.windows(from.len()).position(|w| w == from).expect("pattern present");
        let mut out = der.to_vec();
        out[at..at + to.len()].copy_from_slice(to);
        out
    }

    #[test]
    fn garbage_public_key_infos_are_refused_before_anything_is_signed() {
        let (ca, _) = CertificateAuthority::generate("kem.test", CaPolicy::default()).expect("ca");
        let p256 = csr_with(&PKCS_ECDSA_P256_SHA256, &id("participation"));
        // prime256v1 = 1.2.840.10045.3.1.7; .8 is no curve anyone knows.
        let p256_oid = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
        let mut unknown_oid = p256_oid;
        unknown_oid[9] = 0x08;
        let received = unsupported(&ca, &patched(&p256, &p256_oid, &unknown_oid));
        assert!(received.contains("1.2.840.10045.3.1.8"), "{received}");

        // id-ecPublicKey = 1.2.840.10045.2.1 turned into 1.2.840.10045.2.9: an unknown algorithm.
        let ec_oid = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        let mut other_alg = ec_oid;
        other_alg[8] = 0x09;
        let received = unsupported(&ca, &patched(&p256, &ec_oid, &other_alg));
        assert!(received.contains("unknown algorithm") && received.contains("1.2.840.10045.2.9"), "{received}");

        // A P-256 key in compressed form (0x02 leading byte) is refused by shape.
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        let point = key.public_key_raw().to_vec();
        let mut compressed = point.clone();
        compressed[0] = 0x02;
        let received = unsupported(
            &ca,
            &patched(&certificate_request(&id("participation"), &key).expect("csr"), &point, &compressed),
        );
        assert!(received.contains("uncompressed"), "{received}");

        // A point that is not on the curve is refused when the signature is checked.
        let mut off_curve = point.clone();
        off_curve[64] ^= 0x01;
        let csr = patched(&certificate_request(&id("participation"), &key).expect("csr"), &point, &off_curve);
        assert!(matches!(ca.issue(&csr, &id("participation"), None), Err(CaError::InvalidCsr(_))));
    }

    #[test]
    fn lifetimes_are_clamped_by_policy() {
        let policy = CaPolicy { max_leaf_lifetime: Duration::from_secs(3600), ..CaPolicy::default() };
        let (ca, _) = CertificateAuthority::generate("kem.test", policy).expect("ca");
        let key = generate_key().expect("key");
        let csr = certificate_request(&id("user"), &key).expect("csr");
        let issued = ca.issue(&csr, &id("user"), Some(Duration::from_secs(365 * 24 * 3600))).expect("issued");
        let from_now = issued.not_after.duration_since(SystemTime::now()).expect("future");
        assert!(from_now <= Duration::from_secs(3600), "{from_now:?}");
    }

    #[test]
    fn persisted_material_reloads() {
        let dir = std::env::temp_dir().join(format!("kem-ca-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = CertificateAuthority::load_or_generate(&dir, "kem.test", CaPolicy::default()).expect("generate");
        let again = CertificateAuthority::load_or_generate(&dir, "kem.test", CaPolicy::default()).expect("reload");
        assert_eq!(first.trust_anchors(), again.trust_anchors());
        assert_eq!(first.issuer.cert, again.issuer.cert);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
