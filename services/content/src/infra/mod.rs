//! Adapters of the ports to the platform kit and the outside world: the SQL repository with the
//! inbox, the render cache, the blob stores (local directory, Azure Blob Storage), the image
//! providers (Stability AI, the local PNG renderer), PNG processing, the job reporter (event
//! service over the mesh), the `content-generation` consumer, the clock and the maintenance task.

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

use crate::app::ports::Clock;
use crate::domain::values::Millis;

/// The system's real time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        kem_kit::store::millis(std::time::SystemTime::now())
    }
}
