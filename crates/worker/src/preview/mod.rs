//! Previews of rendered frames: commands offer each freshly saved image, with its frame
//! number when they know it; one uploader per task turns them into JPEG thumbnails and
//! sends them to the manager (retrying while the manager is unreachable). Every numbered
//! frame is sent, in order — the manager keeps each for the job's frame grid and preview
//! video, and the runner waits for them before it reports the task's result. Of unnumbered
//! images only the newest is sent (the job's "last rendered" image).

mod queue;
mod thumbnail;

use std::path::PathBuf;

use castanet_protocol::v1::LastRendered;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backoff::Backoff;
use crate::client::{ManagerClient, is_transient, unary};
use queue::{Offer, Pending};

/// How often one image is tried before it is given up (the runner waits for the uploads
/// before it reports the task's result, so this must stay bounded).
const UPLOAD_ATTEMPTS: u32 = 12;

/// Where commands offer saved frames.
#[derive(Debug, Clone)]
pub struct PreviewSink(mpsc::UnboundedSender<Offer>);

impl PreviewSink {
    /// A sink whose offers go nowhere (tests).
    #[cfg(test)]
    pub fn detached() -> Self {
        Self(mpsc::unbounded_channel().0)
    }

    /// Offers a freshly saved image showing `frame` (when known). Unnumbered offers replace
    /// any unnumbered one not yet uploaded; numbered ones are all uploaded.
    pub fn offer(&self, path: impl Into<PathBuf>, frame: Option<i64>) {
        // The uploader is gone only when its task is over; nothing is left to show then.
        let _ = self.0.send(Offer {
            path: path.into(),
            frame,
        });
    }
}

/// Starts the preview uploader for one task lease. It ends when every sink is gone (after
/// uploading what was offered) or when `cancel` fires.
pub fn spawn_preview_uploader(
    client: ManagerClient,
    task_id: String,
    lease_epoch: u64,
    cancel: CancellationToken,
) -> (PreviewSink, JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let uploader = Uploader {
        client,
        task_id,
        lease_epoch,
        cancel,
        offers: rx,
        open: true,
        pending: Pending::default(),
    };
    (PreviewSink(tx), tokio::spawn(uploader.run()))
}

struct Uploader {
    client: ManagerClient,
    task_id: String,
    lease_epoch: u64,
    cancel: CancellationToken,
    offers: mpsc::UnboundedReceiver<Offer>,
    /// Some sink may still offer more.
    open: bool,
    pending: Pending,
}

/// Why waiting ended.
enum Waited {
    Cancelled,
    /// An offer arrived (it is pending now).
    Offered,
    Elapsed,
}

impl Uploader {
    async fn run(mut self) {
        loop {
            self.take_offers();
            let Some(offer) = self.pending.next() else {
                if !self.open {
                    break;
                }
                tokio::select! {
                    biased;
                    () = self.cancel.cancelled() => return,
                    offer = self.offers.recv() => match offer {
                        Some(offer) => self.pending.add(offer),
                        None => self.open = false,
                    },
                }
                continue;
            };
            if !self.send(offer).await {
                return;
            }
        }
        if self.pending.dropped > 0 {
            tracing::warn!(
                task_id = self.task_id,
                frames = self.pending.dropped,
                "frames not previewed: too many waited for the manager"
            );
        }
    }

    /// Moves every offer made so far into `pending`, without waiting.
    fn take_offers(&mut self) {
        while self.open {
            match self.offers.try_recv() {
                Ok(offer) => self.pending.add(offer),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => self.open = false,
            }
        }
    }

    /// Waits `delay`, taking in offers meanwhile; an unnumbered image stops waiting at the
    /// first offer (a newer image replaces it).
    async fn wait(&mut self, delay: std::time::Duration, stop_on_offer: bool) -> Waited {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Waited::Cancelled,
                offer = self.offers.recv(), if self.open => match offer {
                    Some(offer) => {
                        self.pending.add(offer);
                        if stop_on_offer {
                            return Waited::Offered;
                        }
                    }
                    None => self.open = false,
                },
                () = &mut sleep => return Waited::Elapsed,
            }
        }
    }

    /// Uploads one image, retrying while the manager is unreachable; false when cancelled.
    async fn send(&mut self, offer: Offer) -> bool {
        let Some(jpeg) = make_jpeg(&self.task_id, offer.path.clone()).await else {
            return true;
        };
        let mut backoff = Backoff::default();
        for attempt in 1..=UPLOAD_ATTEMPTS {
            let result = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return false,
                result = upload(&self.client, &self.task_id, self.lease_epoch, offer.frame, jpeg.clone()) => result,
            };
            match result {
                Ok(()) => {
                    tracing::debug!(task_id = self.task_id, path = %offer.path.display(), frame = ?offer.frame, "preview uploaded");
                    return true;
                }
                Err(status) if is_transient(&status) && attempt < UPLOAD_ATTEMPTS => {
                    tracing::debug!(task_id = self.task_id, %status, attempt, "preview not uploaded yet; retrying");
                    match self.wait(backoff.next_delay(), offer.frame.is_none()).await {
                        Waited::Cancelled => return false,
                        Waited::Offered => return true,
                        Waited::Elapsed => {}
                    }
                }
                Err(status) => {
                    tracing::warn!(task_id = self.task_id, path = %offer.path.display(), %status, "preview not uploaded");
                    return true;
                }
            }
        }
        true
    }
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
    frame: Option<i64>,
    image: Vec<u8>,
) -> Result<(), tonic::Status> {
    let message = LastRendered {
        task_id: task_id.to_string(),
        lease_epoch,
        mime_type: "image/jpeg".to_string(),
        image,
        frame,
    };
    client
        .api()
        .upload_last_rendered(unary(message))
        .await
        .map(|_| ())
}
