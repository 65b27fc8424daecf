//! Channel connections, the use cases: which channels need the owner's own account, connecting
//! one (start → the provider's consent screen → complete; a Kakao channel at once), removing one,
//! telling the event service which channels cannot be published, handing a delivery step the
//! owner's account, and keeping connections alive (the refresh job: tokens refreshed, Kakao
//! channels re-checked).
//!
//! A channel's need follows the configuration: Instagram on its real provider publishes only
//! through the owner's professional account, and Kakao on real SENS only from the owner's own
//! Kakao Talk Channel ([`Need::Required`]); Naver with Naver Login posts to the owner's cafe when
//! connected and prepares the article for them otherwise ([`Need::Optional`]); a KT partner
//! channel whose real partner takes store accounts publishes only through the owner's store
//! account, connected by the per-store authorization of `partner/v1` with PKCE
//! ([`Need::Required`]; a refused job token gets one refresh — [`Connections::renew_refused`] —
//! before the connection needs reconnecting); a KT partner on the platform's partner account and
//! every channel on a local stand-in need nothing ([`Need::NotNeeded`], with the reason shown to
//! the owner).
//!
//! Kakao has no OAuth for business messaging. StartChannelConnection with the channel's search id
//! (`@myshop`) looks the channel up among the sender profiles of the platform's SENS Biz Message
//! service ([`KakaoSenders`]): registered, ACTIVE and not blocked, it is stored ACTIVE at once
//! (account id = the channel id, no token); otherwise the owner is told how to have it registered
//! (SENDER_NOT_REGISTERED). One owner at most holds a channel (ACCOUNT_TAKEN for the next, settled
//! by a unique index when two race). The refresh job re-checks each Kakao connection every
//! [`KAKAO_RECHECK`](crate::domain::connection::KAKAO_RECHECK): a channel no longer ACTIVE, or
//! blocked, becomes NEEDS_RECONNECT.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use kem_kit::clock::Clock;
use kem_kit::validate::excerpt;
use ring::rand::{SecureRandom, SystemRandom};

use super::{DistributionError, FieldViolation};
use crate::domain::connection::{
    ATTEMPT_TTL, MAX_PENDING_ATTEMPTS, is_cafe_id, kakao_channel_id, missing_scopes, refresh_due, refresh_retry_at,
    state_problem,
};
use crate::domain::{
    Channel, ConnectionState, ConnectionView, ErrorReason, Failure, LoginProvider, NaverCafe, ProviderLabel,
    StoredState,
};
use crate::infra::channels::{channel_name, needs_reconnect, not_connected};
use crate::infra::connections::instagram::InstagramLogin;
use crate::infra::connections::kakao::{KakaoSenders, same_channel};
use crate::infra::connections::naver::NaverLogin;
use crate::infra::connections::partner::{PartnerLogin, code_verifier};
use crate::infra::connections::{
    Attempt, ConnectedAccount, ConnectionStore, ConnectionStoreError, Granted, KakaoSaved, LoginError, NewConnection,
    StoredConnection, Tokens,
};

/// Longest authorization code accepted (Meta's and Naver's are far shorter).
const CODE_MAX: usize = 2_048;
/// A token this close to its expiry is treated as expired by a step (it could die mid-call).
const EXPIRY_MARGIN_MS: i64 = 60_000;
/// How long the refresh job holds a connection.
const REFRESH_LEASE_MS: i64 = 60_000;
/// Connections refreshed per round.
const REFRESH_BATCH: i64 = 50;

/// Whether publishing to a channel takes the owner's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// No: the reason, for the owner.
    NotNeeded(String),
    /// Yes: nothing is published without it.
    Required(LoginProvider),
    /// Used when connected; without it the channel still works (owner-assisted).
    Optional(LoginProvider),
}

/// A channel's connection as the owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelStatus {
    /// The channel.
    pub channel: Channel,
    /// Its state.
    pub state: ConnectionState,
    /// The stored connection, when there is one.
    pub connection: Option<ConnectionView>,
    /// Why it needs reconnecting, why none is needed, or what not connecting means.
    pub note: String,
    /// The provider publishing goes through.
    pub provider: ProviderLabel,
}

/// What a delivery step of a channel gets.
#[derive(Debug)]
pub enum StepAccess {
    /// The channel publishes without the owner's account (or owner-assisted without it).
    Without,
    /// The owner's account.
    Account(ConnectedAccount),
    /// The delivery fails at once: the owner must connect (or reconnect) the channel.
    Refused(Failure),
    /// The account cannot be had right now (the database, or the provider refreshing a token).
    Later(Failure),
}

