//! The owner's store account at a KT partner (우리동네TV, 링고비즈, 지니TV): the per-store
//! authorization of our contract `partner/v1` (PROVIDERS.md §7, extended for issue #21; the
//! partner client's module docs, [`crate::infra::channels::partner`], have the wire contract).
//!
//! Unlike Instagram and Naver, the contract is ours, so PKCE S256 is required: every attempt has
//! its own `code_verifier` (32 random bytes, base64url), kept sealed with the attempt and sent
//! with the code. Refresh tokens rotate: each refresh answers a new one, which replaces the old
//! one in the same guarded write that releases the refresh lease (the old one is dead at the
//! partner, and presenting it again would revoke the grant).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kem_kit::Secret;
use kem_kit::external::{ProviderClient, ProviderConfig, ProviderConfigError, ProviderError};
use reqwest::header::HeaderValue;
use serde_json::Value;

use super::{Granted, LoginError, Tokens, text_of, tokens_of, url_with_query};
use crate::domain::Channel;
use crate::infra::channels::form_body;
use crate::infra::channels::partner::SCOPE;

/// Provider name of the partner's authorization endpoints (breaker, logs).
pub const PROVIDER: &str = "kt-partner-login";

/// The platform's client at one channel's partner and where the owner's browser comes back.
#[derive(Debug, Clone)]
pub struct PartnerApp {
    /// The channel.
    pub channel: Channel,
    /// OAuth2 client id of the platform.
    pub client_id: String,
    /// Its secret.
    pub client_secret: Secret,
    /// `https://{partner-host}/partner/v1` (the browser's consent screen is under it).
    pub base_url: String,
    /// `<public base>/api/v1/channels/oauth/callback`, registered at the partner.
    pub redirect_uri: String,
}

/// The partner's authorization client of one channel.
#[derive(Debug, Clone)]
pub struct PartnerLogin {
    app: PartnerApp,
    client: ProviderClient,
}

/// A fresh PKCE `code_verifier` (RFC 7636: 32 random bytes, base64url, 43 characters).
pub fn code_verifier() -> Secret {
    Secret::new(URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
}

/// The S256 `code_challenge` of `verifier`.
pub fn code_challenge(verifier: &Secret) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.expose().as_bytes()).as_ref())
}

fn unexpected(detail: &str) -> LoginError {
    LoginError::Failed(ProviderError::UnexpectedResponse {
        provider: PROVIDER.into(),
        status: 200,
        detail: detail.to_owned(),
    })
}

impl PartnerLogin {
    /// A client of `app` with `config` (its base URL is the partner's `…/partner/v1`).
    pub fn new(app: PartnerApp, config: ProviderConfig) -> Result<PartnerLogin, ProviderConfigError> {
        Ok(PartnerLogin { app, client: ProviderClient::new(config)? })
    }

    /// The channel.
    pub fn channel(&self) -> Channel {
        self.app.channel
    }

    /// The consent screen for `state`, bound to `verifier` by its S256 challenge.
    pub fn authorize_url(&self, state: &str, verifier: &Secret) -> String {
        url_with_query(
            &self.app.base_url,
            "/oauth2/authorize",
            &[
                ("response_type", "code"),
                ("client_id", &self.app.client_id),
                ("redirect_uri", &self.app.redirect_uri),
                ("state", state),
                ("scope", SCOPE),
                ("code_challenge", &code_challenge(verifier)),
                ("code_challenge_method", "S256"),
            ],
        )
    }

    async fn form_call(&self, path: &str, pairs: &[(&str, &str)]) -> Result<Value, LoginError> {
        let mut all =
            vec![("client_id", self.app.client_id.as_str()), ("client_secret", self.app.client_secret.expose())];
        all.extend_from_slice(pairs);
        self.client
            .post(path)
            .body(form_body(&all), HeaderValue::from_static("application/x-www-form-urlencoded"))
            .classify(classify)
            .send_json()
            .await
            .map_err(|e| LoginError::of(PROVIDER, e))
    }

