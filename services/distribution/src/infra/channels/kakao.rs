//! Kakao Channel business messages (친구톡) through NAVER Cloud SENS, an official Kakao dealer
//! (PROVIDERS.md §6, §8, §12): `POST /friendtalk/v2/services/{serviceId}/messages`, signed with
//! the NAVER Cloud API Gateway signature v2 (HMAC-SHA256 of `"POST <path>\n<timestamp>\n<access
//! key>"` with the secret key, Base64).
//!
//! Sender: the owner's own Kakao Talk Channel (`plusFriendId` = the connected channel's id,
//! e.g. `@myshop`), which the owner connected after kem support registered it as a sender profile
//! of the platform's SENS Biz Message service ([`crate::infra::connections::kakao`]). There is no
//! platform-wide channel: a delivery without the owner's connected channel fails before anything
//! is sent.
//!
//! Recipients: the people who entered one of the owner's events and agreed to receive the store's
//! marketing messages ([`crate::infra::recipients`], from participation), in batches of at most
//! [`BATCH_MAX`] messages per SENS request (SENS's limit), at most [`BATCHES_PER_STEP`] batches per
//! step (a long list continues in the next step). Each message has its own request status:
//! `A000` is accepted; any other (e.g. the person is not a friend of the channel) is counted as
//! not delivered without failing the delivery. The delivery is PUBLISHED with reach = the accepted
//! count when at least one was accepted; with nobody to send to, or nobody accepted, it FAILS
//! (NOT_CONFIGURED, not retried) saying why.
//!
//! Never twice: a send is not idempotent and SENS takes no idempotency key, so progress is kept
//! per event in `kakao_sends` ([`crate::infra::kakao_sends`]): the batch about to be sent is
//! recorded first, its answer settles it. A later step (a retry, a worker taking over a dead
//! one's delivery, the owner's Retry) continues after the last settled batch, and skips a batch
//! whose answer never came (its outcome is unknown) instead of repeating it. A request SENS
//! answered with an error (5xx, 429) is repeated (it sent nothing); one that timed out is not.
//! Kakao restricts 친구톡 advertising at night (20:00–08:00 KST): a send due then is queued until
//! 08:00.
//!
//! The entry link: 친구톡 allows up to five buttons per message; the message gets one web-link
//! button (`{"type":"WL","name":"참여하기","linkMobile":<url>,"linkPc":<url>}`), and the URL is the
//! text's last line too (KakaoTalk links URLs in text, and a client that shows no buttons, e.g. a
//! notification preview, still shows it). A button name is at most 14 characters, and a WL link
//! must be an absolute http(s) URL (which [`crate::domain::job::checked_entry_url`] ensures).

use std::time::{Duration, SystemTime};