/// The login clients of the channels whose real provider takes the owner's account.
#[derive(Debug, Clone, Default)]
pub struct Logins {
    /// Instagram Login, when Instagram is on its real provider.
    pub instagram: Option<InstagramLogin>,
    /// Naver Login, when configured.
    pub naver: Option<NaverLogin>,
    /// The SENS sender profile list, when Kakao is on real SENS.
    pub kakao: Option<KakaoSenders>,
    /// The per-store authorization of each KT partner channel whose partner is real.
    pub partners: BTreeMap<Channel, PartnerLogin>,
}

/// What StartChannelConnection came to.
#[derive(Debug)]
pub enum Started {
    /// Open the provider's consent screen at `url` before `expires_at` (ms).
    Redirect {
        /// The authorization URL.
        url: String,
        /// When the attempt expires.
        expires_at: i64,
    },
    /// Connected at once (Kakao).
    Connected(Box<ChannelStatus>),
}

/// How an owner has a Kakao channel registered as a sender, for the SENDER_NOT_REGISTERED error.
pub const KAKAO_REGISTRATION_HELP: &str = "ask kem support to add your Kakao Talk Channel as a sender profile of \
    kem's NAVER Cloud SENS account: Kakao checks the channel's business verification (비즈니스 인증) and sends a \
    one-time code to the channel administrator's phone, which you give to support; then connect the channel again";

/// The connection use cases.
#[derive(Debug)]
pub struct Connections {
    store: ConnectionStore,
    logins: Logins,
    needs: BTreeMap<Channel, Need>,
    providers: BTreeMap<Channel, ProviderLabel>,
    clock: Arc<dyn Clock>,
    random: SystemRandom,
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn invalid(field: &str, description: impl Into<String>) -> DistributionError {
    DistributionError::InvalidArgument(vec![FieldViolation::new(field, description)])
}

/// Hex SHA-256 of a state: all that is stored of it.
pub fn state_hash(state: &str) -> String {
    kem_kit::hex::encode(ring::digest::digest(&ring::digest::SHA256, state.as_bytes()).as_ref())
}

fn storage_failure(error: &ConnectionStoreError) -> Failure {
    Failure::new(ErrorReason::Internal, format!("the channel connection cannot be read: {error}"), error.is_transient())
}

impl Connections {
    /// The use cases over `store`, with `logins`; `needs` and `providers` say per channel what
    /// publishing takes and goes through; "now" from `clock`.
    pub fn new(
        store: ConnectionStore,
        logins: Logins,
        needs: BTreeMap<Channel, Need>,
        providers: BTreeMap<Channel, ProviderLabel>,
        clock: Arc<dyn Clock>,
    ) -> Connections {
        Connections { store, logins, needs, providers, clock, random: SystemRandom::new() }
    }

    /// The tables (tests read raw rows through it).
    pub fn store(&self) -> &ConnectionStore {
        &self.store
    }

    /// What publishing to `channel` takes.
    pub fn need(&self, channel: Channel) -> Need {
        self.needs.get(&channel).cloned().unwrap_or_else(|| Need::NotNeeded(String::new()))
    }

    fn provider(&self, channel: Channel) -> ProviderLabel {
        self.providers.get(&channel).cloned().unwrap_or_default()
    }

    fn channel_of(number: i32, field: &str) -> Result<Channel, DistributionError> {
        match Channel::from_number(number) {
            Some(channel) => Ok(channel),
            None if number == 0 => Err(invalid(field, "CHANNEL_UNSPECIFIED is not a channel")),
            None => Err(invalid(field, format!("{number} is not a known channel"))),
        }
    }

    /// The state of `channel` for an owner with `stored` (an ACTIVE Instagram token past its
    /// expiry counts as needing a reconnect: it cannot be refreshed any more).
    fn status(&self, channel: Channel, stored: Option<ConnectionView>) -> ChannelStatus {
        let provider = self.provider(channel);
        let (state, note) = match (self.need(channel), &stored) {
            (Need::NotNeeded(why), _) => (ConnectionState::NotNeeded, why),
            (Need::Required(LoginProvider::Kakao), None) => (
                ConnectionState::NotConnected,
                "connect your Kakao Talk Channel (its search id, e.g. @myshop): Kakao messages are sent only from \
                your own channel, to the participants who agreed to receive them"
                    .to_owned(),
            ),
            (Need::Required(p), None) => (
                ConnectionState::NotConnected,
                format!("connect your {} account: nothing is published to {} without it", p.display(), p.display()),
            ),
            (Need::Optional(p), None) => (
                ConnectionState::NotConnected,
                format!(
                    "not connected: articles are prepared for you to post yourself; connect {} to post to your cafe \
                     automatically",
                    p.display()
                ),
            ),
            (Need::Required(p) | Need::Optional(p), Some(view)) => {
                let expired = view.expires_at.is_some_and(|at| at <= self.clock.now_ms());
                match view.state {
                    StoredState::Active if expired && p == LoginProvider::Instagram => {
                        (ConnectionState::NeedsReconnect, "the access token expired".to_owned())
                    }
                    state => (ConnectionState::from(state), view.note.clone()),
                }
            }
        };
        let connection = stored.filter(|_| state != ConnectionState::NotNeeded);
        ChannelStatus { channel, state, connection, note, provider }
    }

