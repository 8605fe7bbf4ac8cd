//! Receiving a task's output files. The bytes go to a partial file under the storage
//! directory named after the upload (path, hash, size), so a cut upload — a network cut, a
//! worker or manager restart — continues where it stopped. A whole file whose SHA-256
//! matches is moved to its path; one that does not match is thrown away and sent again.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use castanet_protocol::v1;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{TransferError, Transfers};

/// The newest upload of each partial file: a retry takes over from a stream that the
/// network cut left open on this side, which must then write nothing more.
#[derive(Default)]
pub(super) struct ActiveUploads {
    newest: Mutex<HashMap<PathBuf, u64>>,
    next: std::sync::atomic::AtomicU64,
}

impl ActiveUploads {
    fn take_over(&self, partial: &Path) -> u64 {
        let generation = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.map().insert(partial.to_path_buf(), generation);
        generation
    }

    fn is_newest(&self, partial: &Path, generation: u64) -> bool {
        self.map().get(partial) == Some(&generation)
    }

    fn finished(&self, partial: &Path, generation: u64) {
        let mut map = self.map();
        if map.get(partial) == Some(&generation) {
            map.remove(partial);
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, u64>> {
        // Whole entries only: a poisoned map is still consistent.
        self.newest.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One upload stream in progress.
pub struct Upload {
    transfers: Transfers,
    file: v1::OutputFile,
    destination: PathBuf,
    partial: PathBuf,
    handle: tokio::fs::File,
    held: u64,
    generation: u64,
}

impl Transfers {
    /// Removes partial uploads nobody continued for `max_age` (a worker that went away for
    /// good, a job deleted meanwhile); returns how many. Called at start.
    pub fn remove_stale_uploads(&self, max_age: std::time::Duration) -> usize {
        castanet_protocol::disk::remove_files_older_than(&self.inner.uploads_dir, max_age)
    }

    fn partial_path(&self, file: &v1::OutputFile) -> PathBuf {
        let key = Sha256::digest(format!("{}\0{}\0{}", file.path, file.sha256, file.size));
        self.inner
            .uploads_dir
            .join(format!("{}.part", hex::encode(&key[..16])))
    }

    fn checked_output(&self, file: &v1::OutputFile) -> Result<PathBuf, TransferError> {
        let sha_ok = file.sha256.len() == 64 && file.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !sha_ok {
            return Err(TransferError::BadPath(format!(
                "upload of {}: {:?} is not a SHA-256 in hex",
                file.path, file.sha256
            )));
        }
        let farm = self.farm_path(&file.path)?;
        self.inner.roots.writable(&farm)
    }

    /// How much of `file` the manager holds: all of it when the file at its path has this
    /// hash already (a retry after a lost answer), else what a partial upload holds.
    pub async fn upload_status(
        &self,
        file: &v1::OutputFile,
    ) -> Result<v1::OutputUploadState, TransferError> {
        let destination = self.checked_output(file)?;
        if self.holds(&destination, file).await {
            return Ok(v1::OutputUploadState {
                received: file.size,
                stored: true,
            });
        }
        let received = match tokio::fs::metadata(self.partial_path(file)).await {
            Ok(metadata) => metadata.len().min(file.size),
            Err(_) => 0,
        };
        Ok(v1::OutputUploadState {
            received,
            stored: false,
        })
    }

    async fn holds(&self, destination: &Path, file: &v1::OutputFile) -> bool {
        match tokio::fs::metadata(destination).await {
            Ok(metadata) if metadata.is_file() && metadata.len() == file.size => {
                let hashed = self.inner.hashes.sha256_of(destination).await;
                hashed.is_ok_and(|(sha, _)| sha.eq_ignore_ascii_case(&file.sha256))
            }
            _ => false,
        }
    }

    /// Starts (or continues, at `offset`) the upload of `file`.
    pub async fn begin_upload(
        &self,
        file: v1::OutputFile,
        offset: u64,
    ) -> Result<Upload, TransferError> {
        let destination = self.checked_output(&file)?;
        let partial = self.partial_path(&file);
        let dir = &self.inner.uploads_dir;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| TransferError::io(dir, e))?;
        let generation = self.inner.uploads.take_over(&partial);
        let handle = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&partial)
            .await
            .map_err(|e| TransferError::io(&partial, e))?;
        let held = handle
            .metadata()
            .await
            .map_err(|e| TransferError::io(&partial, e))?
            .len();
        if offset > held || offset > file.size {
            return Err(TransferError::Offset {
                path: file.path.clone(),
                held,
                offset,
            });
        }
        // Continuing earlier than the end (the status was read before a taken-over
        // stream wrote more) drops the bytes after `offset`; they come again.
        handle
            .set_len(offset)
            .await
            .map_err(|e| TransferError::io(&partial, e))?;
        let mut handle = handle;
        tokio::io::AsyncSeekExt::seek(&mut handle, std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| TransferError::io(&partial, e))?;
        Ok(Upload {
            transfers: self.clone(),
            file,
            destination,
            partial,
            handle,
            held: offset,
            generation,
        })
    }
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("path", &self.file.path)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

impl Upload {
    pub fn path(&self) -> &str {
        &self.file.path
    }

    pub async fn write(&mut self, data: &[u8]) -> Result<(), TransferError> {
        let uploads = &self.transfers.inner.uploads;
        if !uploads.is_newest(&self.partial, self.generation) {
            return Err(TransferError::Superseded(self.file.path.clone()));
        }
        if self.held + data.len() as u64 > self.file.size {
            return Err(TransferError::TooLong {
                path: self.file.path.clone(),
                size: self.file.size,
            });
        }
        self.handle
            .write_all(data)
            .await
            .map_err(|e| TransferError::io(&self.partial, e))?;
        self.held += data.len() as u64;
        self.transfers
            .inner
            .totals
            .count_received(data.len() as u64);
        Ok(())
    }

    /// Ends this stream: a whole file is verified and stored at its path; a short one stays
    /// partial for the next stream to continue.
    pub async fn finish(mut self) -> Result<v1::OutputUploadState, TransferError> {
        self.handle
            .flush()
            .await
            .map_err(|e| TransferError::io(&self.partial, e))?;
        if self.held < self.file.size {
            return Ok(v1::OutputUploadState {
                received: self.held,
                stored: false,
            });
        }
        self.handle
            .sync_all()
            .await
            .map_err(|e| TransferError::io(&self.partial, e))?;
        let partial = self.partial.clone();
        let sha =
            tokio::task::spawn_blocking(move || castanet_protocol::content::sha256_file(&partial))
                .await
                .map_err(|e| TransferError::BadPath(e.to_string()))?
                .map_err(|e| TransferError::io(&self.partial, e))?;
        let inner = &self.transfers.inner;
        if !sha.eq_ignore_ascii_case(&self.file.sha256) {
            let _ = tokio::fs::remove_file(&self.partial).await;
            inner.uploads.finished(&self.partial, self.generation);
            return Err(TransferError::HashMismatch {
                path: self.file.path.clone(),
                got: sha,
                expected: self.file.sha256.clone(),
            });
        }
        // Judged again: the upload may have taken hours, and the tree may have changed.
        self.destination = self.transfers.checked_output(&self.file)?;
        move_into_place(&self.partial, &self.destination).await?;
        inner.uploads.finished(&self.partial, self.generation);
        if let Ok(metadata) = tokio::fs::metadata(&self.destination).await
            && let Ok(modified) = metadata.modified()
            && let Ok(canonical) = tokio::fs::canonicalize(&self.destination).await
        {
            inner.hashes.remember(
                &canonical,
                metadata.len(),
                modified,
                &sha.to_ascii_lowercase(),
            );
        }
        inner.totals.count_stored();
        Ok(v1::OutputUploadState {
            received: self.file.size,
            stored: true,
        })
    }
}

/// Moves a verified partial file to its destination: a rename where both are on one file
/// system, else a copy beside the destination renamed over it, so the destination is never
/// seen half-written.
async fn move_into_place(partial: &Path, destination: &Path) -> Result<(), TransferError> {
    if let Some(parent) = destination.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| TransferError::io(parent, e))?;
    }
    match tokio::fs::rename(partial, destination).await {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() != std::io::ErrorKind::CrossesDevices => {
            return Err(TransferError::io(destination, e));
        }
        Err(_) => {}
    }
    // A fresh name, created here (never an existing file or a link someone left there).
    let mut beside = destination.as_os_str().to_owned();
    beside.push(format!(
        ".castanet-upload-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let beside = PathBuf::from(beside);
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&beside)
        .await
        .map_err(|e| TransferError::io(&beside, e))?;
    let copied = async {
        let mut input = tokio::fs::File::open(partial).await?;
        tokio::io::copy(&mut input, &mut out).await?;
        out.sync_all().await
    }
    .await;
    if let Err(e) = copied {
        let _ = tokio::fs::remove_file(&beside).await;
        return Err(TransferError::io(&beside, e));
    }
    tokio::fs::rename(&beside, destination)
        .await
        .map_err(|e| TransferError::io(destination, e))?;
    let _ = tokio::fs::remove_file(partial).await;
    Ok(())
}
