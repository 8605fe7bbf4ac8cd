//! The task timeout: a task with no update for `task_timeout` fails softly, as a failure
//! of the worker that held it, and is aborted there. What the failure rules did (a
//! blocklisting, requeued tasks, the job's change) follows like after a worker's report.
use std::time::Duration;

use super::Effects;
use crate::AppState;
use crate::store::{StaleTask, StoreError, TimedOutTask};

/// Fails `stale` if it was still untouched at `cutoff` (None: it moved on meanwhile).
pub async fn time_out_task(
    state: &AppState,
    stale: &StaleTask,
    cutoff: chrono::DateTime<chrono::Utc>,
    task_timeout: Duration,
) -> Result<Option<Effects>, StoreError> {
    let Some(timed_out) = state.store.time_out_task(stale, cutoff).await? else {
        return Ok(None);
    };
    let line = timed_out_line(stale, task_timeout);
    tracing::warn!(task = %stale.task_id, worker = %stale.worker_name, "{line}");
    Ok(Some(timed_out_effects(&timed_out, line)))
}

/// The timed-out task's log line (`line`), the abort on its worker, and the failure's
/// follow-up.
pub fn timed_out_effects(timed_out: &TimedOutTask, line: String) -> Effects {
    let job_id = timed_out.stale.job_id.as_str();
    let mut effects = Effects::new();
    effects
        .log(job_id, &timed_out.stale.task_id, line)
        .abort(
            job_id,
            std::slice::from_ref(&timed_out.abort),
            "the task timed out",
        )
        .failure_report(job_id, &timed_out.report);
    effects
}

fn timed_out_line(stale: &StaleTask, task_timeout: Duration) -> String {
    format!(
        "Task timed out: it was assigned to worker {} ({}), but had no update since {} \
         (task_timeout {} s); it counts as a failure of that worker",
        stale.worker_name,
        stale.worker_id,
        stale.last_touched_at,
        task_timeout.as_secs()
    )
}

#[cfg(test)]
mod tests;
