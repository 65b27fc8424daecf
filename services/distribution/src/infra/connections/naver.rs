//! Naver Login (네이버 로그인, PROVIDERS.md §11) for Cafe posting: the login screen's URL
//! (`/oauth2.0/authorize`, no scope), the token endpoint (`/oauth2.0/token`: the code, a refresh,
//! a deletion) and the member (`GET /v1/nid/me` on the API host).
//!
//! Naver's answers differ from RFC 6749 in ways the client must accept: `expires_in` is a string
//! (`"3600"`), an error may come with HTTP 200 as `{"error","error_description"}`, and a refresh
//! answers no new refresh token (the old one stays valid and is kept).

use kem_kit::Secret;
use kem_kit::external::{ProviderClient, ProviderConfig, ProviderConfigError, ProviderError};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde_json::Value;

use super::{Granted, LoginError, Tokens, text_of, tokens_of, url_with_query};
use crate::infra::channels::form_body;

/// Provider name of the login host (breaker, logs).
pub const PROVIDER: &str = "naver-login";
/// Login host.
pub const DEFAULT_AUTH_URL: &str = "https://nid.naver.com";

/// Login host client settings (see [`super::login_provider_config`]).
pub fn provider_config(base_url: impl Into<String>) -> ProviderConfig {
    super::login_provider_config(PROVIDER, base_url)
}

/// The Naver application and where its hosts are.
#[derive(Debug, Clone)]
pub struct NaverApp {
    /// Client ID of the application.
    pub client_id: String,
    /// Client Secret.
    pub client_secret: Secret,
    /// Login host (for the browser; the token calls use the login client's base URL).
    pub auth_url: String,
    /// `<public base>/api/v1/channels/oauth/callback`.
    pub redirect_uri: String,
}

/// The Naver Login client.
#[derive(Debug, Clone)]
pub struct NaverLogin {
    app: NaverApp,
    auth: ProviderClient,
    api: ProviderClient,
}

fn bearer(token: &Secret) -> Result<HeaderValue, LoginError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
        LoginError::Failed(ProviderError::Request {
            provider: PROVIDER.into(),
            detail: "the access token is not a valid header value".into(),
        })
    })?;
    value.set_sensitive(true);
    Ok(value)
}

fn unexpected(detail: &str) -> LoginError {
    LoginError::Failed(ProviderError::UnexpectedResponse {
        provider: PROVIDER.into(),
        status: 200,
        detail: detail.to_owned(),
    })
}

impl NaverLogin {
    /// A client of `app` over the login host `auth` and the API host `api`.
    pub fn new(app: NaverApp, auth: ProviderConfig, api: ProviderConfig) -> Result<Self, ProviderConfigError> {
        Ok(NaverLogin { app, auth: ProviderClient::new(auth)?, api: ProviderClient::new(api)? })
    }

    /// The login screen carrying `state`.
    pub fn authorize_url(&self, state: &str) -> String {
        url_with_query(
            &self.app.auth_url,
            "/oauth2.0/authorize",
            &[
                ("response_type", "code"),
                ("client_id", &self.app.client_id),
                ("redirect_uri", &self.app.redirect_uri),
                ("state", state),
            ],
        )
    }

    /// `POST /oauth2.0/token` with `pairs` (plus the client's id and secret).
    async fn token_call(&self, pairs: &[(&str, &str)]) -> Result<Value, LoginError> {
        let mut all =
            vec![("client_id", self.app.client_id.as_str()), ("client_secret", self.app.client_secret.expose())];
        all.extend_from_slice(pairs);
        let answer: Value = self
            .auth
            .post("oauth2.0/token")
            .body(form_body(&all), HeaderValue::from_static("application/x-www-form-urlencoded"))
            .send_json()
            .await
            .map_err(|e| LoginError::of(PROVIDER, e))?;
        if let Some(error) = answer.get("error").and_then(Value::as_str).filter(|e| !e.is_empty()) {
            let detail =
                format!("{error}: {}", answer.get("error_description").and_then(Value::as_str).unwrap_or_default());
            if error == "server_error" {
                return Err(LoginError::Unavailable(ProviderError::Transient {
                    provider: PROVIDER.into(),
                    status: Some(200),
                    retry_after: None,
                    detail,
                }));
            }
            return Err(LoginError::Refused { provider: PROVIDER, detail });
        }
        Ok(answer)
    }

