//! The client side of our KT partner contract `partner/v1` (PROVIDERS.md §7), one shape for
//! 우리동네TV, 링고비즈 and 지니TV: the owner's store token when the owner connected their store
//! account (below), otherwise OAuth2 client credentials (token refreshed 60 s before it expires,
//! once more on `invalid_token`), `POST /jobs` with an `Idempotency-Key`, then
//! `GET /jobs/{job_id}` polls at the partner's `Retry-After` until the campaign is booked.
//!
//! # Per-store authorization (our contract's extension for issue #21)
//!
//! `partner/v1` is our contract (no public KT API exists, PROVIDERS.md §7), so it also defines how
//! an owner's **store account** at the partner authorizes kem — OAuth 2.1 style, authorization
//! code with PKCE. When a channel's partner is configured for store accounts, every campaign of
//! an owner goes out with that owner's store token instead of the platform's client token:
//!
//! - `GET <base>/oauth2/authorize?response_type=code&client_id&redirect_uri&state`
//!   `&scope=ads.write%20ads.read&code_challenge&code_challenge_method=S256`: the store owner signs
//!   in at the partner and consents; the browser comes back to `redirect_uri` (registered at the
//!   partner, matched exactly) with `code` and `state`, or `error=access_denied` (other errors:
//!   `invalid_request`, `invalid_scope`, `unsupported_response_type`, with `state`). An unknown
//!   client or unregistered redirect URI is an error page, never a redirect. **PKCE S256 is
//!   required** (`plain` and a missing challenge are refused).
//! - `POST <base>/oauth2/token` (form), `grant_type=authorization_code` with `code`,
//!   `redirect_uri`, `client_id`, `client_secret`, `code_verifier` → `{"access_token",
//!   "token_type":"Bearer","expires_in":3600,"refresh_token","scope","store_id","store_name"}`.
//!   Codes are single use (a second exchange fails and revokes what the first one got) and live
//!   60 s.
//! - `POST <base>/oauth2/token`, `grant_type=refresh_token` with `refresh_token`, `client_id`,
//!   `client_secret` → the same shape with a new access token **and a new refresh token**: the
//!   old refresh token is dead, and presenting it again revokes the whole grant (rotation with
//!   reuse detection).
//! - `POST <base>/oauth2/revoke` (RFC 7009) with `token` (either token of a grant) and the client
//!   credentials → 200 (also for unknown tokens); the grant and all its tokens die.
//! - Errors are RFC 6749 JSON `{"error","error_description"}`: 400 `invalid_request`,
//!   `invalid_grant` (expired, spent or revoked code or refresh token, wrong `code_verifier`,
//!   another client's or redirect URI's code), `unsupported_grant_type`; 401 `invalid_client`.
//! - A store's token sees only that store's jobs: another store's job is 404 `job_not_found`, and
//!   idempotency keys are per store. A revoked or expired token is 401 `invalid_token`.
//!
//! kem's side ([`crate::infra::connections::partner`], [`crate::app::connections`]): the state is
//! hashed, single use and ten minutes long as for the other providers, the `code_verifier` is kept
//! sealed with the attempt, tokens are sealed at rest, the refresh job renews a token five minutes
//! before its hour is up and stores the rotated refresh token in the same guarded write that
//! releases its lease; a job refused with 401 `invalid_token` gets one refresh and one more try,
//! then the connection is NEEDS_RECONNECT and the delivery fails AUTH_REQUIRED.
//!
//! Idempotency: the key is derived from (event, channel, generation), so every automatic retry of
//! a submission — after a timeout too — replays the partner's original answer instead of opening a
//! second campaign; a manual `Retry` starts a new generation and so a new campaign.
//!
//! A delivery is PUBLISHED once the partner has booked the campaign (SCHEDULED, LIVE or
//! COMPLETED); review steps (QUEUED, IN_REVIEW, APPROVED) keep it SENDING with the partner's
//! status shown; REJECTED, FAILED and CANCELED fail it.
//!
//! No entry link: `partner/v1`'s job (PROVIDERS.md §7) has no field for a landing URL — the
//! creative is a video, image slides, audio or TTS aired on TV or as a ring-back greeting, which
//! cannot be clicked — so the channel's `entry_url` is not sent. A QR code or a spoken short link
//! would have to be part of the creative itself (the content service's image), or the contract
//! would need a new field; until then no entry is attributed to these channels by its link.

