//! Instagram API with Instagram Login (PROVIDERS.md §9): the consent screen's URL, the code
//! exchanged for a short-lived token (`POST /oauth/access_token` on the OAuth host), that one for
//! a long-lived token (`GET /access_token?grant_type=ig_exchange_token` on the Graph host), the
//! professional account (`GET /{v}/me?fields=user_id,username`), and refreshes
//! (`GET /refresh_access_token?grant_type=ig_refresh_token`).
//!
//! The code exchange answers `{"access_token","user_id","permissions"}` or the same inside
//! `{"data":[…]}`, the id as a number or a string: both are read. `me`'s `id` is app-scoped; Graph
//! paths take `user_id`.

use kem_kit::Secret;
use kem_kit::external::{
    ProviderClient, ProviderConfig, ProviderConfigError, ProviderError, ProviderResponse, Verdict,
};
use reqwest::header::HeaderValue;
use serde_json::Value;

use super::{Granted, LoginError, Tokens, seconds_of, text_of, url_with_query};
use crate::infra::channels::form_body;

/// Provider name of the OAuth host (breaker, logs).
pub const PROVIDER: &str = "instagram-login";
/// OAuth host (code exchange).
pub const DEFAULT_OAUTH_URL: &str = "https://api.instagram.com";
/// Consent screen host.
pub const DEFAULT_AUTHORIZE_URL: &str = "https://www.instagram.com";
/// What kem asks for: the account, publishing, and insights for the channel metrics.
pub const SCOPES: [&str; 3] =
    ["instagram_business_basic", "instagram_business_content_publish", "instagram_business_manage_insights"];

/// OAuth host client settings (see [`super::login_provider_config`]).
pub fn provider_config(base_url: impl Into<String>) -> ProviderConfig {
    super::login_provider_config(PROVIDER, base_url)
}

/// The Meta app and where its hosts are.
#[derive(Debug, Clone)]
pub struct InstagramApp {
    /// Instagram App ID.
    pub app_id: String,
    /// Instagram App Secret.
    pub app_secret: Secret,
    /// Consent screen host.
    pub authorize_url: String,
    /// Graph API version for `/me`.
    pub api_version: String,
    /// Scopes requested.
    pub scopes: Vec<String>,
    /// `<public base>/api/v1/channels/oauth/callback`, registered in the app exactly.
    pub redirect_uri: String,
}

/// The Instagram Login client.
#[derive(Debug, Clone)]
pub struct InstagramLogin {
    app: InstagramApp,
    oauth: ProviderClient,
    graph: ProviderClient,
}

impl InstagramLogin {
    /// A client of `app` over the OAuth host `oauth` and the Graph host `graph`.
    pub fn new(app: InstagramApp, oauth: ProviderConfig, graph: ProviderConfig) -> Result<Self, ProviderConfigError> {
        Ok(InstagramLogin { app, oauth: ProviderClient::new(oauth)?, graph: ProviderClient::new(graph)? })
    }

    /// The consent screen carrying `state`.
    pub fn authorize_url(&self, state: &str) -> String {
        let scope = self.app.scopes.join(",");
        url_with_query(
            &self.app.authorize_url,
            "/oauth/authorize",
            &[
                ("client_id", &self.app.app_id),
                ("redirect_uri", &self.app.redirect_uri),
                ("response_type", "code"),
                ("scope", &scope),
                ("state", state),
            ],
        )
    }

    fn refused(error: ProviderError) -> LoginError {
        LoginError::of(PROVIDER, error)
    }

    /// Exchanges `code` for a long-lived token of the professional account; `now` is when the
    /// token counts as issued (ms).
    pub async fn exchange(&self, code: &str, now: i64) -> Result<Granted, LoginError> {
        // Meta appends `#_` to the redirect; a browser drops the fragment, a copy-paste may not.
        let code = code.strip_suffix("#_").unwrap_or(code);
        let body = form_body(&[
            ("client_id", &self.app.app_id),
            ("client_secret", self.app.app_secret.expose()),
            ("grant_type", "authorization_code"),
            ("redirect_uri", &self.app.redirect_uri),
            ("code", code),
        ]);
        let answer: Value = self
            .oauth
            .post("oauth/access_token")
            .body(body, HeaderValue::from_static("application/x-www-form-urlencoded"))
            .send_json()
            .await
            .map_err(Self::refused)?;
        let short = short_lived(&answer).ok_or_else(|| {
            LoginError::Failed(ProviderError::UnexpectedResponse {
                provider: PROVIDER.into(),
                status: 200,
                detail: "the code exchange answered without an access token".into(),
            })
        })?;
        let long: Value = self
            .graph
            .get("access_token")
            .query("grant_type", "ig_exchange_token")
            .query("client_secret", self.app.app_secret.expose())
            .query("access_token", short.token.expose())
            .classify(classify)
            .send_json()
            .await
            .map_err(Self::refused)?;
        let tokens = long_lived(&long, now)?;
        let me: Value = self
            .graph
            .get(&format!("{}/me", self.app.api_version.trim_matches('/')))
            .query("fields", "user_id,username")
            .query("access_token", tokens.access.expose())
            .classify(classify)
            .send_json()
            .await
            .map_err(Self::refused)?;
        let account_id = me.get("user_id").and_then(text_of).or(short.user_id).unwrap_or_default();
        if account_id.is_empty() {
            return Err(unexpected("the account answered without its user_id"));
        }
        Ok(Granted {
            account_id,
            account_name: me.get("username").and_then(Value::as_str).unwrap_or_default().to_owned(),
            scopes: short.permissions,
            tokens,
        })
    }