    /// Every channel of `owner_id`, in Channel enum order.
    pub async fn list(&self, owner_id: &str) -> Result<Vec<ChannelStatus>, DistributionError> {
        let mut stored: BTreeMap<Channel, ConnectionView> =
            self.store.list(owner_id).await?.into_iter().map(|c| (c.view.channel, c.view)).collect();
        Ok(Channel::ALL.into_iter().map(|c| self.status(c, stored.remove(&c))).collect())
    }

    async fn one(&self, owner_id: &str, channel: Channel) -> Result<ChannelStatus, DistributionError> {
        let stored = self.store.get(owner_id, channel).await?.map(|c| c.view);
        Ok(self.status(channel, stored))
    }

    /// Starts connecting `channel` (a `kem.common.v1.Channel` number) for `owner_id`: the
    /// provider's authorization URL and when the attempt expires (ms), or — Kakao, with
    /// `kakao_channel_id` — the connection made at once.
    pub async fn start(
        &self,
        owner_id: &str,
        channel: i32,
        naver_cafe: Option<NaverCafe>,
        kakao_channel: &str,
    ) -> Result<Started, DistributionError> {
        let channel = Self::channel_of(channel, "channel")?;
        let provider = match self.need(channel) {
            Need::NotNeeded(_) => return Err(DistributionError::ConnectionNotNeeded(channel)),
            Need::Required(p) | Need::Optional(p) => p,
        };
        if provider == LoginProvider::Kakao {
            if naver_cafe.is_some() {
                return Err(invalid("naverCafe", "is only for NAVER_BLOG"));
            }
            return self.connect_kakao(owner_id, kakao_channel).await.map(|s| Started::Connected(Box::new(s)));
        }
        if !kakao_channel.is_empty() {
            return Err(invalid("kakaoChannelId", "is only for KAKAO_CHANNEL"));
        }
        let naver_cafe = match (provider, naver_cafe) {
            (LoginProvider::Naver, None) => {
                return Err(invalid("naverCafe", "Naver needs the cafe board to post to (clubId and menuId)"));
            }
            (LoginProvider::Naver, Some(cafe)) => {
                let mut violations = Vec::new();
                for (field, id) in [("naverCafe.clubId", &cafe.club_id), ("naverCafe.menuId", &cafe.menu_id)] {
                    if !is_cafe_id(id) {
                        violations.push(FieldViolation::new(field, "must be 1 to 20 digits"));
                    }
                }
                if !violations.is_empty() {
                    return Err(DistributionError::InvalidArgument(violations));
                }
                Some(cafe)
            }
            (LoginProvider::Instagram, Some(_)) => {
                return Err(invalid("naverCafe", "is only for NAVER_BLOG"));
            }
            (LoginProvider::Instagram | LoginProvider::Kakao | LoginProvider::Partner(_), None) => None,
            (LoginProvider::Kakao | LoginProvider::Partner(_), Some(_)) => {
                return Err(invalid("naverCafe", "is only for NAVER_BLOG"));
            }
        };
        // PKCE where the provider takes it: our partner contract requires it.
        let verifier = matches!(provider, LoginProvider::Partner(_)).then(code_verifier);
        let mut bytes = [0u8; 32];
        self.random.fill(&mut bytes).map_err(|_| {
            DistributionError::Internal(kem_kit::store::StoreError::Invalid("the system random source failed".into()))
        })?;
        let state = URL_SAFE_NO_PAD.encode(bytes);
        let now = self.clock.now_ms();
        let expires_at = now.saturating_add(ms(ATTEMPT_TTL));
        let attempt = Attempt { owner_id: owner_id.to_owned(), channel, naver_cafe, code_verifier: verifier.clone() };
        if !self.store.create_attempt(&state_hash(&state), &attempt, now, expires_at, MAX_PENDING_ATTEMPTS).await? {
            return Err(DistributionError::TooManyAttempts { minutes: ATTEMPT_TTL.as_secs() / 60 });
        }
        let url = match provider {
            LoginProvider::Instagram => self.logins.instagram.as_ref().map(|l| l.authorize_url(&state)),
            LoginProvider::Naver => self.logins.naver.as_ref().map(|l| l.authorize_url(&state)),
            LoginProvider::Partner(c) => {
                self.logins.partners.get(&c).zip(verifier.as_ref()).map(|(l, v)| l.authorize_url(&state, v))
            }
            LoginProvider::Kakao => None,
        };
        let url = url.ok_or(DistributionError::ConnectionNotNeeded(channel))?;
        tracing::info!(owner_id, channel = %channel, "channel connection started");
        Ok(Started::Redirect { url, expires_at })
    }

