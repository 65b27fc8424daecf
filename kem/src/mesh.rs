//! How a kem process joins the mesh: where its certificates come from.
//!
//! `kem up` runs the identity CA in-process and mints a join token for every other role, so a
//! newcomer never touches a certificate. `kem serve <service>` and `kem gateway` reach a CA
//! elsewhere (`--identity-addr`), verify it with a bootstrap trust bundle (`--trust-anchors`) and
//! authenticate with a token file (`--identity-token-file`: a join token, or in Kubernetes the
//! pod's projected ServiceAccount token).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use kem_mesh::Shutdown;
use kem_mesh::identity::ca::{CaPolicy, CertificateAuthority, certs_from_pem};
use kem_mesh::identity::credential::{
    CredentialVerifier, JoinTokens, ReplayLedger, TokenReviewConfig, TokenReviewVerifier,
};
use kem_mesh::identity::service::{RemoteSource, TokenSource};
use kem_mesh::identity::workload::LocalSource;
use kem_mesh::identity::{SpiffeId, WorkloadIdentity};
use rustls::pki_types::CertificateDer;

use crate::Settings;

/// File (inside the CA directory) holding the join-token HMAC key.
pub const JOIN_TOKEN_KEY_FILE: &str = "join-token.key";
/// Audience the identity CA asks TokenReview to check on ServiceAccount tokens.
pub const TOKEN_AUDIENCE: &str = "kem-identity";
/// How long a workload waits for its first certificate before giving up.
const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(30);

/// The SPIFFE ID of workload `name` under `settings`.
pub fn spiffe_id(settings: &Settings, name: &str) -> anyhow::Result<SpiffeId> {
    SpiffeId::new(&settings.trust_domain, &settings.namespace, name).context("invalid workload identity")
}

/// How this process obtains workload certificates.
#[derive(Clone)]
pub enum CaAccess {
    /// The CA runs in this process (`kem up`): tokens are minted here.
    InProcess {
        /// The CA's gRPC address.
        addr: String,
        /// Its trust bundle.
        anchors: Vec<CertificateDer<'static>>,
        /// The join-token key.
        tokens: Arc<JoinTokens>,
    },
    /// The CA is elsewhere; this workload has a token file.
    Remote {
        /// The CA's gRPC address.
        addr: String,
        /// The bootstrap trust bundle.
        anchors: Vec<CertificateDer<'static>>,
        /// The token file, re-read at every renewal.
        token_file: std::path::PathBuf,
    },
}

impl CaAccess {
    /// Remote access as configured by `--identity-addr`, `--trust-anchors` and
    /// `--identity-token-file`.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<CaAccess> {
        let pem = std::fs::read_to_string(&settings.trust_anchors).with_context(|| {
            format!(
                "cannot read the trust bundle {} (--trust-anchors / KEM_TRUST_ANCHORS); copy the CA's \
                 trust-bundle.pem here, or in Kubernetes mount the kem-trust-anchors ConfigMap",
                settings.trust_anchors.display()
            )
        })?;
        let anchors = certs_from_pem(&pem)
            .with_context(|| format!("{} holds no usable certificate", settings.trust_anchors.display()))?;
        let token_file = settings.identity_token_file.clone().context(
            "no bootstrap token: set --identity-token-file / KEM_IDENTITY_TOKEN_FILE to a file holding a join \
             token (`kem join-token <workload> > file`) or, in Kubernetes, the projected ServiceAccount token",
        )?;
        Ok(CaAccess::Remote { addr: settings.identity_addr.clone(), anchors, token_file })
    }

    /// Access to a CA whose directory this process can read (tests, and tools on the CA's host):
    /// tokens are minted from its key, its bundle is trusted.
    pub fn local(settings: &Settings, addr: &str) -> anyhow::Result<CaAccess> {
        let tokens = existing_join_key(settings)?;
        let bundle = settings.ca_dir.join(kem_mesh::identity::ca::files::TRUST_BUNDLE);
        let pem = std::fs::read_to_string(&bundle).with_context(|| format!("cannot read {}", bundle.display()))?;
        let anchors =
            certs_from_pem(&pem).with_context(|| format!("{} holds no usable certificate", bundle.display()))?;
        Ok(CaAccess::InProcess { addr: addr.to_owned(), anchors, tokens: Arc::new(tokens) })
    }

    /// Obtains and keeps renewing the identity of workload `name`.
    pub async fn identity(
        &self,
        settings: &Settings,
        name: &str,
        shutdown: &Shutdown,
    ) -> anyhow::Result<WorkloadIdentity> {
        let id = spiffe_id(settings, name)?;
        let ca_id = spiffe_id(settings, "identity")?;
        let (addr, anchors, token) = match self {
            CaAccess::InProcess { addr, anchors, tokens } => {
                // Reusable, on purpose: renewals authenticate with the current certificate, but if
                // it expires (a laptop asleep for a day) the workload must bootstrap again with this
                // token, without an operator. It never leaves this process.
                let token = tokens
                    .mint_reusable(&id, Duration::from_secs(365 * 24 * 3600))
                    .context("cannot mint a join token")?;
                (addr.clone(), anchors.clone(), TokenSource::Static(token))
            }
            CaAccess::Remote { addr, anchors, token_file } => {
                (addr.clone(), anchors.clone(), TokenSource::File(token_file.clone()))
            }
        };
        let source = RemoteSource::new(addr.clone(), ca_id, anchors, token, Some(settings.leaf_lifetime));
        WorkloadIdentity::start(id.clone(), Arc::new(source), BOOTSTRAP_TIMEOUT, shutdown.clone())
            .await
            .with_context(|| format!("{id}: no certificate from the identity CA at {addr}; is `kem identity` running and is the token valid?"))
    }
}

