//! The per-store authorization of `partner/v1` on the partner side, as a real authorization
//! server does it (the contract is ours, so it follows OAuth 2.1 where RFC 6749 leaves a choice):
//!
//! - `GET /oauth2/authorize`: an unknown client or a redirect URI not registered exactly is an
//!   error page (400, no redirect: the browser never goes to an unchecked address); otherwise the
//!   signed-in store owner ([`PartnerState::sign_in`]) consents and the browser is sent back with
//!   `code` and `state`, or `error=access_denied` ([`PartnerState::deny_next_consent`]). PKCE is
//!   required: `code_challenge_method=S256` with a 43-character challenge (`plain` is refused);
//! - `authorization_code`: the code is single use (a second exchange revokes what the first one
//!   got), expires after [`PartnerServerConfig::code_ttl`](super::PartnerServerConfig), is bound
//!   to its client and redirect URI, and needs the `code_verifier` whose S256 is the challenge;
//! - `refresh_token`: a new access token and a new refresh token; the old refresh token is dead,
//!   and presenting it again revokes the whole grant (reuse means it leaked);
//! - `POST /oauth2/revoke` (RFC 7009): either token of a grant revokes the grant; unknown tokens
//!   are answered 200 too.
//!
//! Errors are RFC 6749 JSON (`{"error","error_description"}`: 400, `invalid_client` 401).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::{PartnerState, decorate, json_response, request_id};
use crate::infra::channels::{form_body, form_decode};

/// The scopes a store grants.
pub const SCOPES: [&str; 2] = ["ads.write", "ads.read"];
/// Longest `state` passed through (the client's are 43 characters).
const STATE_MAX: usize = 512;

/// The store a consent is given for when no one signed in (the local partner of `kem up`).
const DEFAULT_STORE: (&str, &str) = ("st-0001", "우리가게");

#[derive(Debug, Clone)]
struct Code {
    client: String,
    redirect_uri: String,
    challenge: String,
    store_id: String,
    store_name: String,
    expires_ms: i64,
    /// The grant its exchange created (then the code is spent).
    spent: Option<u64>,
}

#[derive(Debug, Clone)]
struct Grant {
    client: String,
    store_id: String,
    store_name: String,
    revoked: bool,
}

#[derive(Debug, Clone)]
struct Refresh {
    grant: u64,
    /// The newest refresh token of its grant (older ones were rotated away).
    current: bool,
}

/// The partner's authorization books.
#[derive(Debug, Default)]
pub(super) struct Grants {
    codes: HashMap<String, Code>,
    grants: HashMap<u64, Grant>,
    refresh: HashMap<String, Refresh>,
    next_grant: u64,
    signed_in: Option<(String, String)>,
    deny_next: u32,
}

impl Grants {
    /// The store of `grant` while it is not revoked.
    pub(super) fn live_store(&self, grant: u64) -> Option<String> {
        self.grants.get(&grant).filter(|g| !g.revoked).map(|g| g.store_id.clone())
    }

    fn revoke(&mut self, grant: u64) {
        if let Some(g) = self.grants.get_mut(&grant) {
            g.revoked = true;
        }
    }
}

impl PartnerState {
    /// The store owner signed in at the partner: the next consents are theirs.
    pub fn sign_in(&self, store_id: &str, store_name: &str) {
        self.books().oauth.signed_in = Some((store_id.to_owned(), store_name.to_owned()));
    }

    /// The next `n` consent screens are declined (`error=access_denied`).
    pub fn deny_next_consent(&self, n: u32) {
        self.books().oauth.deny_next = n;
    }

    /// The store owner withdraws every grant of `store_id` at the partner (their tokens die).
    pub fn revoke_store(&self, store_id: &str) {
        let mut books = self.books();
        for grant in books.oauth.grants.values_mut().filter(|g| g.store_id == store_id) {
            grant.revoked = true;
        }
    }

    /// The partner forgets every access token of `store_id` before its expiry (a signing key
    /// rotated at the partner): the grants and refresh tokens stay good.
    pub fn drop_access_tokens(&self, store_id: &str) {
        let mut books = self.books();
        let stores: HashMap<u64, bool> =
            books.oauth.grants.iter().map(|(id, g)| (*id, g.store_id == store_id)).collect();
        books.tokens.retain(|_, t| !t.grant.is_some_and(|g| stores.get(&g).copied().unwrap_or(false)));
    }

    /// Whether `store_id` has a grant that is not revoked.
    pub fn store_granted(&self, store_id: &str) -> bool {
        self.books().oauth.grants.values().any(|g| g.store_id == store_id && !g.revoked)
    }

