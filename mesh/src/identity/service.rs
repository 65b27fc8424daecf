//! The identity CA as a gRPC service (`kem.identity.v1.IdentityService`), and the workload-side
//! [`RemoteSource`] that obtains certificates from it.
//!
//! A workload sends a CSR and its bootstrap credential; the CA verifies the credential, checks
//! the CSR asks for exactly the identity the credential grants (with an ECDSA P-256 key), spends
//! the credential if it is a single-use join token, and signs. A workload renews with a
//! [renewal proof](super::credential::renewal) made with its current certificate, so a single-use
//! token is presented once. Refusals are logged with the peer address and the identities
//! involved, never with the token.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use kem_proto::kem::identity::v1::identity_service_client::IdentityServiceClient;
use kem_proto::kem::identity::v1::identity_service_server::{IdentityService, IdentityServiceServer};
use kem_proto::kem::identity::v1::{
    GetTrustBundleRequest, GetTrustBundleResponse, IssueCertificateRequest, IssueCertificateResponse,
    issue_certificate_request::Csr,
};
use kem_proto::status::error_info;
use rcgen::KeyPair;
use rustls::pki_types::{CertificateDer, ServerName};
use tonic::{Code, Request, Response, Status};

use super::SpiffeId;
use super::ca::{
    CaError, CertificateAuthority, IssuedCertificate, certificate_request, certs_from_pem, generate_key, to_pem,
};
use super::credential::{CredentialKind, CredentialVerifier, LedgerError, join_token, renewal};
use super::workload::{CertificateSource, IdentityError, Obtained};

const DOMAIN: &str = "kem.identity";

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
}

fn system_time(t: Option<&prost_types::Timestamp>) -> Option<SystemTime> {
    let t = t?;
    let secs = u64::try_from(t.seconds).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, u32::try_from(t.nanos).unwrap_or(0)))
}

/// The gRPC face of the CA.
pub struct IdentityApi {
    ca: Arc<ArcSwap<CertificateAuthority>>,
    credentials: Arc<CredentialVerifier>,
}

impl IdentityApi {
    /// Serves `ca` (swappable for trust-anchor rotation), accepting `credentials`.
    pub fn new(ca: Arc<ArcSwap<CertificateAuthority>>, credentials: Arc<CredentialVerifier>) -> IdentityApi {
        IdentityApi { ca, credentials }
    }

    /// The tonic service.
    pub fn into_service(self) -> IdentityServiceServer<IdentityApi> {
        IdentityServiceServer::new(self)
    }
}

fn peer_of<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<crate::server::PeerInfo>()
        .map(|p| p.remote_addr.to_string())
        .or_else(|| request.remote_addr().map(|a| a.to_string()))
        .unwrap_or_else(|| "unknown".into())
}

