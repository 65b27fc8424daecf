//! Kakao Channel business messages (친구톡) through NAVER Cloud SENS, an official Kakao dealer
//! (PROVIDERS.md §6): `POST /friendtalk/v2/services/{serviceId}/messages`, signed with the NAVER
//! Cloud API Gateway signature v2 (HMAC-SHA256 of `"POST <path>\n<timestamp>\n<access key>"`
//! with the secret key, Base64).
//!
//! A send is not idempotent and SENS takes no idempotency key, so it is repeated only when SENS
//! answered with an error (5xx, 429) — never after a timeout, whose outcome is unknown. Kakao
//! restricts 친구톡 advertising at night (20:00–08:00 KST): a send due then is queued until 08:00.
//!
//! Recipients: the store's own phone (the owner profile). Broadcasting to the Kakao channel's
//! friends needs their phone numbers, which no kem contract carries yet.
//!
//! The entry link: 친구톡 allows up to five buttons per message; the message gets one web-link
//! button (`{"type":"WL","name":"참여하기","linkMobile":<url>,"linkPc":<url>}`), and the URL is the
//! text's last line too (KakaoTalk links URLs in text, and a client that shows no buttons, e.g. a
//! notification preview, still shows it). A button name is at most 14 characters, and a WL link
//! must be an absolute http(s) URL (which [`crate::domain::job::checked_entry_url`] ensures).

use std::time::{Duration, SystemTime};

use kem_kit::Secret;
use kem_kit::external::{
    ProviderClient, ProviderConfig, ProviderConfigError, ProviderError, ProviderResponse, Verdict,
};
use kem_kit::store::millis;
use reqwest::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::{ChannelClient, CodeSlot, Step, outcome_of_unrepeatable, send_while_refused};
use crate::domain::text::{ENTRY_LINK_LABEL, domestic_phone, kakao_quiet_until, kakao_text};
use crate::domain::{Channel, ErrorReason, Failure, ProviderLabel, StepOutcome};

/// Provider name.
pub const PROVIDER: &str = "kakao-sens";
/// Production API host.
pub const DEFAULT_BASE_URL: &str = "https://sens.apigw.ntruss.com";
/// Per-message request status of an accepted message.
const ACCEPTED: &str = "A000";

/// SENS client settings: 10 s per try, up to 3 tries while SENS refuses, 20 s in all.
pub fn provider_config(base_url: impl Into<String>) -> ProviderConfig {
    let mut config = ProviderConfig::new(PROVIDER, base_url);
    config.timeout = Duration::from_secs(10);
    config.deadline = Duration::from_secs(20);
    config.max_attempts = 3;
    config.max_body_bytes = 1 << 20;
    config
}

/// The SENS account.
#[derive(Debug, Clone, Default)]
pub struct SensSettings {
    /// Access key id (`x-ncp-iam-access-key`).
    pub access_key: String,
    /// Biz Message service id (`ncp:kkobizmsg:kr:…`).
    pub service_id: String,
    /// The Kakao channel sending the messages (`plusFriendId`, e.g. `@kem`).
    pub plus_friend_id: String,
    /// Send as an advertisement (`isAd`); Kakao's night restriction applies to these.
    pub advertisement: bool,
    /// Hold advertising sends during Kakao's quiet hours (20:00–08:00 KST).
    pub quiet_hours: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SendRequest<'a> {
    plus_friend_id: &'a str,
    messages: Vec<Message<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    is_ad: bool,
    country_code: &'a str,
    to: String,
    content: String,
    /// The entry link's button; the field is left out of a message without one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    buttons: Vec<Button<'a>>,
}

/// A 친구톡 button; only web links (`WL`) are sent.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Button<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
    link_mobile: &'a str,
    link_pc: &'a str,
}

