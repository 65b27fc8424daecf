//! A delivery of one event to one channel: its state machine, its error, and the event-wide
//! state derived from all of an event's deliveries.

use serde::{Deserialize, Serialize};

use super::channel::Channel;

/// Where a delivery stands. The names are the stored values and the `DeliveryState` enum
/// values of the contract without their prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Queued for an attempt (first or after a retryable failure) at `next_attempt_at`.
    Pending,
    /// An attempt is running, or a provider-side job (container, partner review) is being polled.
    Sending,
    /// Live on the channel. Terminal: never sent again.
    Published,
    /// Failed for good or after its attempts; only `Retry` re-queues it.
    Failed,
    /// Waiting for the provider's quota or rate-limit window; tried again at `next_attempt_at`.
    QueuedRateLimited,
    /// A ready-to-post article waits for the owner (Naver Blog has no write API).
    AwaitingOwner,
}

impl DeliveryState {
    /// Every state.
    pub const ALL: [DeliveryState; 6] = [
        DeliveryState::Pending,
        DeliveryState::Sending,
        DeliveryState::Published,
        DeliveryState::Failed,
        DeliveryState::QueuedRateLimited,
        DeliveryState::AwaitingOwner,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "PENDING",
            DeliveryState::Sending => "SENDING",
            DeliveryState::Published => "PUBLISHED",
            DeliveryState::Failed => "FAILED",
            DeliveryState::QueuedRateLimited => "QUEUED_RATE_LIMITED",
            DeliveryState::AwaitingOwner => "AWAITING_OWNER",
        }
    }

    /// Reads a stored name.
    pub fn parse(name: &str) -> Option<DeliveryState> {
        DeliveryState::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether work remains for the service (an attempt or a poll will run).
    pub fn in_progress(self) -> bool {
        matches!(self, DeliveryState::Pending | DeliveryState::Sending | DeliveryState::QueuedRateLimited)
    }
}

/// Machine-readable reasons of a [`DeliveryError`] (the contract's `DeliveryError.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorReason {
    /// The token expired or was revoked: the account must be reconnected.
    AuthRequired,
    /// The account lacks a permission the call needs.
    PermissionDenied,
    /// The provider refused the input (e.g. it could not fetch the media).
    InvalidContent,
    /// The provider's review or moderation refused the content.
    ContentRejected,
    /// The provider throttles us.
    RateLimited,
    /// A provider quota (Instagram 24 h publishing limit, Kakao daily limit) is used up.
    QuotaExceeded,
    /// 5xx, timeout, or the provider's circuit breaker is open.
    ProviderUnavailable,
    /// No account or credentials (or owner data) for the channel.
    NotConfigured,
    /// The event's period is over: nothing is delivered any more.
    EventEnded,
    /// A defect on our side or a provider answer outside its contract.
    Internal,
}

impl ErrorReason {
    /// Every reason.
    pub const ALL: [ErrorReason; 10] = [
        ErrorReason::AuthRequired,
        ErrorReason::PermissionDenied,
        ErrorReason::InvalidContent,
        ErrorReason::ContentRejected,
        ErrorReason::RateLimited,
        ErrorReason::QuotaExceeded,
        ErrorReason::ProviderUnavailable,
        ErrorReason::NotConfigured,
        ErrorReason::EventEnded,
        ErrorReason::Internal,
    ];

    /// The UPPER_SNAKE name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::AuthRequired => "AUTH_REQUIRED",
            ErrorReason::PermissionDenied => "PERMISSION_DENIED",
            ErrorReason::InvalidContent => "INVALID_CONTENT",
            ErrorReason::ContentRejected => "CONTENT_REJECTED",
            ErrorReason::RateLimited => "RATE_LIMITED",
            ErrorReason::QuotaExceeded => "QUOTA_EXCEEDED",
            ErrorReason::ProviderUnavailable => "PROVIDER_UNAVAILABLE",
            ErrorReason::NotConfigured => "NOT_CONFIGURED",
            ErrorReason::EventEnded => "EVENT_ENDED",
            ErrorReason::Internal => "INTERNAL",
        }
    }

    /// Reads a stored name (unknown names read as [`ErrorReason::Internal`]).
    pub fn parse(name: &str) -> ErrorReason {
        ErrorReason::ALL.into_iter().find(|r| r.as_str() == name).unwrap_or(ErrorReason::Internal)
    }
}

/// Why an attempt failed (or was deferred).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The reason.
    pub reason: ErrorReason,
    /// Human-readable description (may quote the provider).
    pub message: String,
    /// Whether another attempt may succeed without changes (a manual `Retry` makes sense).
    pub retryable: bool,
    /// The provider's own error code as received (`190/460`, `-532`, `creative_rejected`).
    pub provider_code: String,
}

