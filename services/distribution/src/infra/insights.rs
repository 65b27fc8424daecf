//! Channel insights → analytics (#21): reading a published Instagram post's numbers (PROVIDERS.md
//! §10) and recording them with analytics `RecordChannelMetrics` over the mesh.
//!
//! - [`InstagramInsights::read`]: one `GET /{v}/{media-id}/insights?metric=reach,likes,comments,
//!   saved,shares,views,total_interactions` per post (never `impressions`, gone since v22.0).
//!   Meta answers an empty set for a post whose numbers are not computed yet (up to 48 h) and code
//!   10 "not enough viewers" for a post with too small an audience: both are "not reported"
//!   ([`Insights::NotReported`]), never a 0. Code 10 for anything else is a missing permission.
//! - [`record_instagram`]: reads a post and, when it has numbers, records its views and reach as
//!   the channel's cumulative metrics of the event; the report id
//!   `<event>:<channel>:<observe ms>` makes a repeated run of one observation count once.
//!
//! The scheduled job that finds published posts and their owners' tokens calls
//! [`record_instagram`] once per post and observation; this module keeps no state.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kem_kit::Secret;
use kem_kit::external::{
    ProviderClient, ProviderConfig, ProviderConfigError, ProviderError, ProviderResponse, Verdict,
};
use kem_kit::runtime::Peers;
use kem_proto::kem::analytics::v1 as analytics;
use kem_proto::kem::analytics::v1::analytics_service_client::AnalyticsServiceClient;
use kem_proto::kem::common::v1 as common;
use serde::Deserialize;

use crate::domain::Channel;
use crate::infra::channels::instagram::GraphError;

/// Provider name (breaker, logs, `ProviderInfo.name`).
pub const PROVIDER: &str = "instagram-insights";
/// The image metrics asked for, all in one call (§10); `impressions` is deliberately absent.
pub const METRICS: &str = "reach,likes,comments,saved,shares,views,total_interactions";
/// Longest media id accepted (Graph ids are about 17 digits).
const MAX_MEDIA_ID: usize = 64;

/// Client settings: a read of a few hundred bytes, retried (it has no side effect).
pub fn provider_config(base_url: impl Into<String>) -> ProviderConfig {
    let mut config = ProviderConfig::new(PROVIDER, base_url);
    config.timeout = Duration::from_secs(10);
    config.deadline = Duration::from_secs(30);
    config.max_body_bytes = 256 * 1024;
    config
}

/// A post's lifetime numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaInsights {
    /// Unique accounts that saw the post.
    pub reach: i64,
    /// Times the post was displayed.
    pub views: i64,
    /// Likes.
    pub likes: i64,
    /// Comments.
    pub comments: i64,
    /// Saves.
    pub saved: i64,
    /// Shares.
    pub shares: i64,
    /// Likes, saves, comments and shares.
    pub total_interactions: i64,
}

/// Why a post has no numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReported {
    /// Not computed yet (Meta takes up to 48 h): ask again later.
    NotYet,
    /// Too small an audience for Meta to show insights (code 10).
    LowAudience,
}

/// What a read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insights {
    /// The numbers (a reported 0 is a 0).
    Reported(MediaInsights),
    /// No numbers: not the same as zeros.
    NotReported(NotReported),
}

#[derive(Debug, Deserialize)]
struct InsightsBody {
    #[serde(default)]
    data: Vec<Metric>,
}

#[derive(Debug, Deserialize)]
struct Metric {
    name: String,
    #[serde(default)]
    values: Vec<MetricValue>,
}

#[derive(Debug, Deserialize)]
struct MetricValue {
    #[serde(default)]
    value: i64,
}

/// Whether a Graph error is code 10's "not enough viewers" (low audience) rather than code 10's
/// missing permission: Meta tells them apart by message only.
fn low_audience(error: &GraphError) -> bool {
    error.code == 10 && error.message.to_ascii_lowercase().contains("not enough")
}

/// The Graph API's reading of an insights answer.
fn classify(response: &ProviderResponse) -> Option<Verdict> {
    if response.status().is_success() {
        return None;
    }
    let error = GraphError::of(response)?;
    if low_audience(&error) {
        // Not a failure: the answer is "not reported", read in `read`.
        return Some(Verdict::Success);
    }
    let detail = format!("{} (code {})", error.message, error.code_text());
    Some(match error.code {
        // Expired or revoked token, or no insights permission: the owner must reconnect.
        190 | 10 | 200..=299 => Verdict::Auth(detail),
        4 | 17 | 32 | 613 => Verdict::RateLimited { retry_after: response.retry_after(), detail },
        1 | 2 => Verdict::Transient { retry_after: None, detail },
        _ if response.status().is_server_error() => Verdict::Transient { retry_after: None, detail },
        _ => Verdict::Invalid(detail),
    })
}

/// Reads Instagram media insights (Instagram API with Instagram Login: `graph.instagram.com`).
#[derive(Debug, Clone)]
pub struct InstagramInsights {
    client: ProviderClient,
    api_version: String,
}

impl InstagramInsights {
    /// A reader on `config` (see [`provider_config`]) for Graph API `api_version` (`v21.0`).
    pub fn new(config: ProviderConfig, api_version: impl Into<String>) -> Result<Self, ProviderConfigError> {
        Ok(InstagramInsights { client: ProviderClient::new(config)?, api_version: api_version.into() })
    }

