//! Adapters to the outside world, on the platform kit: the SQL repository with its transactional
//! outbox and per-event entry gate, the event facts from the event service over the mesh,
//! AES-256-GCM protection of personal data with its key loading, and the `analytics-aggregation`
//! facts.

pub mod events;
pub mod messages;
pub mod notifier;
pub mod pii;
pub mod repository;
pub mod sms;

pub use events::{LookupError, MeshEvents, PeerFailure};
pub use pii::keys::{KeySource, PiiKeyError, PiiKeys};
pub use pii::{PiiError, PiiField};
pub use repository::{Repository, RepositoryError};
