//! A worker declined a task after its own check (fault class `self-check`: an input it cannot
//! reach or an output location it cannot write). Not a failure of the task: nothing is added to its failure list. The
//! worker is blocklisted for the job's tasks of that type with its reason, and the task goes
//! back to the queue for the other workers — or, when no worker is left that could run it,
//! the task and the job fail naming why. All inside the transaction of the worker's update.
use sqlx::{Any, Transaction};

use super::failures::{
    FailedTask, FailureReport, blocklist_worker, requeue_failed_tasks_of_worker, workers_left_for,
};
use super::job_ripple::ripple_to_job;
use super::job_status::enter_job_status;
use super::{StoreResult, job_status, now, record_status_event};
use crate::state::{FailurePolicy, JobStatus, TaskStatus, requeued_task_status};

/// The longest part of a worker's message that goes into the task, the blocklist and the job.
const MAX_STORED_MESSAGE_CHARS: usize = 1000;

pub(super) async fn handle_task_decline(
    tx: &mut Transaction<'static, Any>,
    declined: &FailedTask<'_>,
    policy: &FailurePolicy,
) -> StoreResult<FailureReport> {
    let mut report = FailureReport::default();
    // A worker's words are kept short where they are stored (the whole message is in the log).
    let message: String = declined
        .message
        .chars()
        .take(MAX_STORED_MESSAGE_CHARS)
        .collect();
    let reason = if message.is_empty() {
        "its self-check failed".to_owned()
    } else {
        format!("its self-check failed: {message}")
    };
    let reason_given = format!("the worker declined a task: {reason}");
    report.blocklisted = blocklist_worker(tx, declined, &reason_given).await?;
    if report.blocklisted {
        report.log_lines.push((
            declined.task_id.to_string(),
            format!(
                "Worker {} is blocklisted for tasks of type \"{}\" in this job at its own \
                 request: {reason}",
                declined.worker_id, declined.task_type
            ),
        ));
    }
    let workers_left =
        workers_left_for(tx, declined.task_id, declined.job_id, declined.task_type).await?;
    if workers_left == 0 {
        let why = format!(
            "no worker is left that may run tasks of type \"{}\" (all are blocklisted, have \
             failed the task, lack the task type or the job's tag, or miss the job's \
             requirements); the last one declined it: {reason}",
            declined.task_type
        );
        let line = format!("Task failed; Manager fails the entire job: {why}");
        set_task_status(tx, declined, TaskStatus::Failed, &line).await?;
        report.log_lines.push((declined.task_id.to_string(), line));
        if job_status(tx, declined.job_id).await? != JobStatus::Failed {
            report.job_change =
                Some(enter_job_status(tx, declined.job_id, JobStatus::Failed, &why).await?);
        }
        return Ok(report);
    }
    report.requeued = requeue_failed_tasks_of_worker(tx, declined).await?;
    for task_id in &report.requeued {
        report.log_lines.push((
            task_id.clone(),
            format!(
                "Task requeued because worker {} got blocklisted for this job",
                declined.worker_id
            ),
        ));
    }
    let to = requeued_task_status(job_status(tx, declined.job_id).await?);
    let line = format!(
        "Task {to} again: worker {} declined it ({reason}); {workers_left} other worker(s) may \
         run it",
        declined.worker_id
    );
    set_task_status(tx, declined, to, &line).await?;
    report.log_lines.push((declined.task_id.to_string(), line));
    report.job_change = ripple_to_job(tx, declined.job_id, to, policy).await?;
    Ok(report)
}

/// The declined task's new status, with the fault class kept so the task shows why.
async fn set_task_status(
    tx: &mut Transaction<'static, Any>,
    declined: &FailedTask<'_>,
    status: TaskStatus,
    line: &str,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE tasks SET status = $1, activity = $2, fault_class = $3, progress = NULL,
            steps_completed = 0, retry_at = NULL, updated_at = $4 WHERE id = $5",
    )
    .bind(status.as_str())
    .bind(line)
    .bind(declined.fault_class)
    .bind(now())
    .bind(declined.task_id)
    .execute(&mut **tx)
    .await?;
    record_status_event(
        tx,
        "task",
        declined.task_id,
        "active",
        status.as_str(),
        line,
    )
    .await
}
