//! A worker's report about a task it holds (progress, completion, failure): applied by the
//! store exactly once per sequence number, followed by the failure's log lines, what the
//! failure rules did, the freed slot, the job's change and the task and job events.
use super::Effects;
use crate::AppState;
use crate::state::{SELF_CHECK_FAULT_CLASS, TaskStatus};
use crate::store::{JobChange, StoreError, TaskUpdateOutcome, WorkerTaskUpdate};

/// What the worker reported, with how a failure was described.
#[derive(Clone, Debug, Default)]
pub struct TaskReport {
    pub update: WorkerTaskUpdate,
    /// The last lines of the failed task's output, as the worker saw them.
    pub last_log_lines: Vec<String>,
}

impl TaskReport {
    /// A keep-alive only moves the task's last-touched time: nothing for anyone to see.
    fn is_keepalive(&self) -> bool {
        let update = &self.update;
        update.status.is_none()
            && update.activity.is_none()
            && update.steps_completed.is_none()
            && update.progress.is_none()
    }

    /// The task-log line of a failed task: the fault class, the message, the last lines.
    fn failure_line(&self) -> String {
        let fault_class = self.update.fault_class.as_deref().unwrap_or_default();
        let message = &self.update.failure_message;
        let mut text = if fault_class == SELF_CHECK_FAULT_CLASS {
            format!("The worker declined the task after its self-check: {message}")
        } else {
            format!("Task failed ({fault_class}): {message}")
        };
        for line in &self.last_log_lines {
            text.push_str("\n    ");
            text.push_str(line);
        }
        text
    }
}

/// Applies the report; returns whether it was applied (false: this sequence number was
/// applied before) and what follows.
pub async fn update_task(
    state: &AppState,
    report: &TaskReport,
) -> Result<(bool, Effects), StoreError> {
    let outcome = state.store.apply_worker_task_update(&report.update).await?;
    Ok((outcome.applied, update_effects(report, &outcome)))
}

/// What follows an update the store answered with `outcome`.
pub fn update_effects(report: &TaskReport, outcome: &TaskUpdateOutcome) -> Effects {
    let mut effects = Effects::new();
    if !outcome.applied || report.is_keepalive() {
        return effects;
    }
    let update = &report.update;
    let job_id = outcome.job_id.as_str();
    if update.status == Some(TaskStatus::Failed) {
        effects.log(job_id, &update.task_id, report.failure_line());
    }
    if let Some(failure) = &outcome.failure {
        effects.failure_report(job_id, failure);
    } else if let Some(status) = outcome.job_status {
        let change = JobChange {
            status,
            to_abort: outcome.to_abort.clone(),
            tasks_moved: false,
        };
        effects.job_change(job_id, &change);
    }
    if outcome.task_finished {
        effects.free_slot(&update.worker_id, &update.task_id);
    }
    effects
        .task_changed(job_id, &update.task_id)
        .job_changed(job_id);
    effects
}

#[cfg(test)]
mod tests;
