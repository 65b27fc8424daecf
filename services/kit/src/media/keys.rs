//! Where the media signing keys come from.
//!
//! Production: `KEM_MEDIA_URL_KEY` (base64 of at least 32 random bytes) or
//! `KEM_MEDIA_URL_KEY_FILE` (a file holding it, e.g. a Key Vault CSI mount); the gateway (which
//! verifies) and distribution (which signs) must be given the same key. Rotation: the new key
//! becomes `KEM_MEDIA_URL_KEY`, the old one moves to `KEM_MEDIA_URL_PREVIOUS_KEYS`
//! (comma-separated) until the links signed with it have expired (the longest link lifetime
//! distribution uses). `KEM_MEDIA_URL_REQUIRE_KEY=1` refuses to start without a configured key.
//!
//! Without a configured key (and unless one is required) a development key is generated once as
//! `media-url.key` under the data dir and reused — `kem up` runs the gateway and distribution in
//! one process on one data dir, so both read the same file. The log says it is not for
//! production. The key values never appear in an error, a log line or `Debug`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::token::{MIN_KEY_LEN, MediaSigner};
use crate::Secret;
use crate::config::{Reader, parse};
use crate::sealing::keys::{self as sealing_keys, KeyError, KeyNames, KeySettings, decode_long_key};

/// The variables.
pub mod names {
    /// Base64 of the current signing key (at least 32 bytes).
    pub const KEY: &str = "KEM_MEDIA_URL_KEY";
    /// File holding [`KEY`] (used when it is unset).
    pub const KEY_FILE: &str = "KEM_MEDIA_URL_KEY_FILE";
    /// Earlier keys, comma-separated, whose links are still accepted.
    pub const PREVIOUS_KEYS: &str = "KEM_MEDIA_URL_PREVIOUS_KEYS";
    /// `1`: refuse to start without a configured key (no development key).
    pub const REQUIRE_KEY: &str = "KEM_MEDIA_URL_REQUIRE_KEY";
    /// File name of the development key under the data dir.
    pub const DEV_FILE: &str = "media-url.key";
}

const KEY_NAMES: KeyNames = KeyNames {
    key_var: names::KEY,
    file_var: names::KEY_FILE,
    previous_var: names::PREVIOUS_KEYS,
    dev_file: names::DEV_FILE,
    what: "media URL signing key",
};

/// The key settings as read from the environment.
#[derive(Debug, Clone, Default)]
pub struct MediaKeySettings {
    /// Base64 of the current key.
    pub key: Option<Secret>,
    /// File holding the base64 key; used when `key` is unset.
    pub key_file: Option<PathBuf>,
    /// Earlier keys still accepted.
    pub previous_keys: Vec<Secret>,
    /// Refuse to start without a configured key.
    pub require_configured_key: bool,
}

/// Why the keys could not be loaded (the message names the variable or file to fix).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct MediaKeyError(#[from] KeyError);

fn long_key(name: &'static str) -> impl parse::Parse<Output = String> {
    parse::custom("base64 of at least 32 bytes", move |text: &str| {
        decode_long_key(text, name)
            .map(|_| text.to_owned())
            .map_err(|_| "must be base64 of at least 32 bytes".to_owned())
    })
}

impl MediaKeySettings {
    /// Reads the [`names`] variables from `vars` (problems are recorded there, values redacted).
    /// `KEM_MEDIA_URL_KEY_FILE` is only remembered here; [`load`] reads it and names it when it
    /// cannot.
    pub fn read(vars: &mut Reader<'_>) -> MediaKeySettings {
        let mut settings = MediaKeySettings::default();
        let given = vars.given(names::KEY);
        settings.key_file = given.file.as_ref().map(|file| file.path.clone());
        if let Some(key) = given.value {
            settings.key = vars.check_secret(names::KEY, &key, None, long_key(names::KEY)).map(Secret::new);
        }
        if let Some(previous) = vars.get_secret(names::PREVIOUS_KEYS, parse::list(long_key(names::PREVIOUS_KEYS))) {
            settings.previous_keys = previous.into_iter().map(Secret::new).collect();
        }
        if let Some(required) = vars.get(names::REQUIRE_KEY, parse::flag()) {
            settings.require_configured_key = required;
        }
        settings
    }
}

/// The signer for `settings`: the configured key (the variable wins over its file), else — unless
/// a configured key is required — the development key under `data_dir`, created on first use.
pub fn load(settings: &MediaKeySettings, data_dir: &Path) -> Result<Arc<MediaSigner>, MediaKeyError> {
    let current = if let Some(secret) = &settings.key {
        decode_long_key(secret.expose(), names::KEY)?
    } else if let Some(path) = &settings.key_file {
        let text = std::fs::read_to_string(path).map_err(|error| KeyError::File {
            what: KEY_NAMES.what,
            path: path.clone(),
            error,
        })?;
        decode_long_key(&text, &path.display().to_string())?
    } else {
        // The sealing keys' development-key file handling (atomic creation, mode 0600, the
        // warning) is exactly what is needed; its 32 bytes are a good HMAC key.
        let development = KeySettings { require_configured_key: settings.require_configured_key, ..Default::default() };
        sealing_keys::load(&development, &KEY_NAMES, data_dir)?.current.to_vec()
    };
    let previous = settings
        .previous_keys
        .iter()
        .map(|secret| decode_long_key(secret.expose(), names::PREVIOUS_KEYS))
        .collect::<Result<Vec<_>, _>>()?;
    // Both were decoded as at least MIN_KEY_LEN bytes, so this cannot refuse them.
    debug_assert!(current.len() >= MIN_KEY_LEN);
    let signer = MediaSigner::new(&current, &previous).map_err(|_| KeyError::Invalid {
        source_name: names::KEY.to_owned(),
        reason: "must be base64 of at least 32 bytes",
    })?;
    Ok(Arc::new(signer))
}