    /// Every refresh token issued for `store_id`, oldest first is not promised; with whether it
    /// is the current one of its grant (tests present rotated ones again).
    pub fn refresh_tokens_of(&self, store_id: &str) -> Vec<(String, bool)> {
        let books = self.books();
        books
            .oauth
            .refresh
            .iter()
            .filter(|(_, r)| books.oauth.grants.get(&r.grant).is_some_and(|g| g.store_id == store_id))
            .map(|(token, r)| (token.clone(), r.current))
            .collect()
    }

    /// Every access token issued for `store_id` that is still unexpired (tests look for them in
    /// the database rows).
    pub fn access_tokens_of(&self, store_id: &str) -> Vec<String> {
        let books = self.books();
        books
            .tokens
            .iter()
            .filter(|(_, t)| t.grant.and_then(|g| books.oauth.grants.get(&g)).is_some_and(|g| g.store_id == store_id))
            .map(|(token, _)| token.clone())
            .collect()
    }

    /// The store each job was submitted for (`None`: the platform's client credentials).
    pub fn job_stores(&self) -> Vec<(String, Option<String>)> {
        self.books().jobs.iter().map(|(id, job)| (id.clone(), job.store.clone())).collect()
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(status, &json!({"error": error, "error_description": description}))
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// The error page shown instead of a redirect.
fn error_page(description: &str) -> Response {
    let mut response = (StatusCode::BAD_REQUEST, format!("partner authorization error: {description}")).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn redirect(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let joiner = if uri.contains('?') { '&' } else { '?' };
    let location = format!("{uri}{joiner}{}", form_body(pairs));
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => error_page("the redirect cannot be built"),
    }
}

/// `BASE64URL(SHA256(verifier))`.
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// `GET /oauth2/authorize`.
pub(super) async fn authorize(
    State(state): State<Arc<PartnerState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| query.get(k).map(String::as_str).unwrap_or_default();
    let client = get("client_id");
    if !state.config.clients.iter().any(|(id, _)| id == client) {
        return error_page("unknown client_id");
    }
    let redirect_uri = get("redirect_uri");
    if !state.config.redirect_uris.iter().any(|r| r == redirect_uri) {
        return error_page("redirect_uri is not registered for this client (exact match)");
    }
    let client_state = get("state");
    if client_state.len() > STATE_MAX || client_state.chars().any(char::is_control) {
        return redirect(redirect_uri, &[("error", "invalid_request"), ("error_description", "state is malformed")]);
    }
    let fail = |error: &str, description: &str| {
        redirect(redirect_uri, &[("error", error), ("error_description", description), ("state", client_state)])
    };
    if get("response_type") != "code" {
        return fail("unsupported_response_type", "response_type must be code");
    }
    if client_state.is_empty() {
        return fail("invalid_request", "state is required");
    }
    if get("code_challenge_method") != "S256" {
        return fail("invalid_request", "PKCE is required: code_challenge_method must be S256 (plain is refused)");
    }
    let challenge = get("code_challenge");
    if challenge.len() != 43 || !challenge.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')) {
        return fail("invalid_request", "code_challenge must be the base64url S256 of a code_verifier (43 characters)");
    }
    if !get("scope").split(' ').filter(|s| !s.is_empty()).all(|s| SCOPES.contains(&s)) {
        return fail("invalid_scope", "the scopes are ads.write and ads.read");
    }
    let now = state.now();
    let code_ttl = i64::try_from(state.config.code_ttl.as_millis()).unwrap_or(60_000);
    let mut books = state.books();
    if books.oauth.deny_next > 0 {
        books.oauth.deny_next -= 1;
        drop(books);
        return fail("access_denied", "the store owner declined");
    }
    let (store_id, store_name) =
        books.oauth.signed_in.clone().unwrap_or_else(|| (DEFAULT_STORE.0.to_owned(), DEFAULT_STORE.1.to_owned()));
    let code = format!("pc-{:032x}", rand::random::<u128>());
    books.oauth.codes.retain(|_, c| c.expires_ms > now || c.spent.is_some());
    books.oauth.codes.insert(
        code.clone(),
        Code {
            client: client.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            challenge: challenge.to_owned(),
            store_id,
            store_name,
            expires_ms: now.saturating_add(code_ttl),
            spent: None,
        },
    );
    drop(books);
    redirect(redirect_uri, &[("code", &code), ("state", client_state)])
}

/// The token answer of a grant: a new access token and a new (current) refresh token.
fn tokens_answer(state: &PartnerState, client: &str, grant: u64) -> Response {
    let (access, ttl) = state.issue(client, Some(grant));
    let refresh = format!("pr-{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>());
    let mut books = state.books();
    books.oauth.refresh.insert(refresh.clone(), Refresh { grant, current: true });
    let Some(g) = books.oauth.grants.get(&grant).cloned() else {
        return invalid_grant("the grant is gone");
    };
    drop(books);
    let body = json!({
        "access_token": access, "token_type": "Bearer", "expires_in": ttl.as_secs(), "refresh_token": refresh,
        "scope": SCOPES.join(" "), "store_id": g.store_id, "store_name": g.store_name,
    });
    let mut response = json_response(StatusCode::OK, &body);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `grant_type=authorization_code` for the authenticated `client`.
pub(super) fn exchange(state: &PartnerState, client: &str, form: &HashMap<String, String>) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let (code, redirect_uri, verifier) = (get("code"), get("redirect_uri"), get("code_verifier"));
    if code.is_empty() || redirect_uri.is_empty() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "code and redirect_uri are required");
    }
    if verifier.is_empty() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "PKCE is required: code_verifier is missing");
    }
    let now = state.now();
    let mut books = state.books();
    let Some(found) = books.oauth.codes.get(code).cloned() else {
        return invalid_grant("unknown authorization code");
    };
    if let Some(grant) = found.spent {
        // A code used twice was intercepted: what its first use got is revoked (RFC 6749 §4.1.2).
        books.oauth.revoke(grant);
        return invalid_grant("the authorization code was already used; its grant is revoked");
    }
    if found.expires_ms <= now {
        return invalid_grant("the authorization code expired");
    }
    if found.client != client || found.redirect_uri != redirect_uri {
        return invalid_grant("the authorization code was issued to another client or redirect_uri");
    }
    if !is_verifier(verifier) || s256(verifier) != found.challenge {
        return invalid_grant("code_verifier does not match the code_challenge");
    }
    let grant = books.oauth.next_grant;
    books.oauth.next_grant += 1;
    books.oauth.grants.insert(
        grant,
        Grant {
            client: client.to_owned(),
            store_id: found.store_id.clone(),
            store_name: found.store_name.clone(),
            revoked: false,
        },
    );
    if let Some(c) = books.oauth.codes.get_mut(code) {
        c.spent = Some(grant);
    }
    drop(books);
    tokens_answer(state, client, grant)
}