use std::time::Duration;

use kem_kit::Secret;
use kem_kit::external::{
    ProviderClient, ProviderConfig, ProviderConfigError, ProviderError, ProviderResponse, Verdict,
};
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{ChannelClient, CodeSlot, OwnerProfile, Step, form_body, outcome_of};
use crate::domain::text::{domestic_phone, kst_date, truncate};
use crate::domain::{Channel, ErrorReason, Failure, ProviderLabel, StepOutcome, keys};

/// Provider name.
pub const PROVIDER: &str = "kt-partner";
/// Contract version (`ProviderInfo.model`).
pub const CONTRACT: &str = "partner/v1";
/// Scope asked for.
pub const SCOPE: &str = "ads.write ads.read";
/// Poll interval when the partner names none (the contract's default).
pub const DEFAULT_POLL: Duration = Duration::from_secs(30);
/// Refresh a token this long before it expires.
const REFRESH_EARLY: Duration = Duration::from_secs(60);
/// Length of a spot or greeting.
const SPOT_SECONDS: u32 = 15;

/// The contract's timeouts: connect 3 s, request 10 s (all calls are short; the work is async).
pub fn provider_config(channel: Channel, base_url: impl Into<String>) -> ProviderConfig {
    let mut config = ProviderConfig::new(format!("{PROVIDER}-{}", channel.slug().replace('_', "-")), base_url);
    config.connect_timeout = Duration::from_secs(3);
    config.timeout = Duration::from_secs(10);
    config.deadline = Duration::from_secs(25);
    config.max_body_bytes = 1 << 20;
    config
}

/// The partner's channel name.
pub fn partner_channel(channel: Channel) -> Option<&'static str> {
    match channel {
        Channel::UridongneTv => Some("URIDONGNE_TV"),
        Channel::RingoBiz => Some("RINGOBIZ"),
        Channel::GenieTv => Some("GENIE_TV"),
        _ => None,
    }
}

/// `POST /jobs` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    /// `URIDONGNE_TV`, `RINGOBIZ` or `GENIE_TV`.
    pub channel: String,
    /// Our distribution id.
    pub external_ref: String,
    /// Who advertises.
    pub advertiser: Advertiser,
    /// What airs.
    pub creative: Creative,
    /// Where (TV channels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<Targeting>,
    /// When.
    pub schedule: Schedule,
    /// Budget in KRW, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_krw: Option<i64>,
    /// Webhook URL (polling is the source of truth; not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
}

/// The advertiser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advertiser {
    /// Business registration number, 10 digits.
    pub business_reg_no: String,
    /// Store name.
    pub name: String,
    /// Domestic phone number, digits only (required for RINGOBIZ).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub phone: String,
}

/// The creative.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Creative {
    /// `video`, `image`, `audio` or `tts`.
    pub media_type: String,
    /// Asset URL (video, image, audio).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset_url: Option<String>,
    /// SHA-256 of the asset, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Length in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_sec: Option<u32>,
    /// Text read out (tts) or as voice-over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tts_text: Option<String>,
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Regional targeting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Targeting {
    /// 10-digit 법정동 codes.
    pub region_codes: Vec<String>,
    /// Radius around the store.
    pub radius_m: u32,
}

/// Dates (Korea time) and slots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// First day, `YYYY-MM-DD`.
    pub start_date: String,
    /// Last day, `YYYY-MM-DD`.
    pub end_date: String,
    /// Day parts (empty: the partner's default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_slots: Vec<String>,
}

/// `202` answer of `POST /jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submitted {
    /// The partner's job id.
    pub job_id: String,
    /// `QUEUED`.
    pub status: String,
    /// Where to poll.
    pub status_url: String,
    /// RFC 3339.
    pub created_at: String,
}

