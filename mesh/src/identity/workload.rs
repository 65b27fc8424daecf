//! The workload's own identity: a key generated in-process, a certificate from the identity CA,
//! renewed at 70% of its lifetime (jittered) and swapped atomically.
//!
//! TLS resolvers and verifiers read the current certificate and trust bundle from here on every
//! handshake (`ArcSwap` loads, no locks), so a renewal reaches both the server side and every new
//! client connection at once while connections already open keep working. Subscribers (the mesh
//! client, the role server's health) are told of each change through a `watch` channel.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rcgen::KeyPair;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, TrustAnchor};
use rustls::sign::CertifiedKey;
use tokio::sync::watch;

use super::SpiffeId;
use super::ca::IssuedCertificate;
use crate::Shutdown;

/// Why an identity could not be obtained or renewed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The CA refused or could not be reached.
    #[error("the identity CA did not issue a certificate for {identity}: {reason}")]
    Issuance {
        /// The identity asked for.
        identity: SpiffeId,
        /// What went wrong, with the CA's status when there was one.
        reason: String,
    },
    /// What the CA returned is unusable.
    #[error("the certificate issued for {identity} is unusable: {reason}")]
    Unusable {
        /// The identity.
        identity: SpiffeId,
        /// Why.
        reason: String,
    },
}

/// Whether the workload currently holds a valid certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityStatus {
    /// A valid certificate is installed.
    Valid,
    /// The certificate expired and renewal has not succeeded: peers will refuse this workload.
    Expired,
}

/// What a [`CertificateSource`] returns: a certificate and the private key it certifies.
pub type Obtained<'a> = Pin<Box<dyn Future<Output = Result<(IssuedCertificate, KeyPair), IdentityError>> + Send + 'a>>;

/// Where certificates come from: the identity CA over the network, or in-process for the CA's
/// own serving identity and for tests.
pub trait CertificateSource: Send + Sync + 'static {
    /// Obtains a certificate for `identity`, returning it with the private key it certifies.
    fn obtain<'a>(&'a self, identity: &'a SpiffeId) -> Obtained<'a>;
}

/// One installed certificate with everything TLS needs.
struct Installed {
    certified_key: Arc<CertifiedKey>,
    anchors: Arc<Vec<TrustAnchor<'static>>>,
    anchors_der: Vec<CertificateDer<'static>>,
    not_before: SystemTime,
    not_after: SystemTime,
    serial: Vec<u8>,
}

struct Inner {
    id: SpiffeId,
    current: ArcSwap<Installed>,
    generation: watch::Sender<u64>,
    status: watch::Sender<IdentityStatus>,
}

/// A workload's identity, shared by its TLS server, every client connection and its health.
#[derive(Clone)]
pub struct WorkloadIdentity {
    inner: Arc<Inner>,
}

impl fmt::Debug for WorkloadIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let current = self.inner.current.load();
        f.debug_struct("WorkloadIdentity")
            .field("id", &self.inner.id.to_string())
            .field("not_after", &current.not_after)
            .field("generation", &*self.inner.generation.borrow())
            .finish()
    }
}

fn install(issued: &IssuedCertificate, key: &KeyPair) -> Result<Installed, IdentityError> {
    let unusable = |reason: String| IdentityError::Unusable { identity: issued.identity.clone(), reason };
    let provider = crate::tls::provider();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing_key = provider.key_provider.load_private_key(key_der).map_err(|e| unusable(e.to_string()))?;
    let mut chain = vec![issued.leaf.clone()];
    chain.extend(issued.intermediates.iter().cloned());
    let anchors = issued
        .trust_anchors
        .iter()
        .map(|der| webpki::anchor_from_trusted_cert(der).map(|a| a.to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unusable(format!("bad trust anchor: {e}")))?;
    if anchors.is_empty() {
        return Err(unusable("the trust bundle is empty".into()));
    }
    Ok(Installed {
        certified_key: Arc::new(CertifiedKey::new(chain, signing_key)),
        anchors: Arc::new(anchors),
        anchors_der: issued.trust_anchors.clone(),
        not_before: issued.not_before,
        not_after: issued.not_after,
        serial: issued.serial.clone(),
    })
}

/// When to renew: 70% into the lifetime, jittered by ±5% of the lifetime so a fleet started
/// together does not stampede the CA.
fn renewal_instant(not_before: SystemTime, not_after: SystemTime, jitter: f64) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    let fraction = (0.70 + 0.05 * jitter.clamp(-1.0, 1.0)).max(0.0);
    not_before + lifetime.mul_f64(fraction)
}

