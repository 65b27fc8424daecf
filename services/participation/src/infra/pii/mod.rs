//! Personal data at rest: participants' names and phone numbers are stored only encrypted
//! (AES-256-GCM), and phones additionally as a keyed hash (HMAC-SHA256) so that "one entry per
//! phone per event" is a database constraint without the number being readable.
//!
//! - [`PiiCipher`]: seals a value bound to its entry and field (the AAD), so a ciphertext copied
//!   into another row or column does not decrypt. The stored form is
//!   `0x01 ‖ key id (4 bytes) ‖ nonce (12 bytes, random) ‖ ciphertext ‖ tag`; the key id lets a
//!   rotated key keep decrypting old rows (previous keys).
//! - [`PhoneHasher`]: `HMAC-SHA256(key, "kem.participation.phone.v1" ‖ 0 ‖ event id ‖ 0 ‖ E.164)`
//!   in hex. Scoped to the event, so the same person's entries to different events are not
//!   linkable through the hash.
//! - [`keys`]: where the keys come from (configuration, a Key Vault file mount, or a generated
//!   development key under the data dir).

pub mod keys;

use std::collections::HashMap;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use kem_kit::hex;

/// Length of an AES-256 key.
pub const KEY_LEN: usize = 32;
const FORMAT_VERSION: u8 = 1;
const KEY_ID_LEN: usize = 4;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;

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
}

impl PiiField {
    fn label(self) -> &'static [u8] {
        match self {
            PiiField::Name => b"name",
            PiiField::Phone => b"phone",
            PiiField::Message => b"message",
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

/// The 4-byte id of a key: the start of SHA-256 over a label and the key.
fn key_id(key: &[u8; KEY_LEN]) -> [u8; KEY_ID_LEN] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"kem.participation.pii.key-id\0");
    context.update(key);
    let digest = context.finish();
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest.as_ref()[..KEY_ID_LEN]);
    id
}

fn aad(entry_id: &str, field: PiiField) -> Vec<u8> {
    let mut aad = Vec::with_capacity(32 + entry_id.len());
    aad.extend_from_slice(b"kem.participation.pii.v1\0");
    aad.extend_from_slice(entry_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(field.label());
    aad
}

/// AES-256-GCM encryption of personal data with a current key and optional previous keys.
pub struct PiiCipher {
    current: ([u8; KEY_ID_LEN], LessSafeKey),
    all: HashMap<[u8; KEY_ID_LEN], LessSafeKey>,
    random: SystemRandom,
}

impl std::fmt::Debug for PiiCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiiCipher")
            .field("key_id", &hex::encode(self.current.0))
            .field("keys", &self.all.len())
            .finish()
    }
}

fn aes_key(bytes: &[u8; KEY_LEN]) -> LessSafeKey {
    // AES-256 accepts every 32-byte key, so this never fails; a failure would be a ring defect.
    match UnboundKey::new(&AES_256_GCM, bytes) {
        Ok(key) => LessSafeKey::new(key),
        Err(_) => unreachable!("AES-256-GCM takes any 32-byte key"),
    }
}

impl PiiCipher {
    /// Encrypts with `current`; decrypts with `current` or any of `previous`.
    pub fn new(current: &[u8; KEY_LEN], previous: &[[u8; KEY_LEN]]) -> PiiCipher {
        let mut all = HashMap::new();
        for key in previous.iter().chain(std::iter::once(current)) {
            all.insert(key_id(key), aes_key(key));
        }
        PiiCipher { current: (key_id(current), aes_key(current)), all, random: SystemRandom::new() }
    }

    /// The hex id of the key new values are encrypted with (for logs).
    pub fn key_id(&self) -> String {
        hex::encode(self.current.0)
    }

