//! The newest preview image of many jobs in one read, for the dashboard's grid and the CLI:
//! each job with a `last_rendered` row and when its image was last replaced.
use sqlx::QueryBuilder;

use super::{Store, StoreResult};

impl Store {
    /// `(job id, updated)` of those of `job_ids` that have a preview, in no particular
    /// order. The lookups go through `last_rendered`'s primary key.
    pub async fn last_rendered_of_jobs(
        &self,
        job_ids: &[String],
    ) -> StoreResult<Vec<(String, String)>> {
        if job_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut query =
            QueryBuilder::new("SELECT job_id, updated_at FROM last_rendered WHERE job_id IN (");
        let mut list = query.separated(", ");
        for id in job_ids {
            list.push_bind(id.clone());
        }
        query.push(")");
        Ok(super::placeholders::query_as(&mut query)?
            .fetch_all(&self.read)
            .await?)
    }

    /// `(job id, updated)` of the `limit` most recently updated previews, newest first.
    /// The table holds one row per job with a preview, so the sort stays small.
    pub async fn newest_last_rendered(&self, limit: i64) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT job_id, updated_at FROM last_rendered
             ORDER BY updated_at DESC, rowid DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }
}