    /// Connects `owner_id`'s Kakao Talk Channel `id` (as the owner typed it) once SENS lists it
    /// as an active sender profile. Idempotent for the same owner and channel.
    async fn connect_kakao(&self, owner_id: &str, id: &str) -> Result<ChannelStatus, DistributionError> {
        let channel = Channel::KakaoChannel;
        let channel_id = kakao_channel_id(id).map_err(|problem| invalid("kakaoChannelId", problem))?;
        let senders = self.logins.kakao.as_ref().ok_or(DistributionError::ConnectionNotNeeded(channel))?;
        let found = senders.find(&channel_id).await.map_err(|cause| match cause {
            cause @ (LoginError::Unavailable(_) | LoginError::Refused { .. }) => {
                DistributionError::LoginUnavailable { channel, cause }
            }
            cause @ LoginError::Failed(_) => DistributionError::LoginFailed { channel, cause },
        })?;
        let sender = match found {
            Some(sender) if sender.usable() => sender,
            Some(sender) => {
                return Err(DistributionError::SenderNotRegistered {
                    channel_id,
                    detail: format!("{}; {KAKAO_REGISTRATION_HELP}", sender.problem()),
                });
            }
            None => {
                return Err(DistributionError::SenderNotRegistered {
                    channel_id: channel_id.clone(),
                    detail: format!(
                        "{channel_id} is not a sender profile of kem's Kakao dealer account (NAVER Cloud SENS); \
                        {KAKAO_REGISTRATION_HELP}"
                    ),
                });
            }
        };
        let now = self.clock.now_ms();
        let refresh_at = refresh_due(LoginProvider::Kakao, now, None).unwrap_or(now);
        match self.store.save_kakao(owner_id, &channel_id, &sender.name, refresh_at, now).await? {
            KakaoSaved::Saved => {
                tracing::info!(owner_id, %channel, account_id = %channel_id, "Kakao channel connected");
                self.one(owner_id, channel).await
            }
            KakaoSaved::Taken => {
                tracing::warn!(owner_id, account_id = %channel_id, "a Kakao channel connected by another owner was asked for");
                Err(DistributionError::AccountTaken { channel_id })
            }
        }
    }

    /// Completes the attempt of `state` with the provider's answer (`code`, or `error`). `caller`
    /// is the signed-in owner when the request carries one: another owner's state is then
    /// unknown to them.
    pub async fn complete(
        &self,
        caller: Option<&str>,
        state: &str,
        code: &str,
        error: &str,
        error_description: &str,
    ) -> Result<ChannelStatus, DistributionError> {
        if let Some(problem) = state_problem(state) {
            return Err(invalid("state", problem));
        }
        let code = code.trim();
        let denied = !error.trim().is_empty();
        if !denied {
            if code.is_empty() {
                return Err(invalid("code", "code is required when the provider reports no error"));
            }
            if code.len() > CODE_MAX || code.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(invalid("code", "is not an authorization code"));
            }
        }
        let now = self.clock.now_ms();
        let attempt =
            self.store.take_attempt(&state_hash(state), caller, now).await?.ok_or(DistributionError::StateUnknown)?;
        let channel = attempt.channel;
        let provider = LoginProvider::of(channel).ok_or(DistributionError::ConnectionNotNeeded(channel))?;
        if denied {
            let detail = if error_description.trim().is_empty() {
                excerpt(error.trim())
            } else {
                format!("{} ({})", excerpt(error.trim()), excerpt(error_description.trim()))
            };
            tracing::info!(owner_id = %attempt.owner_id, %channel, "the provider reported an error on the consent screen");
            return Err(DistributionError::AuthorizationDenied { channel, detail });
        }
        let granted = match provider {
            LoginProvider::Instagram => match &self.logins.instagram {
                Some(login) => login.exchange(code, now).await,
                None => return Err(DistributionError::ConnectionNotNeeded(channel)),
            },
            LoginProvider::Naver => match &self.logins.naver {
                Some(login) => login.exchange(code, state, now).await,
                None => return Err(DistributionError::ConnectionNotNeeded(channel)),
            },
            LoginProvider::Partner(c) => match (self.logins.partners.get(&c), &attempt.code_verifier) {
                (Some(login), Some(verifier)) => login.exchange(code, verifier, now).await,
                // An attempt recorded before the partner took the owner's account: start again.
                (Some(_), None) => return Err(DistributionError::StateUnknown),
                (None, _) => return Err(DistributionError::ConnectionNotNeeded(channel)),
            },
            // No attempt is ever recorded for Kakao (it connects at once).
            LoginProvider::Kakao => return Err(DistributionError::StateUnknown),
        };
        let granted: Granted = granted.map_err(|cause| match cause {
            LoginError::Refused { detail, .. } => DistributionError::AuthorizationDenied { channel, detail },
            cause @ LoginError::Unavailable(_) => DistributionError::LoginUnavailable { channel, cause },
            cause @ LoginError::Failed(_) => DistributionError::LoginFailed { channel, cause },
        })?;
        let missing = missing_scopes(provider, &granted.scopes);
        if !missing.is_empty() {
            return Err(DistributionError::MissingPermission {
                channel,
                missing: missing.into_iter().map(str::to_owned).collect(),
            });
        }
        let refresh_at = refresh_due(provider, granted.tokens.issued_at, granted.tokens.expires_at);
        let connection = NewConnection {
            channel,
            account_id: granted.account_id,
            account_name: granted.account_name,
            scopes: granted.scopes,
            tokens: granted.tokens,
            refresh_at,
            naver_cafe: attempt.naver_cafe,
        };
        self.store.save(&attempt.owner_id, &connection, now).await?;
        tracing::info!(owner_id = %attempt.owner_id, %channel, account_id = %connection.account_id, "channel connected");
        self.one(&attempt.owner_id, channel).await
    }