#[tonic::async_trait]
impl IdentityService for IdentityApi {
    async fn issue_certificate(
        &self,
        request: Request<IssueCertificateRequest>,
    ) -> Result<Response<IssueCertificateResponse>, Status> {
        let peer = peer_of(&request);
        let request = request.into_inner();
        if request.token.is_empty() {
            return Err(error_info(Code::Unauthenticated, "a bootstrap token is required", DOMAIN, "BAD_TOKEN", &[]));
        }
        let csr_der = match request.csr {
            Some(Csr::CsrDer(der)) => der,
            Some(Csr::CsrPem(pem)) => {
                use rustls::pki_types::pem::PemObject;
                rustls::pki_types::CertificateSigningRequestDer::from_pem_slice(pem.as_bytes())
                    .map_err(|e| {
                        error_info(
                            Code::InvalidArgument,
                            &format!("csr_pem is not a PEM CSR: {e}"),
                            DOMAIN,
                            "BAD_CSR",
                            &[],
                        )
                    })?
                    .as_ref()
                    .to_vec()
            }
            None => {
                return Err(error_info(
                    Code::InvalidArgument,
                    "csr_der or csr_pem is required",
                    DOMAIN,
                    "BAD_CSR",
                    &[],
                ));
            }
        };
        let verified = if renewal::is_renewal_proof(&request.token) {
            // Renewal: the proof is checked against the CA's current bundle and bound to this CSR.
            let ca = self.ca.load_full();
            renewal::verify(&request.token, &csr_der, ca.trust_anchors(), ca.trust_domain(), SystemTime::now())
        } else {
            self.credentials.verify(&request.token).await
        };
        let grant = verified.map_err(|error| {
            tracing::warn!(%peer, %error, "certificate request refused: bad credential");
            error_info(
                error.code(),
                &format!("the bootstrap token was not accepted: {error}"),
                DOMAIN,
                "BAD_TOKEN",
                &[],
            )
        })?;
        let lifetime = request.requested_lifetime.and_then(|d| Duration::try_from(d).ok());
        let issued = self.ca.load_full().issue(&csr_der, &grant.identity, lifetime).map_err(|error| match &error {
            CaError::IdentityMismatch { requested, granted } => {
                tracing::warn!(%peer, %requested, %granted, "certificate request refused: the CSR asks for an identity the credential does not grant");
                error_info(
                    Code::PermissionDenied,
                    &format!("the credential grants {granted}, not {requested}"),
                    DOMAIN,
                    "IDENTITY_NOT_ALLOWED",
                    &[("granted", &granted.to_string())],
                )
            }
            CaError::InvalidCsr(reason) => error_info(Code::InvalidArgument, &format!("invalid CSR: {reason}"), DOMAIN, "BAD_CSR", &[]),
            CaError::UnsupportedKey { received } => {
                tracing::warn!(%peer, identity = %grant.identity, %received, "certificate request refused: unsupported key type");
                error_info(
                    Code::InvalidArgument,
                    &error.to_string(),
                    DOMAIN,
                    "UNSUPPORTED_KEY",
                    &[("received", received), ("accepted", "ECDSA P-256")],
                )
            }
            CaError::ForeignTrustDomain { .. } => {
                tracing::warn!(%peer, %error, "certificate request refused");
                error_info(Code::PermissionDenied, &error.to_string(), DOMAIN, "IDENTITY_NOT_ALLOWED", &[])
            }
            _ => {
                tracing::error!(%peer, %error, "certificate issuance failed");
                Status::internal("certificate issuance failed; see the identity CA's log")
            }
        })?;
        // Spend a single-use token last, once everything else passed, so a refused CSR does not burn
        // it; a certificate signed for a request that loses the race here is dropped unsent.
        self.credentials.redeem(&grant).await.map_err(|error| match &error {
            LedgerError::AlreadyUsed { .. } => {
                tracing::warn!(%peer, identity = %grant.identity, %error, "certificate request refused: join token replayed");
                error_info(
                    error.code(),
                    &format!("the bootstrap token was not accepted: {error}"),
                    DOMAIN,
                    "TOKEN_ALREADY_USED",
                    &[],
                )
            }
            _ => {
                tracing::error!(%peer, identity = %grant.identity, %error, "cannot record a join token's use; refusing it");
                Status::new(error.code(), "the identity CA cannot record the join token's use; see its log")
            }
        })?;
        let lifetime = issued.not_after.duration_since(issued.not_before).unwrap_or_default();
        tracing::info!(%peer, identity = %issued.identity, via = %grant.method, ?lifetime, "issued workload certificate");
        Ok(Response::new(IssueCertificateResponse {
            leaf_certificate_pem: to_pem(&issued.leaf),
            intermediate_pems: issued.intermediates.iter().map(to_pem).collect(),
            trust_anchor_pems: issued.trust_anchors.iter().map(to_pem).collect(),
            not_before: Some(timestamp(issued.not_before)),
            not_after: Some(timestamp(issued.not_after)),
            renew_time: Some(timestamp(issued.not_before + lifetime.mul_f64(0.7))),
            spiffe_id: issued.identity.to_string(),
        }))
    }

