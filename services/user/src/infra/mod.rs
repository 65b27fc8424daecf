//! Adapters to the outside world, on the platform kit: the SQL repository, the NTS business status
//! client and its local stand-in, the access-token signing key ring, and argon2id password
//! hashing on the blocking pool.

pub mod credentials;
pub mod keyring;
pub mod local;
pub mod nts;
pub mod repository;

pub use credentials::{HashError, PasswordHasher};
pub use keyring::{KeyRing, KeyRingError, PublishedKey};
pub use nts::{NtsError, NtsProvider};
pub use repository::{Repository, RepositoryError};