    /// Removes `owner_id`'s connection of `channel` (Naver's token is deleted at Naver, a KT
    /// partner store's grant revoked at the partner, both best effort); the channel's state
    /// afterwards.
    pub async fn delete(&self, owner_id: &str, channel: i32) -> Result<ChannelStatus, DistributionError> {
        let channel = Self::channel_of(channel, "channel")?;
        if let Some(deleted) = self.store.delete(owner_id, channel).await? {
            tracing::info!(owner_id, %channel, "channel connection removed");
            if channel == Channel::NaverBlog
                && let Some(login) = &self.logins.naver
            {
                match self.store.tokens(&deleted) {
                    Ok(tokens) => {
                        if let Err(error) = login.revoke(&tokens.access).await {
                            tracing::warn!(%error, "Naver did not confirm deleting the token; it expires within the hour");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "the deleted Naver token could not be opened to revoke it"),
                }
            }
            if let Some(login) = self.logins.partners.get(&channel) {
                match self.store.tokens(&deleted) {
                    Ok(tokens) => {
                        // The refresh token names the whole grant; the access token does too.
                        let token = tokens.refresh.as_ref().unwrap_or(&tokens.access);
                        if let Err(error) = login.revoke(token).await {
                            tracing::warn!(%error, %channel, "the partner did not confirm revoking the store's grant; its access token expires within the hour");
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the deleted partner tokens could not be opened to revoke them")
                    }
                }
            }
        }
        self.one(owner_id, channel).await
    }

    /// The channels of `channels` that `owner_id` cannot publish to now: a channel that needs
    /// the owner's account and has none usable (never connected, or needing a reconnect; Naver
    /// only when it needs a reconnect, since without a connection it is owner-assisted).
    pub async fn unusable(&self, owner_id: &str, channels: &[i32]) -> Result<Vec<ChannelStatus>, DistributionError> {
        let mut named = Vec::new();
        let mut violations = Vec::new();
        for (i, number) in channels.iter().enumerate() {
            match Self::channel_of(*number, &format!("channels[{i}]")) {
                Ok(channel) if !named.contains(&channel) => named.push(channel),
                Ok(_) => {}
                Err(DistributionError::InvalidArgument(v)) => violations.extend(v),
                Err(other) => return Err(other),
            }
        }
        if !violations.is_empty() {
            return Err(DistributionError::InvalidArgument(violations));
        }
        named.sort();
        let mut unusable = Vec::new();
        for channel in named {
            let need = self.need(channel);
            if matches!(need, Need::NotNeeded(_)) {
                continue;
            }
            let status = self.one(owner_id, channel).await?;
            let blocked = match need {
                Need::Required(_) => status.state != ConnectionState::Active,
                Need::Optional(_) => status.state == ConnectionState::NeedsReconnect,
                Need::NotNeeded(_) => false,
            };
            if blocked {
                unusable.push(status);
            }
        }
        Ok(unusable)
    }

    /// The owner's account for a step of `channel`: refreshed first when its token (Naver's)
    /// expired, refused when the owner must connect.
    pub async fn for_step(&self, owner_id: &str, channel: Channel) -> StepAccess {
        let required = match self.need(channel) {
            Need::NotNeeded(_) => return StepAccess::Without,
            Need::Required(_) => true,
            Need::Optional(_) => false,
        };
        let stored = match self.store.get(owner_id, channel).await {
            Ok(stored) => stored,
            Err(error) => return StepAccess::Later(storage_failure(&error)),
        };
        let Some(stored) = stored else {
            return if required { StepAccess::Refused(not_connected(channel)) } else { StepAccess::Without };
        };
        if stored.view.state == StoredState::NeedsReconnect {
            return StepAccess::Refused(needs_reconnect(channel, &stored.view.note));
        }
        if channel == Channel::KakaoChannel {
            // No token: the channel id is the sender.
            return StepAccess::Account(ConnectedAccount {
                channel,
                account_id: stored.view.account_id.clone(),
                access_token: kem_kit::Secret::new(String::new()),
                naver_cafe: None,
                access_sealed: stored.access_sealed,
            });
        }
        let now = self.clock.now_ms();
        let expiring = stored.view.expires_at.is_some_and(|at| at <= now.saturating_add(EXPIRY_MARGIN_MS));
        let stored = if expiring {
            match self.refresh_inline(&stored, now).await {
                Ok(refreshed) => refreshed,
                Err(access) => return access,
            }
        } else {
            stored
        };
        match self.store.tokens(&stored) {
            Ok(tokens) => StepAccess::Account(ConnectedAccount {
                channel,
                account_id: stored.view.account_id.clone(),
                access_token: tokens.access,
                naver_cafe: stored.view.naver_cafe.clone(),
                access_sealed: stored.access_sealed,
            }),
            Err(error) => {
                tracing::error!(%error, "a stored token cannot be opened");
                let note = "the stored token cannot be read (the key changed)";
                self.mark(&stored, note, now).await;
                StepAccess::Refused(needs_reconnect(channel, note))
            }
        }
    }

    /// A step found its token expired (or about to): Naver's is refreshed now, under the
    /// connection's lease; Instagram's cannot be once expired.
    async fn refresh_inline(&self, stored: &StoredConnection, now: i64) -> Result<StoredConnection, StepAccess> {
        let channel = stored.view.channel;
        let lease = format!("{:032x}", rand::random::<u128>());
        let held = self
            .store
            .lease(&stored.owner_id, channel, now, now.saturating_add(REFRESH_LEASE_MS), &lease, false)
            .await
            .map_err(|e| StepAccess::Later(storage_failure(&e)))?;
        let Some(held) = held else {
            // Someone else refreshes it right now: the step comes back shortly.
            return Err(StepAccess::Later(Failure::new(
                ErrorReason::ProviderUnavailable,
                format!("the {} token is being refreshed", channel_name(channel)),
                true,
            )));
        };
        match self.refresh_held(&held, &lease, now).await {
            Refreshed::Done => match self.store.get(&held.owner_id, channel).await {
                Ok(Some(fresh)) => Ok(fresh),
                Ok(None) => Err(StepAccess::Refused(not_connected(channel))),
                Err(e) => Err(StepAccess::Later(storage_failure(&e))),
            },
            Refreshed::Reconnect(note) => Err(StepAccess::Refused(needs_reconnect(channel, &note))),
            Refreshed::Later(detail) => {
                let expired = held.view.expires_at.is_some_and(|at| at <= now);
                let failure = Failure::new(
                    ErrorReason::ProviderUnavailable,
                    format!("the {} token could not be refreshed: {detail}", channel_name(channel)),
                    true,
                );
                if expired { Err(StepAccess::Later(failure)) } else { Ok(held) }
            }
        }
    }

    async fn mark(&self, stored: &StoredConnection, note: &str, now: i64) {
        let channel = stored.view.channel;
        match self.store.mark_needs_reconnect(&stored.owner_id, channel, &stored.access_sealed, note, now).await {
            Ok(true) => tracing::warn!(owner_id = %stored.owner_id, %channel, note, "connection needs reconnecting"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "cannot record that a connection needs reconnecting"),
        }
    }

    /// A step's provider refused `account`'s token before it expired: for a KT partner store
    /// (rotating refresh tokens) the grant is refreshed once, under the connection's lease, and
    /// the fresh account is returned for one more try. [`Renewal::Later`] when the refresh could
    /// not be made now (the partner or the database failing, or another replica refreshing it):
    /// the step comes back instead of the connection being given up. [`Renewal::Refused`] when a
    /// refresh cannot help (another provider, no usable connection, the grant refused — the
    /// connection then needs reconnecting).
    pub async fn renew_refused(&self, owner_id: &str, account: &ConnectedAccount) -> Renewal {
        let channel = account.channel;
        if !matches!(LoginProvider::of(channel), Some(LoginProvider::Partner(_)))
            || !self.logins.partners.contains_key(&channel)
        {
            return Renewal::Refused;
        }
        let later = |detail: String| {
            Renewal::Later(Failure::new(
                ErrorReason::ProviderUnavailable,
                format!("the {} token was refused and could not be refreshed yet: {detail}", channel_name(channel)),
                true,
            ))
        };
        let now = self.clock.now_ms();
        let lease = format!("{:032x}", rand::random::<u128>());
        let held =
            match self.store.lease(owner_id, channel, now, now.saturating_add(REFRESH_LEASE_MS), &lease, false).await {
                Ok(Some(held)) => held,
                Ok(None) => {
                    return match self.store.get(owner_id, channel).await {
                        Ok(Some(row)) if row.view.state == StoredState::Active => {
                            later("it is being refreshed".to_owned())
                        }
                        Ok(_) => Renewal::Refused,
                        Err(error) => later(error.to_string()),
                    };
                }
                Err(error) => return later(error.to_string()),
            };
        if held.access_sealed != account.access_sealed {
            // Replaced meanwhile (a refresh or a reconnect): try with the token stored now.
            if let Err(error) = self.store.release(&held, &lease).await {
                tracing::warn!(%error, "cannot release a connection");
            }
        } else {
            match self.refresh_held(&held, &lease, now).await {
                Refreshed::Done => {}
                Refreshed::Reconnect(_) => return Renewal::Refused,
                Refreshed::Later(detail) => return later(detail),
            }
        }
        match self.for_step(owner_id, channel).await {
            StepAccess::Account(fresh) if fresh.access_sealed != account.access_sealed => Renewal::Fresh(fresh),
            StepAccess::Later(failure) => Renewal::Later(failure),
            _ => Renewal::Refused,
        }
    }

    /// A step's provider refused the owner's token (`detail` says how): the connection needs
    /// reconnecting, unless its token was replaced meanwhile.
    pub async fn token_refused(&self, owner_id: &str, account: &ConnectedAccount, detail: &str) {
        let note = format!(
            "{} refused the token ({}): it expired or access was removed; connect again",
            channel_name(account.channel),
            excerpt(detail)
        );
        let now = self.clock.now_ms();
        match self.store.mark_needs_reconnect(owner_id, account.channel, &account.access_sealed, &note, now).await {
            Ok(true) => tracing::warn!(owner_id, channel = %account.channel, "connection needs reconnecting"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "cannot record that a connection needs reconnecting"),
        }
    }

    /// One round of the refresh job: every ACTIVE connection whose refresh is due, each held
    /// by this replica while it is refreshed. How many were refreshed.
    pub async fn refresh_due(&self) -> usize {
        let now = self.clock.now_ms();
        let lease = format!("{:032x}", rand::random::<u128>());
        let due = match self
            .store
            .claim_refresh_due(now, now.saturating_add(REFRESH_LEASE_MS), &lease, REFRESH_BATCH)
            .await
        {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "cannot look for tokens to refresh; trying again next round");
                return 0;
            }
        };
        let mut refreshed = 0;
        for connection in due {
            if self.refresh_held(&connection, &lease, now).await == Refreshed::Done {
                refreshed += 1;
            }
        }
        refreshed
    }

