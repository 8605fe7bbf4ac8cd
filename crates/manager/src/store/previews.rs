//! Reads of the `last_rendered` table: which jobs have a preview image, newest first.
use super::{Store, StoreResult};

impl Store {
    /// Whether `job_id` has a stored preview.
    pub async fn has_last_rendered(&self, job_id: &str) -> StoreResult<bool> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT job_id FROM last_rendered WHERE job_id = $1")
                .bind(job_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.is_some())
    }

    /// The job whose preview was updated last, if any job has one.
    pub async fn latest_last_rendered_job(&self) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT job_id FROM last_rendered ORDER BY updated_at DESC, rowid DESC LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(job_id,)| job_id))
    }
}
