//! `Idempotency-Key` on POST: a replayed create returns the first result instead of creating twice.
//!
//! The first request with a key claims it atomically (`set_if_absent` in the shared cache, so
//! every gateway replica sees the claim), runs, and stores its response for 24 h. A concurrent
//! duplicate gets 409 while the first is in flight; a later one gets the stored response; the
//! same key with a different body is 422. Server errors and 429s are not stored — the claim is
//! released so the client's retry really retries.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use kem_kit::cache::Cache;
use serde::{Deserialize, Serialize};

use crate::edge::EdgeResponse;

/// How long a claim may stay "in progress" before another request may take it over (a gateway
/// that died mid-request must not block the key for a day).
const CLAIM_TTL: Duration = Duration::from_secs(120);

/// A stored response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredResponse {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

impl StoredResponse {
    /// The response again, marked as a replay.
    pub fn into_response(self, request_id: &str) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        if let Ok(value) = HeaderValue::from_str(&self.content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
        if let Ok(value) = HeaderValue::from_str(request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        response
    }
}

#[derive(Debug, Serialize, Deserialize)]
enum Entry {
    InProgress { request_hash: String },
    Done { request_hash: String, response: StoredResponse },
}

/// What to do with a request carrying an idempotency key.
#[derive(Debug)]
pub enum Replay {
    /// Answer with the stored response.
    Stored(StoredResponse),
    /// The first request with this key is still running.
    InProgress,
    /// The key was used with another request body.
    Mismatch,
    /// Run it; then call [`IdempotencyStore::finish`] with this claim.
    Proceed(Claim),
}

/// A claimed key.
#[derive(Debug)]
pub struct Claim {
    key: String,
    request_hash: String,
}

/// The replay store.
#[derive(Clone)]
pub struct IdempotencyStore {
    cache: Arc<dyn Cache>,
    ttl: Duration,
}

fn hash(body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl IdempotencyStore {
    /// A store in `cache` keeping responses for `ttl` (24 h in production).
    pub fn new(cache: Arc<dyn Cache>, ttl: Duration) -> IdempotencyStore {
        IdempotencyStore { cache, ttl }
    }

    /// Claims `key` for (`scope`, `route`) or tells how to answer instead. If the cache is
    /// unreachable the request proceeds unprotected (logged): the edge never fails because of it.
    pub async fn begin(&self, scope: &str, route: &str, key: &str, body: &[u8]) -> Replay {
        let cache_key = format!("idem:{}:{scope}:{route}:{key}", hash(b"v1"));
        let request_hash = hash(body);
        let claim = Entry::InProgress { request_hash: request_hash.clone() };
        let Ok(encoded) = serde_json::to_vec(&claim) else {
            return Replay::Proceed(Claim { key: cache_key, request_hash });
        };
        match self.cache.set_if_absent(&cache_key, Bytes::from(encoded), CLAIM_TTL).await {
            Ok(true) => Replay::Proceed(Claim { key: cache_key, request_hash }),
            Ok(false) => match self.cache.get(&cache_key).await {
                Ok(Some(bytes)) => match serde_json::from_slice::<Entry>(&bytes) {
                    Ok(Entry::Done { request_hash: stored, response }) if stored == request_hash => {
                        Replay::Stored(response)
                    }
                    Ok(Entry::InProgress { request_hash: stored }) if stored == request_hash => Replay::InProgress,
                    Ok(_) => Replay::Mismatch,
                    Err(_) => Replay::InProgress,
                },
                // Claimed and gone since (expired): try once more.
                Ok(None) => Replay::InProgress,
                Err(error) => {
                    tracing::warn!(%error, "idempotency store unreachable; proceeding without replay protection");
                    Replay::Proceed(Claim { key: String::new(), request_hash })
                }
            },
            Err(error) => {
                tracing::warn!(%error, "idempotency store unreachable; proceeding without replay protection");
                Replay::Proceed(Claim { key: String::new(), request_hash })
            }
        }
    }

    /// Records the response of a claimed request (or releases the claim) and returns it.
    pub async fn finish(&self, claim: Claim, response: EdgeResponse) -> Response {
        let (parts, body) = response.0.into_parts();
        let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        if !claim.key.is_empty() {
            let status = parts.status;
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                let _ = self.cache.delete(&claim.key).await;
            } else {
                let content_type = parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json")
                    .to_owned();
                let entry = Entry::Done {
                    request_hash: claim.request_hash,
                    response: StoredResponse { status: status.as_u16(), content_type, body: bytes.to_vec() },
                };
                if let Ok(encoded) = serde_json::to_vec(&entry)
                    && let Err(error) = self.cache.set(&claim.key, Bytes::from(encoded), self.ttl).await
                {
                    tracing::warn!(%error, "cannot store the idempotent response; a replay will run again");
                }
            }
        }
        Response::from_parts(parts, Body::from(bytes))
    }
}
