//! The Naver channel (PROVIDERS.md §5). Naver shut its blog write API down in 2020, so the channel
//! prepares a ready-to-post article — title, HTML body, images, and a deep link into the Naver
//! Blog editor — and leaves the delivery AWAITING_OWNER for owner-assisted publishing (no login
//! session is ever automated). Where Naver Login is configured and the owner connected their
//! Naver account with a cafe board, the article is posted there through the Cafe API
//! (`POST /v1/cafe/{clubid}/menu/{menuid}/articles`) with the owner's token, and the delivery is
//! PUBLISHED with the article's URL. Naver answering 401 (`024`: the token expired or was
//! withdrawn) fails the delivery AUTH_REQUIRED and the connection needs reconnecting; 403 (not a
//! member, board not writable) is PERMISSION_DENIED.
//!
//! The Cafe API wants `subject` and `content` URL-encoded inside the form (Naver's samples encode
//! UTF-8 first, then the form): both are encoded twice. A post is not idempotent, so it is
//! repeated only when Naver answered with an error, never after a timeout.
//!
//! The entry link: the article (blog or cafe; both take HTML) has a paragraph
//! `<strong>참여하기</strong>: <a href="<url>"><url></a>`, the URL HTML-escaped in the attribute and
//! the text alike, so it is clickable and visible when the owner pastes the article into the blog
//! editor.

use std::time::Duration;

use kem_kit::external::{
    ProviderClient, ProviderConfig, ProviderConfigError, ProviderError, ProviderResponse, Verdict,
};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use serde::Deserialize;

use super::{ChannelClient, CodeSlot, Step, form_body, form_encode, outcome_of_unrepeatable, send_while_refused};
use crate::domain::text::article_html;
use crate::domain::{Channel, ErrorReason, ManualPost, NaverCafe, ProviderLabel, StepOutcome};
use crate::infra::connections::ConnectedAccount;

/// Provider name of the Cafe API.
pub const PROVIDER: &str = "naver-cafe";
/// Name of owner-assisted blog publishing (no provider is called).
pub const ASSISTED: &str = "naver-blog-assisted";
/// Production API host.
pub const DEFAULT_BASE_URL: &str = "https://openapi.naver.com";
/// Opens the Naver Blog editor (the owner signs in to Naver there).
pub const BLOG_EDITOR_URL: &str = "https://blog.naver.com/GoBlogWrite.naver";

/// Cafe API client settings: 10 s per try, up to 3 tries while Naver refuses, 20 s in all.
pub fn provider_config(base_url: impl Into<String>) -> ProviderConfig {
    let mut config = ProviderConfig::new(PROVIDER, base_url);
    config.timeout = Duration::from_secs(10);
    config.deadline = Duration::from_secs(20);
    config.max_body_bytes = 1 << 20;
    config
}

/// The article of a delivery.
pub fn manual_post(step: &Step<'_>) -> ManualPost {
    ManualPost {
        title: step.job.title.clone(),
        html_body: article_html(step.job, step.copy, step.image_url),
        image_uris: step.image_url.map(str::to_owned).into_iter().collect(),
        editor_url: BLOG_EDITOR_URL.to_owned(),
    }
}

/// Owner-assisted blog publishing: the article waits for the owner.
#[derive(Debug, Clone, Copy, Default)]
pub struct AssistedNaver;

#[async_trait::async_trait]
impl ChannelClient for AssistedNaver {
    fn channel(&self) -> Channel {
        Channel::NaverBlog
    }

    fn provider(&self) -> ProviderLabel {
        ProviderLabel::none(ASSISTED)
    }

    fn retry_after_timeout_is_safe(&self) -> bool {
        true
    }

    async fn advance(&self, step: &Step<'_>) -> StepOutcome {
        StepOutcome::AwaitingOwner { post: manual_post(step) }
    }
}

#[derive(Debug, Deserialize)]
struct CafeResponse {
    #[serde(default)]
    message: Option<CafeMessage>,
    #[serde(flatten)]
    flat: CafeResult,
}

#[derive(Debug, Deserialize)]
struct CafeMessage {
    #[serde(default)]
    result: Option<CafeResult>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CafeResult {
    #[serde(default)]
    article_id: Option<serde_json::Value>,
    #[serde(default)]
    article_url: Option<String>,
}

/// Remembers Naver's error code (`{"errorMessage","errorCode"}`, or the Cafe API's
/// `{"message":{"error":{"code","msg"}}}`). 401 is the token (reconnect); 403 is the member's
/// standing in the cafe or the API not enabled, which a new token does not change.
fn classify(response: &ProviderResponse, slot: &CodeSlot) -> Option<Verdict> {
    if response.status().is_success() {
        return None;
    }
    let json = serde_json::from_slice::<serde_json::Value>(response.body()).unwrap_or_default();
    let code = json
        .get("errorCode")
        .or_else(|| json.pointer("/message/error/code"))
        .and_then(|c| c.as_str())
        .unwrap_or_default();
    if !code.is_empty() {
        slot.set(code.to_owned());
    }
    match response.status().as_u16() {
        401 => Some(Verdict::Auth(response.detail())),
        403 => Some(Verdict::Invalid(response.detail())),
        _ => None,
    }
}

/// Posts the article to the owner's Naver Cafe board with their token, or prepares it for
/// owner-assisted publishing when they have not connected Naver.
#[derive(Debug, Clone)]
pub struct CafeNaver {
    client: ProviderClient,
}

impl CafeNaver {
    /// A client of the Naver API host.
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderConfigError> {
        Ok(CafeNaver { client: ProviderClient::new(config)? })
    }

