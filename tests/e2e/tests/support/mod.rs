//! What the journeys share: the REST client of `kem load` (one client for the edge in this tree),
//! with assertions on its replies, and polling.

use std::sync::Arc;
use std::time::Duration;

use kem::load::client::EdgeClient;
pub use kem::load::client::Reply;
use kem::load::stats::Stats;
use serde_json::Value;

/// The route label the journeys' requests are recorded under (the numbers are not read).
const ROUTE: &str = "e2e";

/// A JSON client of the REST edge, optionally signed in.
#[derive(Clone)]
pub struct Rest(EdgeClient);

impl Rest {
    /// A client of the edge at `addr`.
    pub fn new(addr: std::net::SocketAddr) -> Rest {
        let client = EdgeClient::new(&format!("http://{addr}"), Arc::new(Stats::default()))
            .unwrap_or_else(|e| panic!("cannot build the HTTP client: {e:#}"));
        Rest(client)
    }

    /// The same client sending `Authorization: Bearer <token>`.
    pub fn signed_in(&self, token: &str) -> Rest {
        Rest(self.0.signed_in(token))
    }

    /// The bearer token this client sends, if signed in.
    pub fn token(&self) -> Option<String> {
        self.0.token().map(str::to_owned)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        self.0.send_at(ROUTE, method, path, body.as_ref(), tokio::time::Instant::now()).await
    }

    /// GET returning the raw body (images).
    pub async fn get_bytes(&self, path: &str) -> (u16, Vec<u8>) {
        self.0.get_bytes(ROUTE, path).await
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
            // The poll interval: nothing tells a REST client that background work finished; ask again shortly.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
