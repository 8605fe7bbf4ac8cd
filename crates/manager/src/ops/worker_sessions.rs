//! A worker's session with the manager: registering, signing on and off, opening its
//! instruction stream (which of its tasks it keeps), the stream closing, and the ways a
//! worker's tasks go back to the queue without it (timed out, removed, deleted, asked to
//! stop at once). Each operation returns what follows it as [`Effects`]; credentials are
//! checked by the caller (the gRPC layer) before.
use std::time::Duration;

use super::Effects;
use crate::AppState;
use crate::state::{TaskStatus, WorkerStatus};
use crate::store::{SignOn, Store, StoreError, TaskToAbort, WorkerRow};

/// Why a session operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The name the worker gave is not a valid worker name.
    #[error("{0}")]
    InvalidName(String),
    #[error("worker no longer exists; register again")]
    UnknownWorker,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A worker whose registration secret was accepted.
pub struct Registration {
    pub name: String,
    pub platform: String,
    /// The peer's IP address.
    pub address: String,
    /// The hash of the token the worker is given (shown to it once).
    pub token_hash: String,
}

/// Stores a new worker; returns its id.
pub async fn register(
    state: &AppState,
    registration: &Registration,
) -> Result<(String, Effects), SessionError> {
    let name = registration.name.trim();
    crate::names::check_name("worker name", name).map_err(SessionError::InvalidName)?;
    let worker_id = uuid::Uuid::new_v4().to_string();
    state
        .store
        .insert_worker(
            &worker_id,
            name,
            &registration.platform,
            &registration.address,
            &registration.token_hash,
        )
        .await?;
    tracing::info!(%worker_id, name, address = %registration.address, "worker registered");
    Ok((worker_id.clone(), worker_changed(&worker_id)))
}

/// Records what a worker says about itself as it signs on; returns its stored row.
pub async fn sign_on(
    state: &AppState,
    worker_id: &str,
    info: &SignOn,
) -> Result<(WorkerRow, Effects), SessionError> {
    crate::names::check_name("worker name", &info.name).map_err(SessionError::InvalidName)?;
    let row = state.store.sign_on_worker(worker_id, info).await?;
    tracing::info!(%worker_id, name = %row.name, slots = row.slots, "worker signed on");
    if let Some(problems) = info.capabilities["self_check_problems"]
        .as_array()
        .filter(|problems| !problems.is_empty())
    {
        tracing::warn!(%worker_id, name = %row.name, ?problems, "the worker's self-check found problems");
    }
    Ok((row, worker_changed(worker_id)))
}

/// The worker says goodbye: its connections close first (nothing new is handed to it
/// meanwhile), then its tasks go back to the queue.
pub async fn sign_off(
    state: &AppState,
    worker_id: &str,
    reason: &str,
) -> Result<Effects, SessionError> {
    state.dispatcher.disconnect_all(worker_id);
    let why = "the worker signed off";
    let requeued = state.store.sign_off_worker(worker_id, why).await?;
    tracing::info!(%worker_id, %reason, tasks_handed_back = requeued.len(), "worker signed off");
    let mut effects = left(worker_id, &requeued, why);
    // Its free slots are gone: the dispatcher looks again even when nothing was requeued.
    effects.kick();
    Ok(effects)
}

/// A worker opening its instruction stream: the tasks it still runs under their current
/// lease, and its stored row.
pub struct Reconnected {
    pub worker: WorkerRow,
    /// (task id, lease epoch) of the tasks the worker keeps.
    pub kept: Vec<(String, i64)>,
}

/// Keeps the tasks the worker still runs under their current lease (`leases`: task id,
/// lease epoch), hands back the rest of its active tasks and marks it awake. The caller
/// registers the stream with the dispatcher, then applies [`connected`].
pub async fn connect(
    state: &AppState,
    worker_id: &str,
    leases: &[(String, i64)],
) -> Result<(Reconnected, Effects), SessionError> {
    let why = "the worker reconnected without it";
    let reconnect = state
        .store
        .reconnect_worker(worker_id, leases, why)
        .await?
        .ok_or(SessionError::UnknownWorker)?;
    let mut effects = Effects::new();
    effects.requeued(&reconnect.requeued, why);
    let reconnected = Reconnected {
        worker: reconnect.worker,
        kept: reconnect.kept,
    };
    Ok((reconnected, effects))
}