impl Failure {
    /// A failure with no provider code.
    pub fn new(reason: ErrorReason, message: impl Into<String>, retryable: bool) -> Failure {
        Failure { reason, message: message.into(), retryable, provider_code: String::new() }
    }

    /// The same failure with the provider's code.
    pub fn with_code(mut self, code: impl Into<String>) -> Failure {
        self.provider_code = code.into();
        self
    }
}

/// The error of the latest failed attempt, as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// What failed.
    pub failure: Failure,
    /// When (ms since the epoch).
    pub at_ms: i64,
}

/// A ready-to-post article for owner-assisted publishing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ManualPost {
    /// Article title.
    pub title: String,
    /// Body as HTML.
    pub html_body: String,
    /// Images to attach, in order.
    pub image_uris: Vec<String>,
    /// Deep link opening the editor.
    pub editor_url: String,
}

/// What kind of source a provider is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceKind {
    /// A real external provider.
    #[default]
    External,
    /// A built-in local provider (deterministic demo data, nothing really published).
    Local,
    /// No provider is involved (owner-assisted publishing).
    None,
}

impl SourceKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::External => "external",
            SourceKind::Local => "local",
            SourceKind::None => "none",
        }
    }

    /// Reads a stored name (unknown names read as external).
    pub fn parse(name: &str) -> SourceKind {
        match name {
            "local" => SourceKind::Local,
            "none" => SourceKind::None,
            _ => SourceKind::External,
        }
    }
}

/// Which provider handles (or handled) a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderLabel {
    /// Stable lower-kebab-case name (`instagram-graph`, `kakao-sens`, `kt-partner`, …); a local
    /// stand-in is `local:<name>`.
    pub name: String,
    /// Real, local, or none.
    pub kind: SourceKind,
    /// Provider API version when meaningful (`v21.0`), else empty.
    pub model: String,
}

impl ProviderLabel {
    /// The real provider `name`.
    pub fn external(name: &str, model: &str) -> ProviderLabel {
        ProviderLabel { name: name.to_owned(), kind: SourceKind::External, model: model.to_owned() }
    }

    /// The built-in stand-in for `name`, labelled `local:<name>`.
    pub fn local(name: &str) -> ProviderLabel {
        ProviderLabel { name: format!("local:{name}"), kind: SourceKind::Local, model: String::new() }
    }

    /// No provider is involved (owner-assisted publishing).
    pub fn none(name: &str) -> ProviderLabel {
        ProviderLabel { name: name.to_owned(), kind: SourceKind::None, model: String::new() }
    }
}

/// One delivery row.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The event.
    pub event_id: String,
    /// The channel.
    pub channel: Channel,
    /// The event's owner (deliveries are only shown to them).
    pub owner_id: String,
    /// Current state.
    pub state: DeliveryState,
    /// Attempts made (reset by `Retry`).
    pub attempts: i32,
    /// Bumped by every `Retry`: part of provider idempotency keys, so a re-queued delivery is a
    /// new request while automatic retries of one attempt replay the same one.
    pub generation: i32,
    /// Outcomes reported to analytics so far (the sequence of their message ids).
    pub outcome_seq: i32,
    /// Consecutive failed polls of a provider-side job.
    pub poll_errors: i32,
    /// When the next attempt or poll is due (ms); `None` when nothing is scheduled.
    pub next_attempt_at: Option<i64>,
    /// Until when a worker holds the delivery (ms); `None` when free.
    pub lease_until: Option<i64>,
    /// Provider-side handle of work in progress (Instagram container id, partner job id).
    pub work_ref: Option<String>,
    /// Provider id of the published item or job (empty until known).
    pub external_id: String,
    /// Public URL of the published item (empty when none).
    pub permalink: String,
    /// The provider's own status word (`IN_REVIEW`, `IN_PROGRESS`, …).
    pub provider_status: String,
    /// Who handles it.
    pub provider: ProviderLabel,
    /// Error of the latest failed attempt.
    pub last_error: Option<DeliveryError>,
    /// The ready-to-post article of an AWAITING_OWNER delivery.
    pub manual_post: Option<ManualPost>,
    /// People reached, when the channel reported it.
    pub reach: Option<i64>,
    /// Views, when the channel reported them.
    pub views: Option<i64>,
    /// When it became PUBLISHED (ms).
    pub published_at: Option<i64>,
    /// When the row was created (ms).
    pub created_at: i64,
    /// When it last changed (ms).
    pub updated_at: i64,
}

