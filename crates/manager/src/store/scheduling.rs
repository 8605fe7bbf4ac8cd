//! The scheduling query: picks the next runnable task for a worker and assigns it, in
//! one write transaction, so a task can never go to two workers.
use super::task_updates::ripple_to_job;
use super::{Store, StoreResult, now, record_status_event};
use crate::state::{JobStatus, TaskStatus};

/// A task just assigned to a worker, with what the worker needs to run it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Assignment {
    pub task_id: String,
    pub task_name: String,
    pub task_type: String,
    pub task_priority: i64,
    pub commands: String,
    pub steps_total: i64,
    pub lease_epoch: i64,
    pub job_id: String,
    pub job_name: String,
    pub job_type: String,
    pub job_priority: i64,
}

/// Eligibility and order of runnable tasks for worker ?1 with task types ?2 (JSON array).
/// Order: job priority, task priority, job age, task index — creation order breaks ties.
const NEXT_TASK_SQL: &str = "
SELECT t.id, t.status FROM tasks t JOIN jobs j ON j.id = t.job_id
WHERE t.status IN ('queued', 'soft-failed')
  AND j.status IN ('queued', 'active')
  AND t.task_type IN (SELECT value FROM json_each(?2))
  AND NOT EXISTS (
      SELECT 1 FROM task_dependencies d JOIN tasks dt ON dt.id = d.dependency_id
      WHERE d.task_id = t.id AND dt.status <> 'completed')
  AND NOT EXISTS (SELECT 1 FROM task_failures f WHERE f.task_id = t.id AND f.worker_id = ?1)
  AND NOT EXISTS (
      SELECT 1 FROM job_blocklist b
      WHERE b.job_id = j.id AND b.worker_id = ?1 AND b.task_type = t.task_type)
  AND (j.worker_tag_id IS NULL OR j.worker_tag_id IN (
      SELECT worker_tag_id FROM worker_tag_membership WHERE worker_id = ?1))
ORDER BY j.priority DESC, t.priority DESC, j.created_at, t.index_in_job
LIMIT 1";

impl Store {
    /// Assigns the next runnable task to `worker_id`, if there is one: the task becomes
    /// `active` under a new lease epoch, and its job `active`.
    pub async fn assign_next_task(
        &self,
        worker_id: &str,
        task_types: &[String],
    ) -> StoreResult<Option<Assignment>> {
        let mut tx = self.begin().await?;
        let types = serde_json::to_string(task_types).unwrap_or_else(|_| "[]".into());
        let next: Option<(String, String)> = sqlx::query_as(NEXT_TASK_SQL)
            .bind(worker_id)
            .bind(&types)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((task_id, old_status)) = next else {
            return Ok(None);
        };
        let now = now();
        sqlx::query(
            "UPDATE tasks SET status = 'active', worker_id = ?, lease_epoch = lease_epoch + 1,
                activity = 'Assigned to worker', fault_class = '', progress = NULL,
                steps_completed = 0, last_touched_at = ?, updated_at = ?
             WHERE id = ?",
        )
        .bind(worker_id)
        .bind(&now)
        .bind(&now)
        .bind(&task_id)
        .execute(&mut *tx)
        .await?;
        let assignment: Assignment = sqlx::query_as(
            "SELECT t.id AS task_id, t.name AS task_name, t.task_type, t.priority AS task_priority,
                t.commands, t.steps_total, t.lease_epoch, j.id AS job_id, j.name AS job_name,
                j.job_type, j.priority AS job_priority
             FROM tasks t JOIN jobs j ON j.id = t.job_id WHERE t.id = ?",
        )
        .bind(&task_id)
        .fetch_one(&mut *tx)
        .await?;
        record_status_event(
            &mut tx,
            "task",
            &task_id,
            &old_status,
            "active",
            "assigned to worker",
        )
        .await?;
        ripple_to_job(&mut tx, &assignment.job_id, TaskStatus::Active).await?;
        tx.commit().await?;
        Ok(Some(assignment))
    }

    /// Undoes an assignment whose instruction never reached the worker.
    pub async fn unassign_task(&self, task_id: &str, lease_epoch: i64) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE tasks SET status = 'queued', activity = 'Worker went away before the task reached it',
                updated_at = ? WHERE id = ? AND status = 'active' AND lease_epoch = ?",
        )
        .bind(now())
        .bind(task_id)
        .bind(lease_epoch)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            record_status_event(
                &mut tx,
                "task",
                task_id,
                "active",
                "queued",
                "not delivered",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether any task could be runnable at all (cheap check before asking per worker).
    pub async fn has_runnable_tasks(&self) -> StoreResult<bool> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM tasks t JOIN jobs j ON j.id = t.job_id
             WHERE t.status IN ('queued', 'soft-failed') AND j.status IN (?, ?))",
        )
        .bind(JobStatus::Queued.as_str())
        .bind(JobStatus::Active.as_str())
        .fetch_one(&self.read)
        .await?;
        Ok(n != 0)
    }
}