/// The web-link button to the entry page, none without a link.
fn entry_buttons(entry_url: &str) -> Vec<Button<'_>> {
    let url = entry_url.trim();
    if url.is_empty() {
        return Vec::new();
    }
    vec![Button { kind: "WL", name: ENTRY_LINK_LABEL, link_mobile: url, link_pc: url }]
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendResponse {
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    status_name: String,
    #[serde(default)]
    messages: Vec<MessageResult>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageResult {
    #[serde(default)]
    request_status_code: String,
    #[serde(default)]
    request_status_desc: String,
}

/// The API Gateway signature v2 of a request (the kit's, shared by every NAVER Cloud client).
pub use kem_kit::external::ncp::signature;

/// Remembers SENS's error code: `{"error":{"errorCode",…}}` (gateway) or `{"status",…}`.
fn classify(response: &ProviderResponse, slot: &CodeSlot) -> Option<Verdict> {
    if response.status().is_success() {
        return None;
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(response.body()) {
        let code = json
            .pointer("/error/errorCode")
            .or_else(|| json.pointer("/errorCode"))
            .or_else(|| json.pointer("/status"))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
        if let Some(code) = code {
            slot.set(code);
        }
    }
    None
}

/// The real SENS client.
#[derive(Debug, Clone)]
pub struct SensKakao {
    client: ProviderClient,
    secret: Secret,
    settings: SensSettings,
    path_prefix: String,
}

impl SensKakao {
    /// A client of `config`'s host for `settings`' account, signing with `secret`.
    pub fn new(config: ProviderConfig, secret: Secret, settings: SensSettings) -> Result<Self, ProviderConfigError> {
        let path_prefix = reqwest::Url::parse(&config.base_url)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(SensKakao { client: ProviderClient::new(config)?, secret, settings, path_prefix })
    }

    /// The underlying provider client.
    pub fn provider_client(&self) -> &ProviderClient {
        &self.client
    }

    async fn send_once(
        &self,
        path: &str,
        body: &SendRequest<'_>,
        slot: &CodeSlot,
    ) -> Result<SendResponse, ProviderError> {
        let timestamp = millis(SystemTime::now());
        let signed = signature(
            self.secret.expose(),
            "POST",
            &format!("{}/{path}", self.path_prefix),
            timestamp,
            &self.settings.access_key,
        );
        let header = |value: &str| {
            HeaderValue::from_str(value).map_err(|_| ProviderError::Request {
                provider: PROVIDER.into(),
                detail: "a SENS credential is not a valid header value".to_owned(),
            })
        };
        let mut signature = header(&signed)?;
        signature.set_sensitive(true);
        self.client
            .post(path)
            .header(HeaderName::from_static("x-ncp-apigw-timestamp"), header(&timestamp.to_string())?)
            .header(HeaderName::from_static("x-ncp-iam-access-key"), header(&self.settings.access_key)?)
            .header(HeaderName::from_static("x-ncp-apigw-signature-v2"), signature)
            .json(body)
            .classify(|r| classify(r, slot))
            .send_json()
            .await
    }
}

#[async_trait::async_trait]
impl ChannelClient for SensKakao {
    fn channel(&self) -> Channel {
        Channel::KakaoChannel
    }

    fn provider(&self) -> ProviderLabel {
        ProviderLabel::external(PROVIDER, "friendtalk/v2")
    }

    fn retry_after_timeout_is_safe(&self) -> bool {
        false
    }

    async fn advance(&self, step: &Step<'_>) -> StepOutcome {
        if let Some(request_id) = step.delivery.work_ref.clone() {
            // Sent by an earlier step whose result could not be recorded: never send twice.
            return StepOutcome::published(request_id, String::new(), "success");
        }
        if self.settings.advertisement
            && self.settings.quiet_hours
            && let Some(until) = kakao_quiet_until(millis(SystemTime::now()))
        {
            let wait = Duration::from_millis(u64::try_from(until - millis(SystemTime::now())).unwrap_or(0));
            let failure = Failure::new(
                ErrorReason::RateLimited,
                "Kakao does not deliver advertising 친구톡 between 20:00 and 08:00 KST; queued until 08:00",
                true,
            );
            return StepOutcome::Deferred { retry_after: wait, failure };
        }
        let owner = match step.owner().await {
            Ok(owner) => owner,
            Err(outcome) => return outcome,
        };
        let Some(to) = domestic_phone(&owner.phone) else {
            return StepOutcome::fail(Failure::new(
                ErrorReason::NotConfigured,
                "the store has no Korean mobile number to send the Kakao message to",
                false,
            ));
        };
        let body = SendRequest {
            plus_friend_id: &self.settings.plus_friend_id,
            messages: vec![Message {
                is_ad: self.settings.advertisement,
                country_code: "82",
                to,
                content: kakao_text(step.job, step.copy),
                buttons: entry_buttons(&step.copy.entry_url),
            }],
        };
        let path = format!("friendtalk/v2/services/{}/messages", self.settings.service_id);
        let slot = CodeSlot::default();
        let config = self.client.config();
        match send_while_refused(config.max_attempts, config.backoff, || self.send_once(&path, &body, &slot)).await {
            Ok(sent) => {
                if let Some(refused) = sent.messages.iter().find(|m| m.request_status_code != ACCEPTED) {
                    return StepOutcome::fail(
                        Failure::new(
                            ErrorReason::InvalidContent,
                            format!("SENS refused the message: {}", refused.request_status_desc),
                            false,
                        )
                        .with_code(refused.request_status_code.clone()),
                    );
                }
                // Recorded first, so a worker that dies now cannot lead to a second send.
                step.progress.save_work_ref(&sent.request_id, &sent.request_id).await;
                StepOutcome::Published {
                    external_id: sent.request_id,
                    permalink: String::new(),
                    provider_status: sent.status_name,
                    reach: Some(i64::try_from(sent.messages.len()).unwrap_or(0)),
                    views: None,
                }
            }
            Err(e) => outcome_of_unrepeatable(&e, &slot.get(), Duration::from_secs(60)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_use_the_sens_field_names() {
        let body = SendRequest {
            plus_friend_id: "@kem",
            messages: vec![Message {
                is_ad: true,
                country_code: "82",
                to: "01012345678".into(),
                content: "hi".into(),
                buttons: entry_buttons("https://kem.example/e/1?ch=kakao_channel&a=\"b\""),
            }],
        };
        let json = serde_json::to_value(&body).expect("json");
        assert_eq!(json["plusFriendId"], "@kem");
        assert_eq!(json["messages"][0]["isAd"], true);
        assert_eq!(json["messages"][0]["countryCode"], "82");
        assert_eq!(
            json["messages"][0]["buttons"],
            serde_json::json!([{"type": "WL", "name": "참여하기",
                "linkMobile": "https://kem.example/e/1?ch=kakao_channel&a=\"b\"",
                "linkPc": "https://kem.example/e/1?ch=kakao_channel&a=\"b\""}])
        );
        let text = serde_json::to_string(&body).expect("json");
        assert!(text.contains(r#"a=\"b\""#), "quotes are JSON-escaped: {text}");
        let plain = Message {
            is_ad: false,
            country_code: "82",
            to: "0".into(),
            content: "x".into(),
            buttons: entry_buttons(" "),
        };
        assert!(serde_json::to_value(&plain).expect("json").get("buttons").is_none(), "no link, no buttons");
    }
}
