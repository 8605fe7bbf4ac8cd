//! Which tasks a reconnecting worker keeps. The worker lists the task leases it still runs
//! when it opens its instruction stream; each one the store still shows as this worker's
//! active task under that lease keeps its slot.
//!
//! A final update for such a task can be applied between that check and the dispatcher
//! learning about the new stream (a worker delivers its backlog while it reconnects). The
//! update's "slot free again" then finds no connected worker, and the slot would stay held
//! by a finished task forever. So once the stream is registered, the kept tasks are checked
//! again and the ones that ended meanwhile are released.
use tonic::Status;

use super::store_status;
use crate::AppState;
use crate::state::TaskStatus;
use crate::store::Store;

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
