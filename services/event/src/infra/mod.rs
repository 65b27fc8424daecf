//! Adapters of the ports to the platform kit: the SQL repository with its transactional outbox,
//! the event cache, the queue-message encoder, store profiles from the user service, the
//! participation service's entry gate and the job-timeout sweeper.

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