    /// The numbers of `media_id`, read with its owner's `token`.
    pub async fn read(&self, media_id: &str, token: &Secret) -> Result<Insights, ProviderError> {
        let plausible = !media_id.is_empty()
            && media_id.len() <= MAX_MEDIA_ID
            && media_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !plausible {
            // Never sent: an id that is not one would change the path.
            return Err(ProviderError::Request {
                provider: Arc::from(PROVIDER),
                detail: "the media id is not an Instagram media id".to_owned(),
            });
        }
        let path = format!("/{}/{media_id}/insights", self.api_version);
        let response = self
            .client
            .get(&path)
            .query("metric", METRICS)
            .query("access_token", token.expose())
            .classify(classify)
            .send()
            .await?;
        if !response.status().is_success() {
            // Only low audience is let through as a non-2xx answer (see `classify`).
            return Ok(Insights::NotReported(NotReported::LowAudience));
        }
        let body: InsightsBody = response.json()?;
        if body.data.is_empty() {
            return Ok(Insights::NotReported(NotReported::NotYet));
        }
        let mut numbers = MediaInsights::default();
        for metric in body.data {
            let value = metric.values.first().map_or(0, |v| v.value);
            let slot = match metric.name.as_str() {
                "reach" => &mut numbers.reach,
                "views" => &mut numbers.views,
                "likes" => &mut numbers.likes,
                "comments" => &mut numbers.comments,
                "saved" => &mut numbers.saved,
                "shares" => &mut numbers.shares,
                "total_interactions" => &mut numbers.total_interactions,
                _ => continue,
            };
            *slot = value;
        }
        Ok(Insights::Reported(numbers))
    }
}

/// One post to read and record.
#[derive(Debug, Clone)]
pub struct PostInsights<'a> {
    /// The event the post was published for.
    pub event_id: &'a str,
    /// Its channel (Instagram).
    pub channel: Channel,
    /// The Instagram media id of the post.
    pub media_id: &'a str,
    /// The owner's Instagram token.
    pub token: &'a Secret,
    /// When the numbers are read (the report's observe time; part of its id).
    pub observed: SystemTime,
}

/// What came of one post's insights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Analytics recorded the numbers (`duplicate`: this observation was recorded before;
    /// `stale`: a later one is stored already).
    Recorded {
        /// The numbers recorded.
        insights: MediaInsights,
        /// A repeated report id.
        duplicate: bool,
        /// Older than what analytics holds.
        stale: bool,
    },
    /// Instagram has no numbers for the post: nothing was sent to analytics, which keeps the
    /// channel "not reported".
    NotReported(NotReported),
}

/// Why a post's insights could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum InsightsError {
    /// The platform refused or failed the read (an auth error means the owner must reconnect).
    #[error("the post's numbers cannot be read from the platform: {0}")]
    Read(#[from] ProviderError),
    /// Analytics could not be reached or refused the report.
    #[error("analytics did not record the channel metrics: {0}")]
    Analytics(String),
}

/// The report id of one observation: `<event>:<channel>:<observe ms>`.
pub fn report_id(event_id: &str, channel: Channel, observed: SystemTime) -> String {
    format!("{event_id}:{}:{}", channel.slug(), kem_kit::store::millis(observed))
}

/// Reads `post`'s insights with `reader` and records them with analytics `RecordChannelMetrics`
/// through `peers` (each call waits at most `timeout`). A post without numbers sends nothing.
pub async fn record_instagram(
    reader: &InstagramInsights,
    peers: &Peers,
    post: &PostInsights<'_>,
    timeout: Duration,
) -> Result<Recorded, InsightsError> {
    let insights = match reader.read(post.media_id, post.token).await? {
        Insights::NotReported(why) => return Ok(Recorded::NotReported(why)),
        Insights::Reported(numbers) => numbers,
    };
    let numbers = Numbers { views: insights.views, reach: insights.reach };
    let (duplicate, stale) =
        record(peers, post.event_id, post.channel, post.observed, numbers, PROVIDER, timeout).await?;
    Ok(Recorded::Recorded { insights, duplicate, stale })
}

/// A post's numbers as analytics takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbers {
    /// Views (Instagram) or impressions (the KT partner).
    pub views: i64,
    /// Distinct accounts or households reached; 0 where the platform cannot tell.
    pub reach: i64,
}

/// Records `numbers` of `event_id` on `channel`, observed at `observed`, from `provider`, with
/// analytics `RecordChannelMetrics` through `peers` (waiting at most `timeout`): whether the
/// report was a duplicate, and whether analytics held a later one.
pub async fn record(
    peers: &Peers,
    event_id: &str,
    channel: Channel,
    observed: SystemTime,
    numbers: Numbers,
    provider: &str,
    timeout: Duration,
) -> Result<(bool, bool), InsightsError> {
    let request = analytics::RecordChannelMetricsRequest {
        report_id: report_id(event_id, channel, observed),
        event_id: event_id.to_owned(),
        channel: channel.number(),
        views: numbers.views,
        reach: numbers.reach,
        // The post exists, so the delivery was published; analytics keeps the larger count.
        deliveries_published: 1,
        deliveries_failed: 0,
        observe_time: Some(kem_kit::clock::timestamp_from_ms(kem_kit::store::millis(observed))),
        provider: Some(common::ProviderInfo {
            kind: common::ProviderKind::External as i32,
            name: provider.to_owned(),
            ..Default::default()
        }),
    };
    let channel = peers.channel("analytics").map_err(|e| InsightsError::Analytics(e.to_string()))?;
    let mut call = tonic::Request::new(request);
    call.set_timeout(timeout);
    let answered = tokio::time::timeout(timeout, AnalyticsServiceClient::new(channel).record_channel_metrics(call))
        .await
        .map_err(|_| InsightsError::Analytics(format!("no answer within {timeout:?}")))?
        .map_err(|status| InsightsError::Analytics(format!("{:?}: {}", status.code(), status.message())))?
        .into_inner();
    Ok((answered.duplicate, answered.stale))
}

#[cfg(test)]
mod tests;