impl WorkloadIdentity {
    /// Obtains the first certificate from `source` (retrying with backoff up to `timeout`), then
    /// keeps renewing it in the background until `shutdown`.
    pub async fn start(
        id: SpiffeId,
        source: Arc<dyn CertificateSource>,
        timeout: Duration,
        shutdown: Shutdown,
    ) -> Result<WorkloadIdentity, IdentityError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut backoff = Duration::from_millis(100);
        let installed = loop {
            match source.obtain(&id).await.and_then(|(issued, key)| install(&issued, &key)) {
                Ok(installed) => break installed,
                Err(error) if tokio::time::Instant::now() + backoff < deadline => {
                    tracing::warn!(%error, retry_in = ?backoff, "waiting for the identity CA");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(error) => return Err(error),
            }
        };
        tracing::info!(identity = %id, not_after = ?installed.not_after, "workload certificate installed");
        let identity = WorkloadIdentity {
            inner: Arc::new(Inner {
                id,
                current: ArcSwap::from_pointee(installed),
                generation: watch::channel(0).0,
                status: watch::channel(IdentityStatus::Valid).0,
            }),
        };
        let renewer = identity.clone();
        tokio::spawn(async move { renewer.renew_forever(source, shutdown).await });
        Ok(identity)
    }

    /// The workload's SPIFFE ID.
    pub fn id(&self) -> &SpiffeId {
        &self.inner.id
    }

