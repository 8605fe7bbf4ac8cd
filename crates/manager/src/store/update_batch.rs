//! Group commit of worker task updates. Updates arriving while a transaction is open
//! queue up and are applied together in the next one: one BEGIN/COMMIT and one WAL write
//! of the shared pages (job row, task counts, indexes) per batch instead of per update.
//! Each update is still checked (sequence, lease) against the state the earlier updates
//! of its batch left, so batching changes no outcome.
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

use super::task_updates::{TaskUpdateOutcome, WorkerTaskUpdate, apply_update_in, ripple_to_job};
use super::{StoreError, StoreResult, now};
use crate::metrics::Metrics;
use crate::state::{FailurePolicy, TaskStatus};

/// Most updates applied in one transaction: keeps a transaction short enough that the
/// dispatcher's assignments are not held back behind it.
const MAX_BATCH: usize = 128;

struct Pending {
    update: WorkerTaskUpdate,
    policy: FailurePolicy,
    reply: oneshot::Sender<StoreResult<TaskUpdateOutcome>>,
}

/// The queue in front of the committing task; started on first use.
#[derive(Default)]
pub(super) struct UpdateQueue {
    sender: OnceLock<mpsc::UnboundedSender<Pending>>,
}

impl UpdateQueue {
    pub(super) async fn apply(
        &self,
        write: &SqlitePool,
        metrics: &Arc<Metrics>,
        update: &WorkerTaskUpdate,
        policy: FailurePolicy,
    ) -> StoreResult<TaskUpdateOutcome> {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            // The task holds the pool, not the store: it ends when the last store handle
            // (and with it the sender) is dropped.
            tokio::spawn(commit_batches(write.clone(), metrics.clone(), receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            update: update.clone(),
            policy,
            reply,
        };
        if sender.send(pending).is_err() {
            return Err(StoreError::Corrupt(
                "the task-update queue stopped (manager shutting down)".into(),
            ));
        }
        answer.await.map_err(|_| {
            StoreError::Corrupt(
                "the task-update queue dropped an update (manager shutting down)".into(),
            )
        })?
    }
}

async fn commit_batches(
    write: SqlitePool,
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
    write: &SqlitePool,
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

async fn apply_each(write: &SqlitePool, metrics: &Metrics, pending: Vec<Pending>) {
    for p in pending {
        let result = apply_alone(write, &p).await;
        record_finished(metrics, &p.update, &result);
        let _ = p.reply.send(result);
    }
}

async fn apply_alone(write: &SqlitePool, p: &Pending) -> StoreResult<TaskUpdateOutcome> {
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

/// What the updates of one transaction leave to write once, at its end.
#[derive(Default)]
pub(super) struct UpdateBatch {
    /// Worker id → highest sequence number applied in this batch (the worker continues
    /// its numbering above it after a sign-on).
    sequences: HashMap<String, i64>,
    /// Task id → highest sequence number applied to it in this batch.
    pub task_sequences: HashMap<String, i64>,
    /// Task status history rows: (task id, old, new, reason, time).
    events: Vec<(String, &'static str, &'static str, String, String)>,
    /// Jobs with a completed task in this batch, in order of first completion.
    completed_jobs: Vec<String>,
}

impl UpdateBatch {
    /// `update` was applied: its number is the newest of its task and, when higher, of its
    /// worker.
    pub fn applied(&mut self, update: &WorkerTaskUpdate) {
        self.task_sequences
            .insert(update.task_id.clone(), update.sequence);
        let worker = self.sequences.entry(update.worker_id.clone()).or_default();
        *worker = (*worker).max(update.sequence);
    }

    pub fn status_event(
        &mut self,
        task_id: &str,
        old: TaskStatus,
        new: TaskStatus,
        reason: &str,
        at: &str,
    ) {
        self.events.push((
            task_id.to_string(),
            old.as_str(),
            new.as_str(),
            reason.to_string(),
            at.to_string(),
        ));
    }

    pub fn completed_in_job(&mut self, job_id: &str) {
        if !self.completed_jobs.iter().any(|j| j == job_id) {
            self.completed_jobs.push(job_id.to_string());
        }
    }

    /// Writes the sequence numbers and history rows, and lets each job with completed
    /// tasks follow its counts; a job change is reported with the batch's last update of
    /// a task of that job (`results` in update order).
    async fn finish(
        self,
        tx: &mut Transaction<'static, Sqlite>,
        policy: &FailurePolicy,
        results: &mut [StoreResult<TaskUpdateOutcome>],
    ) -> StoreResult<()> {
        if !self.sequences.is_empty() {
            let sequences: Vec<(&String, &i64)> = self.sequences.iter().collect();
            sqlx::query(
                "UPDATE workers SET last_update_sequence = MAX(last_update_sequence, s.seq),
                    last_seen_at = ?2
                 FROM (SELECT value ->> 0 AS id, value ->> 1 AS seq FROM json_each(?1)) AS s
                 WHERE workers.id = s.id",
            )
            .bind(serde_json::to_string(&sequences).unwrap_or_else(|_| "[]".into()))
            .bind(now())
            .execute(&mut **tx)
            .await?;
        }
        insert_task_status_events(tx, &self.events).await?;
        for job_id in &self.completed_jobs {
            let Some(change) = ripple_to_job(tx, job_id, TaskStatus::Completed, policy).await?
            else {
                continue;
            };
            let last = results
                .iter_mut()
                .rev()
                .filter_map(|r| r.as_mut().ok())
                .find(|o| o.applied && o.job_id == *job_id);
            if let Some(outcome) = last {
                outcome.job_status = Some(change.status);
                outcome.to_abort.extend(change.to_abort);
            }
        }
        Ok(())
    }
}

/// Task status history rows (task id, old, new, reason, time) in one statement.
pub(super) async fn insert_task_status_events(
    tx: &mut Transaction<'static, Sqlite>,
    events: &[(String, &'static str, &'static str, String, String)],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO status_events (entity, entity_id, old_status, new_status, reason, created_at)
         SELECT 'task', value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4
         FROM json_each(?)",
    )
    .bind(serde_json::to_string(events).unwrap_or_else(|_| "[]".into()))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn record_finished(
    metrics: &Metrics,
    update: &WorkerTaskUpdate,
    result: &StoreResult<TaskUpdateOutcome>,
) {
    if let Ok(outcome) = result
        && outcome.task_finished
    {
        let completed = update.status == Some(crate::state::TaskStatus::Completed);
        metrics.task_finished(&update.task_id, &outcome.task_type, completed);
    }
}