    /// A new long-lived token for `token` (at least 24 h old and unexpired).
    pub async fn refresh(&self, token: &Secret, now: i64) -> Result<Tokens, LoginError> {
        let answer: Value = self
            .graph
            .get("refresh_access_token")
            .query("grant_type", "ig_refresh_token")
            .query("access_token", token.expose())
            .classify(classify)
            .send_json()
            .await
            .map_err(Self::refused)?;
        long_lived(&answer, now)
    }
}

/// Graph errors (§4): 190 is the token (the owner must log in again), throttling and transient
/// codes pass; the rest is the status code's reading.
fn classify(response: &ProviderResponse) -> Option<Verdict> {
    if response.status().is_success() {
        return None;
    }
    let error = serde_json::from_slice::<Value>(response.body()).ok()?.get("error")?.clone();
    let code = error.get("code").and_then(Value::as_i64)?;
    let detail = format!("{} (code {code})", error.get("message").and_then(Value::as_str).unwrap_or_default());
    Some(match code {
        190 => Verdict::Auth(detail),
        4 | 17 | 32 | 613 => Verdict::RateLimited { retry_after: response.retry_after(), detail },
        1 | 2 => Verdict::Transient { retry_after: None, detail },
        _ if error.get("is_transient").and_then(Value::as_bool) == Some(true) => {
            Verdict::Transient { retry_after: None, detail }
        }
        _ => return None,
    })
}

fn unexpected(detail: &str) -> LoginError {
    LoginError::Failed(ProviderError::UnexpectedResponse {
        provider: PROVIDER.into(),
        status: 200,
        detail: detail.to_owned(),
    })
}

struct ShortLived {
    token: Secret,
    user_id: Option<String>,
    permissions: Vec<String>,
}

/// The code exchange's answer, flat or wrapped in `data[0]`.
fn short_lived(answer: &Value) -> Option<ShortLived> {
    let body = answer.get("data").and_then(|d| d.get(0)).unwrap_or(answer);
    let token = body.get("access_token")?.as_str().filter(|t| !t.is_empty())?;
    let permissions = match body.get("permissions") {
        Some(Value::String(list)) => {
            list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        }
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    };
    Some(ShortLived { token: Secret::new(token), user_id: body.get("user_id").and_then(text_of), permissions })
}

/// A long-lived token answer (`{"access_token","token_type","expires_in"}`).
fn long_lived(answer: &Value, now: i64) -> Result<Tokens, LoginError> {
    let token = answer
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unexpected("the token answer has no access_token"))?;
    let expires_at = answer.get("expires_in").and_then(seconds_of).map(|s| now.saturating_add(s.saturating_mul(1_000)));
    Ok(Tokens { access: Secret::new(token), refresh: None, issued_at: now, expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_exchange_is_read_flat_or_wrapped() {
        let flat = serde_json::json!({"access_token": "IGQ", "user_id": 17841400000000_u64, "permissions": "a,b"});
        let read = short_lived(&flat).expect("flat");
        assert_eq!((read.token.expose(), read.user_id.as_deref()), ("IGQ", Some("17841400000000")));
        assert_eq!(read.permissions, ["a", "b"]);
        let wrapped =
            serde_json::json!({"data": [{"access_token": "IGQ2", "user_id": "178", "permissions": ["x", "y"]}]});
        let read = short_lived(&wrapped).expect("wrapped");
        assert_eq!((read.token.expose(), read.user_id.as_deref(), read.permissions.len()), ("IGQ2", Some("178"), 2));
        assert!(short_lived(&serde_json::json!({"user_id": 1})).is_none());
        let tokens = long_lived(&serde_json::json!({"access_token": "IGAA", "expires_in": 5_184_000}), 1_000)
            .expect("long-lived");
        assert_eq!(tokens.expires_at, Some(1_000 + 5_184_000_000));
        assert!(long_lived(&serde_json::json!({}), 0).is_err());
    }

    #[test]
    fn the_consent_url_names_app_redirect_scopes_and_state() {
        let app = InstagramApp {
            app_id: "990".into(),
            app_secret: Secret::new("s"),
            authorize_url: "https://www.instagram.com".into(),
            api_version: "v21.0".into(),
            scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            redirect_uri: "https://kem.example/api/v1/channels/oauth/callback".into(),
        };
        let login = InstagramLogin::new(
            app,
            provider_config("https://api.instagram.com"),
            provider_config("https://graph.instagram.com"),
        )
        .expect("client");
        let url = login.authorize_url("st_-1");
        assert_eq!(
            url,
            "https://www.instagram.com/oauth/authorize?client_id=990&redirect_uri=https%3A%2F%2Fkem.example%2Fapi%2Fv1%2Fchannels%2Foauth%2Fcallback\
             &response_type=code&scope=instagram_business_basic%2Cinstagram_business_content_publish%2Cinstagram_business_manage_insights&state=st_-1"
        );
        assert!(!format!("{login:?}").contains("\"s\""), "the secret is not in Debug");
    }
}
