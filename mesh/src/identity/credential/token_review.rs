//! Kubernetes ServiceAccount tokens, verified by the cluster's API server (TokenReview API).
//!
//! The CA does not verify the JWT itself: it asks the API server, which knows the signing keys,
//! the token's binding to a live pod, and whether it was revoked. That needs the CA's own
//! ServiceAccount to be bound to the ClusterRole `system:auth-delegator`.
//!
//! The HTTPS client uses rustls with the `ring` provider only, trusting exactly the cluster CA
//! bundle it is given. The CA's own (projected, rotating) token is re-read for every review.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use super::{CredentialError, CredentialKind, Grant, Redemption};
use crate::identity::spiffe::SpiffeId;

/// Where a pod finds the cluster CA bundle.
pub const IN_CLUSTER_CA_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

/// Where a pod finds its own (projected) ServiceAccount token.
pub const IN_CLUSTER_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The TokenReview endpoint, relative to the API server URL.
const TOKEN_REVIEW_PATH: &str = "apis/authentication.k8s.io/v1/tokenreviews";

/// Username prefix the API server gives ServiceAccounts: `system:serviceaccount:<namespace>:<name>`.
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// How much of an unexpected API server answer is quoted in an error.
const QUOTED_BODY_LEN: usize = 300;

/// How to reach the Kubernetes API server and what to ask it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenReviewConfig {
    /// The API server's base URL, e.g. `https://kubernetes.default.svc`. Must be `https`.
    pub api_server: String,
    /// The cluster CA bundle (PEM) the API server's certificate must chain to; `None` trusts the
    /// operating system's roots instead (for API servers with publicly trusted certificates).
    pub ca_pem: Option<String>,
    /// The CA's own ServiceAccount token, sent as the bearer credential. Re-read on every review
    /// because projected tokens rotate.
    pub bearer_token_path: PathBuf,
    /// The audiences a workload's token must be valid for, e.g. `["kem-identity"]`. Empty means the
    /// API server's own audience (tokens meant for the API server, not recommended).
    pub audiences: Vec<String>,
    /// The trust domain of the identities granted.
    pub trust_domain: String,
    /// Deadline for one review, connection included.
    pub timeout: Duration,
}

impl TokenReviewConfig {
    /// Default deadline for one review.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// The configuration of a CA running in a pod: API server from `KUBERNETES_SERVICE_HOST` and
    /// `KUBERNETES_SERVICE_PORT`, CA bundle and token from the standard ServiceAccount mount.
    pub fn in_cluster(trust_domain: &str, audiences: Vec<String>) -> Result<Self, TokenReviewConfigError> {
        Self::in_cluster_with(
            |name| std::env::var(name).ok(),
            Path::new(IN_CLUSTER_CA_PATH),
            Path::new(IN_CLUSTER_TOKEN_PATH),
            trust_domain,
            audiences,
        )
    }

