//! `Idempotency-Key` on POST: a retried create returns the first result instead of creating twice.
//!
//! Semantics (as Stripe's and the IETF `Idempotency-Key` draft's):
//! - a key is 1–255 visible ASCII characters ([`validate_key`]); anything else is 400;
//! - keys are scoped to the caller (the owner, or the client address on public routes);
//! - the first request with a key claims it **atomically** ([`Cache::set_if_absent`]: Redis
//!   `SET NX PX`, or the in-process cache's entry API), so of any number of concurrent requests
//!   with one key exactly one runs, on every gateway replica;
//! - the request's [`Fingerprint`] — method, concrete path (with its variables), query string and
//!   body — is stored with the claim: the same key with another fingerprint is 422, so a key
//!   used for one event can never replay its answer for another;
//! - a concurrent duplicate gets 409 while the first is in flight, a later one the stored
//!   response (24 h);
//! - server errors and 429s are not stored: the claim is released so the client's retry really
//!   retries. A claim whose request never finishes (a panic, a dropped future) is released by
//!   [`Claim`]'s drop, never left to block the key until it expires.

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

/// Longest accepted key, in bytes (every byte is visible ASCII).
pub const MAX_KEY_LEN: usize = 255;

/// Why an `Idempotency-Key` header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters (got {got})")]
pub struct KeyError {
    /// What was wrong, without echoing the value.
    got: &'static str,
}

/// Checks a key: 1–255 visible ASCII characters (`!`..=`~`), as the header's grammar allows.
pub fn validate_key(value: &HeaderValue) -> Result<&str, KeyError> {
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return Err(KeyError { got: "an empty value" });
    }
    if bytes.len() > MAX_KEY_LEN {
        return Err(KeyError { got: "a longer value" });
    }
    if !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(KeyError { got: "spaces, control or non-ASCII characters" });
    }
    value.to_str().map_err(|_| KeyError { got: "non-ASCII characters" })
}

/// What makes two requests "the same request" for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// SHA-256 over the method, the concrete path, the query string and the body, each
    /// length-prefixed so that no two different requests share an encoding.
    pub fn of(method: &http::Method, path: &str, query: Option<&str>, body: &[u8]) -> Fingerprint {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [method.as_str().as_bytes(), path.as_bytes(), query.unwrap_or("").as_bytes(), body] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        Fingerprint(kem_kit::hex::encode(context.finish()))
    }
}

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
    InProgress { fingerprint: String },
    Done { fingerprint: String, response: StoredResponse },
}

/// What to do with a request carrying an idempotency key.
#[derive(Debug)]
pub enum Replay {
    /// Answer with the stored response.
    Stored(StoredResponse),
    /// The first request with this key is still running.
    InProgress,
    /// The key was used with another request (method, path, query or body).
    Mismatch,
    /// Run it; then call [`IdempotencyStore::finish`] with this claim.
    Proceed(Claim),
}

/// A claimed key. Dropping it without [`IdempotencyStore::finish`] (a panic, a cancelled task)
/// releases the key in the background.
pub struct Claim {
    /// `None` when the cache was unreachable at claim time: nothing to store or release.
    key: Option<String>,
    fingerprint: Fingerprint,
    cache: Arc<dyn Cache>,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("claimed", &self.key.is_some()).field("fingerprint", &self.fingerprint).finish()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let cache = self.cache.clone();
        tracing::warn!("an idempotent request ended without an answer; releasing its key");
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = cache.delete(&key).await {
                    tracing::warn!(%error, "cannot release an idempotency key; it expires on its own");
                }
            });
        }
    }
}

/// The replay store.
#[derive(Clone)]
pub struct IdempotencyStore {
    cache: Arc<dyn Cache>,
    ttl: Duration,
}

impl IdempotencyStore {
    /// A store in `cache` keeping responses for `ttl` (24 h in production).
    pub fn new(cache: Arc<dyn Cache>, ttl: Duration) -> IdempotencyStore {
        IdempotencyStore { cache, ttl }
    }

