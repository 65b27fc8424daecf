//! The adapters the use cases run on, built on the platform kit and the outside world: the SQL
//! repository with the inbox, the render cache, the blob stores (local directory, Azure Blob
//! Storage), the image providers (Stability AI, the local PNG renderer), PNG processing, the
//! event service over the mesh (job reports, publications), the `content-generation` consumer and
//! the maintenance task. Only the blob stores and the image providers implement ports (two real
//! implementations each); the rest are used as concrete types.

pub mod blob;
pub mod consumer;
pub mod events;
pub mod imaging;
pub mod local;
pub mod maintenance;
pub mod partner_qr;
pub mod renders;
pub mod repository;
pub mod stability;
pub mod telemetry;

pub use events::MeshEvents;
pub use imaging::PngImaging;
pub use local::LocalGenerator;
pub use renders::CachedRenders;
pub use repository::SqlImageRepository;
pub use stability::StabilityClient;
