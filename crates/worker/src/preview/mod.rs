//! "Last rendered" previews: commands offer each freshly saved frame; one uploader per task
//! turns the newest into a JPEG thumbnail and sends it to the manager. Only the newest offer
//! is kept, so older frames are dropped when uploads lag behind rendering.

mod thumbnail;

use std::path::PathBuf;

use castanet_protocol::v1::LastRendered;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::client::{ManagerClient, unary};

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
        loop {
            let closed = tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                changed = rx.changed() => changed.is_err(),
            };
            let newest = rx.borrow_and_update().clone();
            if let Some(path) = newest {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return,
                    () = upload(&client, &task_id, lease_epoch, path) => {}
                }
            }
            if closed {
                return;
            }
        }
    });
    (PreviewSink(tx), handle)
}

/// Makes the thumbnail and uploads it once; a preview is best effort, so failures are
/// only logged.
async fn upload(client: &ManagerClient, task_id: &str, lease_epoch: u64, path: PathBuf) {
    let shown = path.display().to_string();
    let made = tokio::task::spawn_blocking(move || thumbnail::thumbnail(&path)).await;
    let jpeg = match made {
        Ok(Ok(Some(jpeg))) => jpeg,
        Ok(Ok(None)) => {
            tracing::debug!(task_id, path = %shown, "no preview for this image format");
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(task_id, error = %e, "no preview");
            return;
        }
        Err(e) => {
            tracing::warn!(task_id, error = %e, "preview thread failed");
            return;
        }
    };
    let message = LastRendered {
        task_id: task_id.to_string(),
        lease_epoch,
        mime_type: "image/jpeg".to_string(),
        image: jpeg,
    };
    match client.api().upload_last_rendered(unary(message)).await {
        Ok(_) => tracing::debug!(task_id, path = %shown, "preview uploaded"),
        Err(status) => tracing::warn!(task_id, path = %shown, %status, "preview not uploaded"),
    }
}
