//! Where the personal-data keys come from.
//!
//! The AES-256 key is loaded by the kit ([`kem_kit::sealing::keys`]) under this service's names:
//! `KEM_PARTICIPATION_PII_KEY` (base64 of 32 bytes) or `KEM_PARTICIPATION_PII_KEY_FILE` (a file
//! holding that base64, e.g. an Azure Key Vault CSI mount). Without either, and unless a
//! configured key is required, a **development key** is generated once under the data dir
//! (`participation-pii.key`, mode 0600) and reused — `kem up` keeps working across restarts, and
//! the log says loudly that the key is not for production.
//!
//! The phone-hash key is `KEM_PARTICIPATION_PHONE_HASH_KEY` (base64, at least 32 bytes) or, when
//! unset, derived from the AES key with HKDF-SHA256. Because every stored hash depends on it, set
//! it explicitly before ever rotating the AES key (rotation: the new key becomes
//! `KEM_PARTICIPATION_PII_KEY`, the old one moves to `KEM_PARTICIPATION_PII_PREVIOUS_KEYS`).
//! The page-token key is always derived from the phone-hash key.

use std::path::{Path, PathBuf};

use kem_kit::Secret;
use kem_kit::sealing::keys::{self, KeyNames, KeySettings};
use ring::hkdf;
use ring::hmac;

/// Why the keys could not be loaded (the kit's error, naming this service's variables).
pub use kem_kit::sealing::keys::KeyError as PiiKeyError;
/// Where the AES key came from (for the start-up log).
pub use kem_kit::sealing::keys::KeySource;
/// A base64 AES-256 key (exactly 32 bytes).
pub use kem_kit::sealing::keys::decode_key as decode_aes_key;
/// A base64 HMAC key of at least 32 bytes.
pub use kem_kit::sealing::keys::decode_long_key as decode_hash_key;

use super::{KEY_LEN, PhoneHasher, PiiCipher};

/// File name of the generated development key under the data dir.
pub const DEV_KEY_FILE: &str = "participation-pii.key";

/// How errors and the development-key warning name the AES key.
const NAMES: KeyNames = KeyNames {
    key_var: "KEM_PARTICIPATION_PII_KEY",
    file_var: "KEM_PARTICIPATION_PII_KEY_FILE",
    previous_var: "KEM_PARTICIPATION_PII_PREVIOUS_KEYS",
    dev_file: DEV_KEY_FILE,
    what: "personal-data key",
};

/// The key settings (from [`ParticipationConfig`](crate::ParticipationConfig)).
#[derive(Debug, Clone, Default)]
pub struct PiiKeySettings {
    /// Base64 AES-256 key.
    pub key: Option<Secret>,
    /// File holding the base64 AES-256 key.
    pub key_file: Option<PathBuf>,
    /// Earlier AES keys still needed to decrypt old rows.
    pub previous_keys: Vec<Secret>,
    /// Base64 HMAC key of phone hashes (at least 32 bytes).
    pub phone_hash_key: Option<Secret>,
    /// Refuse to start without a configured key (production), instead of generating one.
    pub require_configured_key: bool,
}

impl PiiKeySettings {
    /// The AES key's part, in the kit's terms.
    fn aes(&self) -> KeySettings {
        KeySettings {
            key: self.key.clone(),
            key_file: self.key_file.clone(),
            previous_keys: self.previous_keys.clone(),
            require_configured_key: self.require_configured_key,
        }
    }
}

/// Everything personal data and page tokens need.
pub struct PiiKeys {
    /// Encryption of names and phones.
    pub cipher: PiiCipher,
    /// Keyed phone hashes.
    pub phones: PhoneHasher,
    /// Authenticates page tokens.
    pub page_tokens: hmac::Key,
    /// Where the AES key came from.
    pub source: KeySource,
}

impl std::fmt::Debug for PiiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiiKeys").field("cipher", &self.cipher).field("source", &self.source).finish_non_exhaustive()
    }
}

/// 32 bytes derived from `ikm` for `purpose` (HKDF-SHA256).
fn derive(ikm: &[u8], purpose: &[u8]) -> [u8; KEY_LEN] {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"kem.participation.v1").extract(ikm);
    let info = [purpose];
    let mut out = [0u8; KEY_LEN];
    // HKDF-SHA256 expands to at most 8,160 bytes; 32 can never fail.
    match prk.expand(&info, hkdf::HKDF_SHA256).and_then(|okm| okm.fill(&mut out)) {
        Ok(()) => out,
        Err(_) => unreachable!("HKDF-SHA256 expands to 32 bytes"),
    }
}

