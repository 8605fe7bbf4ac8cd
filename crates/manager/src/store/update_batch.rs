//! Group commit of worker task updates. Updates arriving while a transaction is open
//! queue up and are applied together in the next one: one BEGIN/COMMIT and one WAL write
//! of the shared pages (job row, task counts, indexes) per batch instead of per update.
//! Each update is still checked (sequence, lease) against the state the earlier updates
//! of its batch left, so batching changes no outcome.
use std::sync::{Arc, Mutex};

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use super::task_updates::{TaskUpdateOutcome, UpdateBatch, WorkerTaskUpdate, apply_update_in};
use super::{StoreError, StoreResult};
use crate::metrics::Metrics;
use crate::state::FailurePolicy;

/// Most updates applied in one transaction: keeps a transaction short enough that the
/// dispatcher's assignments are not held back behind it.
const MAX_BATCH: usize = 128;

struct Pending {
    update: WorkerTaskUpdate,
    policy: FailurePolicy,
    reply: oneshot::Sender<StoreResult<TaskUpdateOutcome>>,
}

/// The queue in front of the committing task; started on first use, closed with the store.
#[derive(Default)]
pub(super) struct UpdateQueue {
    sender: Mutex<Queue>,
}

#[derive(Default)]
enum Queue {
    #[default]
    NotStarted,
    Open(mpsc::UnboundedSender<Pending>),
    Closed,
}

impl UpdateQueue {
    pub(super) async fn apply(
        &self,
        write: &AnyPool,
        metrics: &Arc<Metrics>,
        tasks: &TaskTracker,
        update: &WorkerTaskUpdate,
        policy: FailurePolicy,
    ) -> StoreResult<TaskUpdateOutcome> {
        let sender = {
            // Only the sender lives here: a poisoned lock is still usable.
            let mut queue = self.sender.lock().unwrap_or_else(|p| p.into_inner());
            match &*queue {
                Queue::Open(sender) => sender.clone(),
                Queue::Closed => return Err(StoreError::ShuttingDown),
                Queue::NotStarted => {
                    let (sender, receiver) = mpsc::unbounded_channel();
                    tasks.spawn(commit_batches(write.clone(), metrics.clone(), receiver));
                    *queue = Queue::Open(sender.clone());
                    sender
                }
            }
        };
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            update: update.clone(),
            policy,
            reply,
        };
        if sender.send(pending).is_err() {
            return Err(StoreError::ShuttingDown);
        }
        answer.await.map_err(|_| StoreError::ShuttingDown)?
    }

    /// Takes no more updates; the committing task applies those queued and ends.
    pub(super) fn close(&self) {
        *self.sender.lock().unwrap_or_else(|p| p.into_inner()) = Queue::Closed;
    }
}

async fn commit_batches(
    write: AnyPool,
    metrics: Arc<Metrics>,
    mut receiver: mpsc::UnboundedReceiver<Pending>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let pending = std::mem::take(&mut batch);
        if pending.len() == 1 {
            apply_each(&write, &metrics, pending).await;
            continue;
        }
        if let Some(rest) = apply_together(&write, &metrics, pending).await {
            // A database error inside the batch rolled all of it back: apply the updates
            // one transaction each, so every update gets its own outcome or error.
            apply_each(&write, &metrics, rest).await;
        }
    }
}

/// Applies the batch in one transaction; gives it back untouched when the transaction
/// failed as a whole.
async fn apply_together(
    write: &AnyPool,
    metrics: &Metrics,
    pending: Vec<Pending>,
) -> Option<Vec<Pending>> {
    let mut tx = match write.begin().await {
        Ok(tx) => tx,
        Err(_) => return Some(pending),
    };
    let mut results = Vec::with_capacity(pending.len());
    let mut batch = UpdateBatch::default();
    for p in &pending {
        match apply_update_in(&mut tx, &p.update, &p.policy, &mut batch).await {
            // Refusals (unknown task, lost lease) are decided before any write.
            Ok(outcome) => results.push(Ok(outcome)),
            Err(e @ (StoreError::NotFound(_) | StoreError::LeaseLost(_))) => results.push(Err(e)),
            Err(e) => {
                tracing::warn!("a batch of task updates failed ({e}); applying them one by one");
                drop(tx);
                return Some(pending);
            }
        }
    }
    // Every update of a batch has the same failure policy (the store's).
    let policy = pending[0].policy;
    if let Err(e) = batch.finish(&mut tx, &policy, &mut results).await {
        tracing::warn!("a batch of task updates failed ({e}); applying them one by one");
        return Some(pending);
    }
    if let Err(e) = tx.commit().await {
        tracing::warn!("committing a batch of task updates failed ({e}); applying them one by one");
        return Some(pending);
    }
    for (p, result) in pending.into_iter().zip(results) {
        record_finished(metrics, &p.update, &result);
        let _ = p.reply.send(result);
    }
    None
}

async fn apply_each(write: &AnyPool, metrics: &Metrics, pending: Vec<Pending>) {
    for p in pending {
        let result = apply_alone(write, &p).await;
        record_finished(metrics, &p.update, &result);
        let _ = p.reply.send(result);
    }
}

async fn apply_alone(write: &AnyPool, p: &Pending) -> StoreResult<TaskUpdateOutcome> {
    let mut tx = write.begin().await?;
    let mut batch = UpdateBatch::default();
    let outcome = apply_update_in(&mut tx, &p.update, &p.policy, &mut batch).await?;
    let mut results = vec![Ok(outcome)];
    batch.finish(&mut tx, &p.policy, &mut results).await?;
    tx.commit().await?;
    results
        .pop()
        .unwrap_or_else(|| Err(StoreError::Corrupt("update result lost".into())))
}

fn record_finished(
    metrics: &Metrics,
    update: &WorkerTaskUpdate,
    result: &StoreResult<TaskUpdateOutcome>,
) {
    // A declined task did not run: its near-zero time is no task duration.
    let declined = update.fault_class.as_deref() == Some(crate::state::SELF_CHECK_FAULT_CLASS);
    if let Ok(outcome) = result
        && outcome.task_finished
        && !declined
    {
        let completed = update.status == Some(crate::state::TaskStatus::Completed);
        metrics.task_finished(&update.task_id, &outcome.task_type, completed);
    }
}
