//! Requested worker statuses: storing a request (lazy or forced), clearing it, applying
//! the status once it is delivered, and the scheduling gate "a worker with a pending
//! request or asleep gets no new task".
use std::collections::HashSet;

use sqlx::{Any, Transaction};

use super::{Store, StoreResult, now, record_status_event};

/// A worker's pending status request as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRequest {
    pub status: String,
    pub is_lazy: bool,
}

impl Store {
    /// Stores `status` as the worker's requested status (replacing any earlier request).
    /// Returns false when there is no such (non-deleted) worker.
    pub async fn request_worker_status(
        &self,
        worker_id: &str,
        status: &str,
        is_lazy: bool,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE workers SET status_requested = $1, lazy_status_request = $2, updated_at = $3
             WHERE id = $4 AND deleted_at IS NULL",
        )
        .bind(status)
        .bind(i64::from(is_lazy))
        .bind(now())
        .bind(worker_id)
        .execute(self.writer()?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Clears a pending request; returns the one that was pending, if any.
    pub async fn clear_worker_status_request(
        &self,
        worker_id: &str,
    ) -> StoreResult<Option<StatusRequest>> {
        let mut tx = self.begin().await?;
        let pending = pending_request(&mut tx, worker_id).await?;
        if pending.is_some() {
            sqlx::query(
                "UPDATE workers SET status_requested = '', lazy_status_request = 0, updated_at = $1
                 WHERE id = $2",
            )
            .bind(now())
            .bind(worker_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(pending)
    }

    /// The worker's pending request, if any.
    pub async fn worker_status_request(
        &self,
        worker_id: &str,
    ) -> StoreResult<Option<StatusRequest>> {
        let row: Option<(String, super::Flag)> = sqlx::query_as(
            "SELECT status_requested, lazy_status_request FROM workers
             WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(worker_id)
        .fetch_optional(&self.read)
        .await?;
        Ok(row
            .filter(|(status, _)| !status.is_empty())
            .map(|(status, is_lazy)| StatusRequest {
                status,
                is_lazy: is_lazy.0,
            }))
    }

    /// How many tasks the worker runs now.
    pub async fn active_task_count(&self, worker_id: &str) -> StoreResult<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM tasks WHERE worker_id = $1 AND status = 'active'")
                .bind(worker_id)
                .fetch_one(&self.read)
                .await?;
        Ok(n)
    }

    /// Ids of the workers with a pending lazy request.
    pub async fn workers_with_lazy_requests(&self) -> StoreResult<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM workers WHERE status_requested <> '' AND lazy_status_request = 1
               AND deleted_at IS NULL",
        )
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// The worker was told to enter `status` (the request reached it): records the
    /// status and acknowledges the request, in one transaction — unless the request was
    /// replaced meanwhile by a different one, which stays pending.
    pub async fn apply_requested_status(
        &self,
        worker_id: &str,
        delivered: &StatusRequest,
        reason: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let row: Option<(String,)> =
            sqlx::query_as("SELECT status FROM workers WHERE id = $1 AND deleted_at IS NULL")
                .bind(worker_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((old,)) = row else {
            return Ok(());
        };
        let now = now();
        sqlx::query(
            "UPDATE workers SET status = $1, updated_at = $2,
                status_requested = CASE WHEN status_requested = $1 AND lazy_status_request = $3
                                        THEN '' ELSE status_requested END,
                lazy_status_request = CASE WHEN status_requested = $1 AND lazy_status_request = $3
                                           THEN 0 ELSE lazy_status_request END
             WHERE id = $4",
        )
        .bind(&delivered.status)
        .bind(&now)
        .bind(i64::from(delivered.is_lazy))
        .bind(worker_id)
        .execute(&mut *tx)
        .await?;
        if old != delivered.status {
            record_status_event(
                &mut tx,
                "worker",
                worker_id,
                &old,
                &delivered.status,
                reason,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn pending_request(
    tx: &mut Transaction<'static, Any>,
    worker_id: &str,
) -> StoreResult<Option<StatusRequest>> {
    let row: Option<(String, super::Flag)> =
        sqlx::query_as("SELECT status_requested, lazy_status_request FROM workers WHERE id = $1")
            .bind(worker_id)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row
        .filter(|(status, _)| !status.is_empty())
        .map(|(status, is_lazy)| StatusRequest {
            status,
            is_lazy: is_lazy.0,
        }))
}

/// Of these workers, those the scheduler must not hand a new task: any with a pending
/// status request (a lazy one waits for the running tasks to end, so nothing new may
/// start) and any asleep. Read inside the assignment transaction, so a request stored
/// before an assignment always wins; one query per dispatch round.
pub(super) async fn workers_refusing_tasks(
    tx: &mut Transaction<'static, Any>,
    workers: &[(String, Vec<String>)],
) -> StoreResult<HashSet<String>> {
    let ids: Vec<&str> = workers.iter().map(|(id, _)| id.as_str()).collect();
    let ids = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM workers WHERE id IN (SELECT value FROM json_each($1))
           AND (status_requested <> '' OR status = 'asleep')",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