impl PiiKeys {
    /// Loads (or, for development, creates) the keys.
    pub fn load(settings: &PiiKeySettings, data_dir: &Path) -> Result<PiiKeys, PiiKeyError> {
        let aes = keys::load(&settings.aes(), &NAMES, data_dir)?;
        let hash_material = match &settings.phone_hash_key {
            Some(secret) => decode_hash_key(secret.expose(), "KEM_PARTICIPATION_PHONE_HASH_KEY")?,
            None => derive(&aes.current, b"phone-hash").to_vec(),
        };
        Ok(PiiKeys {
            cipher: PiiCipher::new(&aes.current, &aes.previous),
            phones: PhoneHasher::new(hmac::Key::new(hmac::HMAC_SHA256, &hash_material)),
            page_tokens: hmac::Key::new(hmac::HMAC_SHA256, &derive(&hash_material, b"page-token")),
            source: aes.source,
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::infra::pii::PiiField;

    fn b64(bytes: &[u8]) -> Secret {
        Secret::new(STANDARD.encode(bytes))
    }

    #[test]
    fn configured_keys_must_be_32_bytes_of_base64_and_are_never_echoed() {
        let settings = PiiKeySettings { key: Some(Secret::new("c2VjcmV0LXZhbHVl")), ..PiiKeySettings::default() };
        let error = PiiKeys::load(&settings, Path::new("/nonexistent")).expect_err("16 bytes").to_string();
        assert!(error.contains("KEM_PARTICIPATION_PII_KEY") && error.contains("32"), "{error}");
        assert!(!error.contains("c2VjcmV0"), "{error}");
        let settings = PiiKeySettings { key: Some(Secret::new("not base64!")), ..PiiKeySettings::default() };
        assert!(PiiKeys::load(&settings, Path::new("/nonexistent")).is_err());
        let settings = PiiKeySettings {
            key: Some(b64(&[5; 32])),
            previous_keys: vec![Secret::new("c2VjcmV0LXZhbHVl")],
            ..PiiKeySettings::default()
        };
        let error = PiiKeys::load(&settings, Path::new("/nonexistent")).expect_err("short previous").to_string();
        assert!(error.contains("KEM_PARTICIPATION_PII_PREVIOUS_KEYS"), "{error}");
        let settings = PiiKeySettings {
            key: Some(b64(&[5; 32])),
            phone_hash_key: Some(b64(&[6; 16])),
            ..PiiKeySettings::default()
        };
        let error = PiiKeys::load(&settings, Path::new("/nonexistent")).expect_err("short hash key").to_string();
        assert!(error.contains("KEM_PARTICIPATION_PHONE_HASH_KEY"), "{error}");
    }

    #[test]
    fn the_same_configuration_gives_the_same_hashes() {
        let settings = PiiKeySettings { key: Some(b64(&[5; 32])), ..PiiKeySettings::default() };
        let a = PiiKeys::load(&settings, Path::new("/nonexistent")).expect("keys");
        let b = PiiKeys::load(&settings, Path::new("/nonexistent")).expect("keys");
        assert_eq!(a.source, KeySource::Environment);
        assert_eq!(a.phones.hash("e", "+821012345678"), b.phones.hash("e", "+821012345678"));
        let pinned = PiiKeySettings { phone_hash_key: Some(b64(&[7; 40])), ..settings.clone() };
        let c = PiiKeys::load(&pinned, Path::new("/nonexistent")).expect("keys");
        assert_ne!(a.phones.hash("e", "+821012345678"), c.phones.hash("e", "+821012345678"));
    }

    /// Pins the derivation: stored phone hashes depend on it, so it must not drift when the key
    /// loading moves (value computed independently of this code, with Python's hmac).
    #[test]
    fn derived_phone_hashes_are_stable() {
        let settings = PiiKeySettings { key: Some(b64(&[5; 32])), ..PiiKeySettings::default() };
        let keys = PiiKeys::load(&settings, Path::new("/nonexistent")).expect("keys");
        assert_eq!(keys.phones.hash("e", "+821012345678"), PHONE_HASH_OF_KEY_5);
    }

    const PHONE_HASH_OF_KEY_5: &str = "8b896c04c29adaaf8342e5b05eec4648ce1a243c3705d44bbe5fc50efa50f162";

    #[test]
    fn a_missing_required_key_names_the_participation_variables() {
        let required = PiiKeySettings { require_configured_key: true, ..PiiKeySettings::default() };
        let error = PiiKeys::load(&required, Path::new("/nonexistent")).expect_err("required");
        assert!(matches!(error, PiiKeyError::Missing { .. }));
        let error = error.to_string();
        assert!(
            error.starts_with(
                "no personal-data key is configured: set KEM_PARTICIPATION_PII_KEY (base64 of 32 random bytes) or \
                 KEM_PARTICIPATION_PII_KEY_FILE"
            ),
            "{error}"
        );
    }

    #[test]
    fn a_development_key_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = PiiKeys::load(&PiiKeySettings::default(), dir.path()).expect("generated");
        let path = dir.path().join(DEV_KEY_FILE);
        assert_eq!(first.source, KeySource::Development { path: path.clone(), created: true });
        let second = PiiKeys::load(&PiiKeySettings::default(), dir.path()).expect("reloaded");
        assert_eq!(second.source, KeySource::Development { path: path.clone(), created: false });
        let sealed = first.cipher.seal("e", PiiField::Name, "김민수").expect("seal");
        assert_eq!(second.cipher.open("e", PiiField::Name, &sealed), Ok("김민수".to_owned()));
        assert_eq!(first.phones.hash("e", "+8210"), second.phones.hash("e", "+8210"));
    }
}
