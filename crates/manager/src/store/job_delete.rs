//! Job deletion bookkeeping: a deletion request only marks the job
//! (`delete_requested_at`, as Flamenco does); the job deleter (`crate::job_deleter`) then
//! removes its files and rows. A mark survives restarts, so an interrupted deletion is
//! finished by the deleter's next sweep.
use super::{Store, StoreError, StoreResult, now};

/// What the deleter needs to know about a marked job before removing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletionInfo {
    /// The job's Shaman checkout (relative to the checkout root); empty when none.
    pub checkout_id: String,
    /// Another job that is not being deleted uses the same checkout, so it stays.
    pub checkout_shared: bool,
}

impl Store {
    /// Marks one job for deletion (and bumps `updated_at`); NotFound for an unknown job.
    pub async fn mark_job_for_deletion(&self, job_id: &str) -> StoreResult<()> {
        let at = now();
        let done = sqlx::query(
            "UPDATE jobs SET delete_requested_at = COALESCE(delete_requested_at, $1),
                 updated_at = $1 WHERE id = $2",
        )
        .bind(&at)
        .bind(job_id)
        .execute(self.writer()?)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no job with id {job_id}")));
        }
        Ok(())
    }

    /// Marks every job last updated at or before `updated_max` (stored time format) for
    /// deletion. Returns their ids, oldest first; empty when none matched.
    pub async fn mark_jobs_updated_until(&self, updated_max: &str) -> StoreResult<Vec<String>> {
        let mut tx = self.begin().await?;
        let ids: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM jobs WHERE updated_at <= $1 ORDER BY updated_at, id")
                .bind(updated_max)
                .fetch_all(&mut *tx)
                .await?;
        let at = now();
        sqlx::query(
            "UPDATE jobs SET delete_requested_at = COALESCE(delete_requested_at, $1),
                 updated_at = $1 WHERE updated_at <= $2",
        )
        .bind(&at)
        .bind(updated_max)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    /// Ids of the jobs marked for deletion, in the order they were marked.
    pub async fn jobs_marked_for_deletion(&self) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM jobs WHERE delete_requested_at IS NOT NULL
             ORDER BY delete_requested_at, id",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The job's checkout and whether a job that stays uses it too; NotFound when the
    /// job does not exist (any more).
    pub async fn deletion_info(&self, job_id: &str) -> StoreResult<DeletionInfo> {
        let row: Option<(String, super::Flag)> = sqlx::query_as(
            "SELECT j.storage_checkout_id,
                    j.storage_checkout_id <> '' AND EXISTS (
                        SELECT 1 FROM jobs o WHERE o.id <> j.id
                          AND o.storage_checkout_id = j.storage_checkout_id
                          AND o.delete_requested_at IS NULL)
             FROM jobs j WHERE j.id = $1",
        )
        .bind(job_id)
        .fetch_optional(self.writer()?)
        .await?;
        let (checkout_id, shared) =
            row.ok_or_else(|| StoreError::NotFound(format!("no job with id {job_id}")))?;
        Ok(DeletionInfo {
            checkout_id,
            checkout_shared: shared.0,
        })
    }

    /// Ids of deleted jobs whose directory may still exist (tombstones left by `delete_job`).
    pub async fn deleted_job_dirs(&self) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT job_id FROM deleted_job_dirs ORDER BY deleted_at, job_id")
                .fetch_all(&self.read)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Forgets the tombstone of a deleted job once its directory is gone.
    pub async fn deleted_job_dir_removed(&self, job_id: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM deleted_job_dirs WHERE job_id = $1")
            .bind(job_id)
            .execute(self.writer()?)
            .await?;
        Ok(())
    }
}
