//! Farms without shared storage: the manager's side of moving files to and from workers that
//! keep a local mirror of the farm's paths (`castanet worker --no-shared-storage`).
//!
//! - `roots`: which of the manager's files workers may read and where they may write;
//! - `hashes`: SHA-256 of the manager's files (free for Shaman blobs, remembered otherwise);
//! - `inputs`: the files a task reads (its job's Shaman checkout, the paths it names) and
//!   opening one for a (resumable) download;
//! - `outputs`: receiving output files, resumable across cuts and manager restarts, stored at
//!   their path once whole and hash-verified;
//! - `totals`: bytes moved, per worker and for the farm (dashboard and `/metrics`).
//!
//! Paths cross the wire as mirror paths (`castanet_protocol::mirror`).
mod hashes;
mod inputs;
mod outputs;
mod roots;
mod totals;

use std::path::PathBuf;
use std::sync::Arc;

pub use inputs::Download;
pub use outputs::Upload;
pub use totals::{FarmTransfers, WorkerTransfers};

use crate::config::ManagerConfig;

/// Shared handle on the transfer state of one manager.
#[derive(Clone)]
pub struct Transfers {
    inner: Arc<Inner>,
}

struct Inner {
    roots: roots::FarmRoots,
    hashes: hashes::HashCache,
    /// Unfinished output uploads, kept across restarts so an upload resumes.
    uploads_dir: PathBuf,
    uploads: outputs::ActiveUploads,
    totals: totals::Totals,
    /// Whether farm paths are in Windows notation (the manager's own OS).
    windows: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{0}")]
    BadPath(String),
    #[error("{path} is outside the farm's storage (readable and writable: {roots})")]
    OutsideStorage { path: String, roots: String },
    #[error("{0} is the Shaman file store, which only the add-on's uploads fill")]
    FileStore(String),
    #[error("{0} does not exist on the manager")]
    Missing(String),
    #[error("{path} changed since it was listed ({detail})")]
    Changed { path: String, detail: String },
    #[error("upload of {path}: the manager holds {held} bytes, so it cannot continue at {offset}")]
    Offset {
        path: String,
        held: u64,
        offset: u64,
    },
    #[error("upload of {path}: more bytes than the announced size {size}")]
    TooLong { path: String, size: u64 },
    #[error(
        "upload of {path}: the bytes received have SHA-256 {got}, not the announced {expected}; the upload starts again"
    )]
    HashMismatch {
        path: String,
        got: String,
        expected: String,
    },
    #[error("upload of {0} was taken over by a newer upload of the same file")]
    Superseded(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl TransferError {
    fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        TransferError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

impl Transfers {
    pub fn new(config: &ManagerConfig) -> Self {
        Transfers {
            inner: Arc::new(Inner {
                roots: roots::FarmRoots::from_config(config),
                hashes: hashes::HashCache::default(),
                uploads_dir: config.storage_path().join("transfers").join("uploading"),
                uploads: outputs::ActiveUploads::default(),
                totals: totals::Totals::default(),
                windows: crate::variables::manager_platform() == crate::variables::WINDOWS,
            }),
        }
    }

    /// The manager's path for a mirror path from a worker.
    fn farm_path(&self, mirror_path: &str) -> Result<PathBuf, TransferError> {
        castanet_protocol::mirror::to_farm_path(mirror_path, self.inner.windows)
            .map(PathBuf::from)
            .map_err(TransferError::BadPath)
    }

    /// A worker's running totals, as it reported them.
    pub fn record_worker_totals(&self, worker_id: &str, totals: WorkerTransfers) {
        self.inner.totals.record_worker(worker_id, totals);
    }

    /// What `worker_id` reported last (None: it never moved a file since the manager started).
    pub fn worker_totals(&self, worker_id: &str) -> Option<WorkerTransfers> {
        self.inner.totals.worker(worker_id)
    }

    /// Every worker's totals, and the manager's own counts.
    pub fn farm_totals(&self) -> FarmTransfers {
        self.inner.totals.farm()
    }
}

#[cfg(test)]
mod tests;
