//! A task failed on a worker: record it, blocklist the worker when the rules say so,
//! requeue what the blocklisted worker failed, and soft-fail, hard-fail or fail the job —
//! all inside the transaction of the failing update (rules in `state::failure`).
use sqlx::{Any, Transaction};

use super::eligibility::workers_able;
use super::job_ripple::ripple_to_job;
use super::job_status::{JobChange, enter_job_status};
use super::{StoreResult, format_time, job_status, now, record_status_event};
use crate::state::{
    FailureFacts, FailurePolicy, FailureVerdict, FaultKind, JOB_FAULT_CLASSES, JobFaultEvidence,
    JobStatus, TaskStatus, blocklist_reason, failure_verdict, requeued_task_status, retry_delay,
};

/// The task that failed and who failed it.
pub(super) struct FailedTask<'a> {
    pub task_id: &'a str,
    pub job_id: &'a str,
    pub task_type: &'a str,
    pub worker_id: &'a str,
    pub fault_class: &'a str,
    /// The worker's words for it (empty for a timeout).
    pub message: &'a str,
}

/// What the failure handling did, for logs, events and the dispatcher.
#[derive(Clone, Debug, Default)]
pub struct FailureReport {
    /// (task id, line) to append to task logs.
    pub log_lines: Vec<(String, String)>,
    /// Other tasks of the job that went back to the queue.
    pub requeued: Vec<String>,
    pub job_change: Option<JobChange>,
    /// The worker was newly blocklisted: other queued tasks may have nobody left to run them.
    pub blocklisted: bool,
}

