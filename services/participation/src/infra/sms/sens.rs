//! NAVER Cloud SENS SMS/LMS v2 (PROVIDERS.md §8) on the kit's provider client: every call signed
//! with the API Gateway signature v2 ([`kem_kit::external::ncp`]), a send as `POST
//! /sms/v2/services/{serviceId}/messages` (type SMS or LMS by EUC-KR length, `contentType` COMM, the
//! registered calling number as `from`), accepted with `202` and a `requestId`; lookups `GET
//! …/messages?requestId=` → message ids → `GET …/messages/{messageId}` → READY / PROCESSING /
//! COMPLETED with `statusName` success or fail.
//!
//! A send is never repeated by the client itself (SENS takes no idempotency key): one attempt,
//! and the caller reads [`SmsError`] — a refusal sent nothing, a timeout may have sent, and is
//! settled with [`SensSms::find`] (the request time window of the last day, filtered by recipient
//! and compared by text) before anything is sent again. Lookups are GETs, retried as the kit does.

use std::time::{Duration, SystemTime};

use kem_kit::Secret;
use kem_kit::external::{ProviderClient, ProviderConfig, ProviderConfigError, ProviderError, ncp};
use kem_kit::store::millis;
use reqwest::header::{HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::json;

use crate::domain::notice::civil;

use super::{
    Delivery, SUBJECT_MAX_BYTES, SmsError, SmsKind, SmsMessage, SmsProviderInfo, SmsSender, carrier_text, euc_kr_prefix,
};

/// Provider name (breaker, logs, `WinnerNotification.provider.name`).
pub const PROVIDER: &str = "naver-sens";
/// Production API host.
pub const DEFAULT_BASE_URL: &str = "https://sens.apigw.ntruss.com";
/// `ProviderKind` EXTERNAL.
const EXTERNAL_KIND: i32 = 1;
/// How far back [`SensSms::find`] looks.
const FIND_WINDOW_MS: i64 = 24 * 3_600_000;

/// The SENS account and how to reach it.
#[derive(Debug, Clone)]
pub struct SensSettings {
    /// Base URL (`https://sens.apigw.ntruss.com`, or a contract server in tests).
    pub base_url: String,
    /// Access key id (`x-ncp-iam-access-key`).
    pub access_key: String,
    /// Secret key the signature is made with.
    pub secret_key: Secret,
    /// SMS service id (`ncp:sms:kr:<n>:<name>`).
    pub service_id: String,
    /// The registered calling number, digits only.
    pub from: String,
    /// Deadline of one call.
    pub timeout: Duration,
}

/// Provider settings: one attempt per send (a send is not repeatable), `timeout` per call.
pub fn provider_config(settings: &SensSettings) -> ProviderConfig {
    let mut config = ProviderConfig::new(PROVIDER, settings.base_url.clone());
    config.timeout = settings.timeout;
    config.deadline = settings.timeout.saturating_mul(3);
    config.max_body_bytes = 1 << 20;
    config
}

/// The real SENS client.
#[derive(Debug, Clone)]
pub struct SensSms {
    client: ProviderClient,
    settings: SensSettings,
    /// The base URL's path (signed with the request path).
    prefix: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    request_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    #[serde(default)]
    messages: Vec<ListedMessage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedMessage {
    message_id: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    to: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Looked {
    #[serde(default)]
    messages: Vec<LookedMessage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LookedMessage {
    #[serde(default)]
    status: String,
    #[serde(default)]
    status_name: String,
    #[serde(default)]
    status_code: String,
    #[serde(default)]
    status_message: String,
    #[serde(default)]
    content: String,
}

/// Percent-encodes a query value (SENS wants its times URL-encoded; the signature covers the
/// query exactly as sent).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `YYYY-MM-DD HH:mm:ss` in Asia/Seoul (UTC+9, no daylight saving), SENS's time format.
fn sens_time(ms: i64) -> String {
    // Out of range only for absurd clocks; SENS then refuses the window, which is reported.
    civil(ms, true)
        .map_or_else(String::new, |(y, mo, d, h, mi, s)| format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"))
}

/// `+821012345678` → `01012345678` (SENS wants national digits with countryCode 82).
fn national(e164: &str) -> String {
    match e164.strip_prefix("+82") {
        Some(rest) => format!("0{rest}"),
        None => e164.chars().filter(char::is_ascii_digit).collect(),
    }
}

/// What a provider failure means for a message.
fn sms_error(error: ProviderError) -> SmsError {
    let detail = error.to_string();
    match error {
        ProviderError::RateLimited { .. } | ProviderError::BreakerOpen { .. } => SmsError::Refused { detail },
        // An HTTP error answer: SENS said no before accepting anything.
        ProviderError::Transient { status: Some(_), .. } => SmsError::Refused { detail },
        // No answer, or one outside the contract: SENS may have accepted the message.
        ProviderError::Transient { status: None, .. }
        | ProviderError::Timeout { .. }
        | ProviderError::UnexpectedResponse { .. } => SmsError::Unknown { detail },
        ProviderError::Auth { .. }
        | ProviderError::Invalid { .. }
        | ProviderError::Moderated { .. }
        | ProviderError::Request { .. } => SmsError::Rejected { detail },
    }
}

impl SensSms {
    /// A client for `settings`.
    pub fn new(settings: SensSettings) -> Result<SensSms, ProviderConfigError> {
        let prefix = reqwest::Url::parse(&settings.base_url)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        Ok(SensSms { client: ProviderClient::new(provider_config(&settings))?, settings, prefix })
    }

    /// The underlying provider client (breaker, counters).
    pub fn provider_client(&self) -> &ProviderClient {
        &self.client
    }

    fn messages_path(&self) -> String {
        format!("sms/v2/services/{}/messages", self.settings.service_id)
    }

    /// A request to `path` (relative, query included) with the gateway's headers.
    fn signed(&self, method: reqwest::Method, path: &str) -> Result<kem_kit::external::ProviderRequest<'_>, SmsError> {
        let timestamp = millis(SystemTime::now());
        let signature = ncp::signature(
            self.settings.secret_key.expose(),
            method.as_str(),
            &format!("{}/{path}", self.prefix),
            timestamp,
            &self.settings.access_key,
        );
        let header = |value: &str| {
            HeaderValue::from_str(value)
                .map_err(|_| SmsError::Rejected { detail: "a SENS credential is not a valid header value".to_owned() })
        };
        let mut signature = header(&signature)?;
        signature.set_sensitive(true);
        Ok(self
            .client
            .request(method, path)
            .header(HeaderName::from_static(ncp::TIMESTAMP_HEADER), header(&timestamp.to_string())?)
            .header(HeaderName::from_static(ncp::ACCESS_KEY_HEADER), header(&self.settings.access_key)?)
            .header(HeaderName::from_static(ncp::SIGNATURE_HEADER), signature))
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, SmsError> {
        self.signed(reqwest::Method::GET, path)?.send_json().await.map_err(sms_error)
    }

    async fn lookup(&self, message_id: &str) -> Result<Option<LookedMessage>, SmsError> {
        let looked: Looked = self.get(&format!("{}/{}", self.messages_path(), encode(message_id))).await?;
        Ok(looked.messages.into_iter().next())
    }
}

#[tonic::async_trait]
impl SmsSender for SensSms {
    fn info(&self) -> SmsProviderInfo {
        SmsProviderInfo { kind: EXTERNAL_KIND, name: PROVIDER.to_owned() }
    }

    async fn send(&self, message: &SmsMessage) -> Result<String, SmsError> {
        let text = carrier_text(&message.text);
        let kind = SmsKind::for_text(&text);
        let mut body = json!({
            "type": kind.as_str(),
            "contentType": "COMM",
            "countryCode": "82",
            "from": self.settings.from,
            "content": text,
            "messages": [{"to": national(&message.to_e164)}],
        });
        if kind == SmsKind::Lms {
            let first_line = text.lines().next().unwrap_or_default();
            body["subject"] = json!(euc_kr_prefix(first_line, SUBJECT_MAX_BYTES));
        }
        let accepted: Accepted = self
            .signed(reqwest::Method::POST, &self.messages_path())?
            .json(&body)
            .send_json()
            .await
            .map_err(sms_error)?;
        Ok(accepted.request_id)
    }

    async fn find(&self, message: &SmsMessage) -> Result<Option<String>, SmsError> {
        let now = millis(SystemTime::now());
        let path = format!(
            "{}?requestStartTime={}&requestEndTime={}",
            self.messages_path(),
            encode(&sens_time(now - FIND_WINDOW_MS)),
            encode(&sens_time(now + 60_000))
        );
        let listed: Listed = self.get(&path).await?;
        let to = national(&message.to_e164);
        let text = carrier_text(&message.text);
        for candidate in listed.messages.iter().filter(|m| m.to == to) {
            if let Some(found) = self.lookup(&candidate.message_id).await?
                && found.content == text
            {
                return Ok(Some(candidate.request_id.clone()));
            }
        }
        Ok(None)
    }

    async fn delivery(&self, request_id: &str) -> Result<Delivery, SmsError> {
        let listed: Listed = self.get(&format!("{}?requestId={}", self.messages_path(), encode(request_id))).await?;
        let Some(first) = listed.messages.first() else { return Ok(Delivery::Pending) };
        let Some(message) = self.lookup(&first.message_id).await? else { return Ok(Delivery::Pending) };
        Ok(match (message.status.as_str(), message.status_name.as_str()) {
            ("COMPLETED", "success") => Delivery::Delivered,
            ("COMPLETED", _) => Delivery::Failed(format!(
                "{} (SENS {})",
                if message.status_message.is_empty() { "발송 실패" } else { &message.status_message },
                message.status_code
            )),
            _ => Delivery::Pending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_take_sens_forms() {
        assert_eq!(national("+821012345678"), "01012345678");
        assert_eq!(sens_time(0), "1970-01-01 09:00:00");
        assert_eq!(encode("2025-12-07 10:00:00"), "2025-12-07%2010%3A00%3A00");
    }

    #[test]
    fn failures_say_whether_anything_may_have_been_sent() {
        let provider: std::sync::Arc<str> = PROVIDER.into();
        let refused = ProviderError::Transient {
            provider: provider.clone(),
            status: Some(500),
            retry_after: None,
            detail: "x".into(),
        };
        assert!(matches!(sms_error(refused), SmsError::Refused { .. }));
        let timeout = ProviderError::Timeout { provider: provider.clone(), after: Duration::from_secs(1) };
        assert!(matches!(sms_error(timeout), SmsError::Unknown { .. }));
        let auth = ProviderError::Auth { provider, status: 401, detail: "x".into() };
        assert!(matches!(sms_error(auth), SmsError::Rejected { .. }));
    }
}
