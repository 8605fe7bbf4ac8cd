//! The log uploader: sends a task's lines to the manager in chunks, each in its own
//! `UploadLog` call whose acknowledgement confirms it was stored. Lines logged while a call
//! is in flight queue up and go out together in the next chunk.
//!
//! While the manager is unreachable the lines are kept in memory (so the running program
//! never blocks on its output) and mirrored into the task lease's spool file (so they
//! survive a worker restart, see `spool.rs`), and the unconfirmed chunk is retried with
//! backoff until the manager is back; the runner waits for this before it reports the task's final status,
//! so a task's log is complete when its completion arrives. A manager that refuses the log
//! (the task was given to another worker) makes the uploader drop it.
//!
//! The first lines of a quiet spell wait [`LINGER`] for more before they go out, and what
//! is not sent when the task's commands end is handed to the runner instead, which sends
//! it with the final status (`TaskUpdate.log_tail`): a short task's log costs no call of
//! its own.

use std::time::Duration;

use castanet_protocol::v1::{LogChunk, LogTail};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

use super::spool::{LogSpool, SpoolFile, SpooledLog};
use crate::backoff::Backoff;
use crate::client::{CALL_TIMEOUT, ManagerClient};

/// Largest chunk text sent in one call (well under gRPC's 4 MiB message limit).
pub const MAX_CHUNK_BYTES: usize = 256 * 1024;

/// How long the first lines of a quiet spell wait for more before they are sent.
const LINGER: Duration = Duration::from_millis(100);

/// Most text handed over to go with the final status; more is uploaded on its own.
const MAX_TAIL_BYTES: usize = 64 * 1024;

/// Most log text kept while the manager is unreachable; more is counted and dropped.
const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// Starts uploading the lines of `lines` for one task lease. The returned task ends once
/// every sender of `lines` is gone and every line is stored (or refused), or handed back
/// as the log's tail (its result) to go with the final status; at once when `cancel`
/// fires (lines not stored by then stay in the spool only if it was in use); or when
/// `park` fires, after putting every line not stored yet into the spool.
pub fn spawn_uploader(
    client: ManagerClient,
    task_id: String,
    lease_epoch: u64,
    lines: mpsc::Receiver<String>,
    spool: &LogSpool,
    cancel: CancellationToken,
    park: CancellationToken,
) -> JoinHandle<Option<LogTail>> {
    let uploader = Uploader {
        client,
        spool: spool.file(&task_id, lease_epoch),
        task_id,
        lease_epoch,
        lines,
        open: true,
        pending: Pending::default(),
        gave_up: false,
    };
    tokio::spawn(uploader.run_until(cancel, park))
}

/// Log text not yet confirmed by the manager: whole '\n'-terminated lines.
#[derive(Debug, Default)]
pub struct Pending {
    text: String,
    /// Lines dropped because the buffer was full, not yet mentioned in the log.
    dropped: u64,
    /// Bytes confirmed (and forgotten) before `text`.
    confirmed: u64,
}

