//! Personal data at rest: participants' names and phone numbers are stored only encrypted
//! (AES-256-GCM), and phones additionally as a keyed hash (HMAC-SHA256) so that "one entry per
//! phone per event" is a database constraint without the number being readable.
//!
//! - [`PiiCipher`]: seals a value bound to its entry and field (the AAD), so a ciphertext copied
//!   into another row or column does not decrypt. It is the kit's [`Keyring`] (stored form
//!   `0x01 ‖ key id (4 bytes) ‖ nonce (12 bytes, random) ‖ ciphertext ‖ tag`; the key id lets a
//!   rotated key keep decrypting old rows) with this service's AAD and errors naming the entry.
//! - [`PhoneHasher`]: `HMAC-SHA256(key, "kem.participation.phone.v1" ‖ 0 ‖ event id ‖ 0 ‖ E.164)`
//!   in hex. Scoped to the event, so the same person's entries to different events are not
//!   linkable through the hash.
//! - [`keys`]: where the keys come from (configuration, a Key Vault file mount, or a generated
//!   development key under the data dir).

pub mod keys;

use kem_kit::hex;
use kem_kit::sealing::{Keyring, SealError};
use ring::hmac;

/// Length of an AES-256 key.
pub use kem_kit::sealing::KEY_LEN;

/// Scopes the key ids in stored values to this service's personal-data keys. Part of every
/// stored value's header: changing it would make existing rows' keys unfindable.
const KEY_ID_LABEL: &[u8] = b"kem.participation.pii.key-id\0";

/// Which personal field a ciphertext holds (part of its AAD).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PiiField {
    /// The participant's name.
    Name,
    /// The participant's phone (E.164).
    Phone,
    /// A message to the participant that holds a secret (a winner notice with its claim code),
    /// bound to its notification row.
    Message,
    /// A ListMarketingRecipients page token (the last number of the previous page), bound to
    /// the owner it lists.
    MarketingCursor,
}

impl PiiField {
    fn label(self) -> &'static [u8] {
        match self {
            PiiField::Name => b"name",
            PiiField::Phone => b"phone",
            PiiField::Message => b"message",
            PiiField::MarketingCursor => b"marketing-cursor",
        }
    }
}

/// Why personal data could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PiiError {
    /// The operating system's random source failed.
    #[error("the system random source failed")]
    Random,
    /// Encryption failed (value too large).
    #[error("cannot encrypt {0:?}")]
    Seal(PiiField),
    /// The stored value is not in a format this version reads.
    #[error("stored {field:?} of entry {entry_id} is not in a known format")]
    Format {
        /// The entry.
        entry_id: String,
        /// The field.
        field: PiiField,
    },
    /// Encrypted with a key that is not configured (neither current nor previous).
    #[error(
        "stored {field:?} of entry {entry_id} was encrypted with key {key_id}, which is not configured; add it to \
         KEM_PARTICIPATION_PII_PREVIOUS_KEYS"
    )]
    UnknownKey {
        /// The entry.
        entry_id: String,
        /// The field.
        field: PiiField,
        /// Hex id of the missing key.
        key_id: String,
    },
    /// Authentication failed: tampered data, or a value moved from another row or field.
    #[error("stored {field:?} of entry {entry_id} failed authentication (tampered or moved)")]
    Tampered {
        /// The entry.
        entry_id: String,
        /// The field.
        field: PiiField,
    },
}

impl PiiError {
    /// The kit's error with the entry and field it was about.
    fn of(error: SealError, entry_id: &str, field: PiiField) -> PiiError {
        let entry_id = entry_id.to_owned();
        match error {
            SealError::Random => PiiError::Random,
            SealError::Seal => PiiError::Seal(field),
            SealError::Format => PiiError::Format { entry_id, field },
            SealError::UnknownKey { key_id } => PiiError::UnknownKey { entry_id, field, key_id },
            SealError::Tampered => PiiError::Tampered { entry_id, field },
        }
    }
}

fn aad(entry_id: &str, field: PiiField) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + entry_id.len());
    aad.extend_from_slice(b"kem.participation.pii.v1\0");
    aad.extend_from_slice(entry_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(field.label());
    aad
}

/// AES-256-GCM encryption of personal data with a current key and optional previous keys: the
/// kit's [`Keyring`], each value bound to its entry and field.
#[derive(Debug)]
pub struct PiiCipher {
    keyring: Keyring,
}