    /// Seals `plaintext` as `field` of entry `entry_id`.
    pub fn seal(&self, entry_id: &str, field: PiiField, plaintext: &str) -> Result<Vec<u8>, PiiError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| PiiError::Random)?;
        let mut sealed = Vec::with_capacity(HEADER_LEN + plaintext.len() + AES_256_GCM.tag_len());
        sealed.push(FORMAT_VERSION);
        sealed.extend_from_slice(&self.current.0);
        sealed.extend_from_slice(&nonce);
        let mut body = plaintext.as_bytes().to_vec();
        self.current
            .1
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad(entry_id, field)), &mut body)
            .map_err(|_| PiiError::Seal(field))?;
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// Opens what [`seal`](Self::seal) produced for the same entry and field.
    pub fn open(&self, entry_id: &str, field: PiiField, sealed: &[u8]) -> Result<String, PiiError> {
        let format = || PiiError::Format { entry_id: entry_id.to_owned(), field };
        if sealed.len() < HEADER_LEN + AES_256_GCM.tag_len() || sealed[0] != FORMAT_VERSION {
            return Err(format());
        }
        let (header, body) = sealed.split_at(HEADER_LEN);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&header[1..=KEY_ID_LEN]);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[1 + KEY_ID_LEN..]);
        let key = self.all.get(&id).ok_or_else(|| PiiError::UnknownKey {
            entry_id: entry_id.to_owned(),
            field,
            key_id: hex::encode(id),
        })?;
        let mut body = body.to_vec();
        let plain = key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad(entry_id, field)), &mut body)
            .map_err(|_| PiiError::Tampered { entry_id: entry_id.to_owned(), field })?;
        String::from_utf8(plain.to_vec()).map_err(|_| format())
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
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_bound_to_their_entry_and_field() {
        let cipher = PiiCipher::new(&[1; KEY_LEN], &[]);
        let sealed = cipher.seal("entry-1", PiiField::Phone, "+821012345678").expect("seal");
        assert!(!sealed.windows(4).any(|w| w == b"1012"), "no plaintext in the ciphertext");
        assert_eq!(cipher.open("entry-1", PiiField::Phone, &sealed), Ok("+821012345678".to_owned()));
        assert!(matches!(cipher.open("entry-2", PiiField::Phone, &sealed), Err(PiiError::Tampered { .. })));
        assert!(matches!(cipher.open("entry-1", PiiField::Name, &sealed), Err(PiiError::Tampered { .. })));
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(cipher.open("entry-1", PiiField::Phone, &flipped), Err(PiiError::Tampered { .. })));
        assert!(matches!(cipher.open("entry-1", PiiField::Phone, b"short"), Err(PiiError::Format { .. })));
        let again = cipher.seal("entry-1", PiiField::Phone, "+821012345678").expect("seal");
        assert_ne!(sealed, again, "random nonces: equal values do not look equal");
    }

    #[test]
    fn rotated_keys_keep_old_values_readable() {
        let old = PiiCipher::new(&[1; KEY_LEN], &[]);
        let sealed = old.seal("e", PiiField::Name, "김민수").expect("seal");
        let rotated = PiiCipher::new(&[2; KEY_LEN], &[[1; KEY_LEN]]);
        assert_eq!(rotated.open("e", PiiField::Name, &sealed), Ok("김민수".to_owned()));
        assert_ne!(rotated.key_id(), old.key_id());
        let forgot = PiiCipher::new(&[2; KEY_LEN], &[]);
        let error = forgot.open("e", PiiField::Name, &sealed).expect_err("unknown key");
        assert!(error.to_string().contains("KEM_PARTICIPATION_PII_PREVIOUS_KEYS"), "{error}");
    }

    #[test]
    fn phone_hashes_are_keyed_and_scoped_to_the_event() {
        let hasher = PhoneHasher::new(hmac::Key::new(hmac::HMAC_SHA256, &[3; 32]));
        let a = hasher.hash("event-1", "+821012345678");
        assert_eq!(a.len(), 64);
        assert_eq!(a, hasher.hash("event-1", "+821012345678"));
        assert_ne!(a, hasher.hash("event-2", "+821012345678"));
        let other = PhoneHasher::new(hmac::Key::new(hmac::HMAC_SHA256, &[4; 32]));
        assert_ne!(a, other.hash("event-1", "+821012345678"));
    }
}
