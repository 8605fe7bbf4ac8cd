//! Entering a job status inside a transaction: write it, sweep the job's tasks as §2.3
//! says, and follow the chain of automatic follow-up statuses until it settles.
use sqlx::{Any, Transaction};

use super::job_gates::{approval_gate, dependencies_of, has_unmet_dependencies, waiting_activity};
use super::{StoreResult, job_status, job_task_counts, now, record_status_event};
use crate::state::{JobStatus, TaskStatus, follow_up, gated_status, task_sweep};

/// A task that was running on a worker and must be stopped there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskToAbort {
    pub task_id: String,
    pub worker_id: String,
    pub lease_epoch: i64,
}

/// The result of a job status change with all its follow-ups.
#[derive(Clone, Debug)]
pub struct JobChange {
    /// The status the job settled in.
    pub status: JobStatus,
    /// Tasks that ran on workers and were canceled or paused with the job.
    pub to_abort: Vec<TaskToAbort>,
    /// Whether tasks were moved in bulk (clients should re-read the task list).
    pub tasks_moved: bool,
}

/// Moves job `job_id` into `new` (with `reason`), applies the task sweep and every
/// follow-up status. The caller commits.
pub(super) async fn enter_job_status(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
    new: JobStatus,
    reason: &str,
) -> StoreResult<JobChange> {
    let mut previous = job_status(tx, job_id).await?;
    let mut current = new;
    let mut reason = reason.to_string();
    let mut change = JobChange {
        status: current,
        to_abort: Vec::new(),
        tasks_moved: false,
    };
    // Each step moves strictly along the chain requested → settled; the bound is a guard.
    for _ in 0..8 {
        let now = now();
        // A job whose approval gate is pending waits for a person where it would complete.
        if current == JobStatus::Completed {
            current = gated_status(current, approval_gate(tx, job_id).await?);
            if current == JobStatus::AwaitingApproval {
                reason = format!("{reason}; the preview pass waits for approval");
            }
        }
        // A job becomes runnable only once the jobs it depends on have completed; until
        // then it waits (its paused tasks are still swept back to queued below).
        let waits = current == JobStatus::Queued && has_unmet_dependencies(tx, job_id).await?;
        let (written, activity) = if waits {
            let dependencies = dependencies_of(tx, job_id).await?;
            (
                JobStatus::WaitingForDependencies,
                waiting_activity(&dependencies),
            )
        } else {
            (
                current,
                format!("Changed to status \"{current}\": {reason}"),
            )
        };
        sqlx::query("UPDATE jobs SET status = $1, activity = $2, updated_at = $3 WHERE id = $4")
            .bind(written.as_str())
            .bind(&activity)
            .bind(&now)
            .bind(job_id)
            .execute(&mut **tx)
            .await?;
        record_status_event(
            tx,
            "job",
            job_id,
            previous.as_str(),
            written.as_str(),
            &reason,
        )
        .await?;
        if let Some(sweep) = task_sweep(current, previous) {
            let moved = sweep_tasks(tx, job_id, sweep.from, sweep.to, current, &mut change).await?;
            change.tasks_moved |= moved > 0;
        }
        change.status = written;
        if waits {
            break;
        }
        let counts = job_task_counts(tx, job_id).await?;
        match follow_up(current, &counts) {
            Some((next, why)) if next != current => {
                previous = current;
                current = next;
                reason = why.to_string();
            }
            _ => break,
        }
    }
    Ok(change)
}

async fn sweep_tasks(
    tx: &mut Transaction<'static, Any>,
    job_id: &str,
    from: &[TaskStatus],
    to: TaskStatus,
    job: JobStatus,
    change: &mut JobChange,
) -> StoreResult<u64> {
    let statuses: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let statuses = serde_json::to_string(&statuses).unwrap_or_else(|_| "[]".into());
    if from.contains(&TaskStatus::Active) {
        let running: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT id, worker_id, lease_epoch FROM tasks WHERE job_id = $1 AND status = 'active'",
        )
        .bind(job_id)
        .fetch_all(&mut **tx)
        .await?;
        change
            .to_abort
            .extend(running.into_iter().filter_map(|(task_id, worker, epoch)| {
                worker.map(|worker_id| TaskToAbort {
                    task_id,
                    worker_id,
                    lease_epoch: epoch,
                })
            }));
    }
    let verb = match to {
        TaskStatus::Queued => "queued",
        TaskStatus::Paused => "paused",
        _ => "canceled",
    };
    let activity = format!("Manager {verb} this task because the job got status \"{job}\"");
    let moved = sqlx::query(
        "UPDATE tasks SET status = $1, activity = $2, updated_at = $3, progress = NULL,
            steps_completed = CASE WHEN $1 = 'queued' THEN 0 ELSE steps_completed END
         WHERE job_id = $4 AND status IN (SELECT value FROM json_each($5))",
    )
    .bind(to.as_str())
    .bind(&activity)
    .bind(now())
    .bind(job_id)
    .bind(&statuses)
    .execute(&mut **tx)
    .await?;
    Ok(moved.rows_affected())
}