    /// Claims `key` for `scope` (the caller) or tells how to answer instead. If the cache is
    /// unreachable the request proceeds unprotected (logged): the edge never fails because of it.
    pub async fn begin(&self, scope: &str, key: &str, fingerprint: Fingerprint) -> Replay {
        // Hashed, so the cache key's size does not depend on the caller's input.
        let scoped = format!("{scope}\n{key}");
        let cache_key =
            format!("idem:v2:{}", kem_kit::hex::encode(ring::digest::digest(&ring::digest::SHA256, scoped.as_bytes())));
        let unprotected = |fingerprint| Replay::Proceed(Claim { key: None, fingerprint, cache: self.cache.clone() });
        let claim = Entry::InProgress { fingerprint: fingerprint.0.clone() };
        let Ok(encoded) = serde_json::to_vec(&claim) else { return unprotected(fingerprint) };
        match self.cache.set_if_absent(&cache_key, Bytes::from(encoded), CLAIM_TTL).await {
            Ok(true) => Replay::Proceed(Claim { key: Some(cache_key), fingerprint, cache: self.cache.clone() }),
            Ok(false) => match self.cache.get(&cache_key).await {
                Ok(Some(bytes)) => match serde_json::from_slice::<Entry>(&bytes) {
                    Ok(Entry::Done { fingerprint: stored, response }) if stored == fingerprint.0 => {
                        Replay::Stored(response)
                    }
                    Ok(Entry::InProgress { fingerprint: stored }) if stored == fingerprint.0 => Replay::InProgress,
                    Ok(_) => Replay::Mismatch,
                    Err(_) => Replay::InProgress,
                },
                // Claimed, and expired since: the client may retry.
                Ok(None) => Replay::InProgress,
                Err(error) => {
                    tracing::warn!(%error, "idempotency store unreachable; proceeding without replay protection");
                    unprotected(fingerprint)
                }
            },
            Err(error) => {
                tracing::warn!(%error, "idempotency store unreachable; proceeding without replay protection");
                unprotected(fingerprint)
            }
        }
    }

    /// Records the response of a claimed request (or releases the claim) and returns it.
    pub async fn finish(&self, mut claim: Claim, response: EdgeResponse) -> Response {
        let (parts, body) = response.0.into_parts();
        let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        if let Some(key) = claim.key.take() {
            let status = parts.status;
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                if let Err(error) = self.cache.delete(&key).await {
                    tracing::warn!(%error, "cannot release an idempotency key; it expires on its own");
                }
            } else {
                let content_type = parts
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/json")
                    .to_owned();
                let entry = Entry::Done {
                    fingerprint: claim.fingerprint.0.clone(),
                    response: StoredResponse { status: status.as_u16(), content_type, body: bytes.to_vec() },
                };
                if let Ok(encoded) = serde_json::to_vec(&entry)
                    && let Err(error) = self.cache.set(&key, Bytes::from(encoded), self.ttl).await
                {
                    tracing::warn!(%error, "cannot store the idempotent response; a replay will run again");
                }
            }
        }
        Response::from_parts(parts, Body::from(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        let ok = HeaderValue::from_static("order-2026-12-07_#1");
        assert_eq!(validate_key(&ok), Ok("order-2026-12-07_#1"));
        assert!(validate_key(&HeaderValue::from_str(&"k".repeat(255)).expect("value")).is_ok());
        for bad in [String::new(), "k".repeat(256), "with space".into(), "tab\there".into()] {
            let value = HeaderValue::from_str(&bad).expect("value");
            assert!(validate_key(&value).is_err(), "{bad:?}");
        }
        let obs_text = HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid header value");
        assert!(validate_key(&obs_text).is_err());
    }

    #[test]
    fn fingerprints_cover_method_path_query_and_body() {
        let base = Fingerprint::of(&http::Method::POST, "/api/v1/events/E1:recommend", None, b"{}");
        for other in [
            Fingerprint::of(&http::Method::POST, "/api/v1/events/E2:recommend", None, b"{}"),
            Fingerprint::of(&http::Method::POST, "/api/v1/events/E1:recommend", Some("requestId=r2"), b"{}"),
            Fingerprint::of(&http::Method::POST, "/api/v1/events/E1:recommend", None, b"{ }"),
            Fingerprint::of(&http::Method::PUT, "/api/v1/events/E1:recommend", None, b"{}"),
            // Length prefixes: moving a byte between parts changes the fingerprint.
            Fingerprint::of(&http::Method::POST, "/api/v1/events/E1:recommend{", None, b"}"),
        ] {
            assert_ne!(base, other);
        }
        assert_eq!(base, Fingerprint::of(&http::Method::POST, "/api/v1/events/E1:recommend", None, b"{}"));
    }
}