/// `GET /jobs/{job_id}` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The partner's job id.
    pub job_id: String,
    /// Our reference.
    pub external_ref: String,
    /// The channel.
    pub channel: String,
    /// QUEUED → IN_REVIEW → APPROVED → SCHEDULED → LIVE → COMPLETED; REJECTED, FAILED, CANCELED.
    pub status: String,
    /// Why it was rejected or failed.
    #[serde(default)]
    pub reason_code: Option<String>,
    /// In words.
    #[serde(default)]
    pub reason_message: Option<String>,
    /// The partner's campaign reference.
    #[serde(default)]
    pub partner_ref: Option<String>,
    /// RFC 3339.
    pub updated_at: String,
    /// When the campaign airs from (RFC 3339), once scheduled.
    #[serde(default)]
    pub live_from: Option<String>,
    /// Until when.
    #[serde(default)]
    pub live_until: Option<String>,
    /// What the campaign has achieved so far, once it has aired (LIVE or COMPLETED); absent
    /// before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<JobMetrics>,
}

/// A campaign's numbers (our contract's `metrics`): `impressions` — times the spot was shown
/// (TV) or played to a caller (링고비즈); `reach` — distinct households (TV), absent where the
/// partner cannot tell; `measured_at` — RFC 3339, when they were counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMetrics {
    /// Times shown or played.
    pub impressions: i64,
    /// Distinct households reached, where known.
    #[serde(default)]
    pub reach: Option<i64>,
    /// When counted (RFC 3339).
    pub measured_at: String,
}

/// An RFC 9457 problem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// Type URI.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short title.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Explanation.
    pub detail: String,
    /// Machine-readable code (`invalid_request`, `creative_rejected`, …).
    pub code: String,
    /// The request's id.
    pub request_id: String,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: u64,
}

struct CachedToken {
    value: Secret,
    refresh_at: Instant,
}

/// Reads problem+json (and RFC 6749 token errors), remembering the code.
fn classify(response: &ProviderResponse, slot: &CodeSlot) -> Option<Verdict> {
    if response.status().is_success() {
        return None;
    }
    let json = serde_json::from_slice::<serde_json::Value>(response.body()).ok()?;
    let code = json.get("code").or_else(|| json.get("error")).and_then(|c| c.as_str())?.to_owned();
    slot.set(code.clone());
    let detail = json
        .get("detail")
        .or_else(|| json.get("error_description"))
        .and_then(|d| d.as_str())
        .map_or_else(|| code.clone(), |d| format!("{d} ({code})"));
    match code.as_str() {
        "creative_rejected" => Some(Verdict::Moderated(detail)),
        "invalid_client" | "invalid_token" | "unauthorized_client" => Some(Verdict::Auth(detail)),
        _ => None,
    }
}

/// What a failed partner call means for the delivery.
fn partner_outcome(error: &ProviderError, code: &str) -> StepOutcome {
    match code {
        "forbidden" => {
            StepOutcome::fail(Failure::new(ErrorReason::PermissionDenied, error.to_string(), false).with_code(code))
        }
        "idempotency_conflict" => StepOutcome::fail(
            Failure::new(
                ErrorReason::Internal,
                format!("{error}: the partner holds a different campaign under this delivery's key"),
                false,
            )
            .with_code(code),
        ),
        _ => outcome_of(error, code, DEFAULT_POLL),
    }
}

/// The client of one partner channel.
pub struct PartnerClient {
    channel: Channel,
    client: ProviderClient,
    client_id: String,
    client_secret: Secret,
    local: bool,
    token: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for PartnerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerClient")
            .field("channel", &self.channel)
            .field("client", &self.client)
            .field("client_id", &self.client_id)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

impl PartnerClient {
    /// A client of the partner at `config.base_url` (ending in `/partner/v1`) for `channel`,
    /// authenticating as `client_id`. `local` labels the built-in local partner server.
    pub fn new(
        channel: Channel,
        config: ProviderConfig,
        client_id: impl Into<String>,
        client_secret: Secret,
        local: bool,
    ) -> Result<PartnerClient, ProviderConfigError> {
        Ok(PartnerClient {
            channel,
            client: ProviderClient::new(config)?,
            client_id: client_id.into(),
            client_secret,
            local,
            token: Mutex::new(None),
        })
    }