    /// The underlying provider client.
    pub fn provider_client(&self) -> &ProviderClient {
        &self.client
    }

    async fn post(
        &self,
        account: &ConnectedAccount,
        cafe: &NaverCafe,
        subject: &str,
        content: &str,
        slot: &CodeSlot,
    ) -> Result<(String, String), ProviderError> {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", account.access_token.expose())).map_err(|_| {
            ProviderError::Request {
                provider: PROVIDER.into(),
                detail: "the access token is not a valid header value".into(),
            }
        })?;
        bearer.set_sensitive(true);
        let body = form_body(&[("subject", &form_encode(subject)), ("content", &form_encode(content))]);
        let path = format!("v1/cafe/{}/menu/{}/articles", cafe.club_id, cafe.menu_id);
        let response: CafeResponse = self
            .client
            .post(&path)
            .header(AUTHORIZATION, bearer)
            .body(body, HeaderValue::from_static("application/x-www-form-urlencoded"))
            .classify(|r| classify(r, slot))
            .send_json()
            .await?;
        let result = response.message.and_then(|m| m.result).unwrap_or(response.flat);
        let id = match result.article_id {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        Ok((id, result.article_url.unwrap_or_default()))
    }
}

#[async_trait::async_trait]
impl ChannelClient for CafeNaver {
    fn channel(&self) -> Channel {
        Channel::NaverBlog
    }

    fn provider(&self) -> ProviderLabel {
        ProviderLabel::external(PROVIDER, "v1")
    }

    fn provider_for(&self, account: Option<&ConnectedAccount>) -> ProviderLabel {
        match account.and_then(|a| a.naver_cafe.as_ref()) {
            Some(_) => self.provider(),
            None => ProviderLabel::none(ASSISTED),
        }
    }

    fn retry_after_timeout_is_safe(&self) -> bool {
        false
    }

    async fn advance(&self, step: &Step<'_>) -> StepOutcome {
        if let Some(article_id) = step.delivery.work_ref.clone() {
            // Posted by an earlier step whose result could not be recorded: never post twice.
            return StepOutcome::published(article_id, step.delivery.permalink.clone(), String::new());
        }
        let post = manual_post(step);
        let Some((account, cafe)) = step.account.and_then(|a| a.naver_cafe.as_ref().map(|c| (a, c))) else {
            // Not connected: the owner posts the article themselves, as without Naver Login.
            return StepOutcome::AwaitingOwner { post };
        };
        let slot = CodeSlot::default();
        let config = self.client.config();
        let sent = send_while_refused(config.max_attempts, config.backoff, || {
            self.post(account, cafe, &post.title, &post.html_body, &slot)
        })
        .await;
        match sent {
            Ok((article_id, article_url)) => {
                step.progress.save_work_ref(&article_id, &article_id).await;
                StepOutcome::published(article_id, article_url, String::new())
            }
            Err(e) => {
                let mut outcome = outcome_of_unrepeatable(&e, &slot.get(), Duration::from_secs(3_600));
                if let (ProviderError::Invalid { status: 403, .. }, StepOutcome::Failed { failure, .. }) =
                    (&e, &mut outcome)
                {
                    failure.reason = ErrorReason::PermissionDenied;
                }
                outcome
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cafe_answers_are_read_wrapped_or_flat() {
        let wrapped: CafeResponse = serde_json::from_str(
            r#"{"message":{"@type":"response","status":"200","result":{"msg":"Success","cafeUrl":"kem","articleId":42,"articleUrl":"https://cafe.naver.com/kem/42"}}}"#,
        )
        .expect("wrapped");
        let result = wrapped.message.and_then(|m| m.result).expect("result");
        assert_eq!(result.article_id, Some(serde_json::json!(42)));
        let flat: CafeResponse =
            serde_json::from_str(r#"{"articleId":"7","articleUrl":"https://cafe.naver.com/kem/7"}"#).expect("flat");
        assert!(flat.message.is_none());
        assert_eq!(flat.flat.article_url.as_deref(), Some("https://cafe.naver.com/kem/7"));
    }
}
