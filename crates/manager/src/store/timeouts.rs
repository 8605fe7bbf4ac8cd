//! What the monitor needs from the database: tasks nobody touched for too long, workers
//! gone for too long, and the changes each timeout causes (one transaction each).
use super::failures::{FailedTask, FailureReport, handle_task_failure};
use super::job_status::TaskToAbort;
use super::task_updates::requeue_worker_tasks_in;
use super::{Store, StoreResult, format_time, now, record_status_event};

/// An active task whose worker has not reported for too long.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct StaleTask {
    pub task_id: String,
    pub job_id: String,
    pub task_type: String,
    pub worker_id: String,
    pub worker_name: String,
    pub lease_epoch: i64,
    pub last_touched_at: String,
}

/// A task failed by the task timeout.
#[derive(Clone, Debug)]
pub struct TimedOutTask {
    pub stale: StaleTask,
    pub abort: TaskToAbort,
    pub report: FailureReport,
}

impl Store {
    /// Active tasks last touched at or before `cutoff`.
    pub async fn tasks_untouched_since(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<StaleTask>> {
        Ok(sqlx::query_as(
            "SELECT t.id AS task_id, t.job_id, t.task_type, t.worker_id, w.name AS worker_name,
                t.lease_epoch, t.last_touched_at
             FROM tasks t JOIN workers w ON w.id = t.worker_id
             WHERE t.status = 'active' AND t.last_touched_at <= $1",
        )
        .bind(format_time(cutoff))
        .fetch_all(&self.read)
        .await?)
    }

    /// Fails a stale task softly (fault class `timeout`, counted against its worker like
    /// any failure — upstream hard-fails without bookkeeping, §15.9). Nothing happens
    /// when the task was touched or reassigned meanwhile.
    pub async fn time_out_task(
        &self,
        stale: &StaleTask,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Option<TimedOutTask>> {
        let mut tx = self.begin().await?;
        let still: Option<(String,)> = sqlx::query_as(
            "SELECT id FROM tasks WHERE id = $1 AND status = 'active' AND worker_id = $2
               AND lease_epoch = $3 AND last_touched_at <= $4",
        )
        .bind(&stale.task_id)
        .bind(&stale.worker_id)
        .bind(stale.lease_epoch)
        .bind(format_time(cutoff))
        .fetch_optional(&mut *tx)
        .await?;
        if still.is_none() {
            return Ok(None);
        }
        let failed = FailedTask {
            task_id: &stale.task_id,
            job_id: &stale.job_id,
            task_type: &stale.task_type,
            worker_id: &stale.worker_id,
            fault_class: "timeout",
            message: "",
        };
        let report = handle_task_failure(&mut tx, &failed, &self.policy).await?;
        tx.commit().await?;
        Ok(Some(TimedOutTask {
            stale: stale.clone(),
            abort: TaskToAbort {
                task_id: stale.task_id.clone(),
                worker_id: stale.worker_id.clone(),
                lease_epoch: stale.lease_epoch,
            },
            report,
        }))
    }

    /// Workers that count as present (starting, awake, asleep…) but were last seen at or
    /// before `cutoff`: (id, name).
    pub async fn workers_unseen_since(
        &self,
        cutoff: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<(String, String)>> {
        Ok(sqlx::query_as(
            "SELECT id, name FROM workers
             WHERE deleted_at IS NULL AND status NOT IN ('', 'error', 'offline')
               AND last_seen_at <= $1",
        )
        .bind(format_time(cutoff))
        .fetch_all(&self.read)
        .await?)
    }

    /// A worker timed out: status `error`, pending status request cleared, its active
    /// tasks back to the queue — in one transaction. Returns (task id, job id) requeued.
    pub async fn worker_timed_out(
        &self,
        worker_id: &str,
        reason: &str,
    ) -> StoreResult<Vec<(String, String)>> {
        let mut tx = self.begin().await?;
        let old: Option<(String,)> = sqlx::query_as("SELECT status FROM workers WHERE id = $1")
            .bind(worker_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((old,)) = old else {
            return Ok(Vec::new());
        };
        sqlx::query(
            "UPDATE workers SET status = 'error', status_requested = '', lazy_status_request = 0,
                updated_at = $1 WHERE id = $2",
        )
        .bind(now())
        .bind(worker_id)
        .execute(&mut *tx)
        .await?;
        record_status_event(&mut tx, "worker", worker_id, &old, "error", reason).await?;
        let requeued =
            requeue_worker_tasks_in(&mut tx, worker_id, &[], reason, &self.policy).await?;
        tx.commit().await?;
        Ok(requeued)
    }

    /// Records a sign of life for a task its worker still holds (e.g. a log chunk), so
    /// the task timeout counts from here. Returns whether the task was touched.
    pub async fn touch_task(
        &self,
        task_id: &str,
        worker_id: &str,
        lease_epoch: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE tasks SET last_touched_at = $1 WHERE id = $2 AND worker_id = $3
               AND lease_epoch = $4 AND status = 'active'",
        )
        .bind(now())
        .bind(task_id)
        .bind(worker_id)
        .bind(lease_epoch)
        .execute(self.writer()?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks workers as seen at `at` (those with an open instruction stream).
    pub async fn touch_workers(
        &self,
        worker_ids: &[String],
        at: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<()> {
        if worker_ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "UPDATE workers SET last_seen_at = $1 WHERE id IN (SELECT value FROM json_each($2))",
        )
        .bind(format_time(at))
        .bind(serde_json::to_string(worker_ids).unwrap_or_else(|_| "[]".into()))
        .execute(self.writer()?)
        .await?;
        Ok(())
    }
}
