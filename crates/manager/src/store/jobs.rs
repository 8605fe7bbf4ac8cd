//! Jobs and their tasks: submission in one transaction, and reads for the API.
use super::rows::TASK_COLUMNS;
use super::{JobRow, Store, StoreResult, TaskRow, now};

/// Rows per multi-row INSERT (SQLite allows 32,766 bound parameters per statement).
const TASK_ROWS_PER_INSERT: usize = 500;
const DEPENDENCY_ROWS_PER_INSERT: usize = 2_000;

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
    pub created_at: String,
}

#[derive(Clone, Debug)]
pub struct NewTask {
    pub id: String,
    pub name: String,
    pub task_type: String,
    pub priority: i64,
    /// JSON array of commands.
    pub commands: serde_json::Value,
    pub steps_total: i64,
    /// Ids of tasks of the same job this one waits for.
    pub dependencies: Vec<String>,
}

impl Store {
    /// Stores a job with all its tasks and dependencies, atomically.
    pub async fn insert_job(&self, job: &NewJob, tasks: &[NewTask]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let steps_total: i64 = tasks.iter().map(|t| t.steps_total).sum();
        sqlx::query(
            "INSERT INTO jobs (id, name, job_type, type_etag, priority, status, activity, settings,
                metadata, submitter_platform, worker_tag_id, storage_checkout_id, steps_total,
                created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&job.id)
        .bind(&job.name)
        .bind(&job.job_type)
        .bind(&job.type_etag)
        .bind(job.priority)
        .bind(&job.status)
        .bind(job.settings.to_string())
        .bind(job.metadata.to_string())
        .bind(&job.submitter_platform)
        .bind(&job.worker_tag_id)
        .bind(&job.storage_checkout_id)
        .bind(steps_total)
        .bind(&job.created_at)
        .bind(&job.created_at)
        .execute(&mut *tx)
        .await?;
        // Multi-row inserts: one statement per chunk instead of per row keeps a
        // 100,000-task job to a few hundred round trips.
        for (chunk_index, chunk) in tasks.chunks(TASK_ROWS_PER_INSERT).enumerate() {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO tasks (id, job_id, index_in_job, name, task_type, priority, status,
                    commands, steps_total, created_at, updated_at) ",
            );
            insert.push_values(chunk.iter().enumerate(), |mut row, (offset, task)| {
                let index = (chunk_index * TASK_ROWS_PER_INSERT + offset) as i64 + 1;
                row.push_bind(&task.id)
                    .push_bind(&job.id)
                    .push_bind(index)
                    .push_bind(&task.name)
                    .push_bind(&task.task_type)
                    .push_bind(task.priority)
                    .push_bind("queued")
                    .push_bind(task.commands.to_string())
                    .push_bind(task.steps_total)
                    .push_bind(&job.created_at)
                    .push_bind(&job.created_at);
            });
            insert.build().execute(&mut *tx).await?;
        }
        let dependencies: Vec<(&String, &String)> = tasks
            .iter()
            .flat_map(|t| t.dependencies.iter().map(move |d| (&t.id, d)))
            .collect();
        for chunk in dependencies.chunks(DEPENDENCY_ROWS_PER_INSERT) {
            let mut insert =
                sqlx::QueryBuilder::new("INSERT INTO task_dependencies (task_id, dependency_id) ");
            insert.push_values(chunk, |mut row, (task, dependency)| {
                row.push_bind(*task).push_bind(*dependency);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn get_job(&self, id: &str) -> StoreResult<Option<JobRow>> {
        Ok(sqlx::query_as("SELECT * FROM jobs WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Jobs, newest first.
    pub async fn list_jobs(&self, limit: i64, offset: i64) -> StoreResult<Vec<JobRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM jobs ORDER BY created_at DESC, id LIMIT ? OFFSET ?")
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.read)
                .await?,
        )
    }

    pub async fn get_task(&self, id: &str) -> StoreResult<Option<TaskRow>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id WHERE t.id = ?"
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
             WHERE t.job_id = ? ORDER BY t.index_in_job"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(job_id)
            .fetch_all(&self.read)
            .await?)
    }

    /// Ids of the tasks `task_id` waits for.
    pub async fn task_dependencies(&self, task_id: &str) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT dependency_id FROM task_dependencies WHERE task_id = ?")
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
             WHERE f.task_id = ? ORDER BY f.created_at",
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
            "INSERT INTO last_rendered (job_id, updated_at) VALUES (?1, ?2)
             ON CONFLICT (job_id) DO UPDATE SET updated_at = ?2",
        )
        .bind(job_id)
        .bind(now())
        .execute(&self.write)
        .await?;
        Ok(())
    }
}
