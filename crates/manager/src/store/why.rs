//! Reads for "why is this task not running?": its dependencies, the job's tag members,
//! and how many runnable tasks are ahead of it.
use std::collections::HashMap;

use super::{Store, StoreError, StoreResult};
use crate::state::JobRequirements;

impl Store {
    /// The task's dependencies: (id, name, status).
    pub async fn dependency_statuses(
        &self,
        task_id: &str,
    ) -> StoreResult<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT t.id, t.name, t.status FROM task_dependencies d JOIN tasks t ON t.id = d.dependency_id
             WHERE d.task_id = $1 ORDER BY t.index_in_job",
        )
        .bind(task_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Distinct workers running tasks of the job now.
    pub async fn job_worker_ids(&self, job_id: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT worker_id FROM tasks
             WHERE job_id = $1 AND status = 'active' AND worker_id IS NOT NULL",
        )
        .bind(job_id)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Ids of the workers in a tag.
    pub async fn tag_members(&self, tag_id: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT worker_id FROM worker_tag_membership WHERE worker_tag_id = $1")
                .bind(tag_id)
                .fetch_all(&self.read)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Workers that failed the task: ids only.
    pub async fn task_failed_by_ids(&self, task_id: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT worker_id FROM task_failures WHERE task_id = $1")
                .bind(task_id)
                .fetch_all(&self.read)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Runnable tasks (queued/soft-failed in a queued/active job) the scheduler would
    /// consider before this one: higher job priority, higher task priority, then the
    /// scheduler's order (rowid: older jobs first, then the job's own order, which
    /// preview-first changes).
    pub async fn runnable_tasks_ahead(&self, task_id: &str) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM tasks t JOIN jobs j ON j.id = t.job_id,
                 tasks me JOIN jobs mj ON mj.id = me.job_id
             WHERE me.id = $1 AND t.id <> me.id
               AND t.status IN ('queued', 'soft-failed') AND j.status IN ('queued', 'active')
               AND (j.priority > mj.priority
                    OR (j.priority = mj.priority AND t.priority > me.priority)
                    OR (j.priority = mj.priority AND t.priority = me.priority
                        AND t.rowid < me.rowid))",
        )
        .bind(task_id)
        .fetch_one(&self.read)
        .await?;
        Ok(n)
    }

    /// A job's requirements (none when the job does not exist).
    pub async fn job_requirements(&self, job_id: &str) -> StoreResult<JobRequirements> {
        let row: Option<(String,)> = sqlx::query_as("SELECT requirements FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&self.read)
            .await?;
        match row {
            Some((json,)) => JobRequirements::from_stored(&json)
                .map_err(|e| StoreError::Corrupt(format!("requirements of job {job_id}: {e}"))),
            None => Ok(JobRequirements::default()),
        }
    }

    /// Worker id → the names of its tags.
    pub async fn worker_tag_names(&self) -> StoreResult<HashMap<String, Vec<String>>> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.worker_id, g.name FROM worker_tag_membership m
             JOIN worker_tags g ON g.id = m.worker_tag_id",
        )
        .fetch_all(&self.read)
        .await?;
        let mut names: HashMap<String, Vec<String>> = HashMap::new();
        for (worker, tag) in rows {
            names.entry(worker).or_default().push(tag);
        }
        Ok(names)
    }
}