    async fn get_trust_bundle(
        &self,
        _request: Request<GetTrustBundleRequest>,
    ) -> Result<Response<GetTrustBundleResponse>, Status> {
        let ca = self.ca.load();
        Ok(Response::new(GetTrustBundleResponse {
            trust_domain: ca.trust_domain().to_owned(),
            trust_anchor_pems: ca.trust_anchors().iter().map(to_pem).collect(),
            update_time: None,
        }))
    }
}

/// Where a workload's bootstrap token comes from. Deliberately not `Debug`: tokens never print.
#[derive(Clone)]
pub enum TokenSource {
    /// A token held in memory (`kem up` mints join tokens in-process).
    Static(String),
    /// A file re-read on every request (Kubernetes projected ServiceAccount tokens rotate).
    File(PathBuf),
}

impl TokenSource {
    async fn read(&self) -> Result<String, String> {
        match self {
            TokenSource::Static(token) => Ok(token.clone()),
            TokenSource::File(path) => tokio::fs::read_to_string(path)
                .await
                .map(|t| t.trim().to_owned())
                .map_err(|e| format!("cannot read the bootstrap token {}: {e}", path.display())),
        }
    }
}

/// Obtains certificates from a remote identity CA over TLS.
///
/// The first certificate is obtained with the bootstrap token. Renewals of a certificate obtained
/// with a join token authenticate with that certificate instead (a
/// [renewal proof](super::credential::renewal)), so a single-use token is presented exactly once;
/// the token is presented again only if there is no valid certificate to renew with (it expired
/// while the CA was unreachable) or the CA no longer accepts it (its anchor left the bundle).
/// ServiceAccount tokens are re-presented at every renewal, as Kubernetes rotates and the CA
/// re-reviews them.
pub struct RemoteSource {
    addr: String,
    ca_identity: SpiffeId,
    anchors: ArcSwap<Vec<CertificateDer<'static>>>,
    token: TokenSource,
    lifetime: Option<Duration>,
    /// What the next renewal can prove possession of.
    held: parking_lot::Mutex<Option<Arc<Held>>>,
}

/// The certificate this source last obtained, kept to sign renewal proofs with.
struct Held {
    chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
    not_after: SystemTime,
}

/// How a request authenticated, to decide what the next renewal uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Token(CredentialKind),
    RenewalProof,
}

impl RemoteSource {
    /// A source for the CA at `addr` (which must present `ca_identity`), trusting `anchors` until
    /// the first issuance brings the current bundle.
    pub fn new(
        addr: impl Into<String>,
        ca_identity: SpiffeId,
        anchors: Vec<CertificateDer<'static>>,
        token: TokenSource,
        lifetime: Option<Duration>,
    ) -> RemoteSource {
        RemoteSource {
            addr: addr.into(),
            ca_identity,
            anchors: ArcSwap::from_pointee(anchors),
            token,
            lifetime,
            held: parking_lot::Mutex::new(None),
        }
    }

    async fn request(&self, identity: &SpiffeId) -> Result<(IssuedCertificate, KeyPair), String> {
        let key = generate_key().map_err(|e| e.to_string())?;
        let csr = certificate_request(identity, &key).map_err(|e| e.to_string())?;
        let renewable = self.held.lock().clone().filter(|held| held.not_after > SystemTime::now());
        let (response, via) = match renewable {
            Some(held) => {
                let proof = renewal::prove(&held.chain, &held.key_pkcs8, &csr).map_err(|e| e.to_string())?;
                match self.call(identity, &csr, proof).await {
                    Ok(response) => (response, Via::RenewalProof),
                    Err(status) if status.code() == Code::Unauthenticated => {
                        tracing::warn!(
                            %identity, reason = %status.message(),
                            "the identity CA refused to renew with the current certificate; presenting the bootstrap token"
                        );
                        self.with_token(identity, &csr).await?
                    }
                    Err(status) => return Err(describe(&status)),
                }
            }
            None => self.with_token(identity, &csr).await?,
        };
        let issued = self.accept(identity, response)?;
        // Join tokens (single-use or not) are presented once; ServiceAccount tokens every time.
        let renew_with_certificate = matches!(via, Via::RenewalProof | Via::Token(CredentialKind::JoinToken));
        let held = renew_with_certificate.then(|| {
            let mut chain = vec![issued.leaf.clone()];
            chain.extend(issued.intermediates.iter().cloned());
            Arc::new(Held { chain, key_pkcs8: key.serialize_der(), not_after: issued.not_after })
        });
        *self.held.lock() = held;
        Ok((issued, key))
    }

