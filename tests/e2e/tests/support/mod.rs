//! What the journeys share: a small REST client of the edge and polling.

use std::time::Duration;

use serde_json::Value;

/// A JSON client of the REST edge, optionally signed in.
#[derive(Clone)]
pub struct Rest {
    base: String,
    client: reqwest::Client,
    token: Option<String>,
}

/// A response: HTTP status and JSON body (`Value::Null` when the body is empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// `body[pointer]` as a string, or "" — e.g. `reply.str("/owner/ownerId")`.
    pub fn str(&self, pointer: &str) -> String {
        self.body.pointer(pointer).and_then(Value::as_str).unwrap_or_default().to_owned()
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.body);
        self
    }
}

impl Rest {
    /// A client of the edge at `addr`.
    pub fn new(addr: std::net::SocketAddr) -> Rest {
        // reqwest is built without a default crypto provider (ring only in this tree).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|e| panic!("cannot build the HTTP client: {e}"));
        Rest { base: format!("http://{addr}"), client, token: None }
    }

    /// The bearer token this client sends, if signed in.
    pub fn token(&self) -> Option<String> {
        self.token.clone()
    }

    /// The same client sending `Authorization: Bearer <token>`.
    pub fn signed_in(&self, token: &str) -> Rest {
        Rest { token: Some(token.to_owned()), ..self.clone() }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_else(|e| panic!("{method} {path}: reading the body: {e}"));
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, body }
    }

    /// GET returning the raw body (images).
    pub async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap_or_else(|e| panic!("GET {path}: reading the body: {e}"));
        (status, bytes.to_vec())
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    /// Polls `GET path` until `done(body)` holds (bounded: 30 s).
    pub async fn poll(&self, path: &str, done: impl Fn(&Value) -> bool) -> Reply {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let reply = self.get(path).await;
            if reply.status == 200 && done(&reply.body) {
                return reply;
            }
            assert!(tokio::time::Instant::now() < deadline, "{path} did not finish in 30 s; last: {}", reply.body);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