/// The identity CA's state for `kem identity` / `kem up`.
pub struct CaState {
    /// The CA (swappable for trust-anchor rotation).
    pub ca: Arc<ArcSwap<CertificateAuthority>>,
    /// The join-token key.
    pub tokens: Arc<JoinTokens>,
    /// What the CA accepts as bootstrap credentials.
    pub credentials: Arc<CredentialVerifier>,
}

impl CaState {
    /// Loads the CA from `ca_dir` (generating a development anchor and issuer on first start),
    /// the join-token key (generated on first start), the join-token replay ledger, and — inside
    /// Kubernetes — TokenReview.
    pub fn load(settings: &Settings) -> anyhow::Result<CaState> {
        let policy = CaPolicy { leaf_lifetime: settings.leaf_lifetime, ..CaPolicy::default() };
        let ca = CertificateAuthority::load_or_generate(&settings.ca_dir, &settings.trust_domain, policy)
            .context("cannot load or create the identity CA")?;
        let tokens = load_or_create_join_key(&settings.ca_dir, &settings.trust_domain)?;
        let kubernetes = if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            let config = TokenReviewConfig::in_cluster(&settings.trust_domain, vec![TOKEN_AUDIENCE.to_owned()])
                .context("running in Kubernetes but cannot configure TokenReview")?;
            Some(TokenReviewVerifier::new(config).context("cannot build the TokenReview client")?)
        } else {
            None
        };
        // Single-use join tokens need a ledger that outlives this process, next to the CA
        // material. In Kubernetes that directory is a read-only secret mount shared by replicas:
        // no ledger can be kept there, so join tokens are refused and workloads bootstrap with
        // their ServiceAccount tokens. Anywhere else join tokens are the only credential, so a
        // CA that cannot keep the ledger does not start.
        let join = match ReplayLedger::open(&settings.ca_dir) {
            Ok(ledger) => Some((JoinTokens::clone(&tokens), ledger)),
            Err(error) if kubernetes.is_some() => {
                tracing::warn!(%error, "join tokens are disabled: their replay ledger cannot be kept; workloads must bootstrap with ServiceAccount tokens");
                None
            }
            Err(error) => {
                return Err(
                    anyhow::Error::new(error).context("the identity CA cannot keep its join-token replay ledger")
                );
            }
        };
        let tokens = Arc::new(tokens);
        let credentials = Arc::new(CredentialVerifier::new(join, kubernetes));
        Ok(CaState { ca: Arc::new(ArcSwap::from_pointee(ca)), tokens, credentials })
    }

    /// The CA's own serving identity, issued in-process.
    pub async fn own_identity(&self, settings: &Settings, shutdown: &Shutdown) -> anyhow::Result<WorkloadIdentity> {
        let source = LocalSource::new(self.ca.clone(), Some(settings.leaf_lifetime));
        WorkloadIdentity::start(spiffe_id(settings, "identity")?, Arc::new(source), BOOTSTRAP_TIMEOUT, shutdown.clone())
            .await
            .context("the identity CA cannot issue its own certificate")
    }
}

/// Reads the join-token key from `dir`, creating it (mode 0600) on first use.
pub fn load_or_create_join_key(dir: &Path, trust_domain: &str) -> anyhow::Result<JoinTokens> {
    let path = dir.join(JOIN_TOKEN_KEY_FILE);
    if path.exists() {
        let key = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return JoinTokens::from_key(&key, trust_domain)
            .with_context(|| format!("{} is not a usable join-token key", path.display()));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tokens = JoinTokens::generate(trust_domain).context("cannot generate a join-token key")?;
    std::fs::write(&path, tokens.key_bytes()).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict {}", path.display()))?;
    }
    Ok(tokens)
}

/// Reads an existing join-token key (for `kem join-token`).
pub fn existing_join_key(settings: &Settings) -> anyhow::Result<JoinTokens> {
    let path = settings.ca_dir.join(JOIN_TOKEN_KEY_FILE);
    let key = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {}: run `kem identity` (or `kem up`) once to create the CA, or point --ca-dir at it",
            path.display()
        )
    })?;
    JoinTokens::from_key(&key, &settings.trust_domain)
        .with_context(|| format!("{} is not a usable join-token key", path.display()))
}