    /// The current certificate chain and key, for TLS resolvers.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.inner.current.load().certified_key.clone()
    }

    /// The current trust anchors, for TLS verifiers.
    pub fn trust_anchors(&self) -> Arc<Vec<TrustAnchor<'static>>> {
        self.inner.current.load().anchors.clone()
    }

    /// The current trust bundle as DER certificates.
    pub fn trust_anchors_der(&self) -> Vec<CertificateDer<'static>> {
        self.inner.current.load().anchors_der.clone()
    }

    /// End of validity of the current certificate.
    pub fn not_after(&self) -> SystemTime {
        self.inner.current.load().not_after
    }

    /// Serial number of the current certificate.
    pub fn serial(&self) -> Vec<u8> {
        self.inner.current.load().serial.clone()
    }

    /// Increments on every installed renewal; subscribe to react (e.g. re-dial connections).
    pub fn generations(&self) -> watch::Receiver<u64> {
        self.inner.generation.subscribe()
    }

    /// Validity of the identity; turns `Expired` when renewal failed past expiry.
    pub fn status(&self) -> watch::Receiver<IdentityStatus> {
        self.inner.status.subscribe()
    }

    async fn renew_forever(self, source: Arc<dyn CertificateSource>, shutdown: Shutdown) {
        loop {
            let (not_before, not_after) = {
                let current = self.inner.current.load();
                (current.not_before, current.not_after)
            };
            let jitter: f64 = rand::random::<f64>() * 2.0 - 1.0;
            let renew_at = renewal_instant(not_before, not_after, jitter);
            let wait = renew_at.duration_since(SystemTime::now()).unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.wait() => return,
            }
            let lifetime = not_after.duration_since(not_before).unwrap_or(Duration::from_secs(1));
            let mut backoff = (lifetime / 20).clamp(Duration::from_millis(50), Duration::from_secs(1));
            loop {
                match source.obtain(&self.inner.id).await.and_then(|(issued, key)| install(&issued, &key)) {
                    Ok(installed) => {
                        tracing::debug!(identity = %self.inner.id, not_after = ?installed.not_after, "certificate renewed");
                        self.inner.current.store(Arc::new(installed));
                        self.inner.generation.send_modify(|g| *g += 1);
                        self.inner
                            .status
                            .send_if_modified(|s| std::mem::replace(s, IdentityStatus::Valid) != IdentityStatus::Valid);
                        break;
                    }
                    Err(error) => {
                        let expired = SystemTime::now() >= not_after;
                        if expired {
                            let changed = self.inner.status.send_if_modified(|s| {
                                std::mem::replace(s, IdentityStatus::Expired) != IdentityStatus::Expired
                            });
                            if changed {
                                tracing::error!(
                                    identity = %self.inner.id, %error, ?not_after,
                                    "workload certificate EXPIRED and could not be renewed; this workload is NOT_SERVING \
                                     and peers will refuse it. Check that the identity CA (`kem identity`) is reachable \
                                     and that this workload's bootstrap token is still valid: an expired certificate \
                                     cannot renew itself, and a single-use join token is spent after the first \
                                     bootstrap (mint a new one with `kem join-token`)."
                                );
                            }
                        } else {
                            tracing::warn!(identity = %self.inner.id, %error, retry_in = ?backoff, expires = ?not_after,
                                "certificate renewal failed; retrying before expiry");
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.wait() => return,
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
    }
}

/// Loads the certificate from PEM files, re-read at every renewal: for certificates issued by
/// another system (cert-manager, SPIRE, a Key Vault mount) that rotates the files in place, and
/// for benchmarks that hand a workload a certificate directly.
pub struct FileSource {
    /// Leaf certificate followed by its intermediates.
    pub chain: std::path::PathBuf,
    /// PKCS#8 private key.
    pub key: std::path::PathBuf,
    /// Trust bundle.
    pub anchors: std::path::PathBuf,
}

impl FileSource {
    fn load(&self, identity: &SpiffeId) -> Result<(IssuedCertificate, KeyPair), String> {
        let read =
            |p: &std::path::Path| std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
        let mut chain = super::ca::certs_from_pem(&read(&self.chain)?).map_err(|e| e.to_string())?;
        let leaf = chain.remove(0);
        let anchors = super::ca::certs_from_pem(&read(&self.anchors)?).map_err(|e| e.to_string())?;
        let key = KeyPair::from_pem(&read(&self.key)?).map_err(|e| format!("bad key {}: {e}", self.key.display()))?;
        let found = crate::tls::verify::spiffe_id_of(&leaf).map_err(|e| e.to_string())?;
        if &found != identity {
            return Err(format!("{} holds a certificate for {found}, not {identity}", self.chain.display()));
        }
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| e.to_string())?;
        let at = |t: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t).unwrap_or(0));
        let validity = parsed.validity();
        let issued = IssuedCertificate {
            identity: identity.clone(),
            serial: parsed.raw_serial().to_vec(),
            not_before: at(validity.not_before.timestamp()),
            not_after: at(validity.not_after.timestamp()),
            leaf,
            intermediates: chain,
            trust_anchors: anchors,
        };
        Ok((issued, key))
    }
}

impl CertificateSource for FileSource {
    fn obtain<'a>(&'a self, identity: &'a SpiffeId) -> Obtained<'a> {
        Box::pin(async move {
            self.load(identity).map_err(|reason| IdentityError::Issuance { identity: identity.clone(), reason })
        })
    }
}

/// Issues in-process from a CA held by this process (the identity role itself, and tests).
pub struct LocalSource {
    ca: Arc<ArcSwap<super::ca::CertificateAuthority>>,
    lifetime: Option<Duration>,
}

impl LocalSource {
    /// A source backed by `ca` (which may be swapped for trust-anchor rotation).
    pub fn new(ca: Arc<ArcSwap<super::ca::CertificateAuthority>>, lifetime: Option<Duration>) -> LocalSource {
        LocalSource { ca, lifetime }
    }
}

impl CertificateSource for LocalSource {
    fn obtain<'a>(&'a self, identity: &'a SpiffeId) -> Obtained<'a> {
        Box::pin(async move {
            self.ca
                .load()
                .issue_local(identity, self.lifetime)
                .map_err(|e| IdentityError::Issuance { identity: identity.clone(), reason: e.to_string() })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_happens_at_seventy_percent_give_or_take_five() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let end = start + Duration::from_secs(100);
        let at = |j| renewal_instant(start, end, j).duration_since(start).expect("after start");
        assert_eq!(at(0.0), Duration::from_secs(70));
        assert_eq!(at(-1.0), Duration::from_secs(65));
        assert_eq!(at(1.0), Duration::from_secs(75));
        assert_eq!(at(7.0), Duration::from_secs(75), "jitter is clamped");
    }
}