    /// Refreshes `held` (held under `lease`) and records what came of it.
    async fn refresh_held(&self, held: &StoredConnection, lease: &str, now: i64) -> Refreshed {
        let channel = held.view.channel;
        let Some(provider) = LoginProvider::of(channel) else {
            return Refreshed::Later("no login provider".into());
        };
        if provider == LoginProvider::Kakao {
            return self.recheck_kakao(held, lease, now).await;
        }
        let tokens = match self.store.tokens(held) {
            Ok(tokens) => tokens,
            Err(error) => {
                tracing::error!(%error, "a stored token cannot be opened for its refresh");
                let note = "the stored token cannot be read (the key changed)".to_owned();
                self.mark(held, &note, now).await;
                return Refreshed::Reconnect(note);
            }
        };
        let expired = held.view.expires_at.is_some_and(|at| at <= now);
        let result: Result<Tokens, LoginError> = match provider {
            LoginProvider::Instagram => match &self.logins.instagram {
                _ if expired => {
                    let note = "the access token expired before it could be refreshed".to_owned();
                    self.mark(held, &note, now).await;
                    return Refreshed::Reconnect(note);
                }
                Some(login) => login.refresh(&tokens.access, now).await,
                None => return self.leave(held, lease, "Instagram Login is not configured").await,
            },
            LoginProvider::Naver => match (&self.logins.naver, &tokens.refresh) {
                (Some(login), Some(refresh)) => login.refresh(refresh, now).await,
                (Some(_), None) => {
                    let note = "no refresh token is stored".to_owned();
                    self.mark(held, &note, now).await;
                    return Refreshed::Reconnect(note);
                }
                (None, _) => return self.leave(held, lease, "Naver Login is not configured").await,
            },
            LoginProvider::Partner(c) => match (self.logins.partners.get(&c), &tokens.refresh) {
                (Some(login), Some(refresh)) => login.refresh(refresh, now).await,
                (Some(_), None) => {
                    let note = "no refresh token is stored".to_owned();
                    self.mark(held, &note, now).await;
                    return Refreshed::Reconnect(note);
                }
                (None, _) => return self.leave(held, lease, "the partner is not configured").await,
            },
            LoginProvider::Kakao => return Refreshed::Later("Kakao has no token".into()),
        };
        match result {
            Ok(fresh) => {
                let refresh_at = refresh_due(provider, fresh.issued_at, fresh.expires_at);
                match self.store.refreshed(held, lease, &fresh, refresh_at, now).await {
                    Ok(true) => {
                        tracing::info!(owner_id = %held.owner_id, %channel, "connection token refreshed");
                        Refreshed::Done
                    }
                    Ok(false) => Refreshed::Later("the hold was lost while refreshing".into()),
                    Err(error) => {
                        tracing::warn!(%error, "cannot record a refreshed token");
                        Refreshed::Later(error.to_string())
                    }
                }
            }
            Err(LoginError::Refused { detail, .. }) => {
                let note = format!("{} refused the token refresh: {}", provider.display(), excerpt(&detail));
                self.mark(held, &note, now).await;
                Refreshed::Reconnect(note)
            }
            Err(error) => {
                let retry_at = refresh_retry_at(now, held.refresh_failures.saturating_add(1), held.view.expires_at);
                tracing::warn!(owner_id = %held.owner_id, %channel, %error, retry_at, "token refresh failed; trying again later");
                if let Err(e) = self.store.refresh_failed(held, lease, retry_at, now).await {
                    tracing::warn!(error = %e, "cannot record a failed refresh");
                }
                Refreshed::Later(error.to_string())
            }
        }
    }

