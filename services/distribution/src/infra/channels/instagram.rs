//! Instagram Graph API content publishing (PROVIDERS.md §4): check the 24 h publishing quota,
//! create a media container from the image URL and caption, wait for it to be FINISHED, publish
//! it, and read the post's permalink.
//!
//! Exactly-once: creating a container is harmless (unused ones expire in 24 h), but
//! `media_publish` is not, and takes no idempotency key. The container id is saved the moment it
//! exists, and every later step of the delivery asks the container first: one already PUBLISHED
//! is never published again. Quota: `content_publishing_limit` is read before each new post
//! (`quota_total` is never hard-coded) and an exhausted quota — or publish error 9/2207042 —
//! queues the delivery (QUEUED_RATE_LIMITED), it never fails it.
//!
//! The entry link is the caption's last line (`참여하기 👉 <url>`, after the hashtags, never cut).
//! Limitation: Instagram does not make URLs in captions clickable — only the profile's link and a
//! Story's link sticker are, and the content publishing API sets neither — so a reader has to
//! copy the URL; it is still the channel's own link, so entries through it are attributed to
//! Instagram.
//!
//! Every call acts for the delivery's owner: the IG user id and token of the account they
//! connected ([`Step::account`]); a step without one fails NOT_CONFIGURED before any call.

use std::time::Duration;

use kem_kit::external::{
    ProviderClient, ProviderConfig, ProviderConfigError, ProviderError, ProviderResponse, Verdict,
};
use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::time::Instant;

use super::{ChannelClient, CodeSlot, Step, form_body, outcome_of};
use crate::domain::text::instagram_caption;
use crate::domain::{Channel, ErrorReason, Failure, ProviderLabel, StepOutcome};
use crate::infra::connections::ConnectedAccount;

/// Provider name (breaker, logs, `ProviderInfo.name`).
pub const PROVIDER: &str = "instagram-graph";
/// Production host (Instagram API with Instagram Login, whose tokens the owners' connections hold).
pub const DEFAULT_BASE_URL: &str = "https://graph.instagram.com";
/// Graph API version used unless configured.
pub const DEFAULT_API_VERSION: &str = "v21.0";

/// The client settings of the production design: Meta fetches the media while we wait, so an
/// attempt may take 20 s; reads are retried, the whole call bounded by 45 s.
pub fn provider_config(base_url: impl Into<String>) -> ProviderConfig {
    let mut config = ProviderConfig::new(PROVIDER, base_url);
    config.timeout = Duration::from_secs(20);
    config.deadline = Duration::from_secs(45);
    config.max_body_bytes = 1 << 20;
    config
}

/// How the channel publishes.
#[derive(Debug, Clone)]
pub struct InstagramSettings {
    /// Graph API version, e.g. `v21.0`.
    pub api_version: String,
    /// Read `content_publishing_limit` before each new post.
    pub check_quota: bool,
    /// When to look at an exhausted quota again.
    pub quota_recheck: Duration,
    /// How long a step waits for a new container to finish before leaving it to a later poll.
    pub container_wait: Duration,
    /// Interval of container status checks within a step.
    pub container_poll: Duration,
    /// Interval of later polls of a container still IN_PROGRESS (Meta suggests once a minute).
    pub processing_poll: Duration,
}

impl Default for InstagramSettings {
    fn default() -> Self {
        InstagramSettings {
            api_version: DEFAULT_API_VERSION.to_owned(),
            check_quota: true,
            quota_recheck: Duration::from_secs(3_600),
            container_wait: Duration::from_secs(10),
            container_poll: Duration::from_secs(2),
            processing_poll: Duration::from_secs(60),
        }
    }
}

/// The Graph API error envelope.
#[derive(Debug, Deserialize)]
struct GraphErrorBody {
    error: GraphError,
}

/// A Graph API error (PROVIDERS.md §4), as publishing and insights read it.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphError {
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) code: i64,
    #[serde(default)]
    pub(crate) error_subcode: Option<i64>,
    #[serde(default)]
    pub(crate) is_transient: Option<bool>,
}

