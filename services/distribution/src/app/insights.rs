//! The insights job (#21): the numbers of every Instagram post and KT partner campaign published
//! in the last [`InsightsSettings::window`] are read with the owner's own token (the platform's
//! partner account where the owner connected no store) at most once per
//! [`InsightsSettings::interval`] (Meta computes them over up to 48 h and asks for hourly polling
//! at most, PROVIDERS.md §10) and recorded with analytics `RecordChannelMetrics`, so an owner's
//! dashboard shows the views and reach the platform reports — and "not reported" until it does.
//! The partner's numbers are our contract's `metrics` of a campaign once it has aired
//! (impressions as views, households as reach).
//!
//! Posts are claimed in the database (a guarded update), so several replicas never read one post
//! twice in a round. A post whose owner has no usable connection is skipped (publishing already
//! told the owner); a token Instagram refuses makes the connection NEEDS_RECONNECT, as a refused
//! publish does. SENS offers no per-message numbers beyond delivery: a Kakao delivery's reach is
//! the count SENS accepted, recorded with the delivery's outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kem_kit::clock::Clock;
use kem_kit::external::ProviderError;
use kem_kit::runtime::Peers;

use crate::app::connections::{Connections, StepAccess};
use crate::domain::Channel;
use crate::infra::channels::partner::PartnerClient;
use crate::infra::insights::{
    InsightsError, InstagramInsights, Numbers, PostInsights, Recorded, record, record_instagram,
};
use crate::infra::repository::PostDue;
use crate::infra::repository::Repository;

/// How the insights job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsightsSettings {
    /// How often a post's numbers are read (Meta: at most hourly).
    pub interval: Duration,
    /// How long after publication a post's numbers are still read.
    pub window: Duration,
    /// Posts read per round and replica.
    pub batch: usize,
    /// Longest wait for Instagram and for analytics, each.
    pub timeout: Duration,
}