    /// The underlying provider client.
    pub fn provider_client(&self) -> &ProviderClient {
        &self.client
    }

    async fn token(&self, slot: &CodeSlot) -> Result<Secret, ProviderError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let body = form_body(&[
            ("grant_type", "client_credentials"),
            ("client_id", &self.client_id),
            ("client_secret", self.client_secret.expose()),
            ("scope", SCOPE),
        ]);
        let token: TokenResponse = self
            .client
            .post("oauth2/token")
            .body(body, HeaderValue::from_static("application/x-www-form-urlencoded"))
            // Asking for a token twice is harmless.
            .idempotent()
            .classify(|r| classify(r, slot))
            .send_json()
            .await?;
        let lifetime = Duration::from_secs(token.expires_in.max(1));
        let value = Secret::new(token.access_token);
        *cached = Some(CachedToken {
            value: value.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(REFRESH_EARLY).max(lifetime / 2),
        });
        Ok(value)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    fn bearer(token: &Secret) -> Result<HeaderValue, ProviderError> {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| ProviderError::Request {
                provider: PROVIDER.into(),
                detail: "the partner's access token is not a valid header value".into(),
            })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Runs `call` with a token: the store's (`store_token`, when the owner connected their store
    /// account; a refusal is the caller's to handle, since only a refresh of the owner's grant
    /// helps) or the platform's client credentials token, fetched afresh once if the partner says
    /// it is invalid.
    async fn authorized<T, F, Fut>(
        &self,
        slot: &CodeSlot,
        store_token: Option<&Secret>,
        call: F,
    ) -> Result<T, ProviderError>
    where
        F: Fn(HeaderValue) -> Fut,
        Fut: std::future::Future<Output = Result<T, ProviderError>>,
    {
        if let Some(token) = store_token {
            return call(Self::bearer(token)?).await;
        }
        let token = self.token(slot).await?;
        match call(Self::bearer(&token)?).await {
            Err(ProviderError::Auth { .. }) if slot.get() == "invalid_token" => {
                self.forget_token().await;
                let token = self.token(slot).await?;
                call(Self::bearer(&token)?).await
            }
            other => other,
        }
    }

    async fn submit(
        &self,
        body: &JobRequest,
        key: &str,
        slot: &CodeSlot,
        store_token: Option<&Secret>,
    ) -> Result<(Submitted, Option<Duration>), ProviderError> {
        self.authorized(slot, store_token, |bearer| async move {
            let request_id = HeaderValue::from_str(&format!("kem-{:016x}", rand::random::<u64>()))
                .unwrap_or_else(|_| HeaderValue::from_static("kem"));
            let response = self
                .client
                .post("jobs")
                .header(AUTHORIZATION, bearer)
                .header(HeaderName::from_static("x-request-id"), request_id)
                .idempotency_key(key)
                .json(body)
                .classify(|r| classify(r, slot))
                .send()
                .await?;
            Ok((response.json::<Submitted>()?, response.retry_after()))
        })
        .await
    }

    async fn status(
        &self,
        job_id: &str,
        slot: &CodeSlot,
        store_token: Option<&Secret>,
    ) -> Result<(JobStatus, Option<Duration>), ProviderError> {
        self.authorized(slot, store_token, |bearer| async move {
            let response = self
                .client
                .get(&format!("jobs/{job_id}"))
                .header(AUTHORIZATION, bearer)
                .classify(|r| classify(r, slot))
                .send()
                .await?;
            Ok((response.json::<JobStatus>()?, response.retry_after()))
        })
        .await
    }

    /// The numbers of campaign `job_id` (the insights job's read): the store's token when the
    /// owner connected their store account, the platform's otherwise. `None` before it has aired.
    pub async fn campaign_metrics(
        &self,
        job_id: &str,
        store_token: Option<&Secret>,
    ) -> Result<Option<JobMetrics>, ProviderError> {
        let slot = CodeSlot::default();
        Ok(self.status(job_id, &slot, store_token).await?.0.metrics)
    }

