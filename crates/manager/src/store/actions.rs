//! Status changes users ask for: job pause/resume/cancel/requeue, task requeue/cancel,
//! priority, deletion. Each is checked against the current status inside its own
//! transaction (so a refusal is never based on a stale read) and commits with its ripple.
use super::job_ripple::ripple_to_job;
use super::job_status::{JobChange, TaskToAbort, enter_job_status};
use super::{Store, StoreError, StoreResult, job_status, now, record_status_event};
use crate::state::{
    JobStatus, TaskStatus, check_job_request, check_task_request, job_after_task_requeue,
};

/// The result of a task status request.
#[derive(Clone, Debug)]
pub struct TaskChange {
    pub job_id: String,
    pub status: TaskStatus,
    /// The task ran on a worker that must stop it.
    pub to_abort: Option<TaskToAbort>,
    pub job_change: Option<JobChange>,
}

impl Store {
    /// A user asks job `job_id` to enter `requested`. Requeueing also clears the failure
    /// lists of its tasks and the job's blocklist (automatic requeues keep them).
    pub async fn request_job_status(
        &self,
        job_id: &str,
        requested: JobStatus,
        reason: &str,
    ) -> StoreResult<JobChange> {
        let mut tx = self.begin().await?;
        let current = job_status_or_not_found(&mut tx, job_id).await?;
        check_job_request(current, requested).map_err(StoreError::Refused)?;
        if requested == JobStatus::Requeueing {
            sqlx::query(
                "DELETE FROM task_failures WHERE task_id IN (SELECT id FROM tasks WHERE job_id = $1)",
            )
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM job_blocklist WHERE job_id = $1")
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
        }
        let reason = if reason.trim().is_empty() {
            "requested by a user"
        } else {
            reason
        };
        let change = enter_job_status(&mut tx, job_id, requested, reason).await?;
        tx.commit().await?;
        Ok(change)
    }

    /// Sets a job's priority (0..=100).
    pub async fn set_job_priority(&self, job_id: &str, priority: i64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE jobs SET priority = $1, updated_at = $2 WHERE id = $3")
            .bind(priority)
            .bind(now())
            .bind(job_id)
            .execute(self.writer()?)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no job with id {job_id}")));
        }
        Ok(())
    }

    /// A user asks task `task_id` to be requeued (`queued`) or `canceled`.
    pub async fn request_task_status(
        &self,
        task_id: &str,
        requested: TaskStatus,
        reason: &str,
    ) -> StoreResult<TaskChange> {
        let mut tx = self.begin().await?;
        let row: Option<(String, String, Option<String>, i64)> = sqlx::query_as(
            "SELECT status, job_id, worker_id, lease_epoch FROM tasks WHERE id = $1",
        )
        .bind(task_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((status, job_id, worker_id, lease_epoch)) = row else {
            return Err(StoreError::NotFound(format!("no task with id {task_id}")));
        };
        let current: TaskStatus = status
            .parse()
            .map_err(|e: crate::state::UnknownStatus| StoreError::Corrupt(e.to_string()))?;
        check_task_request(current, requested).map_err(StoreError::Refused)?;
        let job = job_status(&mut tx, &job_id).await?;
        crate::state::check_task_request_in_job(job).map_err(StoreError::Refused)?;
        let reason = if reason.trim().is_empty() {
            "requested by a user"
        } else {
            reason
        };
        let new_status = match requested {
            TaskStatus::Queued => crate::state::requeued_task_status(job),
            other => other,
        };
        if requested == TaskStatus::Queued {
            sqlx::query("DELETE FROM task_failures WHERE task_id = $1")
                .bind(task_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE tasks SET status = $1, activity = $2, progress = NULL, updated_at = $3,
                steps_completed = CASE WHEN $1 = 'queued' THEN 0 ELSE steps_completed END
             WHERE id = $4",
        )
        .bind(new_status.as_str())
        .bind(format!("Changed to status \"{new_status}\": {reason}"))
        .bind(now())
        .bind(task_id)
        .execute(&mut *tx)
        .await?;
        record_status_event(
            &mut tx,
            "task",
            task_id,
            current.as_str(),
            new_status.as_str(),
            reason,
        )
        .await?;
        let to_abort = worker_id
            .filter(|_| current == TaskStatus::Active)
            .map(|worker_id| TaskToAbort {
                task_id: task_id.to_string(),
                worker_id,
                lease_epoch,
            });
        let job_change = match (requested, job_after_task_requeue(job)) {
            (TaskStatus::Queued, Some(job_next)) => {
                Some(enter_job_status(&mut tx, &job_id, job_next, "a task was queued again").await?)
            }
            _ => ripple_to_job(&mut tx, &job_id, new_status, &self.policy).await?,
        };
        tx.commit().await?;
        Ok(TaskChange {
            job_id,
            status: new_status,
            to_abort,
            job_change,
        })
    }

    /// Deletes a job with its tasks, failure lists and blocklist, and leaves a tombstone
    /// (`deleted_job_dir_removed` takes it away once its directory is gone). Returns the
    /// tasks that were running, so their workers can be told to stop.
    pub async fn delete_job(&self, job_id: &str) -> StoreResult<Vec<TaskToAbort>> {
        let mut tx = self.begin().await?;
        job_status_or_not_found(&mut tx, job_id).await?;
        let running: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT id, worker_id, lease_epoch FROM tasks
             WHERE job_id = $1 AND status = 'active' AND worker_id IS NOT NULL",
        )
        .bind(job_id)
        .fetch_all(&mut *tx)
        .await?;
        // A completed job's dependents got what they waited for: deleting it (retention, say)
        // must not hold them back, so their edges to it go with it. The edges to a job deleted
        // before it completed stay, and hold its dependents ("deleted").
        sqlx::query(
            "DELETE FROM job_dependencies WHERE depends_on_id = $1
               AND EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND status = 'completed')",
        )
        .bind(job_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM jobs WHERE id = $1")
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        record_status_event(&mut tx, "job", job_id, "", "deleted", "deleted by a user").await?;
        // In the same transaction: a kill before the files are removed leaves a tombstone
        // naming the directory to remove at the next start.
        sqlx::query(
            "INSERT INTO deleted_job_dirs (job_id, deleted_at) VALUES ($1, $2)
             ON CONFLICT (job_id) DO UPDATE SET deleted_at = excluded.deleted_at",
        )
        .bind(job_id)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(running
            .into_iter()
            .map(|(task_id, worker_id, lease_epoch)| TaskToAbort {
                task_id,
                worker_id,
                lease_epoch,
            })
            .collect())
    }

    /// The job's blocklist: (worker id, worker name, task type, reason), by worker name.
    pub async fn job_blocklist(
        &self,
        job_id: &str,
    ) -> StoreResult<Vec<(String, String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT b.worker_id, w.name, b.task_type, b.reason FROM job_blocklist b
             JOIN workers w ON w.id = b.worker_id WHERE b.job_id = $1 ORDER BY w.name, b.task_type",
        )
        .bind(job_id)
        .fetch_all(&self.read)
        .await?)
    }
}

async fn job_status_or_not_found(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    job_id: &str,
) -> StoreResult<JobStatus> {
    let row: Option<(String,)> = sqlx::query_as("SELECT status FROM jobs WHERE id = $1")
        .bind(job_id)
        .fetch_optional(&mut **tx)
        .await?;
    let (status,) = row.ok_or_else(|| StoreError::NotFound(format!("no job with id {job_id}")))?;
    status
        .parse()
        .map_err(|e: crate::state::UnknownStatus| StoreError::Corrupt(e.to_string()))
}
