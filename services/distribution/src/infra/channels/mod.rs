//! One client per channel, each speaking its provider's wire contract over the kit's
//! [`ProviderClient`](kem_kit::external::ProviderClient) (its own timeouts, retries where safe,
//! circuit breaker and counters):
//!
//! - [`instagram`]: Instagram Graph content publishing (quota check → container → status poll →
//!   publish), PROVIDERS.md §4;
//! - [`naver`]: the ready-to-post article for owner-assisted Naver Blog publishing, and the Naver
//!   Cafe article API where configured, §5;
//! - [`kakao`]: Kakao Channel 친구톡 through NAVER Cloud SENS (an official Kakao dealer), §6: from
//!   the owner's own connected channel to the participants who agreed to marketing, in batches;
//! - [`partner`]: the KT partner contract `partner/v1` for 우리동네TV, 링고비즈 and 지니TV, §7 (the
//!   other side is [`crate::infra::local::partner_server`]).
//!
//! The built-in stand-ins `kem up` uses without credentials are in [`crate::infra::local`].
//!
//! # The entry link in every post
//!
//! Every post carries its channel's entry link (`ChannelDelivery.entry_url`,
//! `<public base>/e/<event>?ch=<channel>`, so an entry made through the post is attributed to the
//! channel) where the platform lets a post carry one. A job from a publisher older than that field
//! has none: the link is then built the same way from distribution's own `KEM_PUBLIC_BASE_URL`
//! ([`entry_url`]); a link that is not a plain absolute web URL is dropped the same way
//! ([`crate::domain::job::checked_entry_url`]). What each platform allows:
//!
//! | channel | where the link goes | clickable |
//! |---|---|---|
//! | Instagram | the last line of the caption (`참여하기 👉 <url>`) | no: Instagram never links caption URLs (only the profile's link and Stories link stickers are clickable, and the content publishing API sets neither), so the URL is there to be copied |
//! | Kakao Channel 친구톡 | a web-link button (`buttons: [{"type":"WL","name":"참여하기","linkMobile","linkPc"}]`) and the URL as the message's last line | yes (button; KakaoTalk also links URLs in text) |
//! | Naver Cafe / Blog | an `<a href>` paragraph with the URL as its visible text (HTML-escaped) | yes |
//! | 우리동네TV, 링고비즈, 지니TV | nowhere: `partner/v1`'s job has no landing-URL field (a TV spot or a ring-back greeting cannot be clicked) | — |
//!
//! Bodies are built with serde (JSON escaping) or [`crate::domain::text::escape`] (HTML), never by
//! pasting strings together.
//!
//! A client advances a delivery by one [`Step`] and reports a [`StepOutcome`]; the use case turns
//! that into the delivery's next state. Clients never touch the database, except to save the
//! provider-side handle of work in progress through [`Progress`].

pub mod instagram;
pub mod kakao;
pub mod naver;
pub mod partner;

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use kem_kit::external::{Backoff, ProviderError};
use kem_kit::store::millis;
use serde::{Deserialize, Serialize};

use crate::domain::{Channel, Copy, Delivery, ErrorReason, Failure, JobSpec, ProviderLabel, StepOutcome};
use crate::infra::connections::ConnectedAccount;
use crate::infra::owners::MeshOwners;
use crate::infra::repository::Repository;

/// What a channel needs to know about the store it advertises (from the user service).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OwnerProfile {
    /// Owner's name (대표자명).
    pub name: String,
    /// Store name (상호).
    pub store_name: String,
    /// Contact phone as registered (E.164, e.g. `+821012345678`).
    pub phone: String,
    /// Business registration number, 10 digits.
    pub business_number: String,
    /// 10-digit 법정동 code of the store's region (may be empty).
    pub region_code: String,
}

/// Saves progress of the attempt in progress on the held delivery's row, and keeps it for the
/// end of the step (so it is recorded with the step's result even if saving it failed).
#[derive(Debug)]
pub struct Progress<'a> {
    repo: &'a Repository,
    event_id: &'a str,
    channel: Channel,
    token: &'a str,
    saved: Mutex<Option<(String, String)>>,
}