    /// Exchanges `code` (answered for `state`) for tokens and reads the member.
    pub async fn exchange(&self, code: &str, state: &str, now: i64) -> Result<Granted, LoginError> {
        let answer = self.token_call(&[("grant_type", "authorization_code"), ("code", code), ("state", state)]).await?;
        let tokens = tokens_of(PROVIDER, &answer, now)?;
        if tokens.refresh.is_none() {
            return Err(unexpected("the token answer has no refresh_token"));
        }
        let me: Value = self
            .api
            .get("v1/nid/me")
            .header(AUTHORIZATION, bearer(&tokens.access)?)
            .send_json()
            .await
            .map_err(|e| LoginError::of(PROVIDER, e))?;
        let member = me.get("response").unwrap_or(&me);
        let account_id = member.get("id").and_then(text_of).filter(|id| !id.is_empty());
        let Some(account_id) = account_id else { return Err(unexpected("the member profile has no id")) };
        let account_name = member.get("nickname").and_then(Value::as_str).unwrap_or_default().to_owned();
        Ok(Granted { account_id, account_name, scopes: Vec::new(), tokens })
    }

    /// A new access token from `refresh_token` (which stays the same).
    pub async fn refresh(&self, refresh_token: &Secret, now: i64) -> Result<Tokens, LoginError> {
        let answer =
            self.token_call(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose())]).await?;
        tokens_of(PROVIDER, &answer, now)
    }

    /// Deletes `access_token` at Naver (best effort: Naver answers success even for a dead one).
    pub async fn revoke(&self, access_token: &Secret) -> Result<(), LoginError> {
        self.token_call(&[
            ("grant_type", "delete"),
            ("access_token", access_token.expose()),
            ("service_provider", "NAVER"),
        ])
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_take_string_lifetimes_and_may_omit_the_refresh_token() {
        let first = serde_json::json!({"access_token": "AAA", "refresh_token": "RRR", "token_type": "bearer", "expires_in": "3600"});
        let tokens = tokens_of(PROVIDER, &first, 1_000).expect("tokens");
        assert_eq!((tokens.access.expose(), tokens.expires_at), ("AAA", Some(3_601_000)));
        assert_eq!(tokens.refresh.as_ref().map(Secret::expose), Some("RRR"));
        let refreshed =
            tokens_of(PROVIDER, &serde_json::json!({"access_token": "BBB", "expires_in": 3600}), 0).expect("tokens");
        assert!(refreshed.refresh.is_none());
        assert!(tokens_of(PROVIDER, &serde_json::json!({"error": "invalid_request"}), 0).is_err());
    }

    #[test]
    fn the_login_url_has_no_scope_and_carries_the_state() {
        let app = NaverApp {
            client_id: "cid".into(),
            client_secret: Secret::new("secret"),
            auth_url: "https://nid.naver.com".into(),
            redirect_uri: "https://kem.example/api/v1/channels/oauth/callback".into(),
        };
        let login = NaverLogin::new(
            app,
            provider_config("https://nid.naver.com"),
            provider_config("https://openapi.naver.com"),
        )
        .expect("client");
        let url = login.authorize_url("abc");
        assert!(url.starts_with(
            "https://nid.naver.com/oauth2.0/authorize?response_type=code&client_id=cid&redirect_uri=https%3A%2F%2F"
        ));
        assert!(url.ends_with("&state=abc") && !url.contains("scope"), "{url}");
    }
}
