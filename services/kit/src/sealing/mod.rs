//! Secrets at rest: values a service must store but nobody reading the database may read
//! (participants' names and phones, owners' OAuth tokens), sealed with AES-256-GCM.
//!
//! - [`Keyring`]: seals under the current key and opens under the current or any previous key,
//!   so a rotated key keeps old rows readable. Every value is bound to caller-chosen associated
//!   data (its row and column), so a ciphertext copied elsewhere does not open.
//! - [`keys`]: where the keys come from: configuration, a file (a Key Vault mount), or a
//!   generated development key under the data dir for `kem up`.
//!
//! The stored form is `0x01 ‖ key id (4 bytes) ‖ nonce (12 bytes, random) ‖ ciphertext ‖ tag`,
//! where the key id is the start of SHA-256 over the keyring's label and the key. The label keeps
//! ids of different services' keys apart; participation's is `kem.participation.pii.key-id\0`,
//! and this format is byte for byte the one its rows were written in before the kit had it.

mod keyring;
pub mod keys;

pub use keyring::{KEY_LEN, Keyring, SealError};
