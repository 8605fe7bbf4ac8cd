//! "Last rendered" previews: commands offer each freshly saved frame; one uploader per task
//! turns the newest into a JPEG thumbnail and sends it to the manager (retrying while the
//! manager is unreachable). Only the newest offer is kept, so older frames are dropped when
//! uploads lag behind rendering.

mod thumbnail;

use std::path::PathBuf;

use castanet_protocol::v1::LastRendered;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::client::{ManagerClient, is_transient, unary};

/// How often one preview is tried before it is given up (the runner waits for the last
/// one before it reports the task's result, so this must stay bounded).
const UPLOAD_ATTEMPTS: u32 = 12;

/// Where commands offer saved frames.
#[derive(Debug, Clone)]
pub struct PreviewSink(watch::Sender<Option<PathBuf>>);

impl PreviewSink {
    /// A sink whose offers go nowhere (tests).
    #[cfg(test)]
    pub fn detached() -> Self {
        Self(watch::channel(None).0)
    }

    /// Offers a freshly saved frame; it replaces any offer not yet uploaded.
    pub fn offer(&self, path: impl Into<PathBuf>) {
        self.0.send_replace(Some(path.into()));
    }
}

/// Starts the preview uploader for one task lease. It ends when every sink is gone (after
/// uploading the last offer) or when `cancel` fires.
pub fn spawn_preview_uploader(
    client: ManagerClient,
    task_id: String,
    lease_epoch: u64,
    cancel: CancellationToken,
) -> (PreviewSink, JoinHandle<()>) {
    let (tx, mut rx) = watch::channel::<Option<PathBuf>>(None);
    let handle = tokio::spawn(async move {
        // Set when a newer offer arrived while an upload was being retried.
        let mut newer = false;
        loop {
            if !newer {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return,
                    changed = rx.changed() => {
                        if changed.is_err() {
                            return; // every sink is gone and the newest offer was handled
                        }
                    }
                }
            }
            newer = false;
            let Some(path) = rx.borrow_and_update().clone() else {
                continue;
            };
            let Some(jpeg) = make_jpeg(&task_id, path.clone()).await else {
                continue;
            };
            // Retry while the manager is unreachable, until a newer frame replaces this one.
            let mut backoff = Backoff::default();
            let mut closed = false;
            for attempt in 1..=UPLOAD_ATTEMPTS {
                let result = tokio::select! {
                    biased;
                    () = cancel.cancelled() => return,
                    result = upload(&client, &task_id, lease_epoch, jpeg.clone()) => result,
                };
                match result {
                    Ok(()) => {
                        tracing::debug!(task_id, path = %path.display(), "preview uploaded");
                        break;
                    }
                    Err(status) if is_transient(&status) && attempt < UPLOAD_ATTEMPTS => {
                        tracing::debug!(task_id, %status, attempt, "preview not uploaded yet; retrying");
                        tokio::select! {
                            biased;
                            () = cancel.cancelled() => return,
                            changed = rx.changed(), if !closed => match changed {
                                Ok(()) => newer = true,
                                Err(_) => closed = true,
                            },
                            () = tokio::time::sleep(backoff.next_delay()) => {}
                        }
                        if newer {
                            break;
                        }
                    }
                    Err(status) => {
                        tracing::warn!(task_id, path = %path.display(), %status, "preview not uploaded");
                        break;
                    }
                }
            }
        }
    });
    (PreviewSink(tx), handle)
}

/// The JPEG thumbnail of `path`; `None` (logged) when there is none. A preview is best
/// effort, so failures never fail the task.
async fn make_jpeg(task_id: &str, path: PathBuf) -> Option<Vec<u8>> {
    let shown = path.display().to_string();
    match tokio::task::spawn_blocking(move || thumbnail::thumbnail(&path)).await {
        Ok(Ok(Some(jpeg))) => Some(jpeg),
        Ok(Ok(None)) => {
            tracing::debug!(task_id, path = %shown, "no preview for this image format");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(task_id, error = %e, "no preview");
            None
        }
        Err(e) => {
            tracing::warn!(task_id, error = %e, "preview thread failed");
            None
        }
    }
}

/// One `UploadLastRendered` call.
async fn upload(
    client: &ManagerClient,
    task_id: &str,
    lease_epoch: u64,
    image: Vec<u8>,
) -> Result<(), tonic::Status> {
    let message = LastRendered {
        task_id: task_id.to_string(),
        lease_epoch,
        mime_type: "image/jpeg".to_string(),
        image,
    };
    client
        .api()
        .upload_last_rendered(unary(message))
        .await
        .map(|_| ())
}
