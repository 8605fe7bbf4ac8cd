//! Task updates to the manager, idempotent: one `Upstream` numbers every update with the
//! worker's next sequence number and delivers it, retrying the same number while the
//! manager is unreachable, so a retry is never applied twice (the manager keeps the newest
//! number applied to each task). Updates of different tasks go concurrently; each task's
//! runner sends its own one at a time, so they arrive in order. With a journal,
//! undelivered final statuses also survive a worker restart and are replayed after sign-on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use castanet_protocol::v1::{TaskStatus, TaskUpdate};
use tokio::sync::{Notify, RwLock};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Status};

use crate::backoff::Backoff;
use crate::client::{ManagerClient, is_transient, unary};
use crate::journal::UpdateJournal;

/// Why an update was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The task is no longer this worker's (reassigned, canceled or deleted): stop it.
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// The manager no longer knows this worker; the session registers again.
    #[error("the manager no longer knows this worker")]
    Unauthenticated,
    /// The sender's cancellation token fired first.
    #[error("canceled")]
    Canceled,
    /// The manager refused the update for another reason.
    #[error("the manager rejected the update: {0}")]
    Rejected(Box<Status>),
}

/// The one sender of task updates, shared by every runner.
pub struct Upstream {
    client: ManagerClient,
    /// Held exclusively while the journal is replayed after a sign-on; sends share it.
    replaying: RwLock<()>,
    next_sequence: AtomicU64,
    unauthenticated: Notify,
    /// Where undelivered updates wait across restarts (none in some tests).
    journal: Option<UpdateJournal>,
    /// How often a running task that sent nothing else sends a keep-alive, in ms (0: never);
    /// from the manager at sign-on.
    keepalive_ms: AtomicU64,
}

impl Upstream {
    pub fn new(client: ManagerClient) -> Self {
        Self {
            client,
            replaying: RwLock::new(()),
            next_sequence: AtomicU64::new(1),
            unauthenticated: Notify::new(),
            journal: None,
            keepalive_ms: AtomicU64::new(0),
        }
    }

    /// An upstream whose undelivered updates are kept in `journal`.
    pub fn with_journal(client: ManagerClient, journal: UpdateJournal) -> Self {
        Self {
            journal: Some(journal),
            ..Self::new(client)
        }
    }

    /// The keep-alive interval the manager asked for (None: no keep-alives).
    pub fn set_keepalive(&self, every: Option<Duration>) {
        let ms = every.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.keepalive_ms.store(ms, Ordering::Relaxed);
    }

    /// How often a silent running task sends a keep-alive (None: never).
    pub fn keepalive(&self) -> Option<Duration> {
        match self.keepalive_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// After a sign-on: never reuse a number the manager has applied.
    pub fn continue_after(&self, last_applied: u64) {
        self.next_sequence
            .fetch_max(last_applied.saturating_add(1), Ordering::SeqCst);
    }

    /// After registering as a new worker: numbering starts over from the manager's value.
    pub fn restart_after(&self, last_applied: u64) {
        self.next_sequence
            .store(last_applied.saturating_add(1), Ordering::SeqCst);
        if let Some(journal) = &self.journal {
            journal.clear();
        }
    }

    /// Delivers the journal's updates from before a restart, in order and under their own
    /// numbers; the manager answers those it applied already as not applied, and refuses
    /// those of tasks it gave away meanwhile (dropped here). Sends wait until it is done.
    pub async fn replay(&self, cancel: &CancellationToken) {
        let Some(journal) = &self.journal else {
            return;
        };
        let _turn = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            turn = self.replaying.write() => turn,
        };
        for update in journal.pending() {
            let sequence = update.sequence;
            self.next_sequence
                .fetch_max(sequence.saturating_add(1), Ordering::SeqCst);
            match self.deliver(&update, cancel).await {
                Err(UpdateError::Canceled) => return,
                Ok(applied) => {
                    tracing::info!(task_id = %update.task_id, sequence, applied, "delivered a task update from before the restart");
                }
                Err(e) => {
                    tracing::info!(task_id = %update.task_id, sequence, error = %e, "dropped a task update from before the restart");
                }
            }
            journal.settle(sequence);
        }
    }