    fn in_cluster_with(
        env: impl Fn(&str) -> Option<String>,
        ca_path: &Path,
        token_path: &Path,
        trust_domain: &str,
        audiences: Vec<String>,
    ) -> Result<Self, TokenReviewConfigError> {
        let var = |variable: &'static str| {
            env(variable).filter(|v| !v.is_empty()).ok_or(TokenReviewConfigError::NotInCluster { variable })
        };
        let host = var("KUBERNETES_SERVICE_HOST")?;
        let port = var("KUBERNETES_SERVICE_PORT")?;
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        let ca_pem = std::fs::read_to_string(ca_path).map_err(|source| TokenReviewConfigError::ReadCaBundle {
            path: ca_path.to_owned(),
            source: Arc::new(source),
        })?;
        Ok(TokenReviewConfig {
            api_server: format!("https://{host}:{port}"),
            ca_pem: Some(ca_pem),
            bearer_token_path: token_path.to_owned(),
            audiences,
            trust_domain: trust_domain.to_owned(),
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }
}

/// Why a [`TokenReviewVerifier`] could not be set up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenReviewConfigError {
    /// In-cluster configuration was asked for outside a pod.
    #[error(
        "not running in a Kubernetes pod ({variable} is not set); configure the API server URL, CA bundle and \
         token path explicitly, or use join tokens"
    )]
    NotInCluster {
        /// The environment variable missing.
        variable: &'static str,
    },
    /// The cluster CA bundle file could not be read.
    #[error("cannot read the cluster CA bundle {}: {source}; is the ServiceAccount volume mounted?", path.display())]
    ReadCaBundle {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The API server URL is unusable.
    #[error("invalid Kubernetes API server URL {url:?}: {reason}")]
    ApiServer {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA bundle holds no usable certificate.
    #[error("invalid cluster CA bundle: {reason}; pass the PEM of the cluster CA (ca.crt of the ServiceAccount mount)")]
    CaBundle {
        /// What is wrong with it.
        reason: String,
    },
    /// The trust domain is not a valid SPIFFE trust domain.
    #[error("{trust_domain:?} is not a valid trust domain: {reason}")]
    TrustDomain {
        /// The trust domain given.
        trust_domain: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The HTTPS client could not be built.
    #[error("cannot build the HTTPS client for the Kubernetes API server: {reason}")]
    Client {
        /// What failed.
        reason: String,
    },
}

/// Verifies ServiceAccount tokens with the Kubernetes TokenReview API.
#[derive(Debug, Clone)]
pub struct TokenReviewVerifier {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    bearer_token_path: PathBuf,
    audiences: Vec<String>,
    trust_domain: String,
    timeout: Duration,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenReviewRequest<'a> {
    api_version: &'static str,
    kind: &'static str,
    spec: TokenReviewSpec<'a>,
}

#[derive(Serialize)]
struct TokenReviewSpec<'a> {
    token: &'a str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    audiences: &'a [String],
}

#[derive(Deserialize)]
struct TokenReviewResponse {
    #[serde(default)]
    status: TokenReviewStatus,
}

/// Fields the API server omits when empty (`authenticated: false` included) default here.
#[derive(Deserialize, Default)]
#[serde(default)]
struct TokenReviewStatus {
    authenticated: bool,
    user: UserInfo,
    audiences: Vec<String>,
    error: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UserInfo {
    username: String,
}

impl TokenReviewVerifier {
    /// Builds the HTTPS client for `config`. Nothing is sent until the first [`verify`](Self::verify).
    pub fn new(config: TokenReviewConfig) -> Result<Self, TokenReviewConfigError> {
        SpiffeId::new(&config.trust_domain, "ns", "sa").map_err(|e| TokenReviewConfigError::TrustDomain {
            trust_domain: config.trust_domain.clone(),
            reason: e.to_string(),
        })?;
        let endpoint = endpoint(&config.api_server)?;
        let tls = client_tls(config.ca_pem.as_deref())?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.timeout)
            .timeout(config.timeout)
            // The API server is reached directly; an HTTPS_PROXY meant for egress must not see the
            // CA's bearer token.
            .no_proxy()
            .user_agent(concat!("kem-identity/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TokenReviewConfigError::Client { reason: error_chain(&e) })?;
        Ok(TokenReviewVerifier {
            client,
            endpoint,
            bearer_token_path: config.bearer_token_path,
            audiences: config.audiences,
            trust_domain: config.trust_domain,
            timeout: config.timeout,
        })
    }

    /// Asks the API server whether `token` is a valid ServiceAccount token for the configured
    /// audiences, and grants `spiffe://<trust-domain>/ns/<namespace>/sa/<name>` if so.
    pub async fn verify(&self, token: &str) -> Result<Grant, CredentialError> {
        let bearer = self.own_token().await?;
        let request = TokenReviewRequest {
            api_version: "authentication.k8s.io/v1",
            kind: "TokenReview",
            spec: TokenReviewSpec { token, audiences: &self.audiences },
        };
        let response = self
            .client
            .post(self.endpoint.clone())
            .bearer_auth(bearer)
            .json(&request)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;

        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(self.refusal(status, &body));
        }
        let review: TokenReviewResponse = response.json().await.map_err(|e| {
            if e.is_timeout() {
                self.transport_error(&e)
            } else {
                CredentialError::Unavailable {
                    reason: format!(
                        "the Kubernetes API server at {} answered the TokenReview with something that is not a \
                         TokenReview ({}); is api_server really the Kubernetes API server?",
                        self.api_server(),
                        error_chain(&e)
                    ),
                }
            }
        })?;
        self.grant(review.status, token)
    }

    /// Turns an API server verdict into a grant.
    fn grant(&self, status: TokenReviewStatus, token: &str) -> Result<Grant, CredentialError> {
        if !status.authenticated {
            let why = if status.error.is_empty() { "no reason given" } else { status.error.as_str() };
            return Err(CredentialError::Rejected {
                reason: format!("the Kubernetes API server did not authenticate the ServiceAccount token: {why}"),
            });
        }
        // A compatible audience must come back: the API server echoes the subset of the requested
        // audiences the token is valid for (an API server that ignores audiences echoes none).
        if !self.audiences.is_empty() && !status.audiences.iter().any(|a| self.audiences.contains(a)) {
            return Err(CredentialError::Rejected {
                reason: format!(
                    "the ServiceAccount token is not meant for {:?} (the API server confirmed audiences {:?}); mount \
                     a projected ServiceAccount token with audience {:?} in the workload",
                    self.audiences, status.audiences, self.audiences[0]
                ),
            });
        }
        let username = status.user.username;
        let (namespace, name) = service_account(&username).ok_or_else(|| CredentialError::Rejected {
            reason: format!(
                "the token authenticates {username:?}, which is not a ServiceAccount \
                 ({SERVICE_ACCOUNT_PREFIX}<namespace>:<name>); only workloads get identities"
            ),
        })?;
        let identity = SpiffeId::new(&self.trust_domain, namespace, name).map_err(|e| CredentialError::Rejected {
            reason: format!("ServiceAccount {namespace}/{name} cannot be named as a kem identity: {e}"),
        })?;
        Ok(Grant {
            identity,
            method: CredentialKind::KubernetesServiceAccount,
            expires_at: unverified_expiry(token),
            // Projected tokens are re-presented at every renewal and re-reviewed each time: the
            // API server, not a ledger, decides whether one is still good (bound pod alive).
            redemption: Redemption::Repeatable,
        })
    }

    /// The CA's own ServiceAccount token, read afresh: the kubelet rotates projected tokens.
    async fn own_token(&self) -> Result<String, CredentialError> {
        let path = self.bearer_token_path.display();
        let raw =
            tokio::fs::read_to_string(&self.bearer_token_path).await.map_err(|e| CredentialError::Unavailable {
                reason: format!(
                    "cannot read the identity CA's own ServiceAccount token {path}: {e}; mount a ServiceAccount token \
                 there or fix bearer_token_path"
                ),
            })?;
        let token = raw.trim();
        if token.is_empty() {
            return Err(CredentialError::Unavailable {
                reason: format!("the identity CA's own ServiceAccount token file {path} is empty"),
            });
        }
        Ok(token.to_owned())
    }

    fn api_server(&self) -> String {
        self.endpoint.origin().ascii_serialization()
    }

    fn transport_error(&self, e: &reqwest::Error) -> CredentialError {
        let api_server = self.api_server();
        let reason = if e.is_timeout() {
            format!(
                "the Kubernetes API server at {api_server} did not answer the TokenReview within {:?}",
                self.timeout
            )
        } else if e.is_connect() {
            format!(
                "cannot connect to the Kubernetes API server at {api_server} ({}); check the address, and on a \
                 certificate error that the configured CA bundle is the one that signed the API server's certificate",
                error_chain(e)
            )
        } else {
            format!("the TokenReview request to {api_server} failed: {}", error_chain(e))
        };
        CredentialError::Unavailable { reason }
    }

    fn refusal(&self, status: reqwest::StatusCode, body: &str) -> CredentialError {
        let api_server = self.api_server();
        // Kubernetes answers errors with a Status object whose `message` says it all.
        let message = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|status| status.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_else(|| body.to_owned());
        let quoted: String = message.chars().take(QUOTED_BODY_LEN).collect();
        let reason = match status.as_u16() {
            401 => format!(
                "the Kubernetes API server at {api_server} did not accept the identity CA's own ServiceAccount token \
                 from {} (HTTP 401: {quoted}); check that it is a current ServiceAccount token of this cluster, and \
                 that the CA's ServiceAccount is bound to the ClusterRole system:auth-delegator",
                self.bearer_token_path.display()
            ),
            403 => format!(
                "the identity CA's ServiceAccount may not create tokenreviews at {api_server} (HTTP 403: {quoted}); \
                 bind it to the ClusterRole system:auth-delegator with a ClusterRoleBinding"
            ),
            code => {
                format!("the Kubernetes API server at {api_server} answered the TokenReview with HTTP {code}: {quoted}")
            }
        };
        CredentialError::Unavailable { reason }
    }
}

/// `https://host[:port][/prefix]` + the TokenReview path.
fn endpoint(api_server: &str) -> Result<reqwest::Url, TokenReviewConfigError> {
    let fail = |reason: String| TokenReviewConfigError::ApiServer { url: api_server.to_owned(), reason };
    let base = reqwest::Url::parse(api_server).map_err(|e| fail(e.to_string()))?;
    if base.scheme() != "https" {
        return Err(fail(
            "it must be https: the CA sends its own ServiceAccount token and the workloads' tokens".to_owned(),
        ));
    }
    if base.host_str().is_none_or(str::is_empty) {
        return Err(fail("it has no host".to_owned()));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(fail("it must not carry a query or fragment".to_owned()));
    }
    let joined = format!("{}/{TOKEN_REVIEW_PATH}", base.as_str().trim_end_matches('/'));
    reqwest::Url::parse(&joined).map_err(|e| fail(e.to_string()))
}

/// rustls with the ring provider, trusting the cluster CA bundle (or the platform's roots).
fn client_tls(ca_pem: Option<&str>) -> Result<rustls::ClientConfig, TokenReviewConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TokenReviewConfigError::Client { reason: e.to_string() })?;
    let mut config = match ca_pem {
        Some(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| TokenReviewConfigError::CaBundle { reason: format!("bad PEM: {e}") })?;
                roots.add(cert).map_err(|e| TokenReviewConfigError::CaBundle { reason: e.to_string() })?;
            }
            if roots.is_empty() {
                return Err(TokenReviewConfigError::CaBundle { reason: "it holds no CERTIFICATE block".to_owned() });
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            let verifier = rustls_platform_verifier::Verifier::new(provider)
                .map_err(|e| TokenReviewConfigError::Client { reason: format!("platform trust store: {e}") })?;
            builder.dangerous().with_custom_certificate_verifier(Arc::new(verifier)).with_no_client_auth()
        }
    };
    // With a preconfigured TLS config, ALPN is ours to set; the API server speaks both.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// `system:serviceaccount:<namespace>:<name>` → `(namespace, name)`.