    /// Exchanges `code` with the attempt's `verifier`: the store's tokens, id and name.
    pub async fn exchange(&self, code: &str, verifier: &Secret, now: i64) -> Result<Granted, LoginError> {
        let answer = self
            .form_call(
                "oauth2/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &self.app.redirect_uri),
                    ("code_verifier", verifier.expose()),
                ],
            )
            .await?;
        let tokens = tokens_of(PROVIDER, &answer, now)?;
        if tokens.refresh.is_none() {
            return Err(unexpected("the token answer has no refresh_token"));
        }
        let Some(account_id) = answer.get("store_id").and_then(text_of).filter(|id| !id.is_empty()) else {
            return Err(unexpected("the token answer has no store_id"));
        };
        let account_name = answer.get("store_name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let scopes = answer
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or(SCOPE)
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(Granted { account_id, account_name, scopes, tokens })
    }

    /// A new access token and the rotated refresh token (the one given is dead afterwards).
    pub async fn refresh(&self, refresh_token: &Secret, now: i64) -> Result<Tokens, LoginError> {
        let answer = self
            .form_call("oauth2/token", &[("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose())])
            .await?;
        let tokens = tokens_of(PROVIDER, &answer, now)?;
        if tokens.refresh.is_none() {
            // Rotation is the contract: keeping the old one would revoke the grant at its next use.
            return Err(unexpected("the refresh answer has no new refresh_token"));
        }
        Ok(tokens)
    }

    /// Revokes the grant of `token` at the partner (RFC 7009).
    pub async fn revoke(&self, token: &Secret) -> Result<(), LoginError> {
        self.client
            .post("oauth2/revoke")
            .body(
                form_body(&[
                    ("client_id", self.app.client_id.as_str()),
                    ("client_secret", self.app.client_secret.expose()),
                    ("token", token.expose()),
                ]),
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            // Revoking twice is harmless.
            .idempotent()
            .classify(classify)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| LoginError::of(PROVIDER, e))
    }
}

/// RFC 6749 errors: a refused grant is a refusal (only the owner connecting again helps), a
/// refused client a configuration failure, neither a passing one.
fn classify(response: &kem_kit::external::ProviderResponse) -> Option<kem_kit::external::Verdict> {
    if response.status().is_success() {
        return None;
    }
    let json = serde_json::from_slice::<Value>(response.body()).ok()?;
    let error = json.get("error").and_then(Value::as_str)?;
    let detail = match json.get("error_description").and_then(Value::as_str) {
        Some(d) => format!("{error}: {d}"),
        None => error.to_owned(),
    };
    match error {
        // The owner's grant or code: only the owner connecting again helps.
        "invalid_grant" | "invalid_request" | "invalid_scope" => Some(kem_kit::external::Verdict::Auth(detail)),
        // The platform's client credentials or our request: an operator's problem, never a
        // reason to make every owner reconnect.
        "invalid_client" | "unauthorized_client" | "unsupported_grant_type" => Some(
            kem_kit::external::Verdict::Unexpected(format!("{detail} (check KEM_PARTNER_<CH>_CLIENT_ID and _API_KEY)")),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consent_url_carries_state_scope_and_an_s256_challenge() {
        let app = PartnerApp {
            channel: Channel::GenieTv,
            client_id: "kem".into(),
            client_secret: Secret::new("s"),
            base_url: "https://partner.example/partner/v1".into(),
            redirect_uri: "https://kem.example/api/v1/channels/oauth/callback".into(),
        };
        let login =
            PartnerLogin::new(app, super::super::login_provider_config(PROVIDER, "https://partner.example/partner/v1"))
                .expect("client");
        let verifier = Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let url = login.authorize_url("abc", &verifier);
        assert!(
            url.starts_with("https://partner.example/partner/v1/oauth2/authorize?response_type=code&client_id=kem")
        );
        assert!(url.contains("&scope=ads.write+ads.read&"), "{url}");
        assert!(
            url.ends_with("&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
        );
        assert_eq!(code_verifier().expose().len(), 43);
        assert_ne!(code_verifier().expose(), code_verifier().expose());
    }
}
