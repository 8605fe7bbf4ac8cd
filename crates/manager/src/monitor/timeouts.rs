//! Task timeout (no update for `task_timeout` → soft failure, retried elsewhere, with a
//! line in the task log) and worker timeout (stream gone for `worker_timeout` → `error`,
//! tasks requeued). A worker in `error` recovers when it signs on again.
use chrono::{DateTime, Utc};

use super::MonitorSettings;
use crate::AppState;
use crate::ops;
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
        let timed_out =
            ops::timeouts::time_out_task(state, &stale, task_cutoff, settings.task_timeout).await?;
        if let Some(effects) = timed_out {
            ops::apply(effects, state).await;
            report.timed_out_tasks.push(stale.task_id);
        }
    }

    let worker_cutoff =
        now - chrono::Duration::from_std(settings.worker_timeout).unwrap_or_default();
    for (worker_id, name) in state.store.workers_unseen_since(worker_cutoff).await? {
        if state.dispatcher.is_connected(&worker_id) {
            continue;
        }
        let effects = ops::worker_sessions::time_out_worker(
            state,
            &worker_id,
            &name,
            settings.worker_timeout,
        )
        .await?;
        ops::apply(effects, state).await;
        report.timed_out_workers.push(worker_id);
    }
    Ok(())
}