    async fn with_token(&self, identity: &SpiffeId, csr: &[u8]) -> Result<(IssueCertificateResponse, Via), String> {
        let token = self.token.read().await?;
        let kind = if token.trim_start().starts_with(join_token::FAMILY) {
            CredentialKind::JoinToken
        } else {
            CredentialKind::KubernetesServiceAccount
        };
        let response = self.call(identity, csr, token).await.map_err(|status| describe(&status))?;
        Ok((response, Via::Token(kind)))
    }

    async fn call(
        &self,
        identity: &SpiffeId,
        csr: &[u8],
        credential: String,
    ) -> Result<IssueCertificateResponse, Status> {
        let config =
            crate::tls::bootstrap_client_config(&self.anchors.load(), identity.trust_domain(), &self.ca_identity)
                .map_err(|e| Status::internal(e.to_string()))?;
        let name = ServerName::try_from(self.ca_identity.dns_name()).map_err(|e| Status::internal(e.to_string()))?;
        let channel = crate::client::connect::tls_channel(&self.addr, config, name, Duration::from_secs(2))
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(IdentityServiceClient::new(channel)
            .issue_certificate(IssueCertificateRequest {
                csr: Some(Csr::CsrDer(csr.to_vec())),
                token: credential,
                requested_lifetime: self.lifetime.and_then(|d| prost_types::Duration::try_from(d).ok()),
            })
            .await?
            .into_inner())
    }

    fn accept(&self, identity: &SpiffeId, response: IssueCertificateResponse) -> Result<IssuedCertificate, String> {
        let parse = |pem: &str| certs_from_pem(pem).map_err(|e| e.to_string());
        let leaf = parse(&response.leaf_certificate_pem)?.remove(0);
        let mut intermediates = Vec::new();
        for pem in &response.intermediate_pems {
            intermediates.extend(parse(pem)?);
        }
        let mut trust_anchors = Vec::new();
        for pem in &response.trust_anchor_pems {
            trust_anchors.extend(parse(pem)?);
        }
        let issued_id = crate::tls::verify::spiffe_id_of(&leaf).map_err(|e| e.to_string())?;
        if &issued_id != identity {
            return Err(format!("the CA issued {issued_id} instead of {identity}"));
        }
        let now = SystemTime::now();
        let issued = IssuedCertificate {
            identity: identity.clone(),
            serial: crate::tls::verify::serial_of(&leaf),
            leaf,
            intermediates,
            trust_anchors: trust_anchors.clone(),
            not_before: system_time(response.not_before.as_ref()).unwrap_or(now),
            not_after: system_time(response.not_after.as_ref()).unwrap_or(now),
        };
        self.anchors.store(Arc::new(trust_anchors));
        Ok(issued)
    }
}

fn describe(status: &Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

impl CertificateSource for RemoteSource {
    fn obtain<'a>(&'a self, identity: &'a SpiffeId) -> Obtained<'a> {
        Box::pin(async move {
            self.request(identity).await.map_err(|reason| IdentityError::Issuance {
                identity: identity.clone(),
                reason: format!("{reason} (CA at {})", self.addr),
            })
        })
    }
}