fn service_account(username: &str) -> Option<(&str, &str)> {
    let (namespace, name) = username.strip_prefix(SERVICE_ACCOUNT_PREFIX)?.split_once(':')?;
    (!namespace.is_empty() && !name.is_empty() && !name.contains(':')).then_some((namespace, name))
}

/// The `exp` claim of a JWT, read without verifying anything: informational only, the API server
/// is the authority on validity.
fn unverified_expiry(jwt: &str) -> Option<SystemTime> {
    let payload = jwt.split('.').nth(1)?;
    let payload = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    // NumericDate may be fractional; negative, NaN or huge values give no expiry.
    let exp = Duration::try_from_secs_f64(claims.get("exp")?.as_f64()?).ok()?;
    UNIX_EPOCH.checked_add(exp)
}

use crate::report::error_chain;

#[cfg(test)]
mod tests {
    //! A fake Kubernetes API server on 127.0.0.1 speaking the TokenReview contract over real
    //! HTTPS, with a certificate from a CA generated per test.

    use std::net::SocketAddr;
    use std::time::Instant;

    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use axum::{Json, Router};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use serde_json::{Value, json};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::Mutex;
    use tokio_rustls::TlsAcceptor;

    use super::*;
    use crate::identity::credential::CredentialVerifier;

    /// Tokens the fake accepts as the CA's own ServiceAccount token.
    const CA_TOKENS: [&str; 2] = ["ca-own-token-1", "ca-own-token-2"];
    const AUDIENCE: &str = "kem-identity";
    const TRUST_DOMAIN: &str = "kem.test";
    /// Expiry written into the test JWTs.
    const EXP: u64 = 4_102_444_800;

