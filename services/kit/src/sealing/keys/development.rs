//! The generated development key: made once under the data dir, owner-only, then reused.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom, SystemRandom};

use super::{KEY_LEN, KeyError, decode_key};

/// Reads the development key at `path`, creating it (0600) when absent; `true` when created now.
/// Creation is atomic (written aside, then hard-linked into place, which fails if the name
/// exists), so replicas or tests starting together agree on one key and nobody ever reads a
/// half-written file. A file that exists but does not hold a key is an error: replacing it would
/// make everything sealed under it unreadable.
pub(super) fn key(path: &Path, what: &'static str) -> Result<([u8; KEY_LEN], bool), KeyError> {
    let file_error = |error| KeyError::File { what, path: path.to_path_buf(), error };
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok((decode_key(&text, &path.display().to_string())?, false)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(file_error(error)),
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(file_error)?;
    }
    let random = SystemRandom::new();
    let mut key = [0u8; KEY_LEN];
    random.fill(&mut key).map_err(|_| KeyError::Random { what })?;
    let mut suffix = [0u8; 8];
    random.fill(&mut suffix).map_err(|_| KeyError::Random { what })?;
    let staging = path.with_extension(format!("tmp-{}", crate::hex::encode(suffix)));
    let written = write_private(&staging, STANDARD.encode(key).as_bytes());
    let linked = written.and_then(|()| std::fs::hard_link(&staging, path));
    // The staging name is ours alone (random suffix); removing it can only fail if it was never
    // written, which `linked` already reports.
    let _ = std::fs::remove_file(&staging);
    match linked {
        Ok(()) => Ok((key, true)),
        // Another process created it first: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(file_error)?;
            Ok((decode_key(&text, &path.display().to_string())?, false))
        }
        Err(error) => Err(file_error(error)),
    }
}

/// Writes `contents` to a new file readable by the owner only (created with that mode, so it is
/// never readable by others even for a moment).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
