//! The log uploader: streams a task's lines to the manager over `UploadLog`, forwarding each
//! line as soon as it arrives and batching whatever queued up meanwhile into one chunk.
//!
//! If the stream breaks (the manager restarted), the next line opens a new stream after a
//! backoff delay. Lines queued in a broken stream, and lines logged while no stream can be
//! opened, are lost; the next chunk says how many. Buffering them on disk for exactly-once
//! delivery across outages is left to the upstream outage queue (a later issue).

use std::time::Duration;

use castanet_protocol::v1::{LogChunk, UploadLogAck};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tonic::{Code, Status};

use crate::backoff::Backoff;
use crate::client::ManagerClient;

/// Largest chunk text assembled from queued lines (well under gRPC's 4 MiB message limit).
pub const MAX_CHUNK_BYTES: usize = 256 * 1024;

/// How long closing the stream may wait for the manager's acknowledgement.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts uploading the lines of `lines` for one task lease. The returned task ends once
/// every sender of `lines` is gone and the manager acknowledged the stream (so every line
/// is stored), or at once when `cancel` fires.
pub fn spawn_uploader(
    client: ManagerClient,
    task_id: String,
    lease_epoch: u64,
    lines: mpsc::Receiver<String>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    let uploader = Uploader {
        client,
        task_id,
        lease_epoch,
        backoff: Backoff::default(),
        stream: None,
        retry_at: None,
        lost_lines: 0,
        gave_up: false,
    };
    tokio::spawn(async move {
        tokio::select! {
            biased;
            () = cancel.cancelled() => {}
            () = uploader.run(lines) => {}
        }
    })
}

/// Appends `first` and then every line already queued (up to `max_bytes`) into one text of
/// '\n'-terminated lines; returns it and the number of lines.
pub fn take_batch(
    first: String,
    lines: &mut mpsc::Receiver<String>,
    max_bytes: usize,
) -> (String, u64) {
    let mut text = first;
    text.push('\n');
    let mut count = 1;
    while text.len() < max_bytes {
        let Ok(line) = lines.try_recv() else { break };
        text.push_str(&line);
        text.push('\n');
        count += 1;
    }
    (text, count)
}

struct Uploader {
    client: ManagerClient,
    task_id: String,
    lease_epoch: u64,
    backoff: Backoff,
    stream: Option<OpenStream>,
    /// While set and in the future, no new stream is opened.
    retry_at: Option<Instant>,
    /// Lines that could not be sent since the last chunk that was.
    lost_lines: u64,
    /// The manager refused the log for good (the lease is gone): drop everything.
    gave_up: bool,
}

impl Uploader {
    async fn run(mut self, mut lines: mpsc::Receiver<String>) {
        while let Some(first) = lines.recv().await {
            let (text, count) = take_batch(first, &mut lines, MAX_CHUNK_BYTES);
            self.send(text, count).await;
        }
        self.close().await;
    }

    async fn send(&mut self, text: String, count: u64) {
        if self.gave_up {
            return;
        }
        if self.stream.is_none() {
            if self.retry_at.is_some_and(|at| Instant::now() < at) {
                self.lost_lines += count;
                return;
            }
            self.stream = Some(OpenStream::open(&self.client));
        }
        let text = match self.lost_lines {
            0 => text,
            n => format!(
                "[castanet] {n} log lines were lost while the manager was unreachable\n{text}"
            ),
        };
        let chunk = LogChunk {
            task_id: self.task_id.clone(),
            lease_epoch: self.lease_epoch,
            text,
        };
        let Some(stream) = self.stream.as_ref() else {
            return;
        };
        if stream.tx.send(chunk).await.is_ok() {
            self.lost_lines = 0;
            return;
        }
        // The call ended, which dropped its request stream: find out why.
        self.lost_lines += count;
        if let Some(stream) = self.stream.take() {
            let status = match stream.finish().await {
                Ok(_) => Status::unknown("the manager closed the log stream early"),
                Err(status) => status,
            };
            self.stream_failed(status);
        }
    }

    /// Ends the stream and waits for the manager's acknowledgement.
    async fn close(&mut self) {
        let Some(stream) = self.stream.take() else {
            if self.lost_lines > 0 && !self.gave_up {
                tracing::warn!(task_id = %self.task_id, lines = self.lost_lines, "log lines lost: the manager was unreachable");
            }
            return;
        };
        match tokio::time::timeout(CLOSE_TIMEOUT, stream.finish()).await {
            Ok(Ok(ack)) => {
                tracing::trace!(task_id = %self.task_id, bytes = ack.bytes_written, "task log stored");
            }
            Ok(Err(status)) => {
                tracing::warn!(task_id = %self.task_id, %status, "the task log's last lines may be lost");
            }
            Err(_) => {
                tracing::warn!(task_id = %self.task_id, "the manager did not acknowledge the task log in time")
            }
        }
    }

    fn stream_failed(&mut self, status: Status) {
        if matches!(
            status.code(),
            Code::FailedPrecondition
                | Code::NotFound
                | Code::PermissionDenied
                | Code::Unauthenticated
                | Code::InvalidArgument
        ) {
            tracing::warn!(task_id = %self.task_id, %status, "the manager refused this task's log; dropping it");
            self.gave_up = true;
            return;
        }
        let delay = self.backoff.next_delay();
        tracing::debug!(task_id = %self.task_id, %status, ?delay, "log stream broke; reopening on the next line after the delay");
        self.retry_at = Some(Instant::now() + delay);
    }
}

/// One `UploadLog` call in flight, fed through a channel.
struct OpenStream {
    tx: mpsc::Sender<LogChunk>,
    call: AbortOnDropHandle<Result<UploadLogAck, Status>>,
}

impl OpenStream {
    fn open(client: &ManagerClient) -> Self {
        let (tx, rx) = mpsc::channel(4);
        let mut api = client.api();
        let call = tokio::spawn(async move {
            api.upload_log(ReceiverStream::new(rx))
                .await
                .map(tonic::Response::into_inner)
        });
        Self {
            tx,
            call: AbortOnDropHandle::new(call),
        }
    }

    /// Ends the request stream and returns the call's result.
    async fn finish(self) -> Result<UploadLogAck, Status> {
        let Self { tx, call } = self;
        drop(tx);
        call.await
            .unwrap_or_else(|e| Err(Status::internal(format!("log upload task failed: {e}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queued_lines_are_batched_into_one_chunk() {
        let (tx, mut rx) = mpsc::channel(16);
        for line in ["b", "c", "d"] {
            let _ = tx.send(line.to_string()).await;
        }
        let (text, count) = take_batch("a".into(), &mut rx, MAX_CHUNK_BYTES);
        assert_eq!((text.as_str(), count), ("a\nb\nc\nd\n", 4));
        // Nothing queued: the line goes out alone, right away.
        let (text, count) = take_batch("e".into(), &mut rx, MAX_CHUNK_BYTES);
        assert_eq!((text.as_str(), count), ("e\n", 1));
    }

    #[tokio::test]
    async fn batches_stop_at_the_size_limit() {
        let (tx, mut rx) = mpsc::channel(16);
        for _ in 0..3 {
            let _ = tx.send("x".repeat(10)).await;
        }
        let (text, count) = take_batch("y".repeat(10), &mut rx, 25);
        assert_eq!(count, 3);
        assert_eq!(text.len(), 33);
        let (_, rest) = take_batch("z".into(), &mut rx, 25);
        assert_eq!(rest, 2);
    }
}
