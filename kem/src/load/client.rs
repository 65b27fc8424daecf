//! The load driver's HTTP client of the REST edge: every request is recorded under its route.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::stats::Stats;

/// A response: status (0 when none arrived) and JSON body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status, 0 for a connection error or a client timeout.
    pub status: u16,
    /// Parsed JSON body (`Null` when absent or not JSON).
    pub body: Value,
    /// The `Retry-After` the edge asked for (whole seconds), if any.
    pub retry_after: Option<Duration>,
}

impl Reply {
    /// `body[pointer]` as a string, or "".
    pub fn str(&self, pointer: &str) -> String {
        self.body.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned()
    }

    /// 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Asserts the status (tests), showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        self
    }
}

/// A client of the edge at `base`, recording into `stats`.
#[derive(Clone)]
pub struct EdgeClient {
    base: String,
    http: reqwest::Client,
    stats: Arc<Stats>,
    token: Option<String>,
    client_ip: Option<String>,
}

impl EdgeClient {
    /// A client of `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str, stats: Arc<Stats>) -> anyhow::Result<EdgeClient> {
        // reqwest is built without a default crypto provider (ring only in this tree).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        Ok(EdgeClient { base: base.trim_end_matches('/').to_owned(), http, stats, token: None, client_ip: None })
    }

    /// The same client signed in with `token`.
    pub fn signed_in(&self, token: &str) -> EdgeClient {
        EdgeClient { token: Some(token.to_owned()), ..self.clone() }
    }

    /// The same client presenting itself as `ip` through `X-Forwarded-For` (honoured only when
    /// the edge trusts this machine as a proxy, `--trusted-proxies 127.0.0.1/32`), so many
    /// simulated users are not one address to the per-IP rate limits.
    pub fn from_ip(&self, ip: String) -> EdgeClient {
        EdgeClient { client_ip: Some(ip), ..self.clone() }
    }

    /// Sends a request scheduled for `intended` and records it under `route`.
    pub async fn send_at(
        &self,
        route: &'static str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        intended: Instant,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(ip) = &self.client_ip {
            request = request.header("x-forwarded-for", ip);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let reply = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let body =
                    response.bytes().await.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or(Value::Null);
                Reply { status, body, retry_after }
            }
            Err(_) => Reply { status: 0, body: Value::Null, retry_after: None },
        };
        self.stats.record(route, reply.status, intended.elapsed());
        reply
    }

    /// The bearer token this client sends, if signed in.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// GET returning the raw body (images), recorded under `route`.
    pub async fn get_bytes(&self, route: &'static str, path: &str) -> (u16, Vec<u8>) {
        let started = Instant::now();
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let (status, bytes) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
            }
            Err(_) => (0, Vec::new()),
        };
        self.stats.record(route, status, started.elapsed());
        (status, bytes)
    }

    /// GET now.
    pub async fn get(&self, route: &'static str, path: impl Into<String>) -> Reply {
        self.send_at(route, reqwest::Method::GET, &path.into(), None, Instant::now()).await
    }

    /// POST now.
    pub async fn post(&self, route: &'static str, path: impl Into<String>, body: Value) -> Reply {
        self.send_at(route, reqwest::Method::POST, &path.into(), Some(&body), Instant::now()).await
    }
}
