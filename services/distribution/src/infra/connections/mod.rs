//! Owners' own accounts on the platforms, as adapters:
//!
//! - [`store`]: the connection and attempt tables, tokens sealed at rest;
//! - [`instagram`]: Instagram API with Instagram Login (PROVIDERS.md §9): authorize URL, code →
//!   short-lived → long-lived token, the account (`/me`), refresh;
//! - [`naver`]: Naver Login (§11): authorize URL, code → tokens (`expires_in` a string), the
//!   member (`/v1/nid/me`), refresh (the refresh token is kept), token deletion;
//! - [`partner`]: the owner's store account at a KT partner (our `partner/v1` per-store
//!   authorization: authorization code with PKCE S256, rotating refresh tokens, revocation);
//! - [`kakao`]: the sender profiles of the platform's SENS Biz Message service (§6, §12): a Kakao
//!   Talk Channel connects without OAuth, once registered there; no token is kept.
//!
//! Neither Instagram nor Naver documents PKCE (§9, §11), so none is sent to them: the `state`
//! (256 random bits, stored hashed, single use, ten minutes) binds an answer to the owner who
//! started it. Our partner contract requires PKCE S256 on top (the verifier is kept sealed with
//! the attempt).

pub mod instagram;
pub mod kakao;
pub mod naver;
pub mod partner;
pub mod store;

use std::time::Duration;

use kem_kit::Secret;
use kem_kit::external::{ProviderConfig, ProviderError};

pub use store::{Attempt, ConnectionStore, ConnectionStoreError, KakaoSaved, NewConnection, StoredConnection, Tokens};

use crate::domain::{Channel, NaverCafe};

/// The owner's account a delivery step publishes through.
#[derive(Clone)]
pub struct ConnectedAccount {
    /// The channel.
    pub channel: Channel,
    /// The provider's account id (the Instagram user id of Graph paths; the Naver member id; the
    /// Kakao channel id, `@…`, messages are sent from).
    pub account_id: String,
    /// The access token (empty for Kakao, which has none).
    pub access_token: Secret,
    /// Naver's board.
    pub naver_cafe: Option<NaverCafe>,
    /// The token as stored: what a step that found it revoked marks, so a token that replaced
    /// it meanwhile stays untouched.
    pub access_sealed: Vec<u8>,
}

impl std::fmt::Debug for ConnectedAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectedAccount")
            .field("channel", &self.channel)
            .field("account_id", &self.account_id)
            .field("naver_cafe", &self.naver_cafe)
            .finish_non_exhaustive()
    }
}

/// What an authorization code gave.
#[derive(Debug, Clone)]
pub struct Granted {
    /// The account's id.
    pub account_id: String,
    /// Its display name.
    pub account_name: String,
    /// Permissions granted.
    pub scopes: Vec<String>,
    /// Its tokens.
    pub tokens: Tokens,
}

/// Why a login provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// The provider refused the code, grant or token (declined, expired, revoked, reused): only
    /// the owner logging in again helps.
    #[error("{provider} refused: {detail}")]
    Refused {
        /// The provider.
        provider: &'static str,
        /// Its explanation.
        detail: String,
    },
    /// The provider could not be reached or failed in a way that may pass.
    #[error("{0}")]
    Unavailable(#[source] ProviderError),
    /// An answer outside the contract, or a request we could not build.
    #[error("{0}")]
    Failed(#[source] ProviderError),
}

impl LoginError {
    /// The reading of a provider client's error: refusals, passing failures, the rest.
    pub fn of(provider: &'static str, error: ProviderError) -> LoginError {
        match error {
            ProviderError::Auth { detail, .. } | ProviderError::Invalid { detail, .. } => {
                LoginError::Refused { provider, detail }
            }
            ProviderError::Transient { .. }
            | ProviderError::Timeout { .. }
            | ProviderError::BreakerOpen { .. }
            | ProviderError::RateLimited { .. } => LoginError::Unavailable(error),
            ProviderError::Moderated { .. }
            | ProviderError::Request { .. }
            | ProviderError::UnexpectedResponse { .. } => LoginError::Failed(error),
        }
    }
}

/// Client settings of a login host: 10 s per request, 20 s in all, small answers (a person waits
/// on the callback page).
pub fn login_provider_config(name: &str, base_url: impl Into<String>) -> ProviderConfig {
    let mut config = ProviderConfig::new(name, base_url);
    config.timeout = Duration::from_secs(10);
    config.deadline = Duration::from_secs(20);
    config.max_body_bytes = 1 << 20;
    config
}

/// A JSON value as text: strings as they are, numbers printed (ids arrive as either).
pub(crate) fn text_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Seconds from a JSON number or a numeric string (Naver sends `"3600"`).
pub(crate) fn seconds_of(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The tokens of an OAuth token answer `{"access_token","refresh_token","token_type","expires_in"}`
/// from `provider` (Naver's and the KT partner's; `expires_in` a number or, as Naver sends it, a
/// numeric string; a refresh answer may carry no refresh token).
pub(crate) fn tokens_of(provider: &str, answer: &serde_json::Value, now: i64) -> Result<Tokens, LoginError> {
    let access =
        answer.get("access_token").and_then(serde_json::Value::as_str).filter(|t| !t.is_empty()).ok_or_else(|| {
            LoginError::Failed(ProviderError::UnexpectedResponse {
                provider: provider.into(),
                status: 200,
                detail: "the token answer has no access_token".to_owned(),
            })
        })?;
    let refresh =
        answer.get("refresh_token").and_then(serde_json::Value::as_str).filter(|t| !t.is_empty()).map(Secret::new);
    let expires_at = answer.get("expires_in").and_then(seconds_of).map(|s| now.saturating_add(s.saturating_mul(1_000)));
    Ok(Tokens { access: Secret::new(access), refresh, issued_at: now, expires_at })
}

/// `{base}{path}?{query}` with every query value form-encoded.
pub(crate) fn url_with_query(base: &str, path: &str, pairs: &[(&str, &str)]) -> String {
    format!("{}{path}?{}", base.trim_end_matches('/'), crate::infra::channels::form_body(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_lifetimes_arrive_as_numbers_or_strings() {
        assert_eq!(text_of(&serde_json::json!(17841400000000_u64)).as_deref(), Some("17841400000000"));
        assert_eq!(text_of(&serde_json::json!("178")).as_deref(), Some("178"));
        assert_eq!(text_of(&serde_json::json!(null)), None);
        assert_eq!(seconds_of(&serde_json::json!("3600")), Some(3_600));
        assert_eq!(seconds_of(&serde_json::json!(5_184_000)), Some(5_184_000));
        assert_eq!(seconds_of(&serde_json::json!("soon")), None);
        assert_eq!(
            url_with_query("https://nid.naver.com/", "/oauth2.0/authorize", &[("state", "a b"), ("x", "é")]),
            "https://nid.naver.com/oauth2.0/authorize?state=a+b&x=%C3%A9"
        );
    }
}