    /// Re-checks the Kakao channel of `held` (held under `lease`) against the SENS channel list.
    async fn recheck_kakao(&self, held: &StoredConnection, lease: &str, now: i64) -> Refreshed {
        let Some(senders) = &self.logins.kakao else {
            return self.leave(held, lease, "Kakao is not on SENS").await;
        };
        let channel_id = held.view.account_id.as_str();
        match senders.list().await {
            Ok(list) => match list.into_iter().find(|c| same_channel(&c.channel_id, channel_id)) {
                Some(sender) if sender.usable() => {
                    let next = refresh_due(LoginProvider::Kakao, now, None).unwrap_or(now);
                    match self.store.kakao_rechecked(held, lease, &sender.name, next, now).await {
                        Ok(true) => Refreshed::Done,
                        Ok(false) => Refreshed::Later("the hold was lost while re-checking".into()),
                        Err(error) => {
                            tracing::warn!(%error, "cannot record a Kakao channel re-check");
                            Refreshed::Later(error.to_string())
                        }
                    }
                }
                found => {
                    let why = match found {
                        Some(sender) => sender.problem(),
                        None => format!("{channel_id} is no longer a sender profile at the dealer (SENS)"),
                    };
                    let note = format!("{why}; {KAKAO_REGISTRATION_HELP}");
                    self.mark(held, &note, now).await;
                    Refreshed::Reconnect(note)
                }
            },
            Err(error) => {
                let retry_at = refresh_retry_at(now, held.refresh_failures.saturating_add(1), None);
                tracing::warn!(owner_id = %held.owner_id, %error, retry_at, "Kakao channel re-check failed; trying again later");
                if let Err(e) = self.store.refresh_failed(held, lease, retry_at, now).await {
                    tracing::warn!(error = %e, "cannot record a failed re-check");
                }
                Refreshed::Later(error.to_string())
            }
        }
    }