impl Delivery {
    /// A new PENDING delivery, due at once.
    pub fn new(event_id: &str, channel: Channel, owner_id: &str, provider: ProviderLabel, now_ms: i64) -> Delivery {
        Delivery {
            event_id: event_id.to_owned(),
            channel,
            owner_id: owner_id.to_owned(),
            state: DeliveryState::Pending,
            attempts: 0,
            generation: 0,
            outcome_seq: 0,
            poll_errors: 0,
            next_attempt_at: Some(now_ms),
            lease_until: None,
            work_ref: None,
            external_id: String::new(),
            permalink: String::new(),
            provider_status: String::new(),
            provider,
            last_error: None,
            manual_post: None,
            reach: None,
            views: None,
            published_at: None,
            created_at: now_ms,
            updated_at: now_ms,
        }
    }

    /// When the next automatic attempt or poll is scheduled as the owner should see it: nothing
    /// while a worker holds the delivery (its lease is an internal recovery deadline).
    pub fn visible_next_attempt(&self, now_ms: i64) -> Option<i64> {
        if self.lease_until.is_some_and(|until| until > now_ms) {
            return None;
        }
        self.next_attempt_at.filter(|_| self.state.in_progress())
    }
}

/// The state of an event's distribution as a whole (the contract's `DistributionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverallState {
    /// Some channel is PENDING, SENDING or QUEUED_RATE_LIMITED.
    InProgress,
    /// Every channel is PUBLISHED or AWAITING_OWNER.
    Completed,
    /// Nothing in progress; some channels failed, others did not.
    PartiallyFailed,
    /// Nothing in progress and every channel failed.
    Failed,
}

/// The overall state of `states` (`None` for no deliveries at all).
pub fn overall_state(states: impl IntoIterator<Item = DeliveryState>) -> Option<OverallState> {
    let (mut any, mut in_progress, mut failed, mut done) = (false, false, 0usize, 0usize);
    for state in states {
        any = true;
        match state {
            DeliveryState::Pending | DeliveryState::Sending | DeliveryState::QueuedRateLimited => in_progress = true,
            DeliveryState::Failed => failed += 1,
            DeliveryState::Published | DeliveryState::AwaitingOwner => done += 1,
        }
    }
    if !any {
        return None;
    }
    Some(if in_progress {
        OverallState::InProgress
    } else if failed == 0 {
        OverallState::Completed
    } else if done == 0 {
        OverallState::Failed
    } else {
        OverallState::PartiallyFailed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_reasons_round_trip() {
        for state in DeliveryState::ALL {
            assert_eq!(DeliveryState::parse(state.as_str()), Some(state));
        }
        for reason in ErrorReason::ALL {
            assert_eq!(ErrorReason::parse(reason.as_str()), reason);
        }
        assert_eq!(ErrorReason::parse("SOMETHING_NEW"), ErrorReason::Internal);
    }

    #[test]
    fn the_state_names_are_the_published_enum_values() {
        let pool = kem_proto::descriptor_pool();
        let states = pool.get_enum_by_name("kem.distribution.v1.DeliveryState").expect("enum");
        for state in DeliveryState::ALL {
            assert!(states.get_value_by_name(&format!("DELIVERY_STATE_{}", state.as_str())).is_some(), "{state:?}");
        }
    }

    #[test]
    fn overall_state_follows_the_contract() {
        use DeliveryState::*;
        assert_eq!(overall_state([]), None);
        assert_eq!(overall_state([Published, Pending]), Some(OverallState::InProgress));
        assert_eq!(overall_state([Failed, QueuedRateLimited]), Some(OverallState::InProgress));
        assert_eq!(overall_state([Published, AwaitingOwner]), Some(OverallState::Completed));
        assert_eq!(overall_state([Published, Failed]), Some(OverallState::PartiallyFailed));
        assert_eq!(overall_state([AwaitingOwner, Failed]), Some(OverallState::PartiallyFailed));
        assert_eq!(overall_state([Failed, Failed]), Some(OverallState::Failed));
    }

    #[test]
    fn a_held_delivery_shows_no_next_attempt() {
        let mut d = Delivery::new("e", Channel::Instagram, "o", ProviderLabel::local("instagram-graph"), 100);
        assert_eq!(d.visible_next_attempt(100), Some(100));
        d.lease_until = Some(500);
        assert_eq!(d.visible_next_attempt(200), None);
        assert_eq!(d.visible_next_attempt(600), Some(100), "an expired lease is due for recovery");
        d.state = DeliveryState::Published;
        assert_eq!(d.visible_next_attempt(600), None);
    }
}