impl PiiCipher {
    /// Encrypts with `current`; decrypts with `current` or any of `previous`.
    pub fn new(current: &[u8; KEY_LEN], previous: &[[u8; KEY_LEN]]) -> PiiCipher {
        PiiCipher { keyring: Keyring::new(KEY_ID_LABEL, current, previous) }
    }

    /// The hex id of the key new values are encrypted with (for logs).
    pub fn key_id(&self) -> String {
        self.keyring.current_key_id()
    }

    /// Seals `plaintext` as `field` of entry `entry_id`.
    pub fn seal(&self, entry_id: &str, field: PiiField, plaintext: &str) -> Result<Vec<u8>, PiiError> {
        self.keyring.seal(&aad(entry_id, field), plaintext.as_bytes()).map_err(|e| PiiError::of(e, entry_id, field))
    }

    /// Opens what [`seal`](Self::seal) produced for the same entry and field.
    pub fn open(&self, entry_id: &str, field: PiiField, sealed: &[u8]) -> Result<String, PiiError> {
        let plain = self.keyring.open(&aad(entry_id, field), sealed).map_err(|e| PiiError::of(e, entry_id, field))?;
        String::from_utf8(plain).map_err(|_| PiiError::Format { entry_id: entry_id.to_owned(), field })
    }
}

/// What a [`PhoneHasher::code_tag`] is of (part of the tagged message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeLabel {
    /// A winner's claim code.
    Claim,
    /// A one-time code for entering.
    EntryOtp,
    /// A one-time code for looking up or withdrawing an entry.
    LookupOtp,
}

fn code_message(label: CodeLabel, event_id: &str, e164: &str, code: &str) -> Vec<u8> {
    let label: &[u8] = match label {
        CodeLabel::Claim => b"kem.participation.claim-code.v1",
        CodeLabel::EntryOtp => b"kem.participation.otp.entry.v1",
        CodeLabel::LookupOtp => b"kem.participation.otp.lookup.v1",
    };
    [label, b"\0", event_id.as_bytes(), b"\0", e164.as_bytes(), b"\0", code.as_bytes()].concat()
}

/// The keyed hash that makes phones unique per event without storing them readably.
pub struct PhoneHasher {
    key: hmac::Key,
}

impl std::fmt::Debug for PhoneHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhoneHasher(***)")
    }
}

impl PhoneHasher {
    /// Over an HMAC-SHA256 key.
    pub fn new(key: hmac::Key) -> PhoneHasher {
        PhoneHasher { key }
    }

    /// The hash of `e164` within `event_id` (lower-case hex, 64 characters).
    pub fn hash(&self, event_id: &str, e164: &str) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(b"kem.participation.phone.v1\0");
        context.update(event_id.as_bytes());
        context.update(b"\0");
        context.update(e164.as_bytes());
        hex::encode(context.sign())
    }

    /// The tag of a code given to the holder of `e164` in `event_id` (a claim code, a one-time
    /// code), under its own `label`: what is stored instead of the code. Bound to the event and
    /// the phone, so a code is worth nothing with another phone or event.
    pub fn code_tag(&self, label: CodeLabel, event_id: &str, e164: &str, code: &str) -> String {
        hex::encode(hmac::sign(&self.key, &code_message(label, event_id, e164, code)))
    }

    /// Whether `code` is the one whose [`code_tag`](Self::code_tag) is `stored`, compared in
    /// constant time (HMAC verification), so timing tells a guesser nothing.
    pub fn code_matches(&self, label: CodeLabel, event_id: &str, e164: &str, code: &str, stored: &str) -> bool {
        match hex::decode_lower::<32>(stored) {
            Some(tag) => hmac::verify(&self.key, &code_message(label, event_id, e164, code), &tag).is_ok(),
            None => false,
        }
    }

    /// The hash of a client address key within `event_id`, for the per-address entry limit:
    /// the same key under its own label, so an address hash never equals a phone hash.
    pub fn hash_address(&self, event_id: &str, address: &str) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(b"kem.participation.address.v1\0");
        context.update(event_id.as_bytes());
        context.update(b"\0");
        context.update(address.as_bytes());
        hex::encode(context.sign())
    }
}

#[cfg(test)]
mod tests;
