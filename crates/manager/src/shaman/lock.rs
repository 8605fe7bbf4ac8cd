//! One manager per Shaman file store: a second manager started by mistake on the same
//! shared storage would remove the first one's uploads and checkouts in progress as
//! leftovers of a kill.
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use super::Shaman;

/// Holds the exclusive lock on `file-store/.lock` until dropped (the OS releases it when
/// the process dies, so a killed manager never leaves it held).
#[derive(Debug)]
pub struct FileStoreLock {
    _file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
pub enum FileStoreLockError {
    #[error(
        "another manager is using this Shaman file store: it holds the lock on {path} \
         (stop that manager first, or give this one other shared storage)"
    )]
    Held { path: String },
    #[error("cannot lock the Shaman file store with {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl Shaman {
    /// The file whose lock marks the file store as in use by a manager.
    pub fn lock_path(&self) -> PathBuf {
        self.inner.root.join("file-store").join(".lock")
    }

    /// Takes the file store's lock without waiting; `Held` when another process has it.
    pub fn lock_file_store(&self) -> Result<FileStoreLock, FileStoreLockError> {
        let path = self.lock_path();
        let io_error = |source| FileStoreLockError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_error)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error)?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(FileStoreLockError::Held {
                    path: path.display().to_string(),
                });
            }
            return Err(io_error(error));
        }
        Ok(FileStoreLock { _file: file })
    }
}
