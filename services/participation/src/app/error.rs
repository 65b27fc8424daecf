//! What a participation use case can fail with. The gRPC adapter turns each variant into a gRPC
//! status with `google.rpc` details (`api::status`).

use std::sync::Arc;

use crate::domain::event::{Closed, EventStatus};
use crate::domain::export::RevealRefusal;
use crate::domain::violation::{FieldViolation, Violations};
use crate::infra::events::LookupError;
use crate::infra::pii::PiiError;
use crate::infra::repository::RepositoryError;

/// What an internal error came from, shared so that a use-case error stays cloneable.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// A failed use case.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ParticipationError {
    /// Request fields are invalid (BadRequest).
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Violations),
    /// No such event, or another owner's.
    #[error("event not found")]
    EventNotFound,
    /// Entries are not accepted now.
    #[error("the event does not accept entries now ({})", .0.code())]
    EventNotOpen(Closed),
    /// Entries were closed because winners were drawn.
    #[error("entries are closed: winners were drawn")]
    EntriesClosed,
    /// A first-come event has all its entries.
    #[error("the event already has its {capacity} entries")]
    EventFull {
        /// The capacity (prize winner count).
        capacity: u32,
    },
    /// This phone already entered the event.
    #[error("this phone number already entered the event")]
    DuplicateEntry,
    /// Winners can only be drawn for an ENDED event.
    #[error("the event is {} and not ended", .0.contract_name())]
    EventNotEnded(EventStatus),
    /// Nothing to draw from.
    #[error("the event has no eligible entries")]
    NoEntries,
    /// Winners were drawn already and redraw was not asked for.
    #[error("winners were already drawn (draw {draw_id})")]
    AlreadyDrawn {
        /// The current draw.
        draw_id: String,
    },
    /// WithdrawEntry once winners were drawn.
    #[error("winners were drawn: the entry can no longer be withdrawn")]
    WithdrawAfterDraw,
    /// ClaimPrize: no current winner of the event has this phone and code (whatever was wrong).
    #[error("no winner of the event has this phone and claim code")]
    ClaimNotFound,
    /// ClaimPrize after the deadline.
    #[error("the claim deadline passed")]
    ClaimExpired {
        /// The deadline (epoch ms).
        deadline_ms: i64,
    },
    /// ClaimPrize of a prize RedrawUnclaimed gave to someone else.
    #[error("the prize went to another participant")]
    PrizeRedrawn,
    /// Too many wrong codes (claim codes per phone and hour, or a one-time code's attempts).
    #[error("too many wrong codes; retry after {retry_after:?}")]
    TooManyAttempts {
        /// When trying again can help.
        retry_after: std::time::Duration,
    },
    /// RedrawUnclaimed before any draw.
    #[error("no winners were drawn yet")]
    NotDrawn,
    /// RedrawUnclaimed while a claim deadline has not passed.
    #[error("a claim deadline has not passed yet")]
    ClaimPeriodOpen {
        /// The latest open deadline (epoch ms).
        deadline_ms: i64,
    },
    /// RedrawUnclaimed when every prize was claimed.
    #[error("every prize was claimed")]
    NothingToRedraw,
    /// SendParticipantCode for ENTRY on an event that does not verify phones.
    #[error("the event does not verify phones")]
    VerificationNotRequired,
    /// SendParticipantCode too soon after the last code, or too often in a day.
    #[error("codes are sent at most once a minute and five times a day; retry after {retry_after:?}")]
    CodeRateLimited {
        /// When another code may be asked for.
        retry_after: std::time::Duration,
    },
    /// Enter without the one-time code the event's entry rules require.
    #[error("the event verifies phones: a one-time code is required")]
    VerificationRequired,
    /// Enter with a wrong or expired one-time code.
    #[error("the one-time code is wrong or expired")]
    VerificationFailed,
    /// LookupEntry / WithdrawEntry: nothing matches (the same for a wrong code and a phone that
    /// never entered).
    #[error("no entry matches")]
    EntryNotFound,
    /// The SMS provider could not take a one-time code now (nothing was sent).
    #[error("the SMS provider is unavailable")]
    SmsUnavailable(#[source] crate::infra::sms::SmsError),
    /// The event is still PUBLISHED (anonymization).
    #[error("the event is still published")]
    EventActive,
    /// The owner blocked this phone from the event (Enter).
    #[error("this phone number is blocked from the event")]
    PhoneBlocked,
    /// The client address already made the event's most entries per address (Enter).
    #[error("this address already made the event's {max} entries per address")]
    AddressLimit {
        /// The event's entry_rules.max_entries_per_address.
        max: u32,
    },
    /// An export asked for full names and phones where they may not be shown.
    #[error("full names and phones cannot be exported here ({})", .0.code())]
    RevealNotAllowed(RevealRefusal),
    /// The event's personal data was anonymized: nothing left to export or block.
    #[error("the event's personal data was erased")]
    DataErased,
    /// BlockParticipant named an entry the event does not have.
    #[error("the event has no such entry")]
    BlockEntryNotFound,
    /// UnblockParticipant named a block the event does not have.
    #[error("the event has no such block")]
    BlockNotFound,
    /// The event service cannot be reached (or answered with a transient error).
    #[error("event service unavailable")]
    EventServiceUnavailable(#[source] LookupError),
    /// The event service refused us or failed: a defect or a deployment problem (INTERNAL, never
    /// UNAVAILABLE).
    #[error("event lookup failed")]
    EventLookupFailed(#[source] LookupError),
    /// A dependency (the database) failed in a way that may pass.
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[source] Arc<RepositoryError>),
    /// A defect, a broken invariant or a deployment problem.
    #[error("internal error: {0}")]
    Internal(#[source] Cause),
}

fn describe(violations: &Violations) -> String {
    violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ")
}

impl ParticipationError {
    /// A defect, a broken invariant or a deployment problem caused by `cause` (an error, or a
    /// message).
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> ParticipationError {
        ParticipationError::Internal(Arc::from(cause.into()))
    }

    /// One field violation.
    pub fn field(field: &str, description: impl Into<String>) -> ParticipationError {
        ParticipationError::InvalidArgument(FieldViolation::new(field, description).into())
    }
}

impl From<Violations> for ParticipationError {
    fn from(violations: Violations) -> Self {
        ParticipationError::InvalidArgument(violations)
    }
}

impl From<RepositoryError> for ParticipationError {
    fn from(error: RepositoryError) -> Self {
        if error.is_transient() {
            ParticipationError::Unavailable(Arc::new(error))
        } else {
            ParticipationError::internal(error)
        }
    }
}

impl From<LookupError> for ParticipationError {
    /// Faithful to what the event service said: its client errors stay the caller's.
    fn from(error: LookupError) -> Self {
        match error {
            LookupError::Unavailable(_) => ParticipationError::EventServiceUnavailable(error),
            LookupError::InvalidId(_) => ParticipationError::field("eventId", "is not a valid event id"),
            LookupError::Failed(_) => ParticipationError::EventLookupFailed(error),
        }
    }
}

impl From<PiiError> for ParticipationError {
    fn from(error: PiiError) -> Self {
        ParticipationError::internal(error)
    }
}
