//! Receiving uploads into the file store: streamed to a temporary file while hashing,
//! checked against the announced checksum and size, then renamed into place.
use std::fmt::Display;
use std::path::{Path, PathBuf};

use axum::body::Bytes;
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{FileKey, Shaman, ShamanError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Received, verified and stored.
    Stored,
    /// The file was already stored (possibly by a concurrent upload that finished first).
    AlreadyStored,
    /// Someone else is uploading it and the client may come back later.
    Deferred,
    /// What arrived does not match the announced checksum or size; nothing was stored.
    Mismatch(String),
}

/// Sets a file's modification time to now; garbage collection goes by it.
pub(super) async fn touch(path: &Path) {
    let path = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || {
        std::fs::File::options()
            .append(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()))
    })
    .await;
    if let Ok(Err(e)) = result {
        tracing::warn!("cannot touch stored file: {e}");
    }
}

/// Removes the temporary file unless it was renamed into place.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Marks a key as being received for as long as it lives.
struct Receiving<'a> {
    shaman: &'a Shaman,
    key: FileKey,
}

impl Drop for Receiving<'_> {
    fn drop(&mut self) {
        self.shaman.receiving().remove(&self.key);
    }
}

impl Shaman {
    /// Removes the temporary files of uploads a killed manager left in the upload folder.
    /// Only at start (`remove_interrupted_work`): every file there is then a leftover. What
    /// cannot be removed is logged and skipped. Returns how many went.
    pub(super) async fn remove_interrupted_uploads(&self) -> u64 {
        let dir = self.uploading_dir();
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return 0,
            Err(e) => {
                tracing::warn!("shaman: cannot read the uploads in {}: {e}", dir.display());
                return 0;
            }
        };
        let mut removed = 0;
        loop {
            let entry = match entries.next_entry().await {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("shaman: cannot read the uploads in {}: {e}", dir.display());
                    break;
                }
            };
            let path = entry.path();
            if !entry.file_type().await.is_ok_and(|t| t.is_file()) {
                continue;
            }
            match tokio::fs::remove_file(&path).await {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(
                    "shaman: cannot remove the interrupted upload {}: {e}",
                    path.display()
                ),
            }
        }
        removed
    }

    /// Receives one file. The body is not read at all when the file is already stored
    /// or the upload is deferred.
    pub async fn upload<S, E>(
        &self,
        key: &FileKey,
        can_defer: bool,
        mut body: S,
    ) -> Result<UploadOutcome, ShamanError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Display,
    {
        let blob = self.blob_path(key);
        if tokio::fs::metadata(&blob).await.is_ok() {
            return Ok(UploadOutcome::AlreadyStored);
        }
        let first = self.receiving().insert(key.clone());
        if !first && can_defer {
            return Ok(UploadOutcome::Deferred);
        }
        // A concurrent identical upload proceeds too; whichever finishes first stores it.
        let _receiving = first.then(|| Receiving {
            shaman: self,
            key: key.clone(),
        });

        let dir = self.uploading_dir();
        tokio::fs::create_dir_all(&dir).await?;
        let temp_path = dir.join(format!("{}-{}.tmp", key.size, uuid::Uuid::new_v4()));
        let mut temp = TempFile(Some(temp_path.clone()));
        let mut file = tokio::fs::File::create(&temp_path).await?;
        let mut hasher = Sha256::new();
        let mut received: u64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| std::io::Error::other(format!("upload interrupted: {e}")))?;
            received += chunk.len() as u64;
            if received > key.size {
                return Ok(UploadOutcome::Mismatch(format!(
                    "received more than the announced {} bytes",
                    key.size
                )));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await?;
        }
        file.flush().await?;
        file.sync_all().await?;
        drop(file);
        if received != key.size {
            return Ok(UploadOutcome::Mismatch(format!(
                "received {received} bytes, but {} were announced",
                key.size
            )));
        }
        let actual = hex::encode(hasher.finalize());
        if actual != key.sha {
            return Ok(UploadOutcome::Mismatch(format!(
                "the file's SHA-256 is {actual}, but {} was announced",
                key.sha
            )));
        }
        if let Some(parent) = blob.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        if tokio::fs::metadata(&blob).await.is_ok() {
            return Ok(UploadOutcome::AlreadyStored);
        }
        tokio::fs::rename(&temp_path, &blob).await?;
        temp.0 = None;
        Ok(UploadOutcome::Stored)
    }
}
