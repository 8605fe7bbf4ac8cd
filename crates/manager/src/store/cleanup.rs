//! Queries for the housekeeping monitors: which jobs' files may go (task-log retention)
//! and which workers have been away too long (auto-removal).
use std::collections::HashMap;

use super::{Store, StoreResult};

/// What retention needs to know about a job that has files on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobAge {
    pub status: String,
    /// RFC 3339; for a finished job, when it finished (or was last changed after).
    pub updated_at: String,
}

impl JobAge {
    /// Finished jobs' logs may be deleted; those of jobs that can still run may not.
    pub fn is_finished(&self) -> bool {
        matches!(
            self.status.as_str(),
            "completed" | "failed" | "canceled" | "rejected"
        )
    }
}

impl Store {
    /// Status and last change of each of these jobs that exists.
    pub async fn job_ages(&self, job_ids: &[String]) -> StoreResult<HashMap<String, JobAge>> {
        let ids = serde_json::Value::from(job_ids.to_vec()).to_string();
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT id, status, updated_at FROM jobs WHERE id IN (SELECT value FROM json_each($1))",
        )
        .bind(ids)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, status, updated_at)| (id, JobAge { status, updated_at }))
            .collect())
    }

    /// (id, name) of workers not deleted and not seen since `cutoff` (RFC 3339); never
    /// seen counts from registration.
    pub async fn workers_away_since(&self, cutoff: &str) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, name FROM workers
             WHERE deleted_at IS NULL AND COALESCE(last_seen_at, created_at) < $1
             ORDER BY name, id",
        )
        .bind(cutoff)
        .fetch_all(&self.read)
        .await?)
    }
}
