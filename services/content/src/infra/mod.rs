//! The adapters the use cases run on, built on the platform kit and the outside world: the SQL
//! repository with the inbox, the render cache, the blob stores (local directory, Azure Blob
//! Storage), the image providers (Stability AI, the local PNG renderer), PNG processing, the job
//! reporter (event service over the mesh), the `content-generation` consumer and the maintenance
//! task. Only the blob stores and the image providers implement ports (two real implementations
//! each); the rest are used as concrete types.

pub mod blob;
pub mod consumer;
pub mod imaging;
pub mod local;
pub mod maintenance;
pub mod renders;
pub mod reporter;
pub mod repository;
pub mod stability;
pub mod telemetry;

pub use imaging::PngImaging;
pub use local::LocalGenerator;
pub use renders::CachedRenders;
pub use reporter::MeshJobReporter;
pub use repository::SqlImageRepository;
pub use stability::StabilityClient;
