//! The files a task reads, as the manager holds them, and opening one for a download.
use std::path::{Path, PathBuf};

use castanet_protocol::{mirror, v1};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{TransferError, Transfers};

/// A job's input list is refused beyond this many files (a checkout of a whole drive).
const MAX_LISTED_FILES: usize = 100_000;

/// An opened file for a download from an offset.
#[derive(Debug)]
pub struct Download {
    pub file: tokio::fs::File,
    /// Bytes from the offset to the end.
    pub remaining: u64,
}

impl Transfers {
    /// The files of the job's Shaman checkout (`checkout_dir`, a farm path), then the files at
    /// or directly in each of `requested` (mirror paths); requested paths the manager does
    /// not have are listed as missing.
    pub async fn list_inputs(
        &self,
        checkout_dir: Option<PathBuf>,
        requested: &[String],
    ) -> Result<v1::ListInputsResponse, TransferError> {
        let mut answer = v1::ListInputsResponse::default();
        if let Some(dir) = checkout_dir {
            let files = tokio::task::spawn_blocking(move || files_under(&dir))
                .await
                .map_err(|e| TransferError::BadPath(e.to_string()))??;
            for path in files {
                self.list_file(&path, None, &mut answer).await?;
            }
        }
        for wanted in requested {
            let farm = self.farm_path(wanted)?;
            self.inner.roots.names_inside(&farm)?;
            match tokio::fs::metadata(&farm).await {
                Ok(metadata) if metadata.is_dir() => {
                    let mut entries = tokio::fs::read_dir(&farm)
                        .await
                        .map_err(|e| TransferError::io(&farm, e))?;
                    while let Some(entry) = entries
                        .next_entry()
                        .await
                        .map_err(|e| TransferError::io(&farm, e))?
                    {
                        if entry.path().is_file() {
                            let name = entry.file_name().to_string_lossy().into_owned();
                            let as_mirror = format!("{wanted}/{name}");
                            self.list_file(&entry.path(), Some(as_mirror), &mut answer)
                                .await?;
                        }
                    }
                }
                Ok(_) => {
                    self.list_file(&farm, Some(wanted.clone()), &mut answer)
                        .await?
                }
                Err(_) => answer.missing.push(wanted.clone()),
            }
            if answer.files.len() > MAX_LISTED_FILES {
                return Err(too_many());
            }
        }
        Ok(answer)
    }

    /// Adds one file (a farm path; `as_mirror` is how the worker named it, if it did).
    async fn list_file(
        &self,
        farm: &Path,
        as_mirror: Option<String>,
        answer: &mut v1::ListInputsResponse,
    ) -> Result<(), TransferError> {
        let canonical = self.inner.roots.readable(farm)?;
        let (sha256, size) = self
            .inner
            .hashes
            .sha256_of(&canonical)
            .await
            .map_err(|e| TransferError::io(farm, e))?;
        let path = match as_mirror {
            Some(path) => path,
            None => mirror::from_farm_path(&farm.to_string_lossy()).ok_or_else(|| {
                TransferError::BadPath(format!("{} is not an absolute path", farm.display()))
            })?,
        };
        answer.files.push(v1::StoredFile { path, sha256, size });
        if answer.files.len() > MAX_LISTED_FILES {
            return Err(too_many());
        }
        Ok(())
    }

    /// Opens a listed file at `offset` for a download, after checking it still has the size
    /// it was listed with.
    pub async fn open_download(
        &self,
        request: &v1::FetchFileRequest,
    ) -> Result<Download, TransferError> {
        let farm = self.farm_path(&request.path)?;
        let canonical = self.inner.roots.readable(&farm)?;
        let mut file = tokio::fs::File::open(&canonical)
            .await
            .map_err(|e| TransferError::io(&farm, e))?;
        let size = file
            .metadata()
            .await
            .map_err(|e| TransferError::io(&farm, e))?
            .len();
        if size != request.size || request.offset > size {
            return Err(TransferError::Changed {
                path: request.path.clone(),
                detail: format!(
                    "{size} bytes now, {} listed; offset {}",
                    request.size, request.offset
                ),
            });
        }
        file.seek(std::io::SeekFrom::Start(request.offset))
            .await
            .map_err(|e| TransferError::io(&farm, e))?;
        Ok(Download {
            file,
            remaining: size - request.offset,
        })
    }

    /// Counts bytes sent by a download (for the farm's totals).
    pub fn count_sent(&self, bytes: u64) {
        self.inner.totals.count_sent(bytes);
    }
}

impl Download {
    /// The next chunk of at most `max` bytes; empty at the end.
    pub async fn next_chunk(&mut self, max: usize) -> std::io::Result<Vec<u8>> {
        let want = (self.remaining.min(max as u64)) as usize;
        let mut buffer = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            let read = self.file.read(&mut buffer[filled..]).await?;
            if read == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file got shorter while it was sent",
                ));
            }
            filled += read;
        }
        self.remaining -= want as u64;
        Ok(buffer)
    }
}

fn too_many() -> TransferError {
    TransferError::BadPath(format!(
        "the task's inputs are more than {MAX_LISTED_FILES} files"
    ))
}

/// Every file (or symlink to one) under `dir`, recursively, sorted (blocking).
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, TransferError> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TransferError::Missing(current.display().to_string()),
            _ => TransferError::io(&current, e),
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| TransferError::io(&current, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| TransferError::io(&path, e))?;
            if kind.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
            if files.len() > MAX_LISTED_FILES {
                return Err(too_many());
            }
        }
    }
    files.sort();
    Ok(files)
}
