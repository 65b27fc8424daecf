//! The rules of distribution, pure and free of I/O: channels (the kit's vocabulary), the
//! delivery state machine and its transitions, job validation, deterministic keys, and
//! per-channel text shaping.

pub mod channel;
pub mod connection;
pub mod delivery;
pub mod job;
pub mod keys;
pub mod step;
pub mod text;

pub use channel::Channel;
pub use connection::{ConnectionState, ConnectionView, LoginProvider, NaverCafe, StoredState, kakao_channel_id};
pub use delivery::{
    Delivery, DeliveryError, DeliveryState, ErrorReason, Failure, ManualPost, OverallState, ProviderLabel, SourceKind,
    overall_state,
};
pub use job::{Copy, JobError, JobSpec, PrizeSpec, checked_entry_url};
pub use step::{Applied, OutcomeFact, RetryPolicy, StepOutcome, apply};