impl Pending {
    /// Adds one line (dropping it when the buffer is full); returns the text added.
    pub fn push(&mut self, line: &str) -> &str {
        let start = self.text.len();
        if self.text.len() + line.len() + 1 > MAX_PENDING_BYTES {
            self.dropped += 1;
            return "";
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
        &self.text[start..]
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Bytes of the lease's log before `text` (the confirmed part).
    pub fn offset(&self) -> u64 {
        self.confirmed
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
        let bytes = bytes.min(self.text.len());
        self.text.drain(..bytes);
        self.confirmed += bytes as u64;
    }
}

struct Uploader {
    client: ManagerClient,
    /// Mirrors `pending` on disk while uploads fail.
    spool: SpoolFile,
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
    /// Uploads until done or `cancel`; on `park`, whatever is not stored yet — queued
    /// lines too — goes to the spool, so an aborted run whose result is still delivered
    /// (from the update journal) gets its whole log.
    async fn run_until(
        mut self,
        cancel: CancellationToken,
        park: CancellationToken,
    ) -> Option<LogTail> {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return None,
            () = park.cancelled() => {}
            tail = self.run() => return tail,
        }
        self.drain_queued();
        if !self.gave_up && !self.pending.is_empty() {
            self.spool.replace(&self.pending.text);
        }
        None
    }

    async fn run(&mut self) -> Option<LogTail> {
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
                if failures == 0 {
                    self.linger().await;
                }
            }
            self.drain_queued();
            if self.gave_up || self.pending.is_empty() {
                self.pending = Pending::default();
                continue;
            }
            // The commands are done: the rest goes with the final status (unless the
            // manager is unreachable, when the spool keeps it until it is stored).
            if !self.open
                && failures == 0
                && !self.spool.is_active()
                && self.pending.text.len() <= MAX_TAIL_BYTES
            {
                return Some(LogTail {
                    text: std::mem::take(&mut self.pending.text),
                    offset: Some(self.pending.offset()),
                });
            }
            let text = self.pending.next_chunk(MAX_CHUNK_BYTES).to_string();
            let sent = text.len();
            match self.upload(text).await {
                Ok(()) => {
                    self.pending.confirm(sent);
                    if self.spool.is_active() {
                        self.spool.replace(&self.pending.text);
                    }
                    if failures > 0 {
                        tracing::info!(task_id = %self.task_id, "log upload works again");
                    }
                    failures = 0;
                    backoff.reset();
                }
                Err(status) if refused_for_good(&status) => {
                    tracing::warn!(task_id = %self.task_id, %status, "the manager refused this task's log; dropping it");
                    self.gave_up = true;
                    self.spool.remove();
                }
                Err(status) => {
                    failures += 1;
                    self.spool.replace(&self.pending.text);
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
        None
    }

    fn take(&mut self, line: &str) {
        if !self.gave_up {
            let added = self.pending.push(line);
            self.spool.append(added);
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

    /// Takes more lines for [`LINGER`], or until every sender is gone.
    async fn linger(&mut self) {
        let until = tokio::time::Instant::now() + LINGER;
        while self.open {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return,
                line = self.lines.recv() => match line {
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
            offset: Some(self.pending.offset()),
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

/// Sends the log text an earlier run of this worker spooled, oldest first, and deletes
/// each file once the manager stored it or refused it for good (the task is no longer this
/// worker's). Returns what is left to send when the manager became unreachable again.
pub async fn send_spooled(
    client: &ManagerClient,
    mut spooled: Vec<SpooledLog>,
    cancel: &CancellationToken,
) -> Vec<SpooledLog> {
    while let Some(log) = spooled.first().cloned() {
        let text = match std::fs::read_to_string(&log.path) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(path = %log.path.display(), error = %e, "cannot read a spooled task log; skipping it");
                spooled.remove(0);
                continue;
            }
        };
        let mut pending = Pending {
            text,
            dropped: 0,
            confirmed: 0,
        };
        while !pending.is_empty() {
            let chunk = pending.next_chunk(MAX_CHUNK_BYTES).to_string();
            let sent = chunk.len();
            let request = LogChunk {
                task_id: log.task_id.clone(),
                lease_epoch: log.lease_epoch,
                text: chunk,
                // A spool file does not say where in the lease's log it starts.
                offset: None,
            };
            let mut call = tonic::Request::new(tokio_stream::once(request));
            call.set_timeout(CALL_TIMEOUT);
            let mut api = client.api();
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => return spooled,
                result = api.upload_log(call) => result,
            };
            match result {
                Ok(_) => {
                    pending.confirm(sent);
                    // What is stored must not be sent again after another restart.
                    if let Err(e) = std::fs::write(&log.path, &pending.text) {
                        tracing::warn!(path = %log.path.display(), error = %e, "cannot update a spooled task log");
                    }
                }
                Err(status) if refused_for_good(&status) => {
                    tracing::info!(task_id = %log.task_id, %status, "the manager refused a spooled task log; dropping it");
                    break;
                }
                Err(status) => {
                    tracing::info!(task_id = %log.task_id, %status, "spooled task log not delivered yet; keeping it");
                    return spooled;
                }
            }
        }
        if pending.is_empty() {
            tracing::info!(task_id = %log.task_id, lease_epoch = log.lease_epoch, "delivered a task log spooled before the restart");
        }
        if let Err(e) = std::fs::remove_file(&log.path) {
            tracing::warn!(path = %log.path.display(), error = %e, "cannot remove a spooled task log");
        }
        spooled.remove(0);
    }
    spooled
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
