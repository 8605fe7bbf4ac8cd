//! Downloading one input file into the cache: resumed from what a cut download left in its
//! partial file, retried while the manager is unreachable, and admitted only when the SHA-256
//! of the whole file matches.
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use castanet_protocol::content::sha256_file;
use castanet_protocol::v1;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::{Retry, StageError, Transfers};

impl Transfers {
    /// Puts `file` into the cache (a no-op when another slot just did). Returns the bytes
    /// received.
    pub(super) async fn fetch(
        &self,
        file: &v1::StoredFile,
        cancel: &CancellationToken,
    ) -> Result<u64, StageError> {
        let lock = self.cache.fetch_lock(&file.sha256);
        // Waiting for another slot's download of the same file ends with an abort too.
        let _one_at_a_time = tokio::select! {
            () = cancel.cancelled() => return Err(StageError::Canceled),
            guard = lock.lock() => guard,
        };
        if self.cache.holds(&file.sha256, file.size) {
            return Ok(0);
        }
        let partial = self.cache.partial_path(&file.sha256);
        if let Some(parent) = partial.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| StageError::local(parent, e))?;
        }
        let mut retry = Retry::new(&file.path);
        let mut received = 0u64;
        let mut hash_failures = 0;
        loop {
            let held = tokio::fs::metadata(&partial)
                .await
                .map(|m| m.len())
                .unwrap_or(0);
            if held > file.size {
                tokio::fs::remove_file(&partial)
                    .await
                    .map_err(|e| StageError::local(&partial, e))?;
                continue;
            }
            if file.size == 0 && held == 0 {
                // Nothing to download: the empty file is made here.
                tokio::fs::write(&partial, b"")
                    .await
                    .map_err(|e| StageError::local(&partial, e))?;
            }
            if held < file.size {
                let started = Instant::now();
                let result = self.receive(file, &partial, held, cancel).await;
                let bytes = match &result {
                    Ok(bytes) | Err(Received::Cut { bytes, .. }) => *bytes,
                    Err(_) => 0,
                };
                self.count_download(bytes, started.elapsed());
                match result {
                    Ok(bytes) if bytes > 0 => {
                        received += bytes;
                        retry.progressed();
                    }
                    // A stream that ended early without an error and without a byte.
                    Ok(_) => retry.wait("the download ended early", cancel).await?,
                    Err(Received::Canceled) => return Err(StageError::Canceled),
                    Err(Received::Refused(status)) => {
                        return Err(StageError::Refused(format!(
                            "the manager refused {}: {}",
                            file.path,
                            status.message()
                        )));
                    }
                    Err(Received::Cut { bytes, error }) => {
                        received += bytes;
                        if bytes > 0 {
                            retry.progressed();
                        }
                        retry.wait(&error, cancel).await?;
                    }
                }
                continue;
            }
            let to_hash = partial.clone();
            let sha = tokio::task::spawn_blocking(move || sha256_file(&to_hash))
                .await
                .map_err(|e| StageError::Local(e.to_string()))?
                .map_err(|e| StageError::local(&partial, e))?;
            if sha.eq_ignore_ascii_case(&file.sha256) {
                self.cache
                    .admit(&partial, &file.sha256)
                    .map_err(|e| StageError::local(&partial, e))?;
                return Ok(received);
            }
            let _ = tokio::fs::remove_file(&partial).await;
            hash_failures += 1;
            if hash_failures >= 2 {
                return Err(StageError::Refused(format!(
                    "{} arrived twice with SHA-256 {sha}, not the listed {}: the file changed \
                     on the manager",
                    file.path, file.sha256
                )));
            }
        }
    }

    /// One download stream from `offset`, appended to `partial`.
    async fn receive(
        &self,
        file: &v1::StoredFile,
        partial: &Path,
        offset: u64,
        cancel: &CancellationToken,
    ) -> Result<u64, Received> {
        let request = v1::FetchFileRequest {
            path: file.path.clone(),
            sha256: file.sha256.clone(),
            size: file.size,
            offset,
        };
        let mut api = self.client.api();
        let call = async {
            let mut request = tonic::Request::new(request);
            request.set_timeout(super::STREAM_TIMEOUT);
            api.fetch_file(request).await
        };
        let mut stream = tokio::select! {
            () = cancel.cancelled() => return Err(Received::Canceled),
            answer = call => answer.map_err(Received::from_status)?.into_inner(),
        };
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(partial)
            .map_err(|e| Received::local(partial, e))?;
        let mut bytes = 0u64;
        loop {
            let next = tokio::select! {
                () = cancel.cancelled() => return Err(Received::Canceled),
                next = tokio::time::timeout(super::SILENCE_LIMIT, stream.message()) => next,
            };
            let chunk = match next {
                Err(_) => {
                    return Err(Received::Cut {
                        bytes,
                        error: "no data for a while".into(),
                    });
                }
                Ok(Err(status)) => {
                    return Err(match Received::from_status(status) {
                        Received::Cut { error, .. } => Received::Cut { bytes, error },
                        other => other,
                    });
                }
                Ok(Ok(None)) => return Ok(bytes),
                Ok(Ok(Some(chunk))) => chunk,
            };
            out.write_all(&chunk.data)
                .map_err(|e| Received::local(partial, e))?;
            bytes += chunk.data.len() as u64;
        }
    }
}

enum Received {
    Canceled,
    /// Worth another try later (the network, a restarting manager).
    Cut {
        bytes: u64,
        error: String,
    },
    Refused(tonic::Status),
}

impl Received {
    fn from_status(status: tonic::Status) -> Self {
        if crate::client::is_transient(&status) || status.code() == Code::Unauthenticated {
            Received::Cut {
                bytes: 0,
                error: status.message().to_owned(),
            }
        } else {
            Received::Refused(status)
        }
    }

    fn local(path: &Path, e: std::io::Error) -> Self {
        Received::Refused(tonic::Status::internal(format!(
            "cannot write {}: {e}",
            path.display()
        )))
    }
}
