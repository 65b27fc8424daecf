//! Where the Service Bus namespace is and how to sign requests to it.

use std::time::Duration;

use azure_core::Url;

use crate::Secret;

/// The host suffix the crate addresses (public Azure cloud).
const AZURE_HOST_SUFFIX: &str = ".servicebus.windows.net";

/// How to reach one Service Bus namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceBusConfig {
    /// Namespace name: the `<ns>` of `<ns>.servicebus.windows.net`.
    pub namespace: String,
    /// Shared access policy name (`SharedAccessKeyName`), e.g. `RootManageSharedAccessKey`.
    pub key_name: String,
    /// Shared access key (`SharedAccessKey`) the SAS tokens are signed with.
    pub key: Secret,
    /// Send requests here instead of `https://<ns>.servicebus.windows.net` (e.g.
    /// `http://127.0.0.1:5300` for a local contract server); SAS tokens still name the Azure URL.
    pub endpoint: Option<String>,
    /// The queues' `LockDuration`. Service Bus REST takes the lock duration from the queue, not
    /// from the receive call, so this is what a renewed lock lasts; it must match the queues.
    pub lock_duration: Duration,
    /// Deliveries after which a message is dead-lettered instead of handed out. Keep the queues'
    /// own `MaxDeliveryCount` higher, or Service Bus dead-letters first (into `$DeadLetterQueue`).
    pub max_deliveries: u32,
    /// Deadline of one HTTP call (a receive gets its server-side wait on top).
    pub request_timeout: Duration,
}

impl ServiceBusConfig {
    /// Service Bus's default `LockDuration`.
    pub const DEFAULT_LOCK_DURATION: Duration = Duration::from_secs(60);
    /// Service Bus's default `MaxDeliveryCount` is 10; dead-letter before it.
    pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
    /// Default deadline of one HTTP call.
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

