//! Which tasks a reconnecting worker keeps. The worker lists the task leases it still runs
//! when it opens its instruction stream; each one the store still shows as this worker's
//! active task under that lease keeps its slot.
//!
//! A task the worker lists but no longer holds (it went to another worker, or was
//! canceled, while this one was away) is aborted on the worker at once, instead of running
//! on until its next update is refused.
//!
//! A final update for such a task can be applied between that check and the dispatcher
//! learning about the new stream (a worker delivers its backlog while it reconnects). The
//! update's "slot free again" then finds no connected worker, and the slot would stay held
//! by a finished task forever. So once the stream is registered, the kept tasks are checked
//! again and the ones that ended meanwhile are released.
use castanet_protocol::v1;
use tonic::Status;

use super::store_status;
use crate::AppState;
use crate::state::TaskStatus;
use crate::store::{Store, TaskToAbort};

/// Whether `task_id` is still `worker_id`'s active task under `lease_epoch`.
pub async fn still_held(
    store: &Store,
    worker_id: &str,
    task_id: &str,
    lease_epoch: i64,
) -> Result<bool, Status> {
    let task = store.get_task(task_id).await.map_err(store_status)?;
    Ok(task.is_some_and(|t| {
        t.status == TaskStatus::Active.as_str()
            && t.worker_id.as_deref() == Some(worker_id)
            && t.lease_epoch == lease_epoch
    }))
}

/// Frees the slots of kept tasks that ended before the worker's stream was registered.
/// Called after `Dispatcher::connect`: an update applied later finds the worker connected
/// and frees the slot itself.
pub async fn release_ended(state: &AppState, worker_id: &str, kept: &[(String, i64)]) {
    for (task_id, lease_epoch) in kept {
        match still_held(&state.store, worker_id, task_id, *lease_epoch).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(
                    worker_id,
                    task_id,
                    "a kept task ended while the worker reconnected; freeing its slot"
                );
                state.dispatcher.task_finished(worker_id, task_id);
            }
            Err(e) => {
                tracing::warn!(
                    worker_id,
                    task_id,
                    "cannot recheck a reconnected worker's task: {e}"
                );
            }
        }
    }
}

/// Tells the worker to stop the tasks it listed as running but no longer holds.
pub fn abort_not_kept(
    state: &AppState,
    worker_id: &str,
    listed: &[v1::TaskLease],
    kept: &[(String, i64)],
) {
    let stale: Vec<TaskToAbort> = listed
        .iter()
        .filter(|lease| !kept.iter().any(|(id, _)| *id == lease.task_id))
        .map(|lease| TaskToAbort {
            task_id: lease.task_id.clone(),
            worker_id: worker_id.to_string(),
            lease_epoch: lease.lease_epoch as i64,
        })
        .collect();
    if stale.is_empty() {
        return;
    }
    tracing::info!(
        worker_id,
        tasks = stale.len(),
        "the reconnected worker still runs tasks that are no longer its own; aborting them"
    );
    state
        .dispatcher
        .abort_tasks(&stale, "the task is no longer this worker's");
}
