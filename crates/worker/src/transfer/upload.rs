//! Uploading one output file: the manager says how much it holds, the rest is streamed from
//! there; a cut stream is retried (from what the manager holds then) until the file is stored
//! with a matching SHA-256.
use std::io::{Read, Seek};
use std::path::Path;
use std::time::Instant;

use castanet_protocol::v1;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use super::{Retry, StageError, Transfers};

/// Bytes per upload message.
const CHUNK_BYTES: usize = 256 * 1024;

impl Transfers {
    /// Uploads `local` as `mirror_path` for `task`. Returns the bytes sent.
    pub(super) async fn upload(
        &self,
        task: &v1::AssignTask,
        local: &Path,
        mirror_path: String,
        cancel: &CancellationToken,
    ) -> Result<u64, StageError> {
        let stat = |path: &Path| {
            std::fs::metadata(path)
                .and_then(|m| Ok((m.len(), m.modified()?)))
                .map_err(|e| StageError::local(path, e))
        };
        let before = stat(local)?;
        let to_hash = local.to_path_buf();
        let sha256 =
            tokio::task::spawn_blocking(move || castanet_protocol::content::sha256_file(&to_hash))
                .await
                .map_err(|e| StageError::Local(e.to_string()))?
                .map_err(|e| StageError::local(local, e))?;
        if stat(local)? != before {
            // Still being written: by another slot's task (this task's commands have ended),
            // whose own upload sends it once it is whole.
            tracing::info!(file = %local.display(), "not uploaded: it changed while it was read");
            return Ok(0);
        }
        let size = before.0;
        let file = v1::OutputFile {
            task_id: task.task_id.clone(),
            lease_epoch: task.lease_epoch,
            path: mirror_path,
            sha256,
            size,
        };
        let mut retry = Retry::new(&file.path);
        let mut sent = 0u64;
        // Where the last stream started, to count what a cut stream delivered.
        let mut stream_start: Option<u64> = None;
        loop {
            let mut api = self.client.api();
            let status = tokio::select! {
                () = cancel.cancelled() => return Err(StageError::Canceled),
                status = api.output_upload_status(super::long_call(file.clone())) => status,
            };
            let held = match status {
                Ok(state) => {
                    let state = state.into_inner();
                    if let Some(start) = stream_start.take() {
                        let delivered = state.received.saturating_sub(start);
                        sent += delivered;
                        self.count_upload_bytes(delivered);
                        if delivered > 0 {
                            retry.progressed();
                        }
                    }
                    if state.stored {
                        self.count_file_uploaded();
                        return Ok(sent);
                    }
                    state.received
                }
                Err(status) => {
                    refused_or_retry(&file, status, &mut retry, cancel).await?;
                    continue;
                }
            };
            stream_start = Some(held);
            let started = Instant::now();
            let result = tokio::select! {
                () = cancel.cancelled() => return Err(StageError::Canceled),
                result = self.send_from(&file, local, held) => result,
            };
            self.count_upload_time(started.elapsed());
            match result {
                Ok(state) if state.stored => {
                    let delivered = file.size - held;
                    sent += delivered;
                    self.count_upload_bytes(delivered);
                    self.count_file_uploaded();
                    return Ok(sent);
                }
                // A short stream: the status tells how far it got (and whether that was any
                // progress); waiting first keeps a stream that sends nothing from spinning.
                Ok(_) => retry.wait("the upload stream ended early", cancel).await?,
                Err(status) if status.code() == Code::DataLoss => {
                    // The file changed while it was read (or bytes were damaged): all again.
                    stream_start = None;
                    retry.wait(status.message(), cancel).await?;
                }
                Err(status) => refused_or_retry(&file, status, &mut retry, cancel).await?,
            }
        }
    }

    /// One upload stream from `offset`.
    async fn send_from(
        &self,
        file: &v1::OutputFile,
        local: &Path,
        offset: u64,
    ) -> Result<v1::OutputUploadState, tonic::Status> {
        let mut reader = std::fs::File::open(local).map_err(|e| {
            tonic::Status::internal(format!("cannot read {}: {e}", local.display()))
        })?;
        reader.seek(std::io::SeekFrom::Start(offset)).map_err(|e| {
            tonic::Status::internal(format!("cannot read {}: {e}", local.display()))
        })?;
        let (sender, receiver) = tokio::sync::mpsc::channel::<v1::OutputChunk>(4);
        let header = file.clone();
        let path = local.to_path_buf();
        // Reading is blocking; the channel keeps at most a few chunks in memory.
        let reading = tokio::task::spawn_blocking(move || {
            let mut first = Some(header);
            let mut buffer = vec![0u8; CHUNK_BYTES];
            loop {
                let read = match reader.read(&mut buffer) {
                    Ok(read) => read,
                    Err(e) => {
                        // Dropping the sender ends the stream short: the status call tells
                        // no progress, and the retries give up in time.
                        tracing::warn!("cannot read {}: {e}", path.display());
                        return;
                    }
                };
                if read == 0 && first.is_none() {
                    return;
                }
                let chunk = v1::OutputChunk {
                    file: first.take(),
                    offset,
                    data: buffer[..read].to_vec(),
                };
                if sender.blocking_send(chunk).is_err() || read == 0 {
                    return;
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        let mut api = self.client.api();
        let answer = api.upload_output(tonic::Request::new(stream)).await;
        reading.abort();
        answer.map(tonic::Response::into_inner)
    }
}

/// A refused upload ends the task's upload with the manager's reason; anything else waits
/// for the next attempt.
async fn refused_or_retry(
    file: &v1::OutputFile,
    status: tonic::Status,
    retry: &mut Retry,
    cancel: &CancellationToken,
) -> Result<(), StageError> {
    let transient = crate::client::is_transient(&status) || status.code() == Code::Unauthenticated;
    if !transient {
        return Err(StageError::Refused(format!(
            "the manager refused the output {}: {}",
            file.path,
            status.message()
        )));
    }
    retry.wait(status.message(), cancel).await
}