    /// A namespace, shared access policy name and key.
    pub fn new(namespace: impl Into<String>, key_name: impl Into<String>, key: Secret) -> Self {
        ServiceBusConfig {
            namespace: namespace.into(),
            key_name: key_name.into(),
            key,
            endpoint: None,
            lock_duration: Self::DEFAULT_LOCK_DURATION,
            max_deliveries: Self::DEFAULT_MAX_DELIVERIES,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Parses `Endpoint=sb://<ns>.servicebus.windows.net/;SharedAccessKeyName=...;SharedAccessKey=...`
    /// (as the Azure portal shows it). `EntityPath` and other keys are ignored; a pre-signed
    /// `SharedAccessSignature` is not supported (tokens expire, the adapter signs its own).
    pub fn from_connection_string(connection_string: &Secret) -> Result<Self, ServiceBusConfigError> {
        let (mut endpoint, mut key_name, mut key) = (None, None, None);
        for part in connection_string.expose().split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((name, value)) = part.split_once('=') else { continue };
            match name.trim().to_ascii_lowercase().as_str() {
                "endpoint" => endpoint = Some(value.trim()),
                "sharedaccesskeyname" => key_name = Some(value.trim()),
                "sharedaccesskey" => key = Some(value.trim()),
                "sharedaccesssignature" => return Err(ServiceBusConfigError::PresignedToken),
                _ => {}
            }
        }
        let endpoint = endpoint.filter(|v| !v.is_empty()).ok_or(ServiceBusConfigError::Missing("Endpoint"))?;
        let key_name =
            key_name.filter(|v| !v.is_empty()).ok_or(ServiceBusConfigError::Missing("SharedAccessKeyName"))?;
        let key = key.filter(|v| !v.is_empty()).ok_or(ServiceBusConfigError::Missing("SharedAccessKey"))?;
        let host = endpoint
            .split_once("://")
            .map_or(endpoint, |(_, rest)| rest)
            .split(['/', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let namespace = host
            .strip_suffix(AZURE_HOST_SUFFIX)
            .ok_or_else(|| ServiceBusConfigError::UnsupportedEndpoint { endpoint: endpoint.to_owned() })?;
        let config = Self::new(namespace, key_name, Secret::new(key));
        config.validate_namespace()?;
        Ok(config)
    }

    /// Sends requests to `endpoint` instead of Azure (see [`endpoint`](Self::endpoint)).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Sets [`lock_duration`](Self::lock_duration).
    pub fn with_lock_duration(mut self, lock_duration: Duration) -> Self {
        self.lock_duration = lock_duration;
        self
    }

    /// Sets [`max_deliveries`](Self::max_deliveries).
    pub fn with_max_deliveries(mut self, max_deliveries: u32) -> Self {
        self.max_deliveries = max_deliveries;
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn with_request_timeout(mut self, request_timeout: Duration) -> Self {
        self.request_timeout = request_timeout;
        self
    }

    fn validate_namespace(&self) -> Result<(), ServiceBusConfigError> {
        let ns = &self.namespace;
        let valid = !ns.is_empty() && ns.len() <= 63 && ns.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if valid { Ok(()) } else { Err(ServiceBusConfigError::Namespace(ns.clone())) }
    }

    /// Checks the configuration; returns the parsed custom endpoint.
    pub(crate) fn validate(&self) -> Result<Option<Url>, ServiceBusConfigError> {
        self.validate_namespace()?;
        if self.key_name.is_empty() || self.key.expose().is_empty() {
            return Err(ServiceBusConfigError::Missing("SharedAccessKeyName/SharedAccessKey"));
        }
        if self.max_deliveries == 0 {
            return Err(ServiceBusConfigError::MaxDeliveries);
        }
        let Some(endpoint) = &self.endpoint else { return Ok(None) };
        let bad = |reason: &str| ServiceBusConfigError::CustomEndpoint {
            endpoint: endpoint.clone(),
            reason: reason.to_owned(),
        };
        let url = Url::parse(endpoint).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("it must be an http:// or https:// URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("it must not have a query or fragment"));
        }
        Ok(Some(url))
    }
}

/// Why a Service Bus configuration cannot be used. Never quotes the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceBusConfigError {
    /// A required part is absent.
    #[error("the Service Bus connection string has no {0}")]
    Missing(&'static str),
    /// The connection string carries a pre-signed token instead of a key.
    #[error(
        "Service Bus connection strings with a SharedAccessSignature are not supported: configure \
         SharedAccessKeyName and SharedAccessKey"
    )]
    PresignedToken,
    /// The endpoint is not in the public Azure cloud, the only one the REST crate addresses.
    #[error(
        "Service Bus endpoint {endpoint} is not sb://<namespace>.servicebus.windows.net/; for a local server or \
         emulator, configure the namespace and a custom endpoint instead"
    )]
    UnsupportedEndpoint {
        /// The endpoint given.
        endpoint: String,
    },
    /// The namespace name is not a DNS label.
    #[error("invalid Service Bus namespace {0:?}: letters, digits and '-', at most 63")]
    Namespace(String),
    /// `max_deliveries` of zero would dead-letter every message.
    #[error("max_deliveries must be at least 1")]
    MaxDeliveries,
    /// The custom endpoint is not a usable base URL.
    #[error("invalid custom Service Bus endpoint {endpoint}: {reason}")]
    CustomEndpoint {
        /// The endpoint given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (TLS roots, ...).
    #[error("cannot build the Service Bus HTTP client: {0}")]
    Client(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_portal_connection_string() {
        let cs = Secret::new(
            "Endpoint=sb://kem-prod.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;\
             SharedAccessKey=abc+def/ghi=;EntityPath=jobs",
        );
        let config = ServiceBusConfig::from_connection_string(&cs).expect("valid");
        assert_eq!(config.namespace, "kem-prod");
        assert_eq!(config.key_name, "RootManageSharedAccessKey");
        assert_eq!(config.key.expose(), "abc+def/ghi=");
        assert_eq!(config.validate().expect("valid"), None);
    }

    #[test]
    fn rejects_what_it_cannot_use_without_quoting_the_key() {
        let err = |cs: &str| ServiceBusConfig::from_connection_string(&Secret::new(cs)).expect_err("invalid");
        assert_eq!(err("SharedAccessKeyName=a;SharedAccessKey=s3cret"), ServiceBusConfigError::Missing("Endpoint"));
        let e = err("Endpoint=sb://localhost;SharedAccessKeyName=a;SharedAccessKey=s3cret");
        assert!(matches!(e, ServiceBusConfigError::UnsupportedEndpoint { .. }));
        assert!(!e.to_string().contains("s3cret"));
        assert_eq!(
            err("Endpoint=sb://x.servicebus.windows.net/;SharedAccessSignature=SharedAccessSignature sr=..."),
            ServiceBusConfigError::PresignedToken
        );
        let bad_endpoint = ServiceBusConfig::new("ns", "k", Secret::new("s")).with_endpoint("ftp://127.0.0.1");
        assert!(matches!(bad_endpoint.validate(), Err(ServiceBusConfigError::CustomEndpoint { .. })));
    }
}