    async fn leave(&self, held: &StoredConnection, lease: &str, why: &str) -> Refreshed {
        if let Err(error) = self.store.release(held, lease).await {
            tracing::warn!(%error, "cannot release a connection");
        }
        Refreshed::Later(why.to_owned())
    }

    /// Deletes attempts that expired a day ago or more.
    pub async fn purge_attempts(&self) {
        let before = self.clock.now_ms().saturating_sub(86_400_000);
        match self.store.purge_attempts(before).await {
            Ok(0) => {}
            Ok(purged) => tracing::debug!(purged, "expired connection attempts purged"),
            Err(error) => tracing::warn!(%error, "cannot purge expired connection attempts"),
        }
    }
}

/// What [`Connections::renew_refused`] came to.
#[derive(Debug)]
pub enum Renewal {
    /// A refreshed account: try the step once more with it.
    Fresh(ConnectedAccount),
    /// Not now: the step comes back later (the connection is kept).
    Later(Failure),
    /// A refresh cannot help: the refusal stands.
    Refused,
}

#[derive(Debug, PartialEq, Eq)]
enum Refreshed {
    Done,
    Reconnect(String),
    Later(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hash_of_a_state_is_kept() {
        let hash = state_hash("abc");
        assert_eq!(hash, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_ne!(state_hash("abd"), hash);
    }
}
