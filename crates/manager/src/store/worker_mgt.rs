//! Reads and edits for worker management: a worker's tags and its current task.
use super::rows::TASK_COLUMNS;
use super::{Store, StoreResult, TagRow, TaskRow};

impl Store {
    /// The tags a worker belongs to, by name.
    pub async fn worker_tags(&self, worker_id: &str) -> StoreResult<Vec<TagRow>> {
        Ok(sqlx::query_as(
            "SELECT t.id, t.name, t.description FROM worker_tags t
             JOIN worker_tag_membership m ON m.worker_tag_id = t.id
             WHERE m.worker_id = $1 ORDER BY t.name",
        )
        .bind(worker_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Replaces a worker's tags, atomically. The caller checked that the tags exist.
    pub async fn set_worker_tags(&self, worker_id: &str, tag_ids: &[String]) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM worker_tag_membership WHERE worker_id = $1")
            .bind(worker_id)
            .execute(&mut *tx)
            .await?;
        for tag in tag_ids {
            sqlx::query(
                "INSERT INTO worker_tag_membership (worker_tag_id, worker_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
            )
            .bind(tag)
            .bind(worker_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The tasks a worker runs now, or else the one it touched last.
    pub async fn worker_tasks(&self, worker_id: &str) -> StoreResult<Vec<TaskRow>> {
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id
             WHERE t.worker_id = $1 AND t.status = 'active' ORDER BY t.updated_at DESC"
        );
        let active: Vec<TaskRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(worker_id)
            .fetch_all(&self.read)
            .await?;
        if !active.is_empty() {
            return Ok(active);
        }
        let sql = format!(
            "SELECT {TASK_COLUMNS} FROM tasks t LEFT JOIN workers w ON w.id = t.worker_id
             WHERE t.worker_id = $1 ORDER BY t.updated_at DESC LIMIT 1"
        );
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(worker_id)
            .fetch_all(&self.read)
            .await?)
    }
}

impl Store {
    /// Deletes a worker — it can no longer authenticate (its token is void) and its
    /// history stays readable — and hands its active tasks back to the queue because of
    /// `reason`, in one transaction. Returns the tasks requeued (task id, job id); `None`
    /// when it was deleted already.
    pub async fn delete_worker_and_requeue(
        &self,
        worker_id: &str,
        reason: &str,
    ) -> StoreResult<Option<Vec<(String, String)>>> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE workers SET deleted_at = $1, status = 'offline', updated_at = $1
             WHERE id = $2 AND deleted_at IS NULL",
        )
        .bind(super::now())
        .bind(worker_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let requeued = super::task_updates::requeue_worker_tasks_in(
            &mut tx,
            worker_id,
            &[],
            reason,
            &self.policy,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(requeued))
    }
}
