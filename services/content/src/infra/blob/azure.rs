//! Blobs in Azure Blob Storage over its REST API: `Put Blob` (block blob, `If-None-Match: *` since
//! keys are content addresses) and `Get Blob`, authorized with the account's Shared Key
//! ([`shared_key`](super::shared_key)), through the kit's provider client (timeouts, retries of
//! these idempotent calls, a circuit breaker).
//!
//! The container is provisioned with the storage account (deploy), not created here: the service's
//! key then needs no container-management rights beyond read/write of blobs.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use kem_kit::Secret;
use kem_kit::external::{
    ProviderClient, ProviderConfig, ProviderConfigError, ProviderError, ProviderResponse, Verdict,
};
use kem_mesh::breaker::BreakerConfig;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use super::shared_key::{SharedKey, Signable};
use crate::app::ports::{BlobError, BlobStore};

/// Provider name: breaker, log field, metric label.
pub const PROVIDER: &str = "azure-blob";
/// The REST API version sent in `x-ms-version`.
pub const API_VERSION: &str = "2023-11-03";

/// Where the blobs are and how to reach them.
#[derive(Debug, Clone)]
pub struct AzureBlobConfig {
    /// Storage account name.
    pub account: String,
    /// Account key (Base64, as the portal shows it).
    pub key: Secret,
    /// Container of the images.
    pub container: String,
    /// Blob service endpoint: `https://<account>.blob.core.windows.net` by default; an
    /// emulator-style `http://127.0.0.1:10000/<account>` works too.
    pub endpoint: String,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// PEM of a CA to trust instead of the platform roots (a private endpoint's CA, tests).
    pub root_ca_pem: Option<String>,
}

impl AzureBlobConfig {
    /// The default endpoint of `account`.
    pub fn default_endpoint(account: &str) -> String {
        format!("https://{account}.blob.core.windows.net")
    }
}

/// The Azure Blob Storage adapter.
#[derive(Clone)]
pub struct AzureBlobStore {
    client: ProviderClient,
    key: SharedKey,
    container: String,
    /// Path of the endpoint (empty, or `/<account>` for emulator-style endpoints).
    base_path: String,
}

impl std::fmt::Debug for AzureBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureBlobStore")
            .field("account", &self.key.account())
            .field("container", &self.container)
            .field("endpoint", &self.client.config().base_url)
            .finish()
    }
}

/// Why the adapter cannot be built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AzureBlobConfigError {
    /// The account key does not decode.
    #[error("Azure Blob Storage: {0}")]
    Key(String),
    /// The container or account name is unusable.
    #[error("Azure Blob Storage: {0}")]
    Name(String),
    /// The HTTP client settings are invalid.
    #[error(transparent)]
    Client(#[from] ProviderConfigError),
}

/// Percent-encodes a blob name segment by segment (`/` kept), leaving RFC 3986 unreserved bytes.
fn encode_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// A container name as Azure accepts it: 3–63 of lower-case letters, digits and single hyphens.
fn valid_container(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

/// The storage error code of a response: `x-ms-error-code`, else `<Code>` of the XML body.
fn error_code(response: &ProviderResponse) -> String {
    if let Some(code) = response.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()) {
        return code.to_owned();
    }
    let body = response.text_lossy();
    body.split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_owned())
        .unwrap_or_default()
}

fn error_message(response: &ProviderResponse) -> String {
    let body = response.text_lossy();
    let message = body
        .split_once("<Message>")
        .and_then(|(_, rest)| rest.split_once("</Message>"))
        .map(|(m, _)| m.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| response.detail());
    format!("{} ({message})", error_code(response))
}

/// Azure's answers: 404 BlobNotFound is an answer (absent), 409 BlobAlreadyExists after
/// `If-None-Match: *` is success (content addresses), 403 is our key, 503 ServerBusy and 500
/// OperationTimedOut are transient.
fn classify(response: &ProviderResponse) -> Option<Verdict> {
    let status = response.status();
    if status.is_success() {
        return Some(Verdict::Success);
    }
    let code = error_code(response);
    Some(match status {
        StatusCode::NOT_FOUND if code == "BlobNotFound" || code.is_empty() => Verdict::Success,
        StatusCode::NOT_FOUND => Verdict::Invalid(error_message(response)),
        StatusCode::CONFLICT if code == "BlobAlreadyExists" => Verdict::Success,
        StatusCode::PRECONDITION_FAILED if code == "ConditionNotMet" => Verdict::Success,
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Verdict::Auth(error_message(response)),
        StatusCode::TOO_MANY_REQUESTS => {
            Verdict::RateLimited { retry_after: response.retry_after(), detail: error_message(response) }
        }
        s if s.is_server_error() => {
            Verdict::Transient { retry_after: response.retry_after(), detail: error_message(response) }
        }
        _ => Verdict::Invalid(error_message(response)),
    })
}

fn blob_error(doing: String, error: ProviderError) -> BlobError {
    if error.is_transient() || matches!(error, ProviderError::BreakerOpen { .. }) {
        BlobError::unavailable(doing, error)
    } else {
        BlobError::failed(doing, error)
    }
}

fn header(name: &'static str, value: &str) -> Result<(HeaderName, HeaderValue), BlobError> {
    let value =
        HeaderValue::from_str(value).map_err(|e| BlobError::failed(format!("header {name} value {value:?}"), e))?;
    Ok((HeaderName::from_static(name), value))
}

