//! Task status changes: updates from the worker holding a task (lease- and
//! sequence-checked), hand-backs, and the job ripple each change causes — all in the
//! transaction of the change itself.

mod batch;

pub(super) use batch::UpdateBatch;

use sqlx::{Any, Transaction};

use super::declines::handle_task_decline;
use super::failures::{FailedTask, FailureReport, handle_task_failure};
use super::job_ripple::ripple_to_job;
use super::job_status::TaskToAbort;
use super::{Engine, Store, StoreError, StoreResult, now, record_status_event};
use crate::state::{
    FailurePolicy, JobStatus, SELF_CHECK_FAULT_CLASS, TaskStatus, requeued_task_status,
};

/// What a worker reports about a task it holds.
#[derive(Clone, Debug, Default)]
pub struct WorkerTaskUpdate {
    pub worker_id: String,
    pub task_id: String,
    pub lease_epoch: i64,
    pub sequence: i64,
    pub status: Option<TaskStatus>,
    pub activity: Option<String>,
    pub steps_completed: Option<i64>,
    pub progress: Option<f64>,
    pub fault_class: Option<String>,
    /// The worker's message when the task failed (empty otherwise).
    pub failure_message: String,
}

#[derive(Clone, Debug, Default)]
pub struct TaskUpdateOutcome {
    /// False when the sequence number had been applied before.
    pub applied: bool,
    pub job_id: String,
    /// The task's type (for the task-duration histogram).
    pub task_type: String,
    /// The task left `active` (completed or failed): the worker has a free slot.
    pub task_finished: bool,
    pub job_status: Option<JobStatus>,
    /// Other tasks that were swept along (e.g. the job failed) and run on workers.
    pub to_abort: Vec<TaskToAbort>,
    /// Set when the task failed: what the failure rules did.
    pub failure: Option<FailureReport>,
}

impl Store {
    /// Applies a worker's update to a task it holds, exactly once per sequence number.
    /// Concurrent updates are committed together (`update_batch.rs`).
    pub async fn apply_worker_task_update(
        &self,
        update: &WorkerTaskUpdate,
    ) -> StoreResult<TaskUpdateOutcome> {
        self.updates
            .apply(
                self.writer()?,
                &self.metrics,
                &self.tasks,
                update,
                self.policy,
            )
            .await
    }

    /// Hands back a worker's active tasks except those in `keep` (tasks it still runs):
    /// they return to `queued` (or `paused` when their job is pausing). Returns
    /// (task id, job id) of each.
    pub async fn requeue_worker_tasks(
        &self,
        worker_id: &str,
        keep: &[String],
        reason: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        let mut tx = self.begin().await?;
        let requeued =
            requeue_worker_tasks_in(&mut tx, worker_id, keep, reason, &self.policy).await?;
        tx.commit().await?;
        Ok(requeued)
    }

    /// Hands back every task the worker runs, in one transaction: returns the leases they
    /// ran under (to abort them on the worker) and the tasks requeued (task id, job id).
    pub async fn hand_back_worker_tasks(
        &self,
        worker_id: &str,
        reason: &str,
    ) -> StoreResult<(Vec<TaskToAbort>, Vec<(String, String)>)> {
        let mut tx = self.begin().await?;
        let running: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, lease_epoch FROM tasks WHERE worker_id = $1 AND status = 'active'",
        )
        .bind(worker_id)
        .fetch_all(&mut *tx)
        .await?;
        let requeued =
            requeue_worker_tasks_in(&mut tx, worker_id, &[], reason, &self.policy).await?;
        tx.commit().await?;
        let running = running
            .into_iter()
            .map(|(task_id, lease_epoch)| TaskToAbort {
                task_id,
                worker_id: worker_id.to_string(),
                lease_epoch,
            })
            .collect();
        Ok((running, requeued))
    }
}

