//! Applying a worker's sleep schedule: when the schedule's answer (`asleep` or `awake`, in
//! the manager's local time) changed since it last acted, a LAZY status request is issued,
//! so a running render finishes first. The monitor (`monitor/sleep_schedules.rs`) decides
//! when this runs; saving a schedule and a worker's reconnection run it too.
use chrono::{DateTime, NaiveTime, Utc};

use crate::AppState;
use crate::state::{SleepSchedule, WorkerStatus, parse_days};
use crate::store::{SleepScheduleRow, StoreError};

/// Applies one worker's stored schedule at the system time (right after it is saved).
pub async fn apply_now(state: &AppState, worker_id: &str) -> Result<(), StoreError> {
    if let Some(row) = state.store.sleep_schedule(worker_id).await?
        && row.is_active
    {
        apply(state, &row, Utc::now()).await?;
    }
    Ok(())
}

/// Applies a schedule just saved over `previous`. A schedule switched off while it held the
/// worker asleep wakes it (lazily): nothing else would, and the operator switched it off to
/// have the worker back. A worker put to sleep by hand stays asleep.
pub async fn apply_saved(
    state: &AppState,
    worker_id: &str,
    previous: Option<&SleepScheduleRow>,
) -> Result<(), StoreError> {
    let Some(row) = state.store.sleep_schedule(worker_id).await? else {
        return Ok(());
    };
    let held_asleep =
        previous.is_some_and(|p| p.is_active && p.last_applied == WorkerStatus::Asleep.as_str());
    if row.is_active || held_asleep {
        // An inactive schedule's answer is `awake`.
        apply(state, &row, Utc::now()).await?;
    }
    Ok(())
}

/// The schedule as the evaluator wants it; stored rows were validated on save.
fn schedule_of(row: &SleepScheduleRow) -> Result<SleepSchedule, StoreError> {
    let time = |text: &str| -> Result<Option<NaiveTime>, StoreError> {
        if text.is_empty() {
            return Ok(None);
        }
        NaiveTime::parse_from_str(text, "%H:%M")
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("sleep schedule time \"{text}\": {e}")))
    };
    Ok(SleepSchedule {
        is_active: row.is_active,
        days: parse_days(&row.days_of_week).map_err(StoreError::Corrupt)?,
        start: time(&row.start_time)?,
        end: time(&row.end_time)?,
    })
}

/// Requests the scheduled status when the schedule's answer changed since the last
/// request; returns the status requested, if any.
pub async fn apply(
    state: &AppState,
    row: &SleepScheduleRow,
    now: DateTime<Utc>,
) -> Result<Option<WorkerStatus>, StoreError> {
    let local = now.with_timezone(&chrono::Local).naive_local();
    let wanted = schedule_of(row)?.status_at(local);
    if row.last_applied == wanted.as_str() {
        return Ok(None);
    }
    let Some(worker) = state.store.get_worker(&row.worker_id).await? else {
        return Ok(None);
    };
    if worker.deleted_at.is_some() || worker.status == WorkerStatus::Error.as_str() {
        return Ok(None);
    }
    let pending = state.store.worker_status_request(&worker.id).await?;
    let already = match &pending {
        Some(request) => request.status == wanted.as_str(),
        None => worker.status == wanted.as_str(),
    };
    let store = &state.store;
    if !already {
        let requested =
            crate::ops::worker_requests::request_status(store, &worker.id, wanted.as_str(), true)
                .await?;
        tracing::info!(worker = %worker.name, status = %wanted, "sleep schedule requests a status change");
        if let Some(effects) = requested {
            crate::ops::apply(effects, state).await;
        }
        super::settle(state, &worker.id).await?;
    }
    store
        .mark_sleep_schedule_applied(&worker.id, wanted.as_str())
        .await?;
    Ok((!already).then_some(wanted))
}
