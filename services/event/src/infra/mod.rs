//! The adapters the use cases run on, built on the platform kit: the SQL repository with its
//! transactional outbox, the event cache, the queue-message encoder, store profiles from the user
//! service, the participation service's entry gate and the job-timeout sweeper. Each has one
//! implementation, so the use cases hold them as concrete types (no port traits).

pub mod cache;
pub mod messages;
pub mod participation;
pub mod repository;
pub mod stores;
pub mod sweeper;

pub use cache::CachedEvents;
pub use participation::MeshEntryGate;
pub use repository::SqlEventRepository;
pub use stores::MeshStoreDirectory;