/// One worker update inside the caller's transaction. Refusals (unknown task, lost
/// lease, a sequence number applied before) are decided before anything is written.
/// Bookkeeping shared by the updates of one transaction (the workers' sequence numbers,
/// status history rows, the job ripple of completions) waits in `batch` and is written
/// by [`UpdateBatch::finish`].
pub(super) async fn apply_update_in(
    tx: &mut Transaction<'static, Any>,
    update: &WorkerTaskUpdate,
    policy: &FailurePolicy,
    batch: &mut UpdateBatch,
) -> StoreResult<TaskUpdateOutcome> {
    if batch
        .task_sequences
        .get(&update.task_id)
        .is_some_and(|&seen| update.sequence <= seen)
    {
        return Ok(TaskUpdateOutcome::default());
    }
    let now = now();
    // Progress and a plain status change (completed) in one statement; failures go
    // through the failure rules below. The lease and the sequence number are checked in
    // the same statement; when it changes nothing, `refusal` says why.
    let finished = update
        .status
        .filter(|s| !matches!(s, TaskStatus::Active | TaskStatus::Failed));
    let completed = finished == Some(TaskStatus::Completed);
    let held: Option<(String, String)> = sqlx::query_as(
        "UPDATE tasks SET activity = COALESCE($1, activity),
            status = COALESCE($2, status),
            steps_completed = CASE WHEN $3 THEN steps_total
                ELSE COALESCE(CASE WHEN $4 < steps_total THEN $4
                                   WHEN $4 IS NOT NULL THEN steps_total END,
                              steps_completed) END,
            progress = CASE WHEN $2 IS NULL THEN COALESCE($5, progress) ELSE NULL END,
            last_touched_at = $6, updated_at = $6, last_update_sequence = $10
         WHERE id = $7 AND status = 'active' AND worker_id = $8 AND lease_epoch = $9
           AND $10 > last_update_sequence
         RETURNING job_id, task_type",
    )
    .bind(&update.activity)
    .bind(finished.map(|s| s.as_str()))
    .bind(completed)
    .bind(update.steps_completed)
    .bind(update.progress)
    .bind(&now)
    .bind(&update.task_id)
    .bind(&update.worker_id)
    .bind(update.lease_epoch)
    .bind(update.sequence)
    // Not cached on PostgreSQL: sqlx's Any driver declares a NULL f64 (`progress`) as a
    // 4-byte float there, and a statement prepared with it then refuses an 8-byte value.
    .persistent(Engine::of(tx) == Engine::Sqlite)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((job_id, task_type)) = held else {
        return refusal(tx, update).await;
    };
    batch.applied(update);

    let mut outcome = TaskUpdateOutcome {
        applied: true,
        job_id: job_id.clone(),
        task_type: task_type.clone(),
        ..Default::default()
    };
    if update.status == Some(TaskStatus::Failed) {
        let fault_class = update.fault_class.as_deref().unwrap_or("");
        let failed = FailedTask {
            task_id: &update.task_id,
            job_id: &job_id,
            task_type: &task_type,
            worker_id: &update.worker_id,
            fault_class,
            message: &update.failure_message,
        };
        // A task its worker declined after its self-check is not a failure of the task.
        let report = if fault_class == SELF_CHECK_FAULT_CLASS {
            handle_task_decline(tx, &failed, policy).await?
        } else {
            handle_task_failure(tx, &failed, policy).await?
        };
        outcome.task_finished = true;
        if let Some(change) = &report.job_change {
            outcome.job_status = Some(change.status);
            outcome.to_abort = change.to_abort.clone();
        }
        outcome.failure = Some(report);
    } else if let Some(new_status) = finished {
        let reason = update.activity.as_deref().unwrap_or("reported by worker");
        batch.status_event(
            &update.task_id,
            TaskStatus::Active,
            new_status,
            reason,
            &now,
        );
        outcome.task_finished = true;
        if new_status == TaskStatus::Completed {
            // The job follows its task counts once the whole batch is in (same result
            // as after each completion: only the final counts can complete the job).
            batch.completed_in_job(&job_id);
        } else if let Some(change) = ripple_to_job(tx, &job_id, new_status, policy).await? {
            outcome.job_status = Some(change.status);
            outcome.to_abort = change.to_abort;
        }
    }
    Ok(outcome)
}

/// Why an update changed nothing: the task does not exist, the sequence number was
/// applied to this task under this worker's lease before (answered as not applied), or the
/// worker no longer holds the lease.
async fn refusal(
    tx: &mut Transaction<'static, Any>,
    update: &WorkerTaskUpdate,
) -> StoreResult<TaskUpdateOutcome> {
    let task: Option<(String, Option<String>, i64, String, i64)> = sqlx::query_as(
        "SELECT status, worker_id, lease_epoch, job_id, last_update_sequence
         FROM tasks WHERE id = $1",
    )
    .bind(&update.task_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((status, worker, epoch, job_id, last_sequence)) = task else {
        return Err(StoreError::NotFound(format!(
            "task {} does not exist",
            update.task_id
        )));
    };
    let same_lease =
        worker.as_deref() == Some(update.worker_id.as_str()) && epoch == update.lease_epoch;
    if same_lease && update.sequence <= last_sequence {
        return Ok(TaskUpdateOutcome {
            applied: false,
            job_id,
            ..Default::default()
        });
    }
    Err(StoreError::LeaseLost(format!(
        "task {} is no longer held by this worker under lease {} (status {status}, lease {epoch})",
        update.task_id, update.lease_epoch
    )))
}

/// `requeue_worker_tasks` inside the caller's transaction.
pub(super) async fn requeue_worker_tasks_in(
    tx: &mut Transaction<'static, Any>,
    worker_id: &str,
    keep: &[String],
    reason: &str,
    policy: &FailurePolicy,
) -> StoreResult<Vec<(String, String)>> {
    let held: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT t.id, t.job_id, j.status FROM tasks t JOIN jobs j ON j.id = t.job_id
             WHERE t.worker_id = $1 AND t.status = 'active'",
    )
    .bind(worker_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut requeued = Vec::new();
    for (task_id, job_id, job_status) in held {
        if keep.contains(&task_id) {
            continue;
        }
        let job_status: JobStatus = job_status
            .parse()
            .map_err(|e: crate::state::UnknownStatus| StoreError::Corrupt(e.to_string()))?;
        let new_status = requeued_task_status(job_status);
        let activity = format!("Task was {new_status} by Manager because {reason}");
        sqlx::query(
                "UPDATE tasks SET status = $1, activity = $2, progress = NULL, updated_at = $3 WHERE id = $4",
            )
            .bind(new_status.as_str())
            .bind(&activity)
            .bind(now())
            .bind(&task_id)
            .execute(&mut **tx)
            .await?;
        record_status_event(tx, "task", &task_id, "active", new_status.as_str(), reason).await?;
        ripple_to_job(tx, &job_id, new_status, policy).await?;
        requeued.push((task_id, job_id));
    }
    Ok(requeued)
}
