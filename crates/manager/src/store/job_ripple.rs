//! The job's follow-up of a task status change: the job status the task counts call for,
//! entered with its sweep of the job's other tasks, in the transaction of the change.
use sqlx::{Any, Transaction};

use super::job_status::{JobChange, enter_job_status};
use super::{StoreResult, job_status, job_status_and_counts};
use crate::state::{FailurePolicy, TaskStatus, job_after_task_change};

/// Applies the job status change that a task entering `task_status` causes, with its
/// sweep of the job's other tasks and the follow-up statuses.
pub(super) async fn ripple_to_job(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
    task_status: TaskStatus,
    policy: &FailurePolicy,
) -> StoreResult<Option<JobChange>> {
    // Starting, retrying or queueing a task never depends on the counts (the hot path
    // of every assignment); everything else does.
    let (job, counts) = if matches!(
        task_status,
        TaskStatus::Active | TaskStatus::SoftFailed | TaskStatus::Queued
    ) {
        (job_status(tx, job_id).await?, Default::default())
    } else {
        job_status_and_counts(tx, job_id).await?
    };
    let mut counts = counts;
    if counts.failed > 0 && counts.runnable() > 0 {
        counts.waiting_on_failed = waiting_on_failed(tx, job_id).await?;
    }
    let Some(ripple) = job_after_task_change(job, task_status, &counts, policy.job_fail_percent)
    else {
        return Ok(None);
    };
    Ok(Some(
        enter_job_status(tx, job_id, ripple.status, &ripple.reason).await?,
    ))
}

/// Queued or soft-failed tasks of the job that depend, directly or through other tasks, on
/// a failed or canceled one: they can never run.
async fn waiting_on_failed(tx: &mut Transaction<'static, Any>, job_id: &str) -> StoreResult<u64> {
    let (n,): (i64,) = sqlx::query_as(
        "WITH RECURSIVE doomed(id) AS (
             SELECT id FROM tasks WHERE job_id = $1 AND status IN ('failed', 'canceled')
             UNION
             SELECT d.task_id FROM task_dependencies d JOIN doomed ON d.dependency_id = doomed.id
         )
         SELECT COUNT(*) FROM tasks t JOIN doomed ON doomed.id = t.id
         WHERE t.status IN ('queued', 'soft-failed')",
    )
    .bind(job_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(n as u64)
}
