//! Delivering requested worker statuses. A request is stored first (so a worker that is
//! away gets it when it reconnects), then "settled": sent down the worker's instruction
//! stream at once when forced or when the worker is idle; a lazy request waits until the
//! worker's last running task ends (the scheduler hands it nothing new meanwhile).
//!
//! Forced requests to stop working (asleep, offline, restart) hand the running tasks back
//! to the queue — they are aborted on the worker, not failed. `awake`/`asleep` take effect
//! on the manager when sent (the ordered stream is the acknowledgement); `offline` and
//! `restart` stay pending until the worker signs off, which acknowledges them.
mod sleep_schedule;

pub use sleep_schedule::{
    apply as apply_sleep_schedule, apply_now as apply_sleep_schedule_now,
    apply_saved as apply_saved_sleep_schedule,
};

use castanet_protocol::v1::{self, instruction::Kind};

use crate::AppState;
use crate::state::WorkerStatus;
use crate::store::StoreError;

/// Statuses an operator (or a sleep schedule) may request.
pub const REQUESTABLE: &[WorkerStatus] = &[
    WorkerStatus::Awake,
    WorkerStatus::Asleep,
    WorkerStatus::Offline,
    WorkerStatus::Restart,
];

/// Parses a requested status, naming the valid ones when it is not one of them.
pub fn parse_requestable(text: &str) -> Result<WorkerStatus, String> {
    let valid = || {
        REQUESTABLE
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match text.parse::<WorkerStatus>() {
        Ok(status) if REQUESTABLE.contains(&status) => Ok(status),
        _ => Err(format!(
            "unknown worker status \"{text}\" in field status; valid values: {}",
            valid()
        )),
    }
}

/// Held while a worker's status request is settled (one manager's, shared by its clones).
#[derive(Clone, Default)]
pub struct SettleLock(std::sync::Arc<tokio::sync::Mutex<()>>);

/// What settling a worker's request did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settled {
    NothingPending,
    /// Kept for when the worker connects again.
    NotConnected,
    /// Lazy: waits for the running tasks to end.
    WaitingForTasks,
    Delivered,
}

/// Delivers the worker's pending request if it is due now (see the module comment).
pub async fn settle(state: &AppState, worker_id: &str) -> Result<Settled, StoreError> {
    // One settle at a time (they are rare): a request is read, sent and acknowledged
    // without a second settle of the same worker delivering it twice.
    let _one_at_a_time = state.settling.0.lock().await;
    let dispatcher = &state.dispatcher;
    let Some(request) = state.store.worker_status_request(worker_id).await? else {
        dispatcher.set_lazy_status_pending(worker_id, false);
        return Ok(Settled::NothingPending);
    };
    let Ok(status) = request.status.parse::<WorkerStatus>() else {
        tracing::warn!(worker_id, status = %request.status, "ignoring an unknown requested status");
        return Ok(Settled::NothingPending);
    };
    if !dispatcher.is_connected(worker_id) {
        dispatcher.set_lazy_status_pending(worker_id, false);
        return Ok(Settled::NotConnected);
    }
    if request.is_lazy {
        // Marked before counting: a task ending after the count sees the mark.
        dispatcher.set_lazy_status_pending(worker_id, true);
        if state.store.active_task_count(worker_id).await? > 0 {
            return Ok(Settled::WaitingForTasks);
        }
    }
    dispatcher.set_lazy_status_pending(worker_id, false);
    if !request.is_lazy && status != WorkerStatus::Awake {
        let handed_back =
            crate::ops::worker_sessions::hand_back_running_tasks(state, worker_id, status).await?;
        crate::ops::apply(handed_back, state).await;
    }
    // Recorded before sending, so whoever sees the instruction also sees the new status.
    let recorded = matches!(status, WorkerStatus::Awake | WorkerStatus::Asleep);
    if recorded {
        let reason = format!(
            "{} status change requested",
            if request.is_lazy { "lazy" } else { "forced" }
        );
        state
            .store
            .apply_requested_status(worker_id, &request, &reason)
            .await?;
    }
    let instruction = Kind::ChangeStatus(v1::ChangeStatus {
        status: v1::WorkerStatus::from_api_name(status.as_str()).unwrap_or(v1::WorkerStatus::Asleep)
            as i32,
        lazy: request.is_lazy,
    });
    if !dispatcher.send_to_worker(worker_id, instruction) {
        // Gone meanwhile: keep the request for its next connection.
        if recorded {
            state
                .store
                .request_worker_status(worker_id, &request.status, request.is_lazy)
                .await?;
        }
        return Ok(Settled::NotConnected);
    }
    tracing::info!(worker_id, status = %status, lazy = request.is_lazy, "status change sent to the worker");
    crate::ops::apply(
        crate::ops::worker_requests::status_delivered(worker_id),
        state,
    )
    .await;
    Ok(Settled::Delivered)
}

/// A worker opened its instruction stream: a pending request reaches it now. With none
/// pending, its sleep schedule (if any) is applied afresh — as upstream answers a sign-on
/// with the schedule's status — so a worker that was away (crashed, timed out) during its
/// sleep hours goes back to sleep.
pub async fn on_connect(state: &AppState, worker_id: &str) -> Result<(), StoreError> {
    if settle(state, worker_id).await? == Settled::NothingPending {
        state.store.reset_sleep_schedule_applied(worker_id).await?;
        apply_sleep_schedule_now(state, worker_id).await?;
    }
    Ok(())
}

/// A task of `worker_id` ended: delivers a lazy request that waited for it. Cheap when
/// none is waiting (an in-memory check), since it runs on every finished task.
pub fn after_task_finished(state: &AppState, worker_id: &str) {
    if !state.dispatcher.is_lazy_status_pending(worker_id) {
        return;
    }
    let state = state.clone();
    let worker_id = worker_id.to_string();
    state.background.clone().spawn(async move {
        if let Err(e) = settle(&state, &worker_id).await {
            tracing::warn!(%worker_id, "cannot deliver the requested status: {e}");
        }
    });
}

/// Settles every lazy request still waiting (tasks that ended without a report from the
/// worker: aborted by a job cancel, timed out).
pub async fn settle_waiting(state: &AppState) -> Result<(), StoreError> {
    for worker_id in state.store.workers_with_lazy_requests().await? {
        settle(state, &worker_id).await?;
    }
    Ok(())
}

/// Settles waiting lazy requests whenever the dispatcher aborted a task of such a worker
/// (job cancelled, task timed out: no report comes), until `shutdown`.
pub async fn run_settler(state: AppState, shutdown: tokio_util::sync::CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = state.dispatcher.lazy_status_check_requested() => {}
        }
        if let Err(e) = settle_waiting(&state).await {
            tracing::warn!("cannot deliver waiting status requests: {e}");
        }
    }
}