    /// The number the next update will get.
    #[cfg(test)]
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence.load(Ordering::SeqCst)
    }

    /// Resolves when an update was refused because the manager no longer knows this worker.
    pub async fn unauthenticated(&self) {
        self.unauthenticated.notified().await;
    }

    /// Numbers and delivers `update`, retrying transport failures with capped backoff until
    /// it is delivered or `cancel` fires. Returns whether the manager applied it (`false`:
    /// it had applied this number before).
    pub async fn send(
        &self,
        mut update: TaskUpdate,
        cancel: &CancellationToken,
    ) -> Result<bool, UpdateError> {
        let _turn = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(UpdateError::Canceled),
            turn = self.replaying.read() => turn,
        };
        update.sequence = self.next_sequence.fetch_add(1, Ordering::SeqCst);
        // Only a final status is worth anything after a restart: the run that sent the
        // other updates is gone by then.
        let journal = self.journal.as_ref().filter(|_| is_final(&update));
        if let Some(journal) = journal {
            journal.record(&update);
        }
        let result = self.deliver(&update, cancel).await;
        if let Some(journal) = journal {
            // A final status that could not be delivered waits for the next start.
            if !matches!(result, Err(UpdateError::Canceled)) {
                journal.settle(update.sequence);
            }
        }
        result
    }

    /// Whether results can wait for the next start (there is a journal).
    pub fn keeps_results(&self) -> bool {
        self.journal.is_some()
    }

    /// Numbers `update` and keeps it in the journal without sending it: the final status of
    /// a task whose run ended but could not be reported before the worker stopped. The next
    /// start delivers it after sign-on (the manager refuses it if the task went elsewhere).
    /// False when there is no journal.
    pub async fn keep_for_restart(&self, mut update: TaskUpdate) -> bool {
        let Some(journal) = &self.journal else {
            return false;
        };
        let _turn = self.replaying.read().await;
        update.sequence = self.next_sequence.fetch_add(1, Ordering::SeqCst);
        journal.record(&update);
        true
    }

    /// Delivers one numbered update, retrying transport failures with capped backoff.
    async fn deliver(
        &self,
        update: &TaskUpdate,
        cancel: &CancellationToken,
    ) -> Result<bool, UpdateError> {
        let mut backoff = Backoff::default();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut api = self.client.api();
            let result = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(UpdateError::Canceled),
                result = api.update_task(unary(update.clone())) => result,
            };
            let status = match result {
                Ok(ack) => return Ok(ack.into_inner().applied),
                Err(status) => status,
            };
            if !is_transient(&status) {
                return Err(self.refused(update, status));
            }
            let delay = backoff.next_delay();
            if attempt == 1 {
                tracing::warn!(task_id = %update.task_id, sequence = update.sequence, %status, "task update not delivered; retrying");
            } else {
                tracing::debug!(task_id = %update.task_id, sequence = update.sequence, attempt, ?delay, %status, "task update still not delivered");
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(UpdateError::Canceled),
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    fn refused(&self, update: &TaskUpdate, status: Status) -> UpdateError {
        tracing::debug!(task_id = %update.task_id, sequence = update.sequence, %status, "task update refused");
        match status.code() {
            Code::FailedPrecondition | Code::NotFound => {
                UpdateError::LeaseLost(status.message().to_string())
            }
            Code::Unauthenticated => {
                self.unauthenticated.notify_one();
                UpdateError::Unauthenticated
            }
            _ => UpdateError::Rejected(Box::new(status)),
        }
    }
}

/// Completed or failed: the update a manager must not miss.
fn is_final(update: &TaskUpdate) -> bool {
    update.status == TaskStatus::Completed as i32 || update.status == TaskStatus::Failed as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sequence_numbers_follow_the_manager() -> Result<(), crate::error::WorkerError> {
        let upstream = Upstream::new(ManagerClient::new("http://127.0.0.1:1")?);
        assert_eq!(upstream.next_sequence(), 1);
        upstream.continue_after(41);
        assert_eq!(upstream.next_sequence(), 42);
        // A manager that lags behind (it lost our newest updates) never makes us reuse numbers.
        upstream.continue_after(10);
        assert_eq!(upstream.next_sequence(), 42);
        // A new identity starts over.
        upstream.restart_after(0);
        assert_eq!(upstream.next_sequence(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn canceled_sends_give_up() -> Result<(), crate::error::WorkerError> {
        // Nothing listens on port 1: the update would be retried forever.
        let upstream = Upstream::new(ManagerClient::new("http://127.0.0.1:1")?);
        let cancel = CancellationToken::new();
        let sending = upstream.send(TaskUpdate::default(), &cancel);
        tokio::pin!(sending);
        tokio::select! {
            _ = &mut sending => panic!("an unreachable manager cannot acknowledge"),
            () = tokio::task::yield_now() => {}
        }
        cancel.cancel();
        assert!(matches!(sending.await, Err(UpdateError::Canceled)));
        Ok(())
    }
}
