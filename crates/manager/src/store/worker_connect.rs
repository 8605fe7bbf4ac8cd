//! A worker opening its instruction stream, in one transaction: which of the task leases
//! it lists it still holds, the rest of its active tasks back to the queue, status awake.
use super::task_updates::requeue_worker_tasks_in;
use super::workers::set_worker_status_in;
use super::{Store, StoreResult, WorkerRow};
use crate::state::{TaskStatus, WorkerStatus};

/// What opening the stream changed.
#[derive(Clone, Debug)]
pub struct WorkerReconnect {
    /// The worker as it was before it was marked awake.
    pub worker: WorkerRow,
    /// (task id, lease epoch) of the listed tasks the worker still holds.
    pub kept: Vec<(String, i64)>,
    /// (task id, job id) of its other active tasks, now back in the queue.
    pub requeued: Vec<(String, String)>,
}

impl Store {
    /// Keeps the tasks of `leases` (task id, lease epoch) that are still `worker_id`'s
    /// active tasks under that lease, requeues its other active tasks because of `reason`
    /// and marks it awake. None when the worker does not exist.
    pub async fn reconnect_worker(
        &self,
        worker_id: &str,
        leases: &[(String, i64)],
        reason: &str,
    ) -> StoreResult<Option<WorkerReconnect>> {
        let mut tx = self.begin().await?;
        let worker: Option<WorkerRow> = sqlx::query_as("SELECT * FROM workers WHERE id = $1")
            .bind(worker_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(worker) = worker else {
            return Ok(None);
        };
        let mut kept = Vec::new();
        for (task_id, lease_epoch) in leases {
            let held: Option<(i64,)> = sqlx::query_as(
                "SELECT 1 FROM tasks WHERE id = $1 AND status = $2 AND worker_id = $3
                   AND lease_epoch = $4",
            )
            .bind(task_id)
            .bind(TaskStatus::Active.as_str())
            .bind(worker_id)
            .bind(lease_epoch)
            .fetch_optional(&mut *tx)
            .await?;
            if held.is_some() {
                kept.push((task_id.clone(), *lease_epoch));
            }
        }
        let kept_ids: Vec<String> = kept.iter().map(|(id, _)| id.clone()).collect();
        let requeued =
            requeue_worker_tasks_in(&mut tx, worker_id, &kept_ids, reason, &self.policy).await?;
        let awake = WorkerStatus::Awake.as_str();
        set_worker_status_in(&mut tx, worker_id, awake, "instruction stream opened").await?;
        tx.commit().await?;
        Ok(Some(WorkerReconnect {
            worker,
            kept,
            requeued,
        }))
    }
}
