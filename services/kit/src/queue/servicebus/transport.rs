//! The `azure_core::HttpClient` the Service Bus crate sends through: reqwest 0.13 on rustls with
//! the ring provider (azure_core's own reqwest 0.12 backend is not compiled in), and the place
//! where a custom endpoint takes effect.
//!
//! The crate builds every URL as `https://<namespace>.servicebus.windows.net/...` and signs that
//! URL in its SAS token. With a custom endpoint (a local contract server, a proxy) the transport
//! sends the request to the endpoint instead, keeping path, query and headers: the signature still
//! names the Azure resource, as the server expects. Requests for any other host are refused, so a
//! `Location` header cannot send a signed request elsewhere.

use std::sync::Arc;
use std::time::Duration;

use azure_core::error::{Error, ErrorKind};
use azure_core::headers::{HeaderName, HeaderValue, Headers};
use azure_core::{Body, Request, Response, StatusCode, Url};

use super::config::ServiceBusConfigError;

/// reqwest behind the crate's `HttpClient` trait.
#[derive(Debug)]
pub(crate) struct Transport {
    client: reqwest::Client,
    /// `<namespace>.servicebus.windows.net`, the only host requests may be for.
    azure_host: String,
    /// Where requests really go, when not to Azure.
    endpoint: Option<Url>,
    /// Deadline of one call, on top of the server-side wait of a receive.
    request_timeout: Duration,
}

impl Transport {
    pub(crate) fn new(
        namespace: &str,
        endpoint: Option<Url>,
        request_timeout: Duration,
    ) -> Result<Self, ServiceBusConfigError> {
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(client_tls()?)
            .connect_timeout(request_timeout)
            .user_agent(concat!("kem-kit/", env!("CARGO_PKG_VERSION")));
        if endpoint.is_some() {
            // A custom endpoint is local (contract server, emulator, sidecar): no egress proxy.
            builder = builder.no_proxy();
        }
        let client = builder.build().map_err(|e| ServiceBusConfigError::Client(error_chain(&e)))?;
        Ok(Transport { client, azure_host: format!("{namespace}.servicebus.windows.net"), endpoint, request_timeout })
    }

    /// Where a request the crate built for `url` is sent.
    fn route(&self, url: &Url) -> azure_core::Result<Url> {
        let host = url.host_str().unwrap_or_default();
        if !host.eq_ignore_ascii_case(&self.azure_host) {
            return Err(Error::with_message(ErrorKind::Other, || {
                format!("refusing to send a signed Service Bus request to {host:?}, not {}", self.azure_host)
            }));
        }
        let Some(endpoint) = &self.endpoint else { return Ok(url.clone()) };
        let mut routed = endpoint.clone();
        let prefix = endpoint.path().trim_end_matches('/');
        routed.set_path(&format!("{prefix}{}", url.path()));
        routed.set_query(url.query());
        Ok(routed)
    }

    /// A receive asks the server to hold the call for `timeout` seconds; allow for that.
    fn timeout_for(&self, url: &Url) -> Duration {
        let server_wait = url
            .query_pairs()
            .find(|(k, _)| k == "timeout")
            .and_then(|(_, v)| v.parse::<u64>().ok())
            .map_or(Duration::ZERO, Duration::from_secs);
        self.request_timeout + server_wait
    }
}

#[async_trait::async_trait]
impl azure_core::HttpClient for Transport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<Response> {
        let url = self.route(request.url())?;
        let method = reqwest::Method::from_bytes(request.method().as_ref().as_bytes())
            .map_err(|e| Error::full(ErrorKind::DataConversion, e, "unsupported HTTP method"))?;
        let mut builder = self.client.request(method, url).timeout(self.timeout_for(request.url()));
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        builder = match request.body() {
            Body::Bytes(bytes) => builder.body(bytes.clone()),
            Body::SeekableStream(_) => {
                return Err(Error::message(
                    ErrorKind::Other,
                    "streamed bodies are not used by the Service Bus adapter",
                ));
            }
        };
        let response = builder.send().await.map_err(|e| Error::message(ErrorKind::Io, error_chain(&e)))?;
        let status = response.status().as_u16();
        let status = StatusCode::try_from(status)
            .map_err(|_| Error::with_message(ErrorKind::DataConversion, || format!("invalid HTTP status {status}")))?;
        let mut headers = Headers::new();
        for (name, value) in response.headers() {
            match value.to_str() {
                Ok(value) => {
                    headers.insert(HeaderName::from(name.as_str().to_owned()), HeaderValue::from(value.to_owned()))
                }
                Err(_) => tracing::debug!(header = %name, "dropping a non-ASCII Service Bus response header"),
            }
        }
        // Bodies are single messages (at most a few MiB): collect them, then hand them over as the
        // one-chunk stream azure_core expects.
        let body = response.bytes().await.map_err(|e| Error::message(ErrorKind::Io, error_chain(&e)))?;
        let stream = futures_util::stream::once(futures_util::future::ready(Ok(body)));
        Ok(Response::new(status, headers, Box::pin(stream)))
    }
}

/// rustls with the ring provider, trusting the platform's roots (Azure's certificates are public).
fn client_tls() -> Result<rustls::ClientConfig, ServiceBusConfigError> {
    let provider = kem_mesh::tls::provider();
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| ServiceBusConfigError::Client(format!("platform trust store: {e}")))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServiceBusConfigError::Client(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // With a preconfigured TLS config, ALPN is ours to set.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

pub(crate) use kem_mesh::report::error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(endpoint: Option<&str>) -> Transport {
        let endpoint = endpoint.map(|e| Url::parse(e).expect("endpoint url"));
        Transport::new("kem-test", endpoint, Duration::from_secs(5)).expect("transport")
    }

    #[test]
    fn custom_endpoint_replaces_the_azure_host_keeping_path_and_query() {
        let t = transport(Some("http://127.0.0.1:8080/sb/"));
        let url = Url::parse("https://kem-test.servicebus.windows.net/jobs/messages/head?timeout=5").expect("url");
        assert_eq!(t.route(&url).expect("routed").as_str(), "http://127.0.0.1:8080/sb/jobs/messages/head?timeout=5");
        assert_eq!(t.timeout_for(&url), Duration::from_secs(10));
    }

    #[test]
    fn without_an_endpoint_requests_go_to_azure_and_nowhere_else() {
        let t = transport(None);
        let url = Url::parse("https://kem-test.servicebus.windows.net/jobs/messages").expect("url");
        assert_eq!(t.route(&url).expect("routed"), url);
        let elsewhere = Url::parse("https://attacker.example/jobs/messages/1/lock").expect("url");
        assert!(t.route(&elsewhere).is_err());
        assert!(transport(Some("http://127.0.0.1:1")).route(&elsewhere).is_err());
    }
}