impl<'a> Progress<'a> {
    /// The progress of `channel`'s delivery of `event_id`, held under the lease `token`.
    pub fn new(repo: &'a Repository, event_id: &'a str, channel: Channel, token: &'a str) -> Progress<'a> {
        Progress { repo, event_id, channel, token, saved: Mutex::new(None) }
    }

    /// Records the provider-side handle (and the provider id to show, if any) right after the
    /// provider created it.
    pub async fn save_work_ref(&self, work_ref: &str, external_id: &str) {
        if let Ok(mut saved) = self.saved.lock() {
            *saved = Some((work_ref.to_owned(), external_id.to_owned()));
        }
        let now = millis(SystemTime::now());
        let stored = self.repo.save_work_ref(self.event_id, self.channel, self.token, work_ref, external_id, now).await;
        match stored {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the delivery's hold was lost while saving progress"),
            Err(error) => {
                tracing::warn!(%error, "cannot save the delivery's progress; it is kept for the end of the step")
            }
        }
    }

    /// The `(work_ref, external_id)` saved last during the step, taken.
    pub fn take_saved(&self) -> Option<(String, String)> {
        self.saved.lock().ok().and_then(|mut s| s.take())
    }
}

/// Everything one step of one delivery works with.
pub struct Step<'a> {
    /// The delivery as held (with the work reference of earlier steps).
    pub delivery: &'a Delivery,
    /// The publication.
    pub job: &'a JobSpec,
    /// The copy for this channel.
    pub copy: &'a Copy,
    /// Public URL of the event image, when one was selected.
    pub image_url: Option<&'a str>,
    /// Owner profiles.
    pub owners: &'a MeshOwners,
    /// The owner's own account on the channel, for channels published through one (Instagram;
    /// Kakao on SENS: the owner's channel id, no token; Naver when connected). `None` elsewhere.
    pub account: Option<&'a ConnectedAccount>,
    /// Progress of this attempt.
    pub progress: &'a Progress<'a>,
}

impl Step<'_> {
    /// The owner profile, or the outcome to report when it cannot be had.
    pub async fn owner(&self) -> Result<OwnerProfile, StepOutcome> {
        self.owners
            .owner(&self.job.owner_id)
            .await
            .map_err(|failure| if failure.retryable { StepOutcome::retry(failure) } else { StepOutcome::fail(failure) })
    }
}

/// A client of one channel.
#[async_trait::async_trait]
pub trait ChannelClient: Send + Sync {
    /// The channel.
    fn channel(&self) -> Channel;

    /// The provider behind it (real or `local:`).
    fn provider(&self) -> ProviderLabel;

    /// The provider a step with `account` goes through (Naver: the Cafe API with the owner's
    /// account, owner-assisted without one).
    fn provider_for(&self, account: Option<&ConnectedAccount>) -> ProviderLabel {
        let _ = account;
        self.provider()
    }

    /// Whether an attempt cut short by its deadline may be retried automatically: true when the
    /// provider deduplicates (idempotency key) or the client checks before repeating a side
    /// effect; false when a repeat could publish twice.
    fn retry_after_timeout_is_safe(&self) -> bool;

    /// Advances the delivery by one step.
    async fn advance(&self, step: &Step<'_>) -> StepOutcome;
}

/// The failure of a step on a channel the owner never connected: nothing is sent, and only the
/// owner connecting the channel helps.
pub fn not_connected(channel: Channel) -> Failure {
    Failure::new(
        ErrorReason::NotConfigured,
        format!(
            "{} is not connected: connect your {} account (Channels) and retry this delivery",
            channel_name(channel),
            channel_name(channel)
        ),
        false,
    )
}

/// The failure of a step on a connection that needs reconnecting (`note` says why).
pub fn needs_reconnect(channel: Channel, note: &str) -> Failure {
    let why = if note.is_empty() { String::new() } else { format!(" ({note})") };
    Failure::new(
        ErrorReason::AuthRequired,
        format!(
            "the {} connection must be renewed{why}: reconnect your {} account (Channels) and retry this delivery",
            channel_name(channel),
            channel_name(channel)
        ),
        false,
    )
}

/// A channel's name for the owner.
pub fn channel_name(channel: Channel) -> &'static str {
    match channel {
        Channel::Instagram => "Instagram",
        Channel::NaverBlog => "Naver",
        Channel::KakaoChannel => "Kakao Channel",
        Channel::UridongneTv => "우리동네TV",
        Channel::RingoBiz => "링고비즈",
        Channel::GenieTv => "지니TV",
    }
}

