//! The log uploader: sends a task's lines to the manager in chunks, each in its own
//! `UploadLog` call whose acknowledgement confirms it was stored. Lines logged while a call
//! is in flight queue up and go out together in the next chunk.
//!
//! While the manager is unreachable the lines are kept in memory (so the running program
//! never blocks on its output) and the unconfirmed chunk is retried with backoff until the
//! manager is back; the runner waits for this before it reports the task's final status,
//! so a task's log is complete when its completion arrives. A manager that refuses the log
//! (the task was given to another worker) makes the uploader drop it.

use std::time::Duration;

use castanet_protocol::v1::LogChunk;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

use crate::backoff::Backoff;
use crate::client::{CALL_TIMEOUT, ManagerClient};

/// Largest chunk text sent in one call (well under gRPC's 4 MiB message limit).
pub const MAX_CHUNK_BYTES: usize = 256 * 1024;

/// Most log text kept while the manager is unreachable; more is counted and dropped.
const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// Starts uploading the lines of `lines` for one task lease. The returned task ends once
/// every sender of `lines` is gone and every line is stored (or refused), or at once when
/// `cancel` fires.
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
        lines,
        open: true,
        pending: Pending::default(),
        gave_up: false,
    };
    tokio::spawn(async move {
        tokio::select! {
            biased;
            () = cancel.cancelled() => {}
            () = uploader.run() => {}
        }
    })
}

/// Log text not yet confirmed by the manager: whole '\n'-terminated lines.
#[derive(Debug, Default)]
pub struct Pending {
    text: String,
    /// Lines dropped because the buffer was full, not yet mentioned in the log.
    dropped: u64,
}

impl Pending {
    /// Adds one line (dropping it when the buffer is full).
    pub fn push(&mut self, line: &str) {
        if self.text.len() + line.len() + 1 > MAX_PENDING_BYTES {
            self.dropped += 1;
            return;
        }
        if self.dropped > 0 {
            let note = format!(
                "[castanet] {} log lines were dropped while the manager was unreachable\n",
                self.dropped
            );
            self.text.push_str(&note);
            self.dropped = 0;
        }
        self.text.push_str(line);
        self.text.push('\n');
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The next chunk: whole lines up to `max_bytes` (at least one line).
    pub fn next_chunk(&self, max_bytes: usize) -> &str {
        if self.text.len() <= max_bytes {
            return &self.text;
        }
        let cut = self.text[..max_bytes]
            .rfind('\n')
            .map(|i| i + 1)
            .or_else(|| self.text.find('\n').map(|i| i + 1))
            .unwrap_or(self.text.len());
        &self.text[..cut]
    }

    /// Forgets the first `bytes` (a chunk the manager confirmed).
    pub fn confirm(&mut self, bytes: usize) {
        self.text.drain(..bytes.min(self.text.len()));
    }
}

struct Uploader {
    client: ManagerClient,
    task_id: String,
    lease_epoch: u64,
    lines: mpsc::Receiver<String>,
    /// False once every sender is gone.
    open: bool,
    pending: Pending,
    /// The manager refused the log for good (the lease is gone): drop everything.
    gave_up: bool,
}

impl Uploader {
    async fn run(mut self) {
        let mut backoff = Backoff::default();
        let mut failures = 0u32;
        loop {
            if self.pending.is_empty() {
                if !self.open {
                    break;
                }
                match self.lines.recv().await {
                    Some(line) => self.take(&line),
                    None => break,
                }
            }
            self.drain_queued();
            if self.gave_up || self.pending.is_empty() {
                self.pending = Pending::default();
                continue;
            }
            let text = self.pending.next_chunk(MAX_CHUNK_BYTES).to_string();
            let sent = text.len();
            match self.upload(text).await {
                Ok(()) => {
                    self.pending.confirm(sent);
                    if failures > 0 {
                        tracing::info!(task_id = %self.task_id, "log upload works again");
                    }
                    failures = 0;
                    backoff.reset();
                }
                Err(status) if refused_for_good(&status) => {
                    tracing::warn!(task_id = %self.task_id, %status, "the manager refused this task's log; dropping it");
                    self.gave_up = true;
                }
                Err(status) => {
                    failures += 1;
                    let delay = backoff.next_delay();
                    if failures == 1 {
                        tracing::warn!(task_id = %self.task_id, %status, "log chunk not stored; keeping the lines and retrying");
                    }
                    self.absorb_for(delay).await;
                }
            }
        }
        if self.pending.dropped > 0 {
            tracing::warn!(task_id = %self.task_id, lines = self.pending.dropped, "log lines dropped: the manager was unreachable too long");
        }
    }

    fn take(&mut self, line: &str) {
        if !self.gave_up {
            self.pending.push(line);
        }
    }

    /// Moves every queued line into the pending text.
    fn drain_queued(&mut self) {
        loop {
            match self.lines.try_recv() {
                Ok(line) => self.take(&line),
                Err(mpsc::error::TryRecvError::Empty) => return,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.open = false;
                    return;
                }
            }
        }
    }

    /// Keeps taking lines for `delay` (so the program's output never blocks).
    async fn absorb_for(&mut self, delay: Duration) {
        let until = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return,
                line = self.lines.recv(), if self.open => match line {
                    Some(line) => self.take(&line),
                    None => self.open = false,
                },
            }
        }
    }

    /// One `UploadLog` call carrying one chunk; Ok once the manager stored it. Lines keep
    /// being taken while the call is in flight.
    async fn upload(&mut self, text: String) -> Result<(), Status> {
        let chunk = LogChunk {
            task_id: self.task_id.clone(),
            lease_epoch: self.lease_epoch,
            text,
        };
        let mut api = self.client.api();
        let mut request = tonic::Request::new(tokio_stream::once(chunk));
        request.set_timeout(CALL_TIMEOUT);
        let call = api.upload_log(request);
        tokio::pin!(call);
        loop {
            tokio::select! {
                result = &mut call => return result.map(|_| ()),
                line = self.lines.recv(), if self.open => match line {
                    Some(line) => self.take(&line),
                    None => self.open = false,
                },
            }
        }
    }
}

/// Refusals retrying cannot fix: the lease is gone or the worker is not known.
fn refused_for_good(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::FailedPrecondition
            | Code::NotFound
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::InvalidArgument
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_whole_lines_within_the_limit() {
        let mut pending = Pending::default();
        for line in ["aaaa", "bbbb", "cccc"] {
            pending.push(line);
        }
        assert_eq!(pending.next_chunk(12), "aaaa\nbbbb\n");
        assert_eq!(pending.next_chunk(100), "aaaa\nbbbb\ncccc\n");
        // A line longer than the limit still goes out whole.
        assert_eq!(pending.next_chunk(2), "aaaa\n");
        pending.confirm(5);
        assert_eq!(pending.next_chunk(100), "bbbb\ncccc\n");
        pending.confirm(10);
        assert!(pending.is_empty());
    }
}
