//! Blobs as files under a directory (`<data dir>/blobs` for `kem up`). Writes are atomic: the bytes
//! go to a temporary file in the target's directory, are flushed to disk, and are renamed over the
//! target, so a reader never sees half an image and a crash leaves at most a stray temporary file.

use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::app::ports::{BlobError, BlobStore};

/// Blobs in a local directory.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// Blobs under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> LocalBlobStore {
        LocalBlobStore { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file of `key`, refusing keys that would leave the root (`..`, absolute paths).
    fn path(&self, key: &str) -> Result<PathBuf, BlobError> {
        let relative = Path::new(key);
        let plain = !key.is_empty() && relative.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(BlobError::BadKey(key.to_owned()));
        }
        Ok(self.root.join(relative))
    }
}

fn io_error(action: &str, path: &Path, error: std::io::Error) -> BlobError {
    let doing = format!("{action} {}", path.display());
    match error.kind() {
        // A full disk or a busy file may pass; a permission problem will not.
        ErrorKind::PermissionDenied | ErrorKind::InvalidInput | ErrorKind::InvalidData => {
            BlobError::failed(doing, error)
        }
        _ => BlobError::unavailable(doing, error),
    }
}

#[async_trait::async_trait]
impl BlobStore for LocalBlobStore {
    fn kind(&self) -> &'static str {
        "local-dir"
    }

    async fn put(&self, key: &str, bytes: Bytes, _content_type: &str) -> Result<(), BlobError> {
        let path = self.path(key)?;
        // Keys are content addresses: an existing file already holds these bytes.
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&dir).await.map_err(|e| io_error("create", &dir, e))?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
        let suffix: u64 = rand::random();
        let temp = dir.join(format!(".{name}.{suffix:016x}.tmp"));
        let written: Result<(), BlobError> = async {
            let mut file = tokio::fs::File::create(&temp).await.map_err(|e| io_error("create", &temp, e))?;
            file.write_all(&bytes).await.map_err(|e| io_error("write", &temp, e))?;
            file.sync_all().await.map_err(|e| io_error("flush", &temp, e))?;
            drop(file);
            tokio::fs::rename(&temp, &path).await.map_err(|e| io_error("move into place", &path, e))
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        written
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, BlobError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(error) if error.kind() == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io_error("read", &path, error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_are_atomic_and_keys_stay_inside_the_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::new(dir.path().join("blobs"));
        assert_eq!(store.get("images/ab/x.png").await.expect("get"), None);
        store.put("images/ab/x.png", Bytes::from_static(b"png"), "image/png").await.expect("put");
        store.put("images/ab/x.png", Bytes::from_static(b"png"), "image/png").await.expect("put again");
        assert_eq!(store.get("images/ab/x.png").await.expect("get"), Some(Bytes::from_static(b"png")));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("blobs/images/ab"))
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
        for bad in ["../escape.png", "/etc/passwd", "", "images/../../x"] {
            assert!(matches!(store.get(bad).await, Err(BlobError::BadKey(_))), "{bad}");
        }
    }
}
