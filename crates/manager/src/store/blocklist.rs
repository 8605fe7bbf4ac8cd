//! Removing entries from a job's blocklist (a user lets a worker try a task type again).
use super::{Store, StoreError, StoreResult};

impl Store {
    /// Removes the (worker id, task type) entries from job `job_id`'s blocklist in one
    /// transaction; entries that are not on it are ignored. Returns how many went.
    pub async fn remove_blocklist_entries(
        &self,
        job_id: &str,
        entries: &[(String, String)],
    ) -> StoreResult<u64> {
        let mut tx = self.begin().await?;
        let job: Option<(String,)> = sqlx::query_as("SELECT id FROM jobs WHERE id = $1")
            .bind(job_id)
            .fetch_optional(&mut *tx)
            .await?;
        if job.is_none() {
            return Err(StoreError::NotFound(format!("no job with id {job_id}")));
        }
        let mut removed = 0;
        for (worker_id, task_type) in entries {
            removed += sqlx::query(
                "DELETE FROM job_blocklist WHERE job_id = $1 AND worker_id = $2 AND task_type = $3",
            )
            .bind(job_id)
            .bind(worker_id)
            .bind(task_type)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(removed)
    }
}