impl Default for InsightsSettings {
    fn default() -> Self {
        InsightsSettings {
            interval: Duration::from_secs(3_600),
            window: Duration::from_secs(30 * 24 * 3_600),
            batch: 50,
            timeout: Duration::from_secs(10),
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InsightsRound {
    /// Posts whose numbers analytics recorded.
    pub recorded: usize,
    /// Posts the platform has no numbers for yet (Instagram: or too small an audience; the
    /// partner: not aired yet).
    pub not_reported: usize,
    /// Posts skipped or failed (no usable connection, a refused token, an outage).
    pub skipped: usize,
}

/// The job: reads due posts' numbers and reports them.
pub struct InsightsJob {
    repo: Repository,
    connections: Arc<Connections>,
    reader: Option<InstagramInsights>,
    partners: BTreeMap<Channel, PartnerClient>,
    peers: Peers,
    clock: Arc<dyn Clock>,
    settings: InsightsSettings,
}

impl std::fmt::Debug for InsightsJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InsightsJob").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl InsightsJob {
    /// A job over the delivery rows in `repo`, reading with the owners' tokens from
    /// `connections` through `reader` (Instagram, when real) and `partners` (the KT channels on a
    /// real partner) and reporting to analytics through `peers`.
    pub fn new(
        repo: Repository,
        connections: Arc<Connections>,
        reader: Option<InstagramInsights>,
        partners: BTreeMap<Channel, PartnerClient>,
        peers: Peers,
        clock: Arc<dyn Clock>,
        settings: InsightsSettings,
    ) -> InsightsJob {
        InsightsJob { repo, connections, reader, partners, peers, clock, settings }
    }

    /// The channels whose numbers this job reads.
    pub fn channels(&self) -> Vec<Channel> {
        self.reader.iter().map(|_| Channel::Instagram).chain(self.partners.keys().copied()).collect()
    }

    /// The settings in force.
    pub fn settings(&self) -> InsightsSettings {
        self.settings
    }

    /// One round: every due post (up to the batch size) read and reported.
    pub async fn run_once(&self) -> InsightsRound {
        let now = self.clock.now_ms();
        let read_before = now.saturating_sub(ms(self.settings.interval));
        let published_since = now.saturating_sub(ms(self.settings.window));
        let channels = self.channels();
        let due =
            match self.repo.claim_insights_due(now, read_before, published_since, self.settings.batch, &channels).await
            {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(%error, "insights: cannot read the posts due; next round");
                    return InsightsRound::default();
                }
            };
        let mut round = InsightsRound::default();
        for post in due {
            match (post.channel, &self.reader, self.partners.get(&post.channel)) {
                (Channel::Instagram, Some(reader), _) => self.instagram(reader, &post, &mut round).await,
                (_, _, Some(partner)) => self.partner(partner, &post, &mut round).await,
                _ => round.skipped += 1,
            }
        }
        round
    }

    async fn instagram(&self, reader: &InstagramInsights, post: &PostDue, round: &mut InsightsRound) {
        let account = match self.connections.for_step(&post.owner_id, Channel::Instagram).await {
            StepAccess::Account(account) => account,
            StepAccess::Without | StepAccess::Refused(_) | StepAccess::Later(_) => {
                round.skipped += 1;
                return;
            }
        };
        let insights = PostInsights {
            event_id: &post.event_id,
            channel: Channel::Instagram,
            media_id: &post.media_id,
            token: &account.access_token,
            observed: self.clock.now(),
        };
        match record_instagram(reader, &self.peers, &insights, self.settings.timeout).await {
            Ok(Recorded::Recorded { .. }) => round.recorded += 1,
            Ok(Recorded::NotReported(_)) => round.not_reported += 1,
            Err(InsightsError::Read(error @ ProviderError::Auth { .. })) => {
                self.connections.token_refused(&post.owner_id, &account, &error.to_string()).await;
                round.skipped += 1;
            }
            Err(error) => {
                tracing::warn!(%error, event_id = %post.event_id, "insights: not recorded this round");
                round.skipped += 1;
            }
        }
    }

    /// A KT campaign: read with the owner's store token when connected, the platform's otherwise.
    async fn partner(&self, partner: &PartnerClient, post: &PostDue, round: &mut InsightsRound) {
        let account = match self.connections.for_step(&post.owner_id, post.channel).await {
            StepAccess::Account(account) => Some(account),
            StepAccess::Without => None,
            StepAccess::Refused(_) | StepAccess::Later(_) => {
                round.skipped += 1;
                return;
            }
        };
        let token = account.as_ref().map(|a| &a.access_token);
        let metrics = match tokio::time::timeout(self.settings.timeout, partner.campaign_metrics(&post.media_id, token))
            .await
        {
            Ok(Ok(Some(metrics))) => metrics,
            Ok(Ok(None)) => {
                round.not_reported += 1;
                return;
            }
            Ok(Err(error @ ProviderError::Auth { .. })) => {
                if let Some(account) = &account {
                    self.connections.token_refused(&post.owner_id, account, &error.to_string()).await;
                }
                round.skipped += 1;
                return;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, event_id = %post.event_id, "insights: the partner's numbers not read this round");
                round.skipped += 1;
                return;
            }
            Err(_) => {
                round.skipped += 1;
                return;
            }
        };
        let numbers = Numbers { views: metrics.impressions, reach: metrics.reach.unwrap_or(0) };
        let provider = crate::infra::channels::partner::PROVIDER;
        match record(
            &self.peers,
            &post.event_id,
            post.channel,
            self.clock.now(),
            numbers,
            provider,
            self.settings.timeout,
        )
        .await
        {
            Ok(_) => round.recorded += 1,
            Err(error) => {
                tracing::warn!(%error, event_id = %post.event_id, "insights: not recorded this round");
                round.skipped += 1;
            }
        }
    }
}