impl GraphError {
    /// The error of a failed answer, when its body is the Graph envelope.
    pub(crate) fn of(response: &ProviderResponse) -> Option<GraphError> {
        Some(serde_json::from_slice::<GraphErrorBody>(response.body()).ok()?.error)
    }

    /// `code/subcode` (or `code`), as deliveries report it.
    pub(crate) fn code_text(&self) -> String {
        match self.error_subcode {
            Some(sub) => format!("{}/{sub}", self.code),
            None => self.code.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct IdBody {
    id: String,
}

#[derive(Debug, Deserialize)]
struct ContainerStatus {
    #[serde(default)]
    status_code: String,
    #[serde(default)]
    status: String,
}

#[derive(Debug, Deserialize)]
struct Permalink {
    #[serde(default)]
    permalink: String,
}

#[derive(Debug, Deserialize)]
struct LimitBody {
    #[serde(default)]
    data: Vec<Limit>,
}

#[derive(Debug, Deserialize)]
struct Limit {
    #[serde(default)]
    quota_usage: i64,
    #[serde(default)]
    config: Option<LimitConfig>,
}

#[derive(Debug, Deserialize)]
struct LimitConfig {
    #[serde(default)]
    quota_total: i64,
}

/// Reads a Graph error the way PROVIDERS.md §4 classifies it, remembering `code/subcode`.
fn classify(response: &ProviderResponse, slot: &CodeSlot) -> Option<Verdict> {
    if response.status().is_success() {
        return None;
    }
    let error = GraphError::of(response)?;
    let code = error.code_text();
    slot.set(code.clone());
    let detail = format!("{} (code {code})", error.message);
    Some(match (error.code, error.error_subcode) {
        (190, _) | (10, _) | (200..=299, _) => Verdict::Auth(detail),
        (4 | 17 | 32 | 613, _) => Verdict::RateLimited { retry_after: response.retry_after(), detail },
        (9, Some(2_207_042)) => Verdict::RateLimited { retry_after: None, detail },
        (1 | 2, _) => Verdict::Transient { retry_after: None, detail },
        _ if error.is_transient == Some(true) || response.status().is_server_error() => {
            Verdict::Transient { retry_after: None, detail }
        }
        (368, _) => Verdict::Moderated(detail),
        _ => Verdict::Invalid(detail),
    })
}

/// What a failed Graph call means for the delivery.
fn graph_outcome(error: &ProviderError, code: &str, quota_wait: Duration) -> StepOutcome {
    let main = code.split('/').next().and_then(|c| c.parse::<i64>().ok());
    match main {
        Some(9) if code.ends_with("/2207042") => StepOutcome::Deferred {
            retry_after: quota_wait,
            failure: Failure::new(ErrorReason::QuotaExceeded, error.to_string(), true).with_code(code),
        },
        Some(10 | 200..=299) => {
            StepOutcome::fail(Failure::new(ErrorReason::PermissionDenied, error.to_string(), false).with_code(code))
        }
        _ => outcome_of(error, code, Duration::from_secs(300)),
    }
}

/// The real Graph API client, publishing to the account each step's owner connected.
#[derive(Debug, Clone)]
pub struct GraphInstagram {
    client: ProviderClient,
    settings: InstagramSettings,
}

impl GraphInstagram {
    /// A client of `config`'s host.
    pub fn new(config: ProviderConfig, settings: InstagramSettings) -> Result<Self, ProviderConfigError> {
        Ok(GraphInstagram { client: ProviderClient::new(config)?, settings })
    }

    /// The underlying provider client (breaker state and counters).
    pub fn provider_client(&self) -> &ProviderClient {
        &self.client
    }

    fn path(&self, node: &str, edge: &str) -> String {
        let version = self.settings.api_version.trim_matches('/');
        if edge.is_empty() { format!("{version}/{node}") } else { format!("{version}/{node}/{edge}") }
    }

    fn form(&self, pairs: &[(&str, &str)]) -> (String, HeaderValue) {
        (form_body(pairs), HeaderValue::from_static("application/x-www-form-urlencoded"))
    }

    /// `(used, total)` of the 24 h publishing quota.
    async fn quota(&self, account: &ConnectedAccount, slot: &CodeSlot) -> Result<(i64, i64), ProviderError> {
        let body: LimitBody = self
            .client
            .get(&self.path(&account.account_id, "content_publishing_limit"))
            .query("fields", "config,quota_usage")
            .query("access_token", account.access_token.expose())
            .classify(|r| classify(r, slot))
            .send_json()
            .await?;
        let limit = body.data.into_iter().next();
        let used = limit.as_ref().map_or(0, |l| l.quota_usage);
        let total = limit.and_then(|l| l.config).map_or(i64::MAX, |c| c.quota_total);
        Ok((used, total))
    }

    async fn create_container(
        &self,
        account: &ConnectedAccount,
        image_url: &str,
        caption: &str,
        slot: &CodeSlot,
    ) -> Result<String, ProviderError> {
        let (body, content_type) = self.form(&[
            ("image_url", image_url),
            ("caption", caption),
            ("access_token", account.access_token.expose()),
        ]);
        let created: IdBody = self
            .client
            .post(&self.path(&account.account_id, "media"))
            .body(body, content_type)
            // An unused container is harmless and expires: creating one again is safe.
            .idempotent()
            .classify(|r| classify(r, slot))
            .send_json()
            .await?;
        Ok(created.id)
    }

    async fn container_status(
        &self,
        account: &ConnectedAccount,
        container: &str,
        slot: &CodeSlot,
    ) -> Result<ContainerStatus, ProviderError> {
        self.client
            .get(&self.path(container, ""))
            .query("fields", "status_code,status")
            .query("access_token", account.access_token.expose())
            .classify(|r| classify(r, slot))
            .send_json()
            .await
    }

    async fn publish(
        &self,
        account: &ConnectedAccount,
        container: &str,
        slot: &CodeSlot,
    ) -> Result<String, ProviderError> {
        let (body, content_type) =
            self.form(&[("creation_id", container), ("access_token", account.access_token.expose())]);
        // Not repeated by the client: a repeat could post twice. A later step asks the container.
        let published: IdBody = self
            .client
            .post(&self.path(&account.account_id, "media_publish"))
            .body(body, content_type)
            .classify(|r| classify(r, slot))
            .send_json()
            .await?;
        Ok(published.id)
    }

    async fn permalink(&self, account: &ConnectedAccount, media: &str) -> String {
        let slot = CodeSlot::default();
        let response: Result<Permalink, _> = self
            .client
            .get(&self.path(media, ""))
            .query("fields", "permalink")
            .query("access_token", account.access_token.expose())
            .classify(|r| classify(r, &slot))
            .send_json()
            .await;
        match response {
            Ok(p) => p.permalink,
            Err(error) => {
                tracing::info!(media, %error, "published, but the permalink could not be read");
                String::new()
            }
        }
    }
}

#[async_trait::async_trait]
impl ChannelClient for GraphInstagram {
    fn channel(&self) -> Channel {
        Channel::Instagram
    }

    fn provider(&self) -> ProviderLabel {
        ProviderLabel::external(PROVIDER, &self.settings.api_version)
    }

    fn retry_after_timeout_is_safe(&self) -> bool {
        // The saved container is asked before anything is published again.
        true
    }

    async fn advance(&self, step: &Step<'_>) -> StepOutcome {
        let slot = CodeSlot::default();
        let quota_wait = self.settings.quota_recheck;
        let fail = |e: &ProviderError, slot: &CodeSlot| graph_outcome(e, &slot.get(), quota_wait);
        let Some(account) = step.account else {
            return StepOutcome::fail(super::not_connected(Channel::Instagram));
        };
        let container = match step.delivery.work_ref.clone() {
            Some(container) => container,
            None => {
                let Some(image_url) = step.image_url else {
                    return StepOutcome::fail(no_image());
                };
                if self.settings.check_quota {
                    match self.quota(account, &slot).await {
                        Ok((used, total)) if used >= total => {
                            let failure = Failure::new(
                                ErrorReason::QuotaExceeded,
                                format!(
                                    "the account published {used} of its {total} posts allowed in 24 hours; queued \
                                     until the window frees up"
                                ),
                                true,
                            );
                            return StepOutcome::Deferred { retry_after: quota_wait, failure };
                        }
                        Ok(_) => {}
                        Err(e) => return fail(&e, &slot),
                    }
                }
                let caption = instagram_caption(step.copy);
                match self.create_container(account, image_url, &caption, &slot).await {
                    Ok(id) => {
                        step.progress.save_work_ref(&id, "").await;
                        id
                    }
                    Err(e) => return fail(&e, &slot),
                }
            }
        };
        let waited_until = Instant::now() + self.settings.container_wait;
        loop {
            let status = match self.container_status(account, &container, &slot).await {
                Ok(status) => status,
                Err(e) => return fail(&e, &slot),
            };
            match status.status_code.as_str() {
                "FINISHED" => break,
                "PUBLISHED" => {
                    // Published by an earlier attempt whose answer was lost.
                    return StepOutcome::published(container, String::new(), "PUBLISHED");
                }
                "ERROR" => {
                    let code =
                        status.status.split(|c: char| !c.is_ascii_digit()).find(|d| d.len() >= 4).unwrap_or("ERROR");
                    return StepOutcome::fail(
                        Failure::new(
                            ErrorReason::InvalidContent,
                            format!("Instagram could not process the media: {}", status.status),
                            false,
                        )
                        .with_code(code),
                    );
                }
                "EXPIRED" => {
                    // Never published within 24 h: start over with a new container.
                    step.progress.save_work_ref("", "").await;
                    return StepOutcome::retry(
                        Failure::new(ErrorReason::ProviderUnavailable, "the media container expired unpublished", true)
                            .with_code("EXPIRED"),
                    );
                }
                other => {
                    if Instant::now() + self.settings.container_poll > waited_until {
                        return StepOutcome::InProgress {
                            work_ref: container,
                            external_id: String::new(),
                            provider_status: if other.is_empty() { "IN_PROGRESS".to_owned() } else { other.to_owned() },
                            poll_after: self.settings.processing_poll,
                        };
                    }
                    tokio::time::sleep(self.settings.container_poll).await;
                }
            }
        }
        match self.publish(account, &container, &slot).await {
            Ok(media) => {
                let permalink = self.permalink(account, &media).await;
                StepOutcome::published(media, permalink, "PUBLISHED")
            }
            Err(e) => fail(&e, &slot),
        }
    }
}

pub(crate) fn no_image() -> Failure {
    Failure::new(
        ErrorReason::InvalidContent,
        "an Instagram post needs an image, and the event has none selected",
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(code: &str) -> ProviderError {
        ProviderError::Invalid { provider: "instagram-graph".into(), status: 400, detail: code.into() }
    }

    #[test]
    fn graph_codes_decide_what_happens_to_the_delivery() {
        let wait = Duration::from_secs(3_600);
        assert!(matches!(
            graph_outcome(&error("x"), "9/2207042", wait),
            StepOutcome::Deferred { ref failure, retry_after } if failure.reason == ErrorReason::QuotaExceeded && retry_after == wait
        ));
        assert!(matches!(
            graph_outcome(&error("x"), "200", wait),
            StepOutcome::Failed { ref failure, auto_retry: false } if failure.reason == ErrorReason::PermissionDenied
        ));
        let auth = ProviderError::Auth { provider: "instagram-graph".into(), status: 400, detail: "expired".into() };
        assert!(matches!(
            graph_outcome(&auth, "190/460", wait),
            StepOutcome::Failed { ref failure, .. } if failure.reason == ErrorReason::AuthRequired && failure.provider_code == "190/460"
        ));
    }
}
