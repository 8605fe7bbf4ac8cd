//! Task status changes: updates from the worker holding a task (lease- and
//! sequence-checked), hand-backs, and the job ripple each change causes — all in the
//! transaction of the change itself.

use sqlx::{Sqlite, Transaction};

use super::failures::{FailedTask, FailureReport, handle_task_failure};
use super::job_status::{JobChange, TaskToAbort, enter_job_status};
use super::{
    Store, StoreError, StoreResult, job_status, job_status_and_counts, now, record_status_event,
};
use crate::state::{FailurePolicy, JobStatus, TaskStatus, job_after_task_change};

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
}

#[derive(Clone, Debug, Default)]
pub struct TaskUpdateOutcome {
    /// False when the sequence number had been applied before.
    pub applied: bool,
    pub job_id: String,
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
    pub async fn apply_worker_task_update(
        &self,
        update: &WorkerTaskUpdate,
    ) -> StoreResult<TaskUpdateOutcome> {
        let mut tx = self.begin().await?;
        // The task and the worker's last applied sequence number in one read.
        let task: Option<(String, Option<String>, i64, String, String, i64)> = sqlx::query_as(
            "SELECT t.status, t.worker_id, t.lease_epoch, t.job_id, t.task_type,
                (SELECT last_update_sequence FROM workers WHERE id = ?1)
             FROM tasks t WHERE t.id = ?2",
        )
        .bind(&update.worker_id)
        .bind(&update.task_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((status, holder, epoch, job_id, task_type, last_sequence)) = task else {
            return Err(StoreError::NotFound(format!(
                "task {} does not exist",
                update.task_id
            )));
        };
        if update.sequence <= last_sequence {
            return Ok(TaskUpdateOutcome {
                applied: false,
                job_id,
                ..Default::default()
            });
        }
        let holds_lease = holder.as_deref() == Some(update.worker_id.as_str())
            && epoch == update.lease_epoch
            && status == TaskStatus::Active.as_str();
        if !holds_lease {
            return Err(StoreError::LeaseLost(format!(
                "task {} is no longer held by this worker under lease {} (status {status}, lease {epoch})",
                update.task_id, update.lease_epoch
            )));
        }
        let now = now();
        sqlx::query("UPDATE workers SET last_update_sequence = ?, last_seen_at = ? WHERE id = ?")
            .bind(update.sequence)
            .bind(&now)
            .bind(&update.worker_id)
            .execute(&mut *tx)
            .await?;
        // Progress and a plain status change (completed) in one statement; failures go
        // through the failure rules below.
        let finished = update
            .status
            .filter(|s| !matches!(s, TaskStatus::Active | TaskStatus::Failed));
        let completed = finished == Some(TaskStatus::Completed);
        sqlx::query(
            "UPDATE tasks SET activity = COALESCE(?1, activity),
                status = COALESCE(?2, status),
                steps_completed = CASE WHEN ?3 THEN steps_total
                    ELSE COALESCE(MIN(?4, steps_total), steps_completed) END,
                progress = CASE WHEN ?2 IS NULL THEN COALESCE(?5, progress) ELSE NULL END,
                last_touched_at = ?6, updated_at = ?6
             WHERE id = ?7",
        )
        .bind(&update.activity)
        .bind(finished.map(|s| s.as_str()))
        .bind(completed)
        .bind(update.steps_completed)
        .bind(update.progress)
        .bind(&now)
        .bind(&update.task_id)
        .execute(&mut *tx)
        .await?;

        let mut outcome = TaskUpdateOutcome {
            applied: true,
            job_id: job_id.clone(),
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
            };
            let report = handle_task_failure(&mut tx, &failed, &self.policy).await?;
            outcome.task_finished = true;
            if let Some(change) = &report.job_change {
                outcome.job_status = Some(change.status);
                outcome.to_abort = change.to_abort.clone();
            }
            outcome.failure = Some(report);
        } else if let Some(new_status) = finished {
            let reason = update.activity.as_deref().unwrap_or("reported by worker");
            record_status_event(
                &mut tx,
                "task",
                &update.task_id,
                &status,
                new_status.as_str(),
                reason,
            )
            .await?;
            outcome.task_finished = true;
            if let Some(change) = ripple_to_job(&mut tx, &job_id, new_status, &self.policy).await? {
                outcome.job_status = Some(change.status);
                outcome.to_abort = change.to_abort;
            }
        }
        tx.commit().await?;
        if outcome.task_finished {
            self.metrics.task_finished(&update.task_id, &task_type, completed);
        }
        Ok(outcome)
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
}

/// `requeue_worker_tasks` inside the caller's transaction.
pub(super) async fn requeue_worker_tasks_in(
    tx: &mut Transaction<'static, Sqlite>,
    worker_id: &str,
    keep: &[String],
    reason: &str,
    policy: &FailurePolicy,
) -> StoreResult<Vec<(String, String)>> {
    let held: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT t.id, t.job_id, j.status FROM tasks t JOIN jobs j ON j.id = t.job_id
             WHERE t.worker_id = ? AND t.status = 'active'",
    )
    .bind(worker_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut requeued = Vec::new();
    for (task_id, job_id, job_status) in held {
        if keep.contains(&task_id) {
            continue;
        }
        let pausing = matches!(job_status.as_str(), "pause-requested" | "paused");
        let new_status = if pausing {
            TaskStatus::Paused
        } else {
            TaskStatus::Queued
        };
        let activity = format!("Task was {new_status} by Manager because {reason}");
        sqlx::query(
                "UPDATE tasks SET status = ?, activity = ?, progress = NULL, updated_at = ? WHERE id = ?",
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

/// Applies the job status change that a task entering `task_status` causes, with its
/// sweep of the job's other tasks and the follow-up statuses.
pub(super) async fn ripple_to_job(
    tx: &mut Transaction<'static, Sqlite>,
    job_id: &str,
    task_status: TaskStatus,
    policy: &FailurePolicy,
) -> StoreResult<Option<JobChange>> {
    // Starting, retrying or queueing a task never depends on the counts (the hot path
    // of every assignment); everything else does.
    let (job, counts) = if matches!(
        task_status,
        TaskStatus::Active | TaskStatus::SoftFailed | TaskStatus::Queued
    ) {
        (job_status(tx, job_id).await?, Default::default())
    } else {
        job_status_and_counts(tx, job_id).await?
    };
    let Some(ripple) = job_after_task_change(job, task_status, &counts, policy.job_fail_percent)
    else {
        return Ok(None);
    };
    Ok(Some(
        enter_job_status(tx, job_id, ripple.status, &ripple.reason).await?,
    ))
}