impl AzureBlobStore {
    /// The adapter for `config`.
    pub fn new(config: &AzureBlobConfig) -> Result<AzureBlobStore, AzureBlobConfigError> {
        if config.account.is_empty() || !config.account.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
            return Err(AzureBlobConfigError::Name(format!(
                "account name {:?} must be lower-case letters and digits",
                config.account
            )));
        }
        if !valid_container(&config.container) {
            return Err(AzureBlobConfigError::Name(format!(
                "container name {:?} must be 3-63 lower-case letters, digits and single hyphens",
                config.container
            )));
        }
        let key = SharedKey::new(&config.account, config.key.expose()).map_err(AzureBlobConfigError::Key)?;
        let endpoint = config.endpoint.trim_end_matches('/').to_owned();
        let mut provider = ProviderConfig::new(PROVIDER, endpoint.clone());
        provider.timeout = config.timeout;
        provider.connect_timeout = config.timeout.min(Duration::from_secs(3));
        provider.max_attempts = 3;
        provider.deadline = config.timeout * 3 + Duration::from_secs(2);
        provider.max_body_bytes = 64 << 20;
        provider.root_ca_pem = config.root_ca_pem.clone();
        provider.breaker = BreakerConfig {
            failure_rate_threshold: 0.5,
            minimum_calls: 10,
            window: Duration::from_secs(30),
            window_buckets: 10,
            open_duration: Duration::from_secs(10),
            half_open_probes: 2,
        };
        let client = ProviderClient::new(provider)?;
        let base_path =
            reqwest::Url::parse(&endpoint).map(|url| url.path().trim_end_matches('/').to_owned()).unwrap_or_default();
        Ok(AzureBlobStore { client, key, container: config.container.clone(), base_path })
    }

    /// The provider client (breaker and counters, for metrics).
    pub fn client(&self) -> &ProviderClient {
        &self.client
    }

    /// `container/blob`, encoded, relative to the endpoint.
    fn relative(&self, key: &str) -> String {
        format!("{}/{}", self.container, encode_path(key.trim_start_matches('/')))
    }

    /// The signed headers of a request on `relative`.
    fn signed(
        &self,
        method: &str,
        relative: &str,
        standard: Vec<(&'static str, String)>,
        content_length: usize,
        extra_ms: Vec<(&'static str, String)>,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, BlobError> {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let mut ms: Vec<(String, String)> =
            vec![("x-ms-date".to_owned(), date), ("x-ms-version".to_owned(), API_VERSION.to_owned())];
        ms.extend(extra_ms.into_iter().map(|(n, v)| (n.to_owned(), v)));
        let path = format!("{}/{relative}", self.base_path);
        let authorization = self.key.authorization(&Signable {
            method,
            standard: standard.iter().map(|(n, v)| (*n, v.clone())).collect(),
            content_length: Some(content_length),
            ms_headers: ms.clone(),
            account: self.key.account(),
            path: &path,
            query: Vec::new(),
        });
        let mut headers = Vec::new();
        for (name, value) in &ms {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| BlobError::failed(format!("header name {name}"), e))?;
            let value =
                HeaderValue::from_str(value).map_err(|e| BlobError::failed(format!("header {name} value"), e))?;
            headers.push((name, value));
        }
        for (name, value) in standard {
            if name != "content-type" {
                headers.push(header(name, &value)?);
            }
        }
        let (name, mut value) = header("authorization", &authorization)?;
        value.set_sensitive(true);
        headers.push((name, value));
        Ok(headers)
    }
}

#[async_trait::async_trait]
impl BlobStore for AzureBlobStore {
    fn kind(&self) -> &'static str {
        PROVIDER
    }

    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<(), BlobError> {
        let relative = self.relative(key);
        let standard = vec![("content-type", content_type.to_owned()), ("if-none-match", "*".to_owned())];
        let headers =
            self.signed("PUT", &relative, standard, bytes.len(), vec![("x-ms-blob-type", "BlockBlob".to_owned())])?;
        let content_type = HeaderValue::from_str(content_type)
            .map_err(|e| BlobError::failed(format!("content type {content_type:?}"), e))?;
        let mut request = self.client.request(Method::PUT, &relative).body(bytes, content_type).classify(classify);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.send().await.map(drop).map_err(|e| blob_error(format!("write {relative}"), e))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        let relative = self.relative(key);
        let headers = self.signed("GET", &relative, Vec::new(), 0, Vec::new())?;
        let mut request = self.client.request(Method::GET, &relative).classify(classify);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| blob_error(format!("read {relative}"), e))?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(response.body().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated_and_paths_encoded() {
        assert!(valid_container("content-images"));
        for bad in ["ab", "Images", "a--b", "-ab", "ab-", "a_b"] {
            assert!(!valid_container(bad), "{bad}");
        }
        assert_eq!(encode_path("images/ab/x y+é.png"), "images/ab/x%20y%2B%C3%A9.png");
        let config = AzureBlobConfig {
            account: "kemacct".into(),
            key: Secret::new("not base64!"),
            container: "content-images".into(),
            endpoint: AzureBlobConfig::default_endpoint("kemacct"),
            timeout: Duration::from_secs(5),
            root_ca_pem: None,
        };
        assert!(matches!(AzureBlobStore::new(&config), Err(AzureBlobConfigError::Key(_))));
        let ok = AzureBlobConfig { key: Secret::new("a2V5"), ..config };
        let store = AzureBlobStore::new(&ok).expect("valid");
        assert_eq!(store.base_path, "");
        assert_eq!(store.relative("images/ab/c.png"), "content-images/images/ab/c.png");
    }
}