/// `grant_type=refresh_token` for the authenticated `client`: rotation with reuse detection.
pub(super) fn refresh(state: &PartnerState, client: &str, form: &HashMap<String, String>) -> Response {
    let token = form.get("refresh_token").map(String::as_str).unwrap_or_default();
    if token.is_empty() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "refresh_token is required");
    }
    let mut books = state.books();
    let Some(found) = books.oauth.refresh.get(token).cloned() else {
        return invalid_grant("unknown refresh token");
    };
    let Some(grant) = books.oauth.grants.get(&found.grant).cloned() else {
        return invalid_grant("unknown grant");
    };
    if grant.client != client {
        return invalid_grant("the refresh token was issued to another client");
    }
    if grant.revoked {
        return invalid_grant("the grant was revoked");
    }
    if !found.current {
        books.oauth.revoke(found.grant);
        return invalid_grant("the refresh token was already used; the grant is revoked");
    }
    if let Some(r) = books.oauth.refresh.get_mut(token) {
        r.current = false;
    }
    drop(books);
    tokens_answer(state, client, found.grant)
}

/// `POST /oauth2/revoke` (RFC 7009).
pub(super) async fn revoke(State(state): State<Arc<PartnerState>>, headers: HeaderMap, body: Bytes) -> Response {
    let rid = request_id(&headers);
    let form: HashMap<String, String> = form_decode(&String::from_utf8_lossy(&body)).into_iter().collect();
    let Some(client) = state.client_of(&form) else {
        let response = oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client or wrong secret");
        return decorate(response, &rid, None);
    };
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    if token.is_empty() {
        return decorate(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is required"), &rid, None);
    }
    let mut books = state.books();
    let grant = books
        .oauth
        .refresh
        .get(token)
        .map(|r| r.grant)
        .or_else(|| books.tokens.get(token).and_then(|t| t.grant))
        .filter(|g| books.oauth.grants.get(g).is_some_and(|g| g.client == client));
    if let Some(grant) = grant {
        books.oauth.revoke(grant);
    }
    drop(books);
    decorate(StatusCode::OK.into_response(), &rid, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_is_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(is_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(
            !is_verifier("short") && !is_verifier(&"a".repeat(129)) && !is_verifier(&format!("{}\n", "a".repeat(43)))
        );
    }
}
