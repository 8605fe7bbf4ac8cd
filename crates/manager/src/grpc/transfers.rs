//! The calls of workers without shared storage: listing and fetching a task's inputs,
//! uploading its outputs (resumable), and the worker's transfer totals. Only the worker
//! holding a task may list its inputs or upload its outputs.
use castanet_protocol::v1;
use tonic::{Request, Response, Status, Streaming};

use super::{WorkerApi, auth, uploads};
use crate::state::TaskStatus;
use crate::transfers::{TransferError, WorkerTransfers};

/// Bytes per download chunk (well under the message size limits on both sides).
const CHUNK_BYTES: usize = 256 * 1024;

pub type FileStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<v1::FileChunk, Status>> + Send>>;

fn transfer_status(e: TransferError) -> Status {
    let message = e.to_string();
    match e {
        TransferError::BadPath(_) | TransferError::TooLong { .. } => {
            Status::invalid_argument(message)
        }
        TransferError::OutsideStorage { .. } | TransferError::FileStore(_) => {
            Status::permission_denied(message)
        }
        TransferError::Missing(_) => Status::not_found(message),
        TransferError::Changed { .. }
        | TransferError::Offset { .. }
        | TransferError::Superseded(_) => Status::failed_precondition(message),
        TransferError::HashMismatch { .. } => Status::data_loss(message),
        TransferError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC) => {
            Status::resource_exhausted(message)
        }
        TransferError::Io { .. } => Status::internal(message),
    }
}

impl WorkerApi {
    pub(super) async fn answer_list_inputs(
        &self,
        request: Request<v1::ListInputsRequest>,
    ) -> Result<Response<v1::ListInputsResponse>, Status> {
        let worker_id = auth::authenticate_connected(&self.state, &request).await?;
        let body = request.into_inner();
        let store = &self.state.store;
        let task = store
            .get_task(&body.task_id)
            .await
            .map_err(|e| self.store_status(e))?
            .filter(|task| task.job_id == body.job_id)
            .ok_or_else(|| {
                Status::not_found(format!("job {} has no task {}", body.job_id, body.task_id))
            })?;
        if task.status != TaskStatus::Active.as_str()
            || task.worker_id.as_deref() != Some(worker_id.as_str())
        {
            return Err(Status::failed_precondition(format!(
                "task {} is not running on this worker",
                body.task_id
            )));
        }
        let job = store
            .get_job(&body.job_id)
            .await
            .map_err(|e| self.store_status(e))?
            .ok_or_else(|| Status::not_found(format!("job {} does not exist", body.job_id)))?;
        let checkout_dir = match &self.state.shaman {
            Some(shaman) if !job.storage_checkout_id.is_empty() => {
                let root = shaman.checkout_root();
                let root = std::path::absolute(&root).unwrap_or(root);
                Some(root.join(&job.storage_checkout_id))
            }
            _ => None,
        };
        let listed = self
            .state
            .transfers
            .list_inputs(checkout_dir, &body.paths)
            .await
            .map_err(transfer_status)?;
        Ok(Response::new(listed))
    }

    pub(super) async fn answer_fetch_file(
        &self,
        request: Request<v1::FetchFileRequest>,
    ) -> Result<Response<FileStream>, Status> {
        auth::authenticate_connected(&self.state, &request).await?;
        let body = request.into_inner();
        let transfers = self.state.transfers.clone();
        let mut download = transfers
            .open_download(&body)
            .await
            .map_err(transfer_status)?;
        let (sender, receiver) = tokio::sync::mpsc::channel(4);
        let path = body.path;
        self.state.background.spawn(async move {
            loop {
                let chunk = match download.next_chunk(CHUNK_BYTES).await {
                    Ok(chunk) if chunk.is_empty() => break,
                    Ok(chunk) => chunk,
                    Err(e) => {
                        let status = Status::internal(format!("reading {path}: {e}"));
                        let _ = sender.send(Err(status)).await;
                        break;
                    }
                };
                let sent = chunk.len() as u64;
                if sender
                    .send(Ok(v1::FileChunk { data: chunk }))
                    .await
                    .is_err()
                {
                    break;
                }
                transfers.count_sent(sent);
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
        Ok(Response::new(Box::pin(stream)))
    }

    pub(super) async fn answer_output_upload_status(
        &self,
        request: Request<v1::OutputFile>,
    ) -> Result<Response<v1::OutputUploadState>, Status> {
        let worker_id = auth::authenticate_connected(&self.state, &request).await?;
        let file = request.into_inner();
        uploads::check_lease(self, &worker_id, &file.task_id, file.lease_epoch).await?;
        let state = self
            .state
            .transfers
            .upload_status(&file)
            .await
            .map_err(transfer_status)?;
        Ok(Response::new(state))
    }

    pub(super) async fn answer_upload_output(
        &self,
        request: Request<Streaming<v1::OutputChunk>>,
    ) -> Result<Response<v1::OutputUploadState>, Status> {
        let worker_id = auth::authenticate_connected(&self.state, &request).await?;
        let mut chunks = request.into_inner();
        let Some(first) = chunks.message().await? else {
            return Err(Status::invalid_argument(
                "an upload without a first message",
            ));
        };
        let file = first
            .file
            .ok_or_else(|| Status::invalid_argument("an upload's first message names no file"))?;
        let (task_id, epoch) = (file.task_id.clone(), file.lease_epoch);
        uploads::check_lease(self, &worker_id, &task_id, epoch).await?;
        let mut upload = self
            .state
            .transfers
            .begin_upload(file, first.offset)
            .await
            .map_err(transfer_status)?;
        upload.write(&first.data).await.map_err(transfer_status)?;
        while let Some(chunk) = chunks.message().await? {
            upload.write(&chunk.data).await.map_err(transfer_status)?;
            if self.memory.log_touches.due(&task_id) {
                // A long upload is the task at work: it keeps the task timeout away.
                self.state
                    .store
                    .touch_task(&task_id, &worker_id, epoch as i64)
                    .await
                    .map_err(|e| self.store_status(e))?;
            }
        }
        tracing::debug!(path = upload.path(), %task_id, "output upload stream ended");
        // A long upload may outlive its lease (the task requeued meanwhile): a stale stream
        // must not overwrite what the task's new run stores.
        uploads::check_lease(self, &worker_id, &task_id, epoch).await?;
        let state = upload.finish().await.map_err(transfer_status)?;
        Ok(Response::new(state))
    }

    pub(super) async fn answer_report_transfers(
        &self,
        request: Request<v1::TransferTotals>,
    ) -> Result<Response<v1::TransferTotalsAck>, Status> {
        let worker_id = auth::authenticate_connected(&self.state, &request).await?;
        let totals = WorkerTransfers::from_report(&request.into_inner());
        self.state
            .transfers
            .record_worker_totals(&worker_id, totals);
        Ok(Response::new(v1::TransferTotalsAck {}))
    }
}
