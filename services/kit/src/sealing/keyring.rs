//! The keyed AES-256-GCM cipher (see [the module](super) for the stored form).

use std::collections::HashMap;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::hex;

/// Length of an AES-256 key.
pub const KEY_LEN: usize = 32;
const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
const TAG_LEN: usize = 16;

/// Why a value could not be sealed or opened. Carries no row context: callers know which row
/// and column they were reading and add it to their own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The operating system's random source failed (no nonce).
    #[error("the system random source failed")]
    Random,
    /// Encryption refused the value (larger than AES-GCM can take).
    #[error("the value cannot be encrypted (too large)")]
    Seal,
    /// The stored value is not in a format this version reads (truncated, or another version).
    #[error("the stored value is not in a known format")]
    Format,
    /// Sealed with a key that is configured neither as current nor as previous.
    #[error("the stored value was encrypted with key {key_id}, which is not configured (add it to the previous keys)")]
    UnknownKey {
        /// Hex id of the missing key.
        key_id: String,
    },
    /// Authentication failed: tampered data, or a value moved from another row or column.
    #[error("the stored value failed authentication (tampered, or moved from another row or field)")]
    Tampered,
}

/// AES-256-GCM under a current key, opening with the current or any previous key.
///
/// `Debug` shows the label, the current key id and how many keys there are; never a key.
pub struct Keyring {
    label: &'static [u8],
    current: ([u8; KEY_ID_LEN], LessSafeKey),
    all: HashMap<[u8; KEY_ID_LEN], LessSafeKey>,
    random: SystemRandom,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("label", &String::from_utf8_lossy(self.label))
            .field("key_id", &hex::encode(self.current.0))
            .field("keys", &self.all.len())
            .finish()
    }
}

/// The 4-byte id of `key` under `label`: the start of SHA-256 over both. Not secret (it is in
/// every stored value) and not a way back to the key.
fn key_id(label: &[u8], key: &[u8; KEY_LEN]) -> [u8; KEY_ID_LEN] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(label);
    context.update(key);
    let digest = context.finish();
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest.as_ref()[..KEY_ID_LEN]);
    id
}

fn aes_key(bytes: &[u8; KEY_LEN]) -> LessSafeKey {
    // AES-256 accepts every 32-byte key, so this never fails; a failure would be a ring defect.
    match UnboundKey::new(&AES_256_GCM, bytes) {
        Ok(key) => LessSafeKey::new(key),
        Err(_) => unreachable!("AES-256-GCM takes any 32-byte key"),
    }
}

/// The key id and nonce of a value in the stored form, or `None` when it is not in it.
fn header(sealed: &[u8]) -> Option<([u8; KEY_ID_LEN], [u8; NONCE_LEN], &[u8])> {
    if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != FORMAT_VERSION {
        return None;
    }
    let (header, body) = sealed.split_at(HEADER_LEN);
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&header[1..=KEY_ID_LEN]);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&header[1 + KEY_ID_LEN..]);
    Some((id, nonce, body))
}

impl Keyring {
    /// Seals with `current`; opens with `current` or any of `previous`. `key_id_label` scopes the
    /// key ids to their use (e.g. `b"kem.participation.pii.key-id\0"`); it must never change for
    /// stored values, or their keys are no longer found.
    pub fn new(key_id_label: &'static [u8], current: &[u8; KEY_LEN], previous: &[[u8; KEY_LEN]]) -> Keyring {
        let mut all = HashMap::new();
        for key in previous.iter().chain(std::iter::once(current)) {
            all.insert(key_id(key_id_label, key), aes_key(key));
        }
        Keyring {
            label: key_id_label,
            current: (key_id(key_id_label, current), aes_key(current)),
            all,
            random: SystemRandom::new(),
        }
    }

    /// The hex id of the key new values are sealed with (for logs and for re-sealing decisions).
    pub fn current_key_id(&self) -> String {
        hex::encode(self.current.0)
    }

    /// The hex id of the key `sealed` was sealed with, or `None` when it is not in the stored
    /// form. Compare with [`current_key_id`](Self::current_key_id) to find values to re-seal
    /// after a rotation.
    pub fn key_id_of(sealed: &[u8]) -> Option<String> {
        header(sealed).map(|(id, _, _)| hex::encode(id))
    }

    /// Seals `plaintext` bound to `aad` (which must be given again to open it) under a fresh
    /// random nonce, so equal values never look equal.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&self.current.0);
        sealed.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.current
            .1
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
            .map_err(|_| SealError::Seal)?;
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// Opens what [`seal`](Self::seal) produced with the same `aad`, under whichever configured
    /// key sealed it.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let (id, nonce, body) = header(sealed).ok_or(SealError::Format)?;
        let key = self.all.get(&id).ok_or_else(|| SealError::UnknownKey { key_id: hex::encode(id) })?;
        let mut body = body.to_vec();
        let plain = key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
            .map_err(|_| SealError::Tampered)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests;
