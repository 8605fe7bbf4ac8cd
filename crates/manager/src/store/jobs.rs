//! Jobs and their tasks: submission in one transaction, and reads for the API.
use super::rows::TASK_COLUMNS;
use super::{JobRow, Store, StoreResult, TaskRow, now};

/// A compiled job ready to be stored.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub id: String,
    pub name: String,
    pub job_type: String,
    pub type_etag: String,
    pub priority: i64,
    pub status: String,
    pub settings: serde_json::Value,
    pub metadata: serde_json::Value,
    pub submitter_platform: String,
    pub worker_tag_id: Option<String>,
    pub storage_checkout_id: String,
    /// Minimum RAM/GPUs and required worker tags (`state::JobRequirements`).
    pub requirements: crate::state::JobRequirements,
    /// Resource pools its tasks hold and its worker limit (`state::JobLimits`).
    pub limits: crate::state::JobLimits,
    /// Jobs that must complete before this one runs (checked to exist).
    pub depends_on: Vec<String>,
    /// Hand out every Nth task first, then the gaps (None: in order).
    pub preview_first_every: Option<u32>,
    /// The task duration asked for (adaptive chunking; None: chunks stay as authored).
    pub target_task_seconds: Option<f64>,
    pub created_at: String,
}

#[derive(Clone, Debug)]
pub struct NewTask {
    pub id: String,
    pub name: String,
    pub task_type: String,
    pub priority: i64,
    /// JSON array of commands (`{name, parameters, total_step_count}`), stored as given.
    pub commands: String,
    pub steps_total: i64,
    /// Ids of tasks of the same job this one waits for.
    pub dependencies: Vec<String>,
    /// The frames the task renders when it is a chunk that may be regrouped.
    pub frames: Option<String>,
}

impl From<crate::compiler::AuthoredTask> for NewTask {
    /// A task as stored; moves its text (commands of a big job are tens of megabytes).
    fn from(task: crate::compiler::AuthoredTask) -> Self {
        NewTask {
            id: task.uuid,
            name: task.name,
            task_type: task.task_type,
            priority: i64::from(task.priority),
            commands: task.commands_json,
            // Summed by the job type's export (a command without steps counts as one).
            steps_total: i64::try_from(task.steps_total).unwrap_or(i64::MAX),
            dependencies: task.dependencies,
            frames: task.frames,
        }
    }
}

impl Store {
    /// Stores a job with all its tasks and dependencies, atomically. Tasks are queued and numbered
    /// 1, 2, … in the order given; see [`Store::begin_job_insert`] to store them in steps.
    pub async fn insert_job(&self, job: &NewJob, tasks: &[NewTask]) -> StoreResult<()> {
        let mut insert = self.begin_job_insert(job).await?;
        insert.add_tasks(tasks.to_vec()).await?;
        insert.commit().await
    }

    /// One job, with the ids of the jobs it depends on.
    pub async fn get_job(&self, id: &str) -> StoreResult<Option<JobRow>> {
        let mut job: Option<JobRow> = sqlx::query_as("SELECT * FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        if let Some(job) = &mut job {
            let ids: Vec<(String,)> = sqlx::query_as(
                "SELECT depends_on_id FROM job_dependencies WHERE job_id = $1 ORDER BY depends_on_id",
            )
            .bind(id)
            .fetch_all(&self.read)
            .await?;
            job.depends_on = ids.into_iter().map(|(id,)| id).collect();
        }
        Ok(job)
    }

    /// Jobs, newest first.
    pub async fn list_jobs(&self, limit: i64, offset: i64) -> StoreResult<Vec<JobRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs ORDER BY created_at DESC, id LIMIT $1 OFFSET $2")
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.read)
                .await?,
        )
    }

    pub async fn get_task(&self, id: &str) -> StoreResult<Option<TaskRow>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id WHERE t.id = $1"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// A job's tasks in creation order.
    pub async fn list_job_tasks(&self, job_id: &str) -> StoreResult<Vec<TaskRow>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id
             WHERE t.job_id = $1 ORDER BY t.index_in_job"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(job_id)
            .fetch_all(&self.read)
            .await?)
    }

    /// Ids of the tasks `task_id` waits for.
    pub async fn task_dependencies(&self, task_id: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT dependency_id FROM task_dependencies WHERE task_id = $1")
                .bind(task_id)
                .fetch_all(&self.read)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Workers that failed this task: (id, name, address).
    pub async fn task_failed_by(
        &self,
        task_id: &str,
    ) -> StoreResult<Vec<(String, String, String)>> {
        Ok(sqlx::query_as(
            "SELECT w.id, w.name, w.address FROM task_failures f JOIN workers w ON w.id = f.worker_id
             WHERE f.task_id = $1 ORDER BY f.created_at",
        )
        .bind(task_id)
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn count_jobs(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM jobs")
            .fetch_one(&self.read)
            .await?;
        Ok(n)
    }

    /// Remembers that `job_id` has a new preview image.
    pub async fn set_last_rendered(&self, job_id: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO last_rendered (job_id, updated_at) VALUES ($1, $2)
             ON CONFLICT (job_id) DO UPDATE SET updated_at = $2",
        )
        .bind(job_id)
        .bind(now())
        .execute(self.writer()?)
        .await?;
        Ok(())
    }
}
