//! The blob store adapters: a local directory (`kem up`) and Azure Blob Storage (production).

pub mod azure;
pub mod local;
pub mod shared_key;

pub use azure::{AzureBlobConfig, AzureBlobConfigError, AzureBlobStore};
pub use local::LocalBlobStore;
