//! The production cache: Redis through `fred`, tuned so that a dead or slow Redis costs a request
//! at most one short command timeout, usually nothing.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fred::prelude::{
    ClientLike, Config, ConnectionConfig, Expiration, KeysInterface, Options, PerformanceConfig, ReconnectPolicy,
    TlsConnector,
};
use fred::types::config::UnresponsiveConfig;
use fred::types::{Builder, SetOptions};

use super::{Cache, CacheError, effective_ttl};
use crate::Secret;

/// How to reach Redis and how impatient to be with it.
#[derive(Debug, Clone)]
pub struct RedisCacheConfig {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS (Azure Cache for Redis
    /// listens with TLS on 6380). Cluster and sentinel URLs as `fred` accepts them.
    pub url: Secret,
    /// Prepended to every key, so services (and tests) sharing a Redis never collide, e.g.
    /// `kem:user:`.
    pub prefix: String,
    /// Deadline for one connection attempt, TLS handshake included. Connecting happens in the
    /// background, so this never delays a request.
    pub connect_timeout: Duration,
    /// Deadline for one command: what a request waits at most when Redis stops answering.
    pub command_timeout: Duration,
    /// First delay between reconnection attempts (doubling, with jitter, up to `reconnect_max`).
    pub reconnect_min: Duration,
    /// Longest delay between reconnection attempts; attempts never stop.
    pub reconnect_max: Duration,
    /// A connection with a command unanswered for this long is closed and re-established (a
    /// frozen server or a silently dropped TCP path otherwise keeps it "connected" forever).
    pub unresponsive_after: Duration,
}

impl RedisCacheConfig {
    /// Defaults: 500 ms connect, 200 ms commands, reconnect 100 ms → 5 s, unresponsive after 2 s.
    pub fn new(url: Secret, prefix: impl Into<String>) -> Self {
        RedisCacheConfig {
            url,
            prefix: prefix.into(),
            connect_timeout: Duration::from_millis(500),
            command_timeout: Duration::from_millis(200),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            unresponsive_after: Duration::from_secs(2),
        }
    }
}

/// A [`Cache`] on Redis.
///
/// Every command is sent *fail-fast*: while the client is (re)connecting, commands fail at once
/// instead of queueing, and a connected-but-silent server costs at most
/// [`command_timeout`](RedisCacheConfig::command_timeout). The connection is re-established in the
/// background, forever, with exponential backoff. Cheap to clone.
#[derive(Clone)]
pub struct RedisCache {
    client: fred::prelude::Client,
    options: Options,
    prefix: Arc<str>,
    url: Arc<str>,
}

impl RedisCache {
    /// Builds the client and starts connecting in the background; returns at once, even when
    /// Redis is down (requests are then served from their sources until it comes back). Must be
    /// called within a tokio runtime.
    pub fn connect(config: RedisCacheConfig) -> Result<Self, CacheError> {
        let redacted = config.url.redacted();
        let (plain_url, tls) = strip_tls_scheme(config.url.expose());
        let mut fred_config = Config::from_url(&plain_url)
            .map_err(|e| CacheError::Config { reason: format!("Redis URL {redacted}: {e}") })?;
        // Retry the very first connection like any later one: a service must start while Redis
        // is down.
        fred_config.fail_fast = false;
        if tls {
            let mut tls = crate::external::tls_client_config(None)
                .map_err(|reason| CacheError::Config { reason: format!("TLS for Redis {redacted}: {reason}") })?;
            tls.alpn_protocols.clear(); // RESP has no ALPN identifier
            fred_config.tls = Some(TlsConnector::from(tls).into());
        }
        let millis = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1);
        let policy = ReconnectPolicy::new_exponential(0, millis(config.reconnect_min), millis(config.reconnect_max), 2);
        let connection = ConnectionConfig {
            connection_timeout: config.connect_timeout,
            internal_command_timeout: config.connect_timeout,
            max_command_attempts: 1,
            unresponsive: UnresponsiveConfig {
                max_timeout: Some(config.unresponsive_after),
                interval: (config.unresponsive_after / 4).max(Duration::from_millis(10)),
            },
            ..ConnectionConfig::default()
        };
        let performance =
            PerformanceConfig { default_command_timeout: config.command_timeout, ..PerformanceConfig::default() };
        let client = Builder::from_config(fred_config)
            .set_policy(policy)
            .set_connection_config(connection)
            .set_performance_config(performance)
            .build()
            .map_err(|e| CacheError::Config { reason: format!("Redis client for {redacted}: {e}") })?;
        // The connection task lives as long as the client; its handle is not needed.
        drop(client.connect());
        let options = Options {
            fail_fast: true,
            timeout: Some(config.command_timeout),
            max_attempts: Some(1),
            ..Options::default()
        };
        Ok(RedisCache { client, options, prefix: config.prefix.into(), url: redacted.into() })
    }