/// The worker's stream is registered: it shows as connected.
pub fn connected(worker_id: &str) -> Effects {
    worker_changed(worker_id)
}

/// Whether `task_id` is still `worker_id`'s active task under `lease_epoch`.
pub async fn still_held(
    store: &Store,
    worker_id: &str,
    task_id: &str,
    lease_epoch: i64,
) -> Result<bool, StoreError> {
    let task = store.get_task(task_id).await?;
    Ok(task.is_some_and(|t| {
        t.status == TaskStatus::Active.as_str()
            && t.worker_id.as_deref() == Some(worker_id)
            && t.lease_epoch == lease_epoch
    }))
}

/// The worker's instruction stream closed (the dispatcher already forgot it): the worker
/// timeout counts from now.
pub async fn stream_closed(store: &Store, worker_id: &str) -> Effects {
    let seen = [worker_id.to_string()];
    // A stream that outlived the shutdown grace closes after the database; nothing to say then.
    if let Err(e) = store.touch_workers(&seen, chrono::Utc::now()).await
        && !store.is_closed()
    {
        tracing::warn!(%worker_id, "cannot record when the worker was last seen: {e}");
    }
    tracing::info!(%worker_id, "worker's instruction stream closed");
    worker_changed(worker_id)
}

/// The worker's stream has been gone for `timeout`: status `error`, its tasks back to the
/// queue.
pub async fn time_out_worker(
    state: &AppState,
    worker_id: &str,
    name: &str,
    timeout: Duration,
) -> Result<Effects, StoreError> {
    let reason = format!(
        "the worker timed out (no connection for {} s)",
        timeout.as_secs()
    );
    let requeued = state.store.worker_timed_out(worker_id, &reason).await?;
    tracing::warn!(worker = %name, tasks_requeued = requeued.len(), "worker timed out; status error");
    Ok(left(worker_id, &requeued, &reason))
}

/// Deletes the worker (by an admin, or for being offline too long): its token stops
/// working, its connections close, and its active tasks go back to the queue because of
/// `reason`; its history stays. None when it was deleted already.
pub async fn delete_worker(
    state: &AppState,
    worker_id: &str,
    reason: &str,
) -> Result<Option<Effects>, StoreError> {
    // Disconnected first: the dispatcher hands it nothing while its tasks are requeued.
    state.dispatcher.disconnect_all(worker_id);
    let Some(requeued) = state
        .store
        .delete_worker_and_requeue(worker_id, reason)
        .await?
    else {
        return Ok(None);
    };
    let mut effects = left(worker_id, &requeued, reason);
    // Its tasks may have no other worker left.
    effects.check_feasibility();
    Ok(Some(effects))
}

/// A forced request to stop working (asleep, offline, restart): the worker's running tasks
/// are aborted on it and go back to the queue — not a failure.
pub async fn hand_back_running_tasks(
    state: &AppState,
    worker_id: &str,
    status: WorkerStatus,
) -> Result<Effects, StoreError> {
    let reason = format!("the worker was asked to go {status} at once");
    let (running, requeued) = state
        .store
        .hand_back_worker_tasks(worker_id, &reason)
        .await?;
    Ok(handed_back_running(&running, &requeued, &reason))
}

/// Aborts the tasks of `running` that were requeued (task id, job id) and announces the
/// requeued ones.
fn handed_back_running(
    running: &[TaskToAbort],
    requeued: &[(String, String)],
    reason: &str,
) -> Effects {
    let mut effects = Effects::new();
    for (task_id, job_id) in requeued {
        let aborted: Vec<TaskToAbort> = running
            .iter()
            .filter(|t| t.task_id == *task_id)
            .cloned()
            .collect();
        effects.abort(job_id, &aborted, reason);
    }
    effects.requeued(requeued, reason);
    effects
}

/// A worker left (signed off, timed out, removed): its tasks `requeued` (task id, job id)
/// went back to the queue because of `reason`, and the worker changed.
fn left(worker_id: &str, requeued: &[(String, String)], reason: &str) -> Effects {
    let mut effects = Effects::new();
    effects.requeued(requeued, reason).worker_changed(worker_id);
    effects
}

fn worker_changed(worker_id: &str) -> Effects {
    let mut effects = Effects::new();
    effects.worker_changed(worker_id);
    effects
}

#[cfg(test)]
mod tests;