/// The failure a provider error stands for, in the words of the delivery contract.
pub fn failure_of(error: &ProviderError, provider_code: &str) -> Failure {
    let (reason, retryable) = match error {
        ProviderError::Auth { .. } => (ErrorReason::AuthRequired, false),
        ProviderError::RateLimited { .. } => (ErrorReason::RateLimited, true),
        ProviderError::Invalid { .. } => (ErrorReason::InvalidContent, false),
        ProviderError::Moderated { .. } => (ErrorReason::ContentRejected, false),
        ProviderError::Transient { .. } | ProviderError::Timeout { .. } | ProviderError::BreakerOpen { .. } => {
            (ErrorReason::ProviderUnavailable, true)
        }
        ProviderError::Request { .. } | ProviderError::UnexpectedResponse { .. } => (ErrorReason::Internal, false),
    };
    Failure::new(reason, error.to_string(), retryable).with_code(provider_code)
}

/// What a failed call means for the delivery when repeating the call is safe (a read, or a write
/// the provider deduplicates): throttling defers, transient failures are retried, the rest fail.
pub fn outcome_of(error: &ProviderError, provider_code: &str, default_wait: Duration) -> StepOutcome {
    let failure = failure_of(error, provider_code);
    match error {
        ProviderError::RateLimited { retry_after, .. } => {
            StepOutcome::Deferred { retry_after: retry_after.unwrap_or(default_wait), failure }
        }
        _ if failure.retryable => StepOutcome::retry(failure),
        _ => StepOutcome::fail(failure),
    }
}

/// Like [`outcome_of`] for a call that publishes and cannot be deduplicated (a message send, a
/// cafe post): a failure that proves the provider did not act is retried; one that leaves the
/// outcome unknown (a timeout, a connection lost after sending) ends the attempt without an
/// automatic retry, so nothing is ever published twice — the owner may still `Retry`.
pub fn outcome_of_unrepeatable(error: &ProviderError, provider_code: &str, default_wait: Duration) -> StepOutcome {
    if provider_refused(error) {
        return outcome_of(error, provider_code, default_wait);
    }
    let mut failure = failure_of(error, provider_code);
    failure.message = format!(
        "{}; the provider may or may not have accepted the request, so it is not repeated automatically — check \
         the provider's console before retrying",
        failure.message
    );
    StepOutcome::fail(failure)
}

/// Whether the provider answered and so certainly did not act on the request (an error status,
/// our breaker, or a request never built), as opposed to an outcome we cannot know.
pub fn provider_refused(error: &ProviderError) -> bool {
    match error {
        ProviderError::Transient { status, .. } => status.is_some(),
        ProviderError::Timeout { .. } | ProviderError::UnexpectedResponse { .. } => false,
        ProviderError::Auth { .. }
        | ProviderError::RateLimited { .. }
        | ProviderError::Invalid { .. }
        | ProviderError::Moderated { .. }
        | ProviderError::BreakerOpen { .. }
        | ProviderError::Request { .. } => true,
    }
}