    /// Whether the client is connected right now.
    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    /// Waits up to `within` for the connection; `false` if Redis is still unreachable. Startup code
    /// may log or report readiness with it; the cache works (degraded) either way.
    pub async fn wait_connected(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if self.client.is_connected() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Closes the connection and stops reconnecting (waiting at most a second for Redis).
    pub async fn close(&self) {
        match tokio::time::timeout(Duration::from_secs(1), self.client.quit()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(redis = %self.url, error = %e, "QUIT failed while closing the cache client"),
            Err(_) => tracing::debug!(redis = %self.url, "QUIT unanswered while closing the cache client"),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn error(&self, operation: &'static str, key: &str, e: fred::error::Error) -> CacheError {
        CacheError::Backend { backend: "redis", operation, key: key.to_owned(), reason: format!("{e} ({})", self.url) }
    }
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("url", &self.url)
            .field("prefix", &self.prefix)
            .field("connected", &self.client.is_connected())
            .finish()
    }
}

#[async_trait::async_trait]
impl Cache for RedisCache {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, CacheError> {
        self.client.with_options(&self.options).get(self.key(key)).await.map_err(|e| self.error("GET", key, e))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Duration) -> Result<(), CacheError> {
        let millis = i64::try_from(effective_ttl(ttl).as_millis()).unwrap_or(i64::MAX);
        self.client
            .with_options(&self.options)
            .set::<(), _, _>(self.key(key), value, Some(Expiration::PX(millis)), None, false)
            .await
            .map_err(|e| self.error("SET", key, e))
    }

    /// `SET key value PX ttl NX`: one atomic command, so of any number of concurrent claims
    /// (on any number of replicas) exactly one wins.
    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Duration) -> Result<bool, CacheError> {
        let millis = i64::try_from(effective_ttl(ttl).as_millis()).unwrap_or(i64::MAX);
        let reply: Option<String> = self
            .client
            .with_options(&self.options)
            .set(self.key(key), value, Some(Expiration::PX(millis)), Some(SetOptions::NX), false)
            .await
            .map_err(|e| self.error("SET NX", key, e))?;
        Ok(reply.is_some())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.client
            .with_options(&self.options)
            .del::<i64, _>(self.key(key))
            .await
            .map(drop)
            .map_err(|e| self.error("DEL", key, e))
    }
}

/// `rediss…://` → (`redis…://`, true): the TLS configuration is ours (ring provider, platform
/// roots), not the one `fred` would derive from the scheme.
fn strip_tls_scheme(url: &str) -> (String, bool) {
    for (tls, plain) in [("rediss", "redis"), ("valkeys", "valkey")] {
        if let Some(rest) = url.strip_prefix(tls)
            && (rest.starts_with("://") || rest.starts_with('-'))
        {
            return (format!("{plain}{rest}"), true);
        }
    }
    (url.to_owned(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_schemes_are_detected_and_stripped() {
        assert_eq!(strip_tls_scheme("rediss://:pw@h:6380/0"), ("redis://:pw@h:6380/0".to_owned(), true));
        assert_eq!(strip_tls_scheme("rediss-cluster://h:1"), ("redis-cluster://h:1".to_owned(), true));
        assert_eq!(strip_tls_scheme("redis://h:6379"), ("redis://h:6379".to_owned(), false));
        assert_eq!(strip_tls_scheme("redissomething://h"), ("redissomething://h".to_owned(), false));
    }
}
