//! Opening a worker's instruction stream once `ops::worker_sessions::connect` decided which
//! tasks it keeps. The worker lists the task leases it still runs when it opens the
//! stream; each one the store still shows as this worker's active task under that lease
//! keeps its slot in the dispatcher.
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

use super::instruction_stream::{self, InstructionStream};
use crate::AppState;
use crate::ops::{self, worker_sessions::Reconnected, worker_sessions::still_held};
use crate::scheduler::WorkerSession;
use crate::store::TaskToAbort;

/// Registers the reconnected worker's stream with the dispatcher (with the tasks it kept),
/// settles what changed meanwhile, and returns the stream. When tonic drops it (the worker
/// went away) the connection is forgotten and the worker timeout starts counting.
pub async fn open_stream(
    state: &AppState,
    reconnected: Reconnected,
    listed: &[v1::TaskLease],
) -> InstructionStream {
    let Reconnected { worker, kept } = reconnected;
    let worker_id = worker.id.clone();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let session = WorkerSession {
        worker_id: worker_id.clone(),
        name: worker.name.clone(),
        slots: worker.slots.max(1) as usize,
        task_types: worker.task_types(),
        running: kept.clone(),
        variables: crate::variables::WorkerVariables::for_storage(
            &crate::variables::Variables::from_config(&state.config),
            &worker.platform,
            worker.storage_mirror().as_deref(),
        ),
    };
    let connection = state.dispatcher.connect(session, sender);
    release_ended(state, &worker_id, &kept).await;
    abort_not_kept(state, &worker_id, listed, &kept);
    // A request made while the worker was away (or remembered at sign-off) reaches it now.
    if let Err(e) = crate::worker_status::on_connect(state, &worker_id).await {
        tracing::warn!(%worker_id, "cannot deliver the requested status: {e}");
    }
    let (stream, stream_dropped) = instruction_stream::new(receiver);
    let closed_state = state.clone();
    let closed_worker = worker_id.clone();
    state.background.spawn(async move {
        let _ = stream_dropped.await;
        closed_state
            .dispatcher
            .disconnect(&closed_worker, connection);
        let effects =
            ops::worker_sessions::stream_closed(&closed_state.store, &closed_worker).await;
        ops::apply(effects, &closed_state).await;
    });
    tracing::info!(worker = %worker.name, "worker connected");
    ops::apply(ops::worker_sessions::connected(&worker_id), state).await;
    stream
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