    /// The submission of `step` (or why it cannot be made).
    fn job_request(&self, step: &Step<'_>, owner: &OwnerProfile) -> Result<JobRequest, Failure> {
        let not_configured = |what: &str| Failure::new(ErrorReason::NotConfigured, what.to_owned(), false);
        let channel = partner_channel(self.channel).ok_or_else(|| not_configured("not a partner channel"))?;
        let business_reg_no: String = owner.business_number.chars().filter(char::is_ascii_digit).collect();
        if business_reg_no.len() != 10 {
            return Err(not_configured("the store's business registration number is missing"));
        }
        let phone = domestic_phone(&owner.phone).unwrap_or_default();
        let job = step.job;
        let script = truncate(if step.copy.text.trim().is_empty() { &job.title } else { step.copy.text.trim() }, 300);
        let creative = if self.channel == Channel::RingoBiz {
            if phone.is_empty() {
                return Err(not_configured(
                    "링고비즈 plays on the store's phone line, and the store has no Korean phone number",
                ));
            }
            Creative {
                media_type: "tts".to_owned(),
                asset_url: None,
                sha256: None,
                duration_sec: Some(SPOT_SECONDS),
                tts_text: Some(script),
                title: Some(job.title.clone()),
            }
        } else {
            let Some(image) = step.image_url else {
                return Err(Failure::new(
                    ErrorReason::InvalidContent,
                    "a TV spot needs the event image, and none is selected",
                    false,
                ));
            };
            // The content service makes still images only: the spot shows the image for 15 s
            // with the copy as voice-over.
            Creative {
                media_type: "image".to_owned(),
                asset_url: Some(image.to_owned()),
                sha256: None,
                duration_sec: Some(SPOT_SECONDS),
                tts_text: Some(script),
                title: Some(job.title.clone()),
            }
        };
        let targeting = (self.channel != Channel::RingoBiz && !owner.region_code.trim().is_empty())
            .then(|| Targeting { region_codes: vec![owner.region_code.trim().to_owned()], radius_m: 1_000 });
        let start = if job.period_start_ms > 0 {
            job.period_start_ms
        } else {
            kem_kit::store::millis(std::time::SystemTime::now())
        };
        let end = if job.period_end_ms > start { job.period_end_ms - 1 } else { start };
        Ok(JobRequest {
            channel: channel.to_owned(),
            external_ref: format!("{}/{}", job.event_id, self.channel.as_str()),
            advertiser: Advertiser { business_reg_no, name: owner.store_name.clone(), phone },
            creative,
            targeting,
            schedule: Schedule { start_date: kst_date(start), end_date: kst_date(end), time_slots: Vec::new() },
            budget_krw: None,
            callback_url: None,
        })
    }

    fn progress_of(status: JobStatus, retry_after: Option<Duration>) -> StepOutcome {
        let code = status.reason_code.clone().unwrap_or_default();
        let reason = status.reason_message.clone().unwrap_or_default();
        match status.status.as_str() {
            "SCHEDULED" | "LIVE" | "COMPLETED" => StepOutcome::published(status.job_id, String::new(), status.status),
            "REJECTED" => StepOutcome::fail(
                Failure::new(
                    ErrorReason::ContentRejected,
                    format!("the partner's review rejected the campaign: {reason}"),
                    false,
                )
                .with_code(code),
            ),
            "FAILED" | "CANCELED" => StepOutcome::fail(
                Failure::new(
                    ErrorReason::ProviderUnavailable,
                    format!("the partner reports the campaign {}: {reason}", status.status),
                    true,
                )
                .with_code(if code.is_empty() { status.status.clone() } else { code }),
            ),
            _ => StepOutcome::InProgress {
                work_ref: status.job_id.clone(),
                external_id: status.job_id,
                provider_status: status.status,
                poll_after: retry_after.unwrap_or(DEFAULT_POLL),
            },
        }
    }
}

#[async_trait::async_trait]
impl ChannelClient for PartnerClient {
    fn channel(&self) -> Channel {
        self.channel
    }

