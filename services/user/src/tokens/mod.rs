//! Access tokens (ES256 JWTs from the kit's [`Issuer`](kem_kit::jwt::Issuer)) and the signing
//! keys behind them: kept in the user database so that every replica signs with the same key and
//! publishes the same key set, or loaded from a file (a Key Vault mount) whose public half is
//! published the same way.

mod keyring;

pub use keyring::{KeyRing, KeyRingError, PublishedKey};