    struct TestCa {
        pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    fn test_ca(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        TestCa { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A JWT-shaped token whose payload tells the fake how to answer.
    fn jwt(scenario: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"test"}"#);
        let claims =
            json!({"iss": "https://kubernetes.default.svc", "aud": [AUDIENCE], "exp": EXP, "scenario": scenario});
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(b"not-a-real-signature"))
    }

    fn scenario_of(token: &str) -> String {
        unverified_claims(token).and_then(|c| c["scenario"].as_str().map(str::to_owned)).unwrap_or_default()
    }

    fn unverified_claims(token: &str) -> Option<Value> {
        let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
        serde_json::from_slice(&payload).ok()
    }

    /// What the fake saw.
    #[derive(Clone, Default)]
    struct Fake {
        bearers: Arc<Mutex<Vec<String>>>,
    }

    fn review_answer(status: Value) -> Response {
        let body = json!({
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": {},
            "status": status,
        });
        (StatusCode::CREATED, Json(body)).into_response()
    }

    fn api_status(code: StatusCode, message: &str) -> Response {
        let body = json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code.as_u16(),
        });
        (code, Json(body)).into_response()
    }

    async fn token_review(State(fake): State<Fake>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_owned();
        fake.bearers.lock().await.push(bearer.clone());
        if !CA_TOKENS.contains(&bearer.as_str()) {
            return api_status(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        let Some(token) = body["spec"]["token"].as_str() else {
            return api_status(StatusCode::BAD_REQUEST, "spec.token is missing");
        };
        if body["apiVersion"] != "authentication.k8s.io/v1"
            || body["kind"] != "TokenReview"
            || body["spec"]["audiences"] != json!([AUDIENCE])
        {
            return api_status(StatusCode::BAD_REQUEST, &format!("unexpected TokenReview {body}"));
        }
        let participation = json!({
            "username": "system:serviceaccount:kem:participation", "uid": "0b5c", "groups": ["system:serviceaccounts"],
        });
        match scenario_of(token).as_str() {
            "participation" => {
                review_answer(json!({"authenticated": true, "user": participation, "audiences": [AUDIENCE]}))
            }
            "wrong-audience" => review_answer(json!({"authenticated": true, "user": participation})),
            "human" => review_answer(
                json!({"authenticated": true, "user": {"username": "kubernetes-admin"}, "audiences": [AUDIENCE]}),
            ),
            "forbidden" => api_status(
                StatusCode::FORBIDDEN,
                "tokenreviews.authentication.k8s.io is forbidden: User \"system:serviceaccount:kem:identity\" \
                 cannot create resource \"tokenreviews\"",
            ),
            "broken" => api_status(StatusCode::INTERNAL_SERVER_ERROR, "etcdserver: request timed out"),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                review_answer(json!({"authenticated": true, "user": participation, "audiences": [AUDIENCE]}))
            }
            // Kubernetes omits `authenticated` when it is false.
            _ => review_answer(json!({
                "user": {}, "error": "[invalid bearer token, square/go-jose: error in cryptographic primitive]",
            })),
        }
    }

    /// Accepts TCP connections and completes the TLS handshake; failed handshakes are dropped.
    struct TlsListener {
        tcp: TcpListener,
        acceptor: TlsAcceptor,
    }

    impl axum::serve::Listener for TlsListener {
        type Io = tokio_rustls::server::TlsStream<TcpStream>;
        type Addr = SocketAddr;

        async fn accept(&mut self) -> (Self::Io, Self::Addr) {
            loop {
                let Ok((tcp, addr)) = self.tcp.accept().await else { continue };
                if let Ok(tls) = self.acceptor.accept(tcp).await {
                    return (tls, addr);
                }
            }
        }

        fn local_addr(&self) -> std::io::Result<SocketAddr> {
            self.tcp.local_addr()
        }
    }

    /// Starts the fake with a `localhost`/127.0.0.1 certificate issued by `ca`; returns its URL.
    async fn start_fake(ca: &TestCa) -> (String, Fake) {
        let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("params");
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &ca.issuer).expect("server certificate");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("server TLS config");
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = tcp.local_addr().expect("local addr").port();
        let fake = Fake::default();
        let app = Router::new().route(&format!("/{TOKEN_REVIEW_PATH}"), post(token_review)).with_state(fake.clone());
        let listener = TlsListener { tcp, acceptor: TlsAcceptor::from(Arc::new(tls)) };
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("https://127.0.0.1:{port}"), fake)
    }

    struct Harness {
        verifier: TokenReviewVerifier,
        fake: Fake,
        own_token: tempfile::NamedTempFile,
    }

    fn config(api_server: &str, ca_pem: &str, own_token: &Path, timeout: Duration) -> TokenReviewConfig {
        TokenReviewConfig {
            api_server: api_server.to_owned(),
            ca_pem: Some(ca_pem.to_owned()),
            bearer_token_path: own_token.to_owned(),
            audiences: vec![AUDIENCE.to_owned()],
            trust_domain: TRUST_DOMAIN.to_owned(),
            timeout,
        }
    }

    async fn harness(timeout: Duration) -> Harness {
        let ca = test_ca("kubernetes");
        let (url, fake) = start_fake(&ca).await;
        let own_token = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(own_token.path(), format!("{}\n", CA_TOKENS[0])).expect("write own token");
        let verifier = TokenReviewVerifier::new(config(&url, &ca.pem, own_token.path(), timeout)).expect("verifier");
        Harness { verifier, fake, own_token }
    }

    fn unavailable_reason(result: Result<Grant, CredentialError>) -> String {
        match result {
            Err(err @ CredentialError::Unavailable { .. }) => {
                assert_eq!(err.code(), tonic::Code::Unavailable);
                err.to_string()
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }

    fn rejected_reason(result: Result<Grant, CredentialError>) -> String {
        match result {
            Err(err @ CredentialError::Rejected { .. }) => {
                assert_eq!(err.code(), tonic::Code::Unauthenticated);
                err.to_string()
            }
            other => panic!("expected Rejected, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_service_account_token_grants_its_spiffe_id() {
        let h = harness(TokenReviewConfig::DEFAULT_TIMEOUT).await;
        let grant = h.verifier.verify(&jwt("participation")).await.expect("authenticated");
        assert_eq!(grant.identity, SpiffeId::new(TRUST_DOMAIN, "kem", "participation").expect("id"));
        assert_eq!(grant.identity.to_string(), "spiffe://kem.test/ns/kem/sa/participation");
        assert_eq!(grant.method, CredentialKind::KubernetesServiceAccount);
        assert_eq!(grant.expires_at, Some(UNIX_EPOCH + Duration::from_secs(EXP)));
        assert_eq!(*h.fake.bearers.lock().await, vec![CA_TOKENS[0].to_owned()], "own token sent, newline trimmed");
    }

    #[tokio::test]
    async fn the_credential_verifier_sends_jwts_to_the_api_server() {
        let h = harness(TokenReviewConfig::DEFAULT_TIMEOUT).await;
        let verifier = CredentialVerifier::new(None, Some(h.verifier.clone()));
        let grant = verifier.verify(&jwt("participation")).await.expect("authenticated");
        assert_eq!(grant.identity.service(), "participation");
        let err = verifier.verify("kemjt1.abc.def").await.expect_err("no join tokens here");
        assert_eq!(err, CredentialError::NotConfigured { kind: CredentialKind::JoinToken });
    }

    #[tokio::test]
    async fn an_unknown_token_is_rejected_with_the_api_server_reason() {
        let h = harness(TokenReviewConfig::DEFAULT_TIMEOUT).await;
        let reason = rejected_reason(h.verifier.verify(&jwt("stolen")).await);
        assert!(reason.contains("invalid bearer token"), "{reason}");
    }

    #[tokio::test]
    async fn a_token_for_another_audience_is_rejected() {
        let h = harness(TokenReviewConfig::DEFAULT_TIMEOUT).await;
        let reason = rejected_reason(h.verifier.verify(&jwt("wrong-audience")).await);
        assert!(reason.contains("not meant for") && reason.contains(AUDIENCE), "{reason}");
    }

    #[tokio::test]
    async fn a_user_that_is_not_a_service_account_is_rejected() {
        let h = harness(TokenReviewConfig::DEFAULT_TIMEOUT).await;
        let reason = rejected_reason(h.verifier.verify(&jwt("human")).await);
        assert!(reason.contains("kubernetes-admin") && reason.contains("not a ServiceAccount"), "{reason}");
    }

    #[tokio::test]
    async fn a_forbidden_review_is_unavailable_and_names_auth_delegator() {
        let h = harness(TokenReviewConfig::DEFAULT_TIMEOUT).await;
        let reason = unavailable_reason(h.verifier.verify(&jwt("forbidden")).await);
        assert!(reason.contains("system:auth-delegator") && reason.contains("403"), "{reason}");
    }

    #[tokio::test]
    async fn an_own_token_the_api_server_refuses_is_unavailable() {
        let h = harness(TokenReviewConfig::DEFAULT_TIMEOUT).await;
        std::fs::write(h.own_token.path(), "revoked").expect("write own token");
        let reason = unavailable_reason(h.verifier.verify(&jwt("participation")).await);
        assert!(reason.contains("401") && reason.contains("system:auth-delegator"), "{reason}");
    }

    #[tokio::test]
    async fn a_failing_api_server_is_unavailable() {
        let h = harness(TokenReviewConfig::DEFAULT_TIMEOUT).await;
        let reason = unavailable_reason(h.verifier.verify(&jwt("broken")).await);
        assert!(reason.contains("500") && reason.contains("etcdserver"), "{reason}");
    }

    #[tokio::test]
    async fn a_slow_api_server_times_out_as_unavailable() {
        let timeout = Duration::from_millis(300);
        let h = harness(timeout).await;
        let started = Instant::now();
        let reason = unavailable_reason(h.verifier.verify(&jwt("slow")).await);
        assert!(started.elapsed() < Duration::from_secs(5), "the client waited {:?}", started.elapsed());
        assert!(reason.contains("did not answer") && reason.contains("300ms"), "{reason}");
    }

    #[tokio::test]
    async fn an_api_server_certificate_from_another_ca_is_unavailable() {
        let (url, fake) = start_fake(&test_ca("kubernetes")).await;
        let own_token = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(own_token.path(), CA_TOKENS[0]).expect("write own token");
        let stranger = test_ca("someone else");
        let verifier = TokenReviewVerifier::new(config(&url, &stranger.pem, own_token.path(), Duration::from_secs(5)))
            .expect("verifier");

        let reason = unavailable_reason(verifier.verify(&jwt("participation")).await);
        assert!(reason.contains("cannot connect") && reason.contains("CA bundle"), "{reason}");
        assert!(fake.bearers.lock().await.is_empty(), "no request may reach an untrusted server");
    }

    #[tokio::test]
    async fn an_unreachable_api_server_is_unavailable() {
        let closed = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("https://127.0.0.1:{}", closed.local_addr().expect("addr").port());
        drop(closed);
        let own_token = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(own_token.path(), CA_TOKENS[0]).expect("write own token");
        let ca = test_ca("kubernetes");
        let verifier = TokenReviewVerifier::new(config(&url, &ca.pem, own_token.path(), Duration::from_secs(5)))
            .expect("verifier");
        let reason = unavailable_reason(verifier.verify(&jwt("participation")).await);
        assert!(reason.contains("cannot connect"), "{reason}");
    }

    #[tokio::test]
    async fn the_own_token_is_reread_on_every_review() {
        let h = harness(TokenReviewConfig::DEFAULT_TIMEOUT).await;
        h.verifier.verify(&jwt("participation")).await.expect("first review");
        std::fs::write(h.own_token.path(), CA_TOKENS[1]).expect("rotate own token");
        h.verifier.verify(&jwt("participation")).await.expect("second review");
        assert_eq!(*h.fake.bearers.lock().await, vec![CA_TOKENS[0].to_owned(), CA_TOKENS[1].to_owned()]);
    }

    #[tokio::test]
    async fn a_missing_own_token_is_unavailable_and_sends_nothing() {
        let h = harness(TokenReviewConfig::DEFAULT_TIMEOUT).await;
        let path = h.own_token.path().to_owned();
        drop(h.own_token);
        let reason = unavailable_reason(h.verifier.verify(&jwt("participation")).await);
        assert!(reason.contains(&path.display().to_string()), "{reason}");
        assert!(h.fake.bearers.lock().await.is_empty());
    }

    #[test]
    fn in_cluster_configuration_comes_from_the_environment() {
        let ca = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(ca.path(), "PEM").expect("write");
        let env = |host: &'static str| {
            move |name: &str| match name {
                "KUBERNETES_SERVICE_HOST" => Some(host.to_owned()),
                "KUBERNETES_SERVICE_PORT" => Some("443".to_owned()),
                _ => None,
            }
        };
        let token = Path::new(IN_CLUSTER_TOKEN_PATH);
        let config =
            TokenReviewConfig::in_cluster_with(env("10.96.0.1"), ca.path(), token, TRUST_DOMAIN, vec![AUDIENCE.into()])
                .expect("in cluster");
        assert_eq!(config.api_server, "https://10.96.0.1:443");
        assert_eq!(config.ca_pem.as_deref(), Some("PEM"));
        assert_eq!(config.bearer_token_path, token);
        assert_eq!(config.timeout, TokenReviewConfig::DEFAULT_TIMEOUT);

        let v6 = TokenReviewConfig::in_cluster_with(env("fd00::1"), ca.path(), token, TRUST_DOMAIN, vec![])
            .expect("in cluster");
        assert_eq!(v6.api_server, "https://[fd00::1]:443");

        let outside = TokenReviewConfig::in_cluster_with(|_| None, ca.path(), token, TRUST_DOMAIN, vec![]);
        assert!(matches!(outside, Err(TokenReviewConfigError::NotInCluster { variable: "KUBERNETES_SERVICE_HOST" })));
        let no_mount = TokenReviewConfig::in_cluster_with(
            env("10.96.0.1"),
            Path::new("/nonexistent/ca.crt"),
            token,
            TRUST_DOMAIN,
            vec![],
        );
        assert!(matches!(no_mount, Err(TokenReviewConfigError::ReadCaBundle { .. })));
    }

    #[test]
    fn unusable_configuration_is_refused_up_front() {
        let ca = test_ca("kubernetes");
        let token = Path::new("/tmp/token");
        let timeout = TokenReviewConfig::DEFAULT_TIMEOUT;
        for url in ["http://127.0.0.1:6443", "not a url", "https://k8s.example/?x=1"] {
            let err = TokenReviewVerifier::new(config(url, &ca.pem, token, timeout)).expect_err("bad URL");
            assert!(matches!(err, TokenReviewConfigError::ApiServer { .. }), "{url}: {err}");
        }
        let err = TokenReviewVerifier::new(config("https://k8s.example", "no PEM here", token, timeout))
            .expect_err("empty CA bundle");
        assert!(matches!(err, TokenReviewConfigError::CaBundle { .. }), "{err}");
        let mut bad_domain = config("https://k8s.example", &ca.pem, token, timeout);
        bad_domain.trust_domain = "Kem Test".to_owned();
        let err = TokenReviewVerifier::new(bad_domain).expect_err("bad trust domain");
        assert!(matches!(err, TokenReviewConfigError::TrustDomain { .. }), "{err}");
    }

    #[test]
    fn the_endpoint_keeps_a_path_prefix() {
        let url = endpoint("https://proxy.example:8443/k8s/").expect("valid");
        assert_eq!(url.as_str(), "https://proxy.example:8443/k8s/apis/authentication.k8s.io/v1/tokenreviews");
        let url = endpoint("https://kubernetes.default.svc").expect("valid");
        assert_eq!(url.as_str(), "https://kubernetes.default.svc/apis/authentication.k8s.io/v1/tokenreviews");
    }

    #[test]
    fn service_account_usernames() {
        assert_eq!(service_account("system:serviceaccount:kem:participation"), Some(("kem", "participation")));
        for not_sa in ["kubernetes-admin", "system:serviceaccount:kem", "system:serviceaccount::x", "system:node:n1"] {
            assert_eq!(service_account(not_sa), None, "{not_sa}");
        }
    }

    #[test]
    fn expiry_is_read_from_the_jwt_without_verifying_it() {
        assert_eq!(unverified_expiry(&jwt("x")), Some(UNIX_EPOCH + Duration::from_secs(EXP)));
        let no_exp = format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(br#"{"sub":"x"}"#));
        assert_eq!(unverified_expiry(&no_exp), None);
        let negative = format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(br#"{"exp":-5}"#));
        assert_eq!(unverified_expiry(&negative), None);
        assert_eq!(unverified_expiry("not a jwt"), None);
    }
}