    fn provider(&self) -> ProviderLabel {
        if self.local { ProviderLabel::local(PROVIDER) } else { ProviderLabel::external(PROVIDER, CONTRACT) }
    }

    fn retry_after_timeout_is_safe(&self) -> bool {
        // The idempotency key replays the original submission.
        true
    }

    async fn advance(&self, step: &Step<'_>) -> StepOutcome {
        let slot = CodeSlot::default();
        let store_token = step.account.map(|a| &a.access_token);
        if let Some(job_id) = step.delivery.work_ref.as_deref() {
            return match self.status(job_id, &slot, store_token).await {
                Ok((status, retry_after)) => Self::progress_of(status, retry_after),
                Err(e) if slot.get() == "job_not_found" => StepOutcome::fail(
                    Failure::new(ErrorReason::Internal, format!("the partner no longer knows job {job_id}: {e}"), true)
                        .with_code("job_not_found"),
                ),
                Err(e) => partner_outcome(&e, &slot.get()),
            };
        }
        let owner = match step.owner().await {
            Ok(owner) => owner,
            Err(outcome) => return outcome,
        };
        let body = match self.job_request(step, &owner) {
            Ok(body) => body,
            Err(failure) => return StepOutcome::fail(failure),
        };
        let d = step.delivery;
        let key = keys::idempotency_key(&d.event_id, d.channel, d.generation);
        match self.submit(&body, &key, &slot, store_token).await {
            Ok((submitted, retry_after)) => {
                step.progress.save_work_ref(&submitted.job_id, &submitted.job_id).await;
                StepOutcome::InProgress {
                    work_ref: submitted.job_id.clone(),
                    external_id: submitted.job_id,
                    provider_status: submitted.status,
                    poll_after: retry_after.unwrap_or(DEFAULT_POLL),
                }
            }
            Err(e) => partner_outcome(&e, &slot.get()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(word: &str) -> JobStatus {
        JobStatus {
            job_id: "j-1".into(),
            external_ref: "e/GENIE_TV".into(),
            channel: "GENIE_TV".into(),
            status: word.into(),
            reason_code: Some("bad_audio".into()),
            reason_message: Some("소리가 너무 큽니다".into()),
            partner_ref: None,
            updated_at: "2025-11-01T00:00:00Z".into(),
            live_from: None,
            live_until: None,
            metrics: None,
        }
    }

    #[test]
    fn partner_statuses_map_to_delivery_outcomes() {
        for word in ["SCHEDULED", "LIVE", "COMPLETED"] {
            assert!(matches!(PartnerClient::progress_of(status(word), None), StepOutcome::Published { .. }), "{word}");
        }
        for word in ["QUEUED", "IN_REVIEW", "APPROVED", "SOMETHING_NEW"] {
            assert!(
                matches!(PartnerClient::progress_of(status(word), Some(Duration::from_secs(5))),
                    StepOutcome::InProgress { ref provider_status, poll_after, .. } if provider_status == word && poll_after == Duration::from_secs(5)),
                "{word}"
            );
        }
        assert!(matches!(
            PartnerClient::progress_of(status("REJECTED"), None),
            StepOutcome::Failed { ref failure, auto_retry: false } if failure.reason == ErrorReason::ContentRejected && failure.provider_code == "bad_audio"
        ));
        assert!(matches!(
            PartnerClient::progress_of(status("FAILED"), None),
            StepOutcome::Failed { ref failure, auto_retry: false } if failure.retryable
        ));
    }

    #[test]
    fn channel_names_follow_the_partner_contract() {
        assert_eq!(partner_channel(Channel::RingoBiz), Some("RINGOBIZ"));
        assert_eq!(partner_channel(Channel::UridongneTv), Some("URIDONGNE_TV"));
        assert_eq!(partner_channel(Channel::GenieTv), Some("GENIE_TV"));
        assert_eq!(partner_channel(Channel::Instagram), None);
    }
}
