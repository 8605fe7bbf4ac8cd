//! Shaman: the content-addressed upload store the Blender add-on uses to send a job's
//! files (SHA-256 + size identify a file), and checkouts — directories of relative
//! symlinks into the store that form a job's file tree on the shared storage.
//!
//! Layout under the shared storage root:
//! `file-store/stored/<sha[0:2]>/<sha[2:]>/<size>.blob`,
//! `file-store/uploading/<random>.tmp`, checkouts under `jobs/`, and
//! `file-store/checkouts-in-progress/<random>` naming each checkout still being made, and
//! `file-store/.lock`, locked by the one manager using the store.
mod checkout;
mod config;
mod files;
mod gc;
mod lock;
mod paths;

pub use checkout::CheckoutError;
pub use config::ShamanConfig;
pub use files::UploadOutcome;
pub use gc::GcReport;
pub use lock::{FileStoreLock, FileStoreLockError};
pub use paths::{FileKey, PathError};

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// One file of a checkout as the add-on describes it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileSpec {
    pub sha: String,
    pub size: u64,
    pub path: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    Unknown,
    Uploading,
    Stored,
}

#[derive(Clone)]
pub struct Shaman {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    /// Files being received right now, so a second client can be told to defer.
    receiving: Mutex<HashSet<FileKey>>,
    /// Serialises checkout directory creation (uniquifying names).
    checkout_lock: tokio::sync::Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
pub enum ShamanError {
    #[error("{0}")]
    Path(#[from] PathError),
    #[error("shared storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

impl Shaman {
    /// A Shaman rooted at the shared storage directory `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            inner: Arc::new(Inner {
                root: root.to_path_buf(),
                receiving: Mutex::new(HashSet::new()),
                checkout_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// Where checkouts are made: the `{jobs}` directory of the farm.
    pub fn checkout_root(&self) -> PathBuf {
        self.inner.root.join("jobs")
    }

    fn stored_dir(&self) -> PathBuf {
        self.inner.root.join("file-store").join("stored")
    }

    fn uploading_dir(&self) -> PathBuf {
        self.inner.root.join("file-store").join("uploading")
    }

    /// Notes naming the checkouts being made (see `create_checkout`).
    fn checkouts_in_progress_dir(&self) -> PathBuf {
        self.inner
            .root
            .join("file-store")
            .join("checkouts-in-progress")
    }

    fn blob_path(&self, key: &FileKey) -> PathBuf {
        self.stored_dir()
            .join(&key.sha[..2])
            .join(&key.sha[2..])
            .join(format!("{}.blob", key.size))
    }

    fn receiving(&self) -> std::sync::MutexGuard<'_, HashSet<FileKey>> {
        // Only inserts and removes happen under this lock; a poisoned set is still consistent.
        self.inner
            .receiving
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a file is stored, being uploaded, or unknown.
    pub async fn status(&self, key: &FileKey) -> FileStatus {
        if tokio::fs::metadata(self.blob_path(key)).await.is_ok() {
            FileStatus::Stored
        } else if self.receiving().contains(key) {
            FileStatus::Uploading
        } else {
            FileStatus::Unknown
        }
    }

    /// The files of `specs` still to be uploaded (each (sha, size) once), with their status.
    /// Stored files are left out and their blobs touched, so garbage collection keeps them.
    pub async fn requirements(
        &self,
        specs: &[FileSpec],
    ) -> Result<Vec<(FileSpec, FileStatus)>, ShamanError> {
        let mut seen = HashSet::new();
        let mut needed = Vec::new();
        for spec in specs {
            let key = FileKey::new(&spec.sha, spec.size)?;
            paths::checked_relative(&spec.path)?;
            if !seen.insert(key.clone()) {
                continue;
            }
            match self.status(&key).await {
                FileStatus::Stored => files::touch(&self.blob_path(&key)).await,
                status => needed.push((spec.clone(), status)),
            }
        }
        // Unknown files first: the client uploads in this order.
        needed.sort_by_key(|(_, status)| *status == FileStatus::Uploading);
        Ok(needed)
    }
}