use kem_kit::Secret;
use kem_kit::external::ncp::{ACCESS_KEY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use kem_kit::external::{
    ProviderClient, ProviderConfig, ProviderConfigError, ProviderError, ProviderResponse, Verdict,
};
use kem_kit::store::millis;
use reqwest::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::{
    ChannelClient, CodeSlot, Step, not_connected, outcome_of, outcome_of_unrepeatable, provider_refused,
    send_while_refused,
};
use crate::domain::text::{ENTRY_LINK_LABEL, kakao_quiet_until, kakao_text};
use crate::domain::{Channel, ErrorReason, Failure, ProviderLabel, StepOutcome};
use crate::infra::kakao_sends::KakaoSends;
use crate::infra::recipients::MeshRecipients;

/// Provider name.
pub const PROVIDER: &str = "kakao-sens";
/// Production API host.
pub const DEFAULT_BASE_URL: &str = "https://sens.apigw.ntruss.com";
/// Per-message request status of an accepted message.
pub const ACCEPTED: &str = "A000";
/// Most messages SENS takes in one request.
pub const BATCH_MAX: usize = 100;
/// Most batches one step sends (a step has a deadline; a long list continues in the next step).
pub const BATCHES_PER_STEP: usize = 10;
/// The work reference of a delivery whose send continues in the next step (the progress itself
/// is in `kakao_sends`).
const CONTINUING: &str = "sens-batches";

/// SENS client settings: 10 s per try, up to 3 tries while SENS refuses, 20 s in all.
pub fn provider_config(base_url: impl Into<String>) -> ProviderConfig {
    let mut config = ProviderConfig::new(PROVIDER, base_url);
    config.timeout = Duration::from_secs(10);
    config.deadline = Duration::from_secs(20);
    config.max_attempts = 3;
    config.max_body_bytes = 1 << 20;
    config
}

/// The platform's SENS Biz Message account (the senders are the owners' channels registered in
/// it).
#[derive(Debug, Clone, Default)]
pub struct SensSettings {
    /// Access key id (`x-ncp-iam-access-key`).
    pub access_key: String,
    /// Biz Message service id (`ncp:kkobizmsg:kr:…`).
    pub service_id: String,
    /// Send as an advertisement (`isAd`); Kakao's night restriction applies to these.
    pub advertisement: bool,
    /// Hold advertising sends during Kakao's quiet hours (20:00–08:00 KST).
    pub quiet_hours: bool,
}

/// The three API Gateway headers of a `method` request to `path` (as sent, without the host),
/// signed with `secret` now.
pub fn gateway_headers(
    secret: &Secret,
    access_key: &str,
    method: &str,
    path: &str,
) -> Result<[(HeaderName, HeaderValue); 3], ProviderError> {
    let timestamp = millis(SystemTime::now());
    let signed = signature(secret.expose(), method, path, timestamp, access_key);
    let header = |value: &str| {
        HeaderValue::from_str(value).map_err(|_| ProviderError::Request {
            provider: PROVIDER.into(),
            detail: "a SENS credential is not a valid header value".to_owned(),
        })
    };
    let mut signature = header(&signed)?;
    signature.set_sensitive(true);
    Ok([
        (HeaderName::from_static(TIMESTAMP_HEADER), header(&timestamp.to_string())?),
        (HeaderName::from_static(ACCESS_KEY_HEADER), header(access_key)?),
        (HeaderName::from_static(SIGNATURE_HEADER), signature),
    ])
}

/// The path prefix of a base URL (a gateway mounted under a path), without a trailing `/`.
pub fn path_prefix(base_url: &str) -> String {
    reqwest::Url::parse(base_url).map(|u| u.path().trim_end_matches('/').to_owned()).unwrap_or_default()
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
    messages: Vec<MessageResult>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageResult {
    #[serde(default)]
    request_status_code: String,
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

/// What one batch came to.
struct BatchResult {
    request_id: String,
    accepted: i64,
    not_delivered: i64,
}

/// The real SENS client.
#[derive(Debug, Clone)]
pub struct SensKakao {
    client: ProviderClient,
    secret: Secret,
    settings: SensSettings,
    path_prefix: String,
    recipients: MeshRecipients,
    sends: KakaoSends,
}

impl SensKakao {
    /// A client of `config`'s host for `settings`' account, signing with `secret`, sending to
    /// the owners' `recipients` and recording progress in `sends`.
    pub fn new(
        config: ProviderConfig,
        secret: Secret,
        settings: SensSettings,
        recipients: MeshRecipients,
        sends: KakaoSends,
    ) -> Result<Self, ProviderConfigError> {
        let path_prefix = path_prefix(&config.base_url);
        Ok(SensKakao { client: ProviderClient::new(config)?, secret, settings, path_prefix, recipients, sends })
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
        let headers =
            gateway_headers(&self.secret, &self.settings.access_key, "POST", &format!("{}/{path}", self.path_prefix))?;
        let mut request = self.client.post(path);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request.json(body).classify(|r| classify(r, slot)).send_json().await
    }

    /// Sends one batch from `channel_id` to `phones`.
    async fn send_batch(
        &self,
        step: &Step<'_>,
        channel_id: &str,
        phones: &[String],
        slot: &CodeSlot,
    ) -> Result<BatchResult, ProviderError> {
        let content = kakao_text(step.job, step.copy);
        let body = SendRequest {
            plus_friend_id: channel_id,
            messages: phones
                .iter()
                .map(|to| Message {
                    is_ad: self.settings.advertisement,
                    country_code: "82",
                    to: to.clone(),
                    content: content.clone(),
                    buttons: entry_buttons(&step.copy.entry_url),
                })
                .collect(),
        };
        let path = format!("friendtalk/v2/services/{}/messages", self.settings.service_id);
        let config = self.client.config();
        let sent =
            send_while_refused(config.max_attempts, config.backoff, || self.send_once(&path, &body, slot)).await?;
        let accepted = sent.messages.iter().filter(|m| m.request_status_code == ACCEPTED).count();
        // SENS answers one status per message; messages it left out of the answer were not accepted.
        let not_delivered = phones.len().saturating_sub(accepted);
        Ok(BatchResult {
            request_id: sent.request_id,
            accepted: i64::try_from(accepted).unwrap_or(0),
            not_delivered: i64::try_from(not_delivered).unwrap_or(0),
        })
    }
}

fn storage(error: &kem_kit::store::StoreError) -> StepOutcome {
    StepOutcome::retry(Failure::new(
        ErrorReason::Internal,
        format!("the Kakao send's progress cannot be recorded: {error}"),
        true,
    ))
}

/// Someone else advanced the same send meanwhile (a worker whose hold expired): this step stops
/// and the delivery comes back to read the progress again.
fn contended() -> StepOutcome {
    StepOutcome::retry(Failure::new(
        ErrorReason::ProviderUnavailable,
        "another worker advanced this Kakao send meanwhile; continuing from its progress",
        true,
    ))
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
        if let Some(request_id) = step.delivery.work_ref.clone().filter(|r| r != CONTINUING) {
            // Sent in one request by an earlier version whose result could not be recorded.
            return StepOutcome::published(request_id, String::new(), "success");
        }
        let Some(account) = step.account else {
            // The use case refuses a channel needing a connection before the step; never send
            // without the owner's own channel.
            return StepOutcome::fail(not_connected(Channel::KakaoChannel));
        };
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
        let event_id = step.delivery.event_id.as_str();
        let recipients = match self.recipients.list(&step.job.owner_id).await {
            Ok(list) => list,
            Err(failure) if failure.retryable => return StepOutcome::retry(failure),
            Err(failure) => return StepOutcome::fail(failure),
        };
        let now = || millis(SystemTime::now());
        let mut progress = match self.sends.open(event_id, &step.job.owner_id, now()).await {
            Ok(progress) => progress,
            Err(error) => return storage(&error),
        };
        if let Some(in_flight) = progress.in_flight.clone() {
            // A batch was sent and its answer never recorded: its outcome is unknown, so it is
            // skipped rather than sent twice.
            let count = recipients
                .iter()
                .filter(|p| p.as_str() > progress.after_phone.as_str() && p.as_str() <= in_flight.as_str())
                .count();
            let count = i64::try_from(count).unwrap_or(0);
            tracing::warn!(event_id, skipped = count, "a Kakao batch's outcome is unknown; it is not sent again");
            match self.sends.skip_in_flight(event_id, &in_flight, count, now()).await {
                Ok(true) => {
                    progress.after_phone = in_flight;
                    progress.in_flight = None;
                    progress.unknown += count;
                }
                Ok(false) => return contended(),
                Err(error) => return storage(&error),
            }
        }
        let remaining: Vec<String> =
            recipients.iter().filter(|p| p.as_str() > progress.after_phone.as_str()).cloned().collect();
        let channel_id = account.account_id.as_str();
        for batch in remaining.chunks(BATCH_MAX).take(BATCHES_PER_STEP) {
            let Some(last) = batch.last() else { break };
            match self.sends.start_batch(event_id, &progress.after_phone, last, now()).await {
                Ok(true) => {}
                Ok(false) => return contended(),
                Err(error) => return storage(&error),
            }
            let slot = CodeSlot::default();
            match self.send_batch(step, channel_id, batch, &slot).await {
                Ok(result) => {
                    match self
                        .sends
                        .settle_batch(event_id, last, result.accepted, result.not_delivered, &result.request_id, now())
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => return contended(),
                        // Left in flight: the next step skips it, which is right (it was sent).
                        Err(error) => return storage(&error),
                    }
                    if progress.first_request.is_empty() {
                        progress.first_request = result.request_id.clone();
                    }
                    progress.after_phone = last.clone();
                    progress.accepted += result.accepted;
                    progress.not_delivered += result.not_delivered;
                    progress.requests += 1;
                    tracing::info!(event_id, request_id = %result.request_id, accepted = result.accepted,
                        not_delivered = result.not_delivered, "Kakao batch sent");
                }
                Err(error) if provider_refused(&error) => {
                    // SENS answered with an error: nothing of this batch was sent.
                    if let Err(e) = self.sends.abandon_batch(event_id, last, now()).await {
                        tracing::warn!(error = %e, "cannot clear a refused Kakao batch; the next step skips it");
                    }
                    let code = slot.get();
                    if matches!(error, ProviderError::Invalid { .. } | ProviderError::Auth { .. })
                        && code_names_the_sender(&error)
                    {
                        return StepOutcome::fail(
                            Failure::new(
                                ErrorReason::NotConfigured,
                                format!(
                                    "SENS refused {channel_id} as the sender: the Kakao channel is no longer an active \
                                sender profile of the platform's SENS service; reconnect your Kakao Channel \
                                (Channels) once kem support has registered it again, and retry this delivery"
                                ),
                                false,
                            )
                            .with_code(code),
                        );
                    }
                    if let ProviderError::Auth { .. } = error {
                        // The gateway refused the platform's own credentials: not the owner's
                        // connection (which AUTH_REQUIRED would mark for reconnecting).
                        return StepOutcome::fail(
                            Failure::new(
                                ErrorReason::Internal,
                                format!(
                                    "SENS refused kem's credentials ({error}); nothing was sent — kem support must \
                                     fix the platform's SENS access key, then retry this delivery"
                                ),
                                false,
                            )
                            .with_code(code),
                        );
                    }
                    return outcome_of(&error, &code, Duration::from_secs(60));
                }
                Err(error) => return outcome_of_unrepeatable(&error, &slot.get(), Duration::from_secs(60)),
            }
        }
        if recipients.iter().any(|p| p.as_str() > progress.after_phone.as_str()) {
            // More batches: the next step continues right away.
            return StepOutcome::InProgress {
                work_ref: CONTINUING.to_owned(),
                external_id: progress.first_request.clone(),
                provider_status: format!("sending: {} accepted so far", progress.accepted),
                poll_after: Duration::ZERO,
            };
        }
        if progress.accepted == 0 {
            let message = if recipients.is_empty() {
                "no participant of your events has agreed to receive marketing messages yet, so there is no one to \
                send the Kakao message to; it is sent to the people who agree when they enter your events"
                    .to_owned()
            } else {
                format!(
                    "none of the {} participants who agreed to receive marketing messages could receive it: Kakao \
                    delivers 친구톡 only to friends of your Kakao channel {channel_id}",
                    recipients.len()
                )
            };
            if let Err(error) = self.sends.forget_if_nothing_sent(event_id).await {
                tracing::warn!(%error, "cannot reset an empty Kakao send");
            }
            return StepOutcome::fail(Failure::new(ErrorReason::NotConfigured, message, false));
        }
        let status = if progress.not_delivered + progress.unknown == 0 {
            "success".to_owned()
        } else {
            format!(
                "{} accepted, {} not delivered, {} unknown",
                progress.accepted, progress.not_delivered, progress.unknown
            )
        };
        StepOutcome::Published {
            external_id: progress.first_request,
            permalink: String::new(),
            provider_status: status,
            reach: Some(progress.accepted),
            views: None,
        }
    }
}

/// Whether a SENS refusal is about the sender (`plusFriendId`) rather than the messages.
fn code_names_the_sender(error: &ProviderError) -> bool {
    let detail = error.to_string().to_ascii_lowercase();
    detail.contains("plusfriendid") || detail.contains("sender") || detail.contains("channel")
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
