//! Task status changes: updates from the worker holding a task (lease- and
//! sequence-checked), hand-backs, and the job ripple each change causes — all in the
//! transaction of the change itself.

use sqlx::{Sqlite, Transaction};

use super::{
    Store, StoreError, StoreResult, job_status, job_task_counts, now, record_status_event,
};
use crate::state::{
    JobStatus, TaskStatus, job_after_task_change, tasks_to_cancel_when_job_becomes,
};

/// Share of failed tasks (in %) at which a job fails (Flamenco's rule).
pub const JOB_FAIL_PERCENT: u64 = 10;

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

/// A task that was running on a worker and must be stopped there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskToAbort {
    pub task_id: String,
    pub worker_id: String,
    pub lease_epoch: i64,
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
}

impl Store {
    /// Applies a worker's update to a task it holds, exactly once per sequence number.
    pub async fn apply_worker_task_update(
        &self,
        update: &WorkerTaskUpdate,
    ) -> StoreResult<TaskUpdateOutcome> {
        let mut tx = self.begin().await?;
        let (last_sequence,): (i64,) =
            sqlx::query_as("SELECT last_update_sequence FROM workers WHERE id = ?")
                .bind(&update.worker_id)
                .fetch_one(&mut *tx)
                .await?;
        let task: Option<(String, Option<String>, i64, String, i64)> = sqlx::query_as(
            "SELECT status, worker_id, lease_epoch, job_id, steps_total FROM tasks WHERE id = ?",
        )
        .bind(&update.task_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((status, holder, epoch, job_id, steps_total)) = task else {
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
        sqlx::query(
            "UPDATE tasks SET activity = COALESCE(?, activity),
                steps_completed = COALESCE(MIN(?, steps_total), steps_completed),
                progress = COALESCE(?, progress), last_touched_at = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(&update.activity)
        .bind(update.steps_completed)
        .bind(update.progress)
        .bind(&now)
        .bind(&now)
        .bind(&update.task_id)
        .execute(&mut *tx)
        .await?;

        let mut outcome = TaskUpdateOutcome {
            applied: true,
            job_id: job_id.clone(),
            ..Default::default()
        };
        if let Some(new_status) = update.status.filter(|s| *s != TaskStatus::Active) {
            let steps = (new_status == TaskStatus::Completed).then_some(steps_total);
            sqlx::query(
                "UPDATE tasks SET status = ?, fault_class = COALESCE(?, fault_class),
                    steps_completed = COALESCE(?, steps_completed), progress = NULL
                 WHERE id = ?",
            )
            .bind(new_status.as_str())
            .bind(&update.fault_class)
            .bind(steps)
            .bind(&update.task_id)
            .execute(&mut *tx)
            .await?;
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
            let (job_status, to_abort) = ripple_to_job(&mut tx, &job_id, new_status).await?;
            outcome.job_status = job_status;
            outcome.to_abort = to_abort;
        }
        refresh_job_steps(&mut tx, &job_id).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Hands back a worker's active tasks except those in `keep` (tasks it still runs):
    /// they return to `queued` (or `paused` when their job is pausing). Returns their job ids.
    pub async fn requeue_worker_tasks(
        &self,
        worker_id: &str,
        keep: &[String],
        reason: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        let mut tx = self.begin().await?;
        let held: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT t.id, t.job_id, j.status FROM tasks t JOIN jobs j ON j.id = t.job_id
             WHERE t.worker_id = ? AND t.status = 'active'",
        )
        .bind(worker_id)
        .fetch_all(&mut *tx)
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
            .execute(&mut *tx)
            .await?;
            record_status_event(
                &mut tx,
                "task",
                &task_id,
                "active",
                new_status.as_str(),
                reason,
            )
            .await?;
            ripple_to_job(&mut tx, &job_id, new_status).await?;
            requeued.push((task_id, job_id));
        }
        tx.commit().await?;
        Ok(requeued)
    }
}

/// Applies the job status change that a task entering `task_status` causes, with its
/// sweep of the job's other tasks. Returns the new job status, if any, and the swept tasks
/// that were running on workers.
pub(super) async fn ripple_to_job(
    tx: &mut Transaction<'static, Sqlite>,
    job_id: &str,
    task_status: TaskStatus,
) -> StoreResult<(Option<JobStatus>, Vec<TaskToAbort>)> {
    let job = job_status(tx, job_id).await?;
    let counts = job_task_counts(tx, job_id).await?;
    let Some(ripple) = job_after_task_change(job, task_status, &counts, JOB_FAIL_PERCENT) else {
        return Ok((None, Vec::new()));
    };
    let now = now();
    let activity = format!("Changed to status \"{}\": {}", ripple.status, ripple.reason);
    sqlx::query("UPDATE jobs SET status = ?, activity = ?, updated_at = ? WHERE id = ?")
        .bind(ripple.status.as_str())
        .bind(&activity)
        .bind(&now)
        .bind(job_id)
        .execute(&mut **tx)
        .await?;
    record_status_event(
        tx,
        "job",
        job_id,
        job.as_str(),
        ripple.status.as_str(),
        &ripple.reason,
    )
    .await?;

    let mut to_abort = Vec::new();
    let sweep = tasks_to_cancel_when_job_becomes(ripple.status);
    if !sweep.is_empty() {
        let statuses: Vec<&str> = sweep.iter().map(|s| s.as_str()).collect();
        let swept: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT id, status, worker_id, lease_epoch FROM tasks
             WHERE job_id = ? AND status IN (SELECT value FROM json_each(?))",
        )
        .bind(job_id)
        .bind(serde_json::to_string(&statuses).unwrap_or_default())
        .fetch_all(&mut **tx)
        .await?;
        let task_activity = format!(
            "Manager canceled this task because the job got status \"{}\"",
            ripple.status
        );
        for (task_id, old, worker_id, lease_epoch) in swept {
            sqlx::query(
                "UPDATE tasks SET status = 'canceled', activity = ?, updated_at = ? WHERE id = ?",
            )
            .bind(&task_activity)
            .bind(&now)
            .bind(&task_id)
            .execute(&mut **tx)
            .await?;
            if let Some(worker_id) = worker_id.filter(|_| old == TaskStatus::Active.as_str()) {
                to_abort.push(TaskToAbort {
                    task_id,
                    worker_id,
                    lease_epoch,
                });
            }
        }
    }
    Ok((Some(ripple.status), to_abort))
}

async fn refresh_job_steps(tx: &mut Transaction<'static, Sqlite>, job_id: &str) -> StoreResult<()> {
    sqlx::query(
        "UPDATE jobs SET steps_completed =
            (SELECT COALESCE(SUM(steps_completed), 0) FROM tasks WHERE job_id = ?1)
         WHERE id = ?1",
    )
    .bind(job_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