/// Runs `send` (an unrepeatable call, sent once per try) up to `max_attempts` times while it fails
/// in a way that proves the provider did not act (5xx or 429 answers), waiting as the provider
/// asks or per `backoff`. The kit's client cannot do this for such calls, because it would also
/// repeat them after a timeout.
pub async fn send_while_refused<T, F, Fut>(max_attempts: u32, backoff: Backoff, mut send: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ProviderError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match send().await {
            Ok(value) => return Ok(value),
            Err(error) => {
                let refused_for_now = matches!(
                    error,
                    ProviderError::Transient { status: Some(_), .. } | ProviderError::RateLimited { .. }
                );
                if !refused_for_now || attempt >= max_attempts.max(1) {
                    return Err(error);
                }
                let wait = error.retry_after().unwrap_or_else(|| backoff.delay(attempt));
                tracing::debug!(%error, attempt, ?wait, "provider refused the request; trying again");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Where a response classifier leaves the provider's own error code, so the delivery error can
/// quote it (the kit's error carries only the message).
#[derive(Debug, Default)]
pub struct CodeSlot(Mutex<String>);

impl CodeSlot {
    /// Remembers `code`.
    pub fn set(&self, code: String) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = code;
        }
    }

    /// The code remembered last (empty when none).
    pub fn get(&self) -> String {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// An `application/x-www-form-urlencoded` body (WHATWG rules: space as `+`, everything outside
/// `A-Z a-z 0-9 * - . _` percent-encoded).
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect::<Vec<_>>().join("&")
}

/// One form component encoded.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(char::from(byte)),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Decodes an `application/x-www-form-urlencoded` body (invalid escapes are kept as they are).
pub fn form_decode(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

/// `%XX` escapes decoded (UTF-8; invalid sequences replaced, malformed escapes kept).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How long a channel's media link stays valid: as long as the platform may still fetch the
/// image. Instagram downloads it while the container is made (retries included) — 30 days covers
/// every retry and a re-publish; Kakao messages are opened for a long time after they are sent;
/// the KT partner keeps a campaign's asset for its whole run; a Naver article embeds the link in
/// a post that stays up for years. The media signing key of a link must stay configured (as a
/// previous key after a rotation) until the link expires.
pub fn media_link_ttl(channel: Channel) -> Duration {
    const DAY: u64 = 24 * 3_600;
    Duration::from_secs(match channel {
        Channel::Instagram => 30 * DAY,
        Channel::KakaoChannel => 365 * DAY,
        Channel::UridongneTv | Channel::RingoBiz | Channel::GenieTv => 180 * DAY,
        Channel::NaverBlog => 5 * 365 * DAY,
    })
}

/// The rendition a channel's platform takes: Instagram's content publishing takes only JPEG
/// within its feed sizes; Kakao message images are JPEG; Naver articles take the stored PNG as it
/// is; the KT screens (우리동네TV, 지니TV) show the PNG with a QR code of the entry link, since a
/// viewer cannot click a TV ([`MediaVariant::PartnerQr`], when there is a link to encode).
pub fn media_variant(channel: Channel) -> kem_kit::media::MediaVariant {
    use kem_kit::media::MediaVariant;
    match channel {
        Channel::Instagram => MediaVariant::InstagramFeed,
        Channel::KakaoChannel => MediaVariant::Jpeg,
        Channel::UridongneTv | Channel::GenieTv => MediaVariant::PartnerQr,
        Channel::NaverBlog | Channel::RingoBiz => MediaVariant::Original,
    }
}

const DAY_MS: i64 = 24 * 3_600_000;

/// The instant a delivery's media link counts its [`media_link_ttl`] from, chosen so that the link
/// is the same on every step and retry of a delivery: the later of now and the event's end, with
/// the expiry rounded up to a whole UTC day. A link minted anew from the clock on each step made
/// a repeated KT partner submission (same Idempotency-Key, a body differing only in the link's
/// expiry) a 409 idempotency_conflict; and a link counted from the event's end lives as long past
/// it as the channel needs.
pub fn media_link_start(channel: Channel, period_end_ms: i64, now: SystemTime) -> SystemTime {
    let now_ms = kem_kit::store::millis(now);
    let ttl_ms = i64::try_from(media_link_ttl(channel).as_millis()).unwrap_or(i64::MAX / 4);
    let expires = now_ms.max(period_end_ms).saturating_add(ttl_ms);
    let rounded = expires.saturating_add(DAY_MS - 1) / DAY_MS * DAY_MS;
    let start_ms = u64::try_from(rounded.saturating_sub(ttl_ms)).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_millis(start_ms)
}

/// The public media link of `image_id` for `channel`: `<public base>/media/<token>`, the token
/// signed for [`media_variant`] (with `entry_url` as the QR code's text on the KT screens) and
/// valid for [`media_link_ttl`] from [`media_link_start`] — no login, fetchable by the platform's
/// crawler. `None` when no public base URL is configured or the id is not an image id (the post
/// then carries no image, and a channel needing one refuses). A KT screen without a usable entry
/// link gets the plain image.
pub fn signed_image_url(
    links: &kem_kit::media::MediaLinks,
    image_id: &str,
    channel: Channel,
    entry_url: &str,
    period_end_ms: i64,
    now: SystemTime,
) -> Option<String> {
    use kem_kit::media::MediaVariant;
    let ttl = media_link_ttl(channel);
    let start = media_link_start(channel, period_end_ms, now);
    match media_variant(channel) {
        // A text the QR cannot carry (never an entry link distribution checked) falls back to the
        // plain image rather than to no image.
        MediaVariant::PartnerQr => links
            .url_with_qr(image_id, entry_url, ttl, start)
            .or_else(|| links.url(image_id, MediaVariant::Original, ttl, start)),
        variant => links.url(image_id, variant, ttl, start),
    }
}

/// A channel's entry link built by distribution itself, for a job whose publisher sent none:
/// `<public base URL>/e/<event_id>?ch=<channel slug>` (the event service's public view builds the
/// same), or `None` when no public base URL is configured (the post then carries no link).
pub fn entry_url(public_base_url: &str, event_id: &str, channel: Channel) -> Option<String> {
    let base = public_base_url.trim().trim_end_matches('/');
    let id = event_id.trim();
    (!base.is_empty() && !id.is_empty()).then(|| format!("{base}/e/{}?ch={}", form_encode(id), channel.slug()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn provider() -> Arc<str> {
        Arc::from("p")
    }

    #[test]
    fn forms_are_encoded_the_www_form_way() {
        assert_eq!(form_body(&[("a b", "c&d=é"), ("x", "*-._~")]), "a+b=c%26d%3D%C3%A9&x=*-._%7E");
        let decoded = form_decode("a+b=c%26d%3D%C3%A9&x=*-._%7E&bad=%zz&empty");
        assert_eq!(decoded[0], ("a b".to_owned(), "c&d=é".to_owned()));
        assert_eq!(decoded[1].1, "*-._~");
        assert_eq!(decoded[2].1, "%zz");
        assert_eq!(decoded[3], ("empty".to_owned(), String::new()));
    }

    #[test]
    fn media_links_are_signed_for_each_channels_rendition_and_lifetime() {
        use kem_kit::media::{MediaLinks, MediaSigner, MediaVariant};
        let signer = Arc::new(MediaSigner::new(&[3; 32], &[]).expect("signer"));
        let links = MediaLinks::new("https://kem.example/", signer.clone());
        let day = 86_400;
        // A whole day plus an hour: links expire at the end of a UTC day.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(20_000 * day + 3_600);
        let image = "3c5d2b1a-0000-4000-8000-000000000000";
        let entry = "https://kem.example/e/3c5d2b1a-0000-4000-8000-000000000000?ch=genie_tv";
        for channel in Channel::ALL {
            let url = signed_image_url(&links, image, channel, entry, 0, now).expect("a link");
            let token = url.strip_prefix("https://kem.example/media/").expect("on the public base");
            let grant = signer.verify(token, now).expect("valid now");
            assert_eq!((grant.image_id.as_str(), grant.variant), (image, media_variant(channel)), "{channel}");
            let qr = (grant.variant == MediaVariant::PartnerQr).then(|| entry.to_owned());
            assert_eq!(grant.qr_text, qr, "{channel}: only the KT screens carry the entry link's QR");
            assert_eq!(grant.expires_at, (20_001 * day) + media_link_ttl(channel).as_secs(), "{channel}");
            assert!(media_link_ttl(channel) >= Duration::from_secs(30 * 24 * 3_600), "{channel}");
            // The same delivery a few hours later (a retry) gets the very same link.
            let later = now + Duration::from_secs(5 * 3_600);
            assert_eq!(signed_image_url(&links, image, channel, entry, 0, later).as_deref(), Some(url.as_str()));
        }
        assert_eq!(media_variant(Channel::Instagram), MediaVariant::InstagramFeed);
        assert_eq!(media_variant(Channel::GenieTv), MediaVariant::PartnerQr);
        assert_eq!(media_variant(Channel::RingoBiz), MediaVariant::Original, "a phone line shows nothing");
        assert!(media_link_ttl(Channel::NaverBlog) > media_link_ttl(Channel::Instagram), "articles live longer");
        // An event ending in 60 days: the link lives its lifetime past the end, whatever day it is minted.
        let end_ms = i64::try_from((20_060 * day + 7) * 1_000).expect("ms");
        let url = signed_image_url(&links, image, Channel::Instagram, entry, end_ms, now).expect("a link");
        let grant = signer.verify(url.rsplit('/').next().expect("token"), now).expect("valid");
        assert_eq!(grant.expires_at, 20_061 * day + media_link_ttl(Channel::Instagram).as_secs());
        let next_week = now + Duration::from_secs(7 * day);
        assert_eq!(signed_image_url(&links, image, Channel::Instagram, entry, end_ms, next_week), Some(url));
        // A KT screen without an entry link shows the plain image.
        let plain = signed_image_url(&links, image, Channel::GenieTv, " ", 0, now).expect("a link");
        let grant = signer.verify(plain.rsplit('/').next().expect("token"), now).expect("valid");
        assert_eq!((grant.variant, grant.qr_text), (MediaVariant::Original, None));
        // Nor is a text that is no web link ever drawn as a code.
        let plain = signed_image_url(&links, image, Channel::GenieTv, "javascript:alert(1)", 0, now).expect("a link");
        let grant = signer.verify(plain.rsplit('/').next().expect("token"), now).expect("valid");
        assert_eq!((grant.variant, grant.qr_text), (MediaVariant::Original, None));
        assert_eq!(signed_image_url(&links, "img 1", Channel::Instagram, entry, 0, now), None, "not an image id");
        let nowhere = MediaLinks::new("", signer);
        assert_eq!(signed_image_url(&nowhere, image, Channel::Instagram, entry, 0, now), None, "no public base URL");
    }

    #[test]
    fn entry_links_are_built_like_the_event_service_builds_them() {
        assert_eq!(
            entry_url("https://kem.example/", "3c5d2b1a-0000-4000-8000-000000000000", Channel::KakaoChannel).as_deref(),
            Some("https://kem.example/e/3c5d2b1a-0000-4000-8000-000000000000?ch=kakao_channel")
        );
        assert_eq!(entry_url("", "e-1", Channel::Instagram), None, "no public base URL: no link");
        assert_eq!(entry_url("https://kem.example", " ", Channel::Instagram), None);
    }

    #[test]
    fn only_answers_prove_the_provider_did_not_act() {
        let transient = |status| ProviderError::Transient {
            provider: provider(),
            status,
            retry_after: None,
            detail: String::new(),
        };
        assert!(provider_refused(&transient(Some(503))));
        assert!(!provider_refused(&transient(None)));
        assert!(!provider_refused(&ProviderError::Timeout { provider: provider(), after: Duration::from_secs(1) }));
        let timeout = outcome_of_unrepeatable(
            &ProviderError::Timeout { provider: provider(), after: Duration::from_secs(1) },
            "",
            Duration::from_secs(1),
        );
        assert!(matches!(timeout, StepOutcome::Failed { auto_retry: false, ref failure } if failure.retryable));
        let refused = outcome_of_unrepeatable(&transient(Some(500)), "", Duration::from_secs(1));
        assert!(matches!(refused, StepOutcome::Failed { auto_retry: true, .. }));
        let limited =
            ProviderError::RateLimited { provider: provider(), status: 429, retry_after: None, detail: String::new() };
        assert!(
            matches!(outcome_of(&limited, "", Duration::from_secs(7)), StepOutcome::Deferred { retry_after, .. } if retry_after == Duration::from_secs(7))
        );
    }

    #[tokio::test]
    async fn refused_sends_are_repeated_but_unknown_outcomes_are_not() {
        let backoff = Backoff { initial: Duration::from_millis(1), max: Duration::from_millis(2) };
        let calls = AtomicU32::new(0);
        let result = send_while_refused(3, backoff, || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(ProviderError::Transient {
                        provider: provider(),
                        status: Some(500),
                        retry_after: None,
                        detail: String::new(),
                    })
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.ok(), Some(1));
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = send_while_refused(3, backoff, || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(ProviderError::Timeout { provider: provider(), after: Duration::from_secs(1) }) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a timeout is never repeated");
    }
}
