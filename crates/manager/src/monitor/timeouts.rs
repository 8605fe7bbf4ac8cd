//! Task timeout (no update for `task_timeout` → soft failure, retried elsewhere, with a
//! line in the task log) and worker timeout (stream gone for `worker_timeout` → `error`,
//! tasks requeued). A worker in `error` recovers when it signs on again.
use chrono::{DateTime, Utc};

use super::MonitorSettings;
use crate::AppState;
use crate::events::Event;
use crate::store::StoreError;

/// What one pass did.
#[derive(Clone, Debug, Default)]
pub struct TimeoutReport {
    /// Ids of tasks failed by the task timeout.
    pub timed_out_tasks: Vec<String>,
    /// Ids of workers put in `error`.
    pub timed_out_workers: Vec<String>,
}

pub(super) async fn check(
    state: &AppState,
    settings: &MonitorSettings,
    now: DateTime<Utc>,
    report: &mut TimeoutReport,
) -> Result<(), StoreError> {
    let task_cutoff = now - chrono::Duration::from_std(settings.task_timeout).unwrap_or_default();
    for stale in state.store.tasks_untouched_since(task_cutoff).await? {
        let Some(timed_out) = state.store.time_out_task(&stale, task_cutoff).await? else {
            continue;
        };
        let line = format!(
            "Task timed out: it was assigned to worker {} ({}), but had no update since {} \
             (task_timeout {} s); it counts as a failure of that worker",
            stale.worker_name,
            stale.worker_id,
            stale.last_touched_at,
            settings.task_timeout.as_secs()
        );
        tracing::warn!(task = %stale.task_id, worker = %stale.worker_name, "{line}");
        state
            .log_manager_line(&stale.job_id, &stale.task_id, &line)
            .await;
        for (task_id, text) in &timed_out.report.log_lines {
            state.log_manager_line(&stale.job_id, task_id, text).await;
        }
        state.dispatcher.abort_and_announce(
            &stale.job_id,
            std::slice::from_ref(&timed_out.abort),
            "the task timed out",
        );
        if let Some(change) = &timed_out.report.job_change {
            let reason = format!("the job got status \"{}\"", change.status);
            state
                .dispatcher
                .abort_and_announce(&stale.job_id, &change.to_abort, &reason);
        }
        report.timed_out_tasks.push(stale.task_id);
    }

    let worker_cutoff =
        now - chrono::Duration::from_std(settings.worker_timeout).unwrap_or_default();
    for (worker_id, name) in state.store.workers_unseen_since(worker_cutoff).await? {
        if state.dispatcher.is_connected(&worker_id) {
            continue;
        }
        let reason = format!(
            "the worker timed out (no connection for {} s)",
            settings.worker_timeout.as_secs()
        );
        let requeued = state.store.worker_timed_out(&worker_id, &reason).await?;
        tracing::warn!(worker = %name, tasks_requeued = requeued.len(), "worker timed out; status error");
        state.announce_requeued(&requeued, &reason).await;
        state.events.publish(Event::worker(&worker_id));
        report.timed_out_workers.push(worker_id);
    }
    Ok(())
}