pub(super) async fn handle_task_failure(
    tx: &mut Transaction<'static, Any>,
    failed: &FailedTask<'_>,
    policy: &FailurePolicy,
) -> StoreResult<FailureReport> {
    let mut report = FailureReport::default();
    let now = now();
    sqlx::query(
        "INSERT INTO task_failures (task_id, worker_id, created_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(failed.task_id)
    .bind(failed.worker_id)
    .bind(&now)
    .execute(&mut **tx)
    .await?;
    let (failed_by,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM task_failures WHERE task_id = $1")
            .bind(failed.task_id)
            .fetch_one(&mut **tx)
            .await?;
    let (worker_failures,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM task_failures f JOIN tasks t ON t.id = f.task_id
         WHERE f.worker_id = $1 AND t.job_id = $2 AND t.task_type = $3",
    )
    .bind(failed.worker_id)
    .bind(failed.job_id)
    .bind(failed.task_type)
    .fetch_one(&mut **tx)
    .await?;
    let fault = FaultKind::of(failed.fault_class);

    let block = blocklist_reason(fault, failed.fault_class, worker_failures as u64, policy);
    let mut newly_blocklisted = false;
    if let Some(reason) = &block {
        newly_blocklisted = blocklist_worker(tx, failed, reason).await?;
        report.blocklisted = newly_blocklisted;
        if newly_blocklisted {
            report.log_lines.push((
                failed.task_id.to_string(),
                format!(
                    "Worker {} is blocklisted for tasks of type \"{}\" in this job: {reason}",
                    failed.worker_id, failed.task_type
                ),
            ));
        }
    }

    let workers_left =
        workers_left_for(tx, failed.task_id, failed.job_id, failed.task_type).await?;
    let job_faults = if fault == FaultKind::Job {
        job_fault_evidence(tx, failed).await?
    } else {
        JobFaultEvidence::default()
    };
    let facts = FailureFacts {
        fault,
        fault_class: failed.fault_class,
        task_type: failed.task_type,
        failed_by_workers: failed_by as u64,
        workers_left,
        job_faults,
    };
    let verdict = failure_verdict(&facts, policy);

    if newly_blocklisted && !matches!(verdict, FailureVerdict::FailJob { .. }) {
        report.requeued = requeue_failed_tasks_of_worker(tx, failed).await?;
        for task_id in &report.requeued {
            report.log_lines.push((
                task_id.clone(),
                format!(
                    "Task requeued because worker {} got blocklisted for this job",
                    failed.worker_id
                ),
            ));
        }
    }

    let mut retry_at = None;
    let (status, line) = match &verdict {
        FailureVerdict::SoftFail { failures_left } => {
            let delay = retry_delay(
                failed_by as u64,
                policy.retry_backoff_base,
                policy.retry_backoff_cap,
            );
            let when = if delay.is_zero() {
                String::new()
            } else {
                // The config caps the backoff at a week; the fallbacks only keep a bad
                // policy from panicking.
                let now = chrono::Utc::now();
                let at = chrono::Duration::from_std(delay)
                    .ok()
                    .and_then(|delay| now.checked_add_signed(delay))
                    .unwrap_or(now + chrono::Duration::days(7));
                retry_at = Some(format_time(at));
                format!(" It is retried in {} s at the earliest.", delay.as_secs())
            };
            (
                TaskStatus::SoftFailed,
                format!(
                    "Task failed by {failed_by} worker(s), Manager will mark it as soft failure. \
                     {failures_left} more failure(s) will cause hard failure.{when}"
                ),
            )
        }
        FailureVerdict::HardFail { reason } => (
            TaskStatus::Failed,
            format!(
                "Task failed by {failed_by} worker(s), Manager marks it as hard failure: {reason}"
            ),
        ),
        FailureVerdict::FailJob { reason } => (
            TaskStatus::Failed,
            format!("Task failed; Manager fails the entire job: {reason}"),
        ),
    };
    sqlx::query(
        "UPDATE tasks SET status = $1, activity = $2, fault_class = $3, progress = NULL, updated_at = $4,
            retry_at = $5 WHERE id = $6",
    )
    .bind(status.as_str())
    .bind(&line)
    .bind(failed.fault_class)
    .bind(&now)
    .bind(&retry_at)
    .bind(failed.task_id)
    .execute(&mut **tx)
    .await?;
    record_status_event(tx, "task", failed.task_id, "active", status.as_str(), &line).await?;
    report
        .log_lines
        .push((failed.task_id.to_string(), line.clone()));

    report.job_change = match verdict {
        FailureVerdict::FailJob { reason } => {
            if job_status(tx, failed.job_id).await? == JobStatus::Failed {
                None
            } else {
                Some(enter_job_status(tx, failed.job_id, JobStatus::Failed, &reason).await?)
            }
        }
        _ => ripple_to_job(tx, failed.job_id, status, policy).await?,
    };
    Ok(report)
}

/// What the job's other tasks say about a job fault (see `JobFaultEvidence`). The failing
/// task is not stored as failed yet, so it is added here.
async fn job_fault_evidence(
    tx: &mut Transaction<'static, Any>,
    failed: &FailedTask<'_>,
) -> StoreResult<JobFaultEvidence> {
    let classes = serde_json::to_string(&JOB_FAULT_CLASSES).unwrap_or_default();
    let mut workers: Vec<(Option<String>,)> = sqlx::query_as(
        "SELECT worker_id FROM tasks
         WHERE job_id = $1 AND status = 'failed' AND id <> $2
           AND fault_class IN (SELECT value FROM json_each($3))",
    )
    .bind(failed.job_id)
    .bind(failed.task_id)
    .bind(classes)
    .fetch_all(&mut **tx)
    .await?;
    workers.push((Some(failed.worker_id.to_string()),));
    let failed_tasks = workers.len() as u64;
    let mut distinct: Vec<String> = workers.into_iter().filter_map(|(w,)| w).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let (completed,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM tasks WHERE job_id = $1 AND status = 'completed'")
            .bind(failed.job_id)
            .fetch_one(&mut **tx)
            .await?;
    let capable = workers_able(tx, failed.job_id, failed.task_type, None).await?;
    Ok(JobFaultEvidence {
        failed_tasks,
        failed_on_workers: distinct.len() as u64,
        capable_workers: capable,
        completed_tasks: completed as u64,
    })
}

/// Blocklists the worker that failed (or declined) the task for the job's tasks of its type;
/// returns whether the entry is new.
pub(super) async fn blocklist_worker(
    tx: &mut Transaction<'static, Any>,
    failed: &FailedTask<'_>,
    reason: &str,
) -> StoreResult<bool> {
    let inserted = sqlx::query(
        "INSERT INTO job_blocklist (job_id, worker_id, task_type, created_at, reason)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(failed.job_id)
    .bind(failed.worker_id)
    .bind(failed.task_type)
    .bind(now())
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Workers that could still run this task (`state::eligibility`, its failure list
/// included). Offline and sleeping workers count: they may come back.
pub(super) async fn workers_left_for(
    tx: &mut Transaction<'static, Any>,
    task_id: &str,
    job_id: &str,
    task_type: &str,
) -> StoreResult<u64> {
    let failed_by: Vec<(String,)> =
        sqlx::query_as("SELECT worker_id FROM task_failures WHERE task_id = $1")
            .bind(task_id)
            .fetch_all(&mut **tx)
            .await?;
    let failed_by: Vec<String> = failed_by.into_iter().map(|(id,)| id).collect();
    workers_able(tx, job_id, task_type, Some(&failed_by)).await
}

/// Requeues the other tasks of the job and type that this worker hard-failed, so other
/// workers retry them (the failure lists stay: automatic requeues keep them).
pub(super) async fn requeue_failed_tasks_of_worker(
    tx: &mut Transaction<'static, Any>,
    failed: &FailedTask<'_>,
) -> StoreResult<Vec<String>> {
    let job = job_status(tx, failed.job_id).await?;
    let to = requeued_task_status(job);
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM tasks WHERE job_id = $1 AND task_type = $2 AND worker_id = $3
           AND status = 'failed' AND id <> $4",
    )
    .bind(failed.job_id)
    .bind(failed.task_type)
    .bind(failed.worker_id)
    .bind(failed.task_id)
    .fetch_all(&mut **tx)
    .await?;
    let activity = format!("Task was {to} by Manager because its worker got blocklisted");
    for (id,) in &ids {
        sqlx::query(
            "UPDATE tasks SET status = $1, activity = $2, steps_completed = 0, updated_at = $3
             WHERE id = $4",
        )
        .bind(to.as_str())
        .bind(&activity)
        .bind(now())
        .bind(id)
        .execute(&mut **tx)
        .await?;
        record_status_event(tx, "task", id, "failed", to.as_str(), "worker blocklisted").await?;
    }
    Ok(ids.into_iter().map(|(id,)| id).collect())
}
