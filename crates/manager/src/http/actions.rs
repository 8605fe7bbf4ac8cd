//! Status actions on jobs and tasks (Flamenco's paths): setstatus, setpriority, and the
//! job's blocklist (deletion lives in `job_delete`). Invalid transitions are refused with
//! 409 and the reason.
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, parse_uuid};
use super::jobs::existing_job_id;
use crate::AppState;
use crate::events::Event;
use crate::state::{JobStatus, TaskStatus};
use crate::store::{JobChange, StoreError};

#[derive(Deserialize)]
pub struct StatusRequest {
    status: String,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
pub struct PriorityRequest {
    priority: i64,
}

/// Store errors with refusals as 409 Conflict.
fn refused_as_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Refused(m) => ApiError::new(StatusCode::CONFLICT, m),
        other => other.into(),
    }
}

/// Stops swept tasks on their workers, announces the change and looks for new work.
fn announce_job_change(state: &AppState, job_id: &str, change: &JobChange) {
    if !change.to_abort.is_empty() {
        let reason = format!("the job got status \"{}\"", change.status);
        state
            .dispatcher
            .abort_and_announce(job_id, &change.to_abort, &reason);
    }
    state.events.publish(Event::job(job_id));
    state.dispatcher.kick();
}

/// `POST /api/v3/jobs/{id}/setstatus` `{status, reason}` → 204 | 409 with the reason.
pub async fn set_job_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let id = parse_uuid("job id", &id)?;
    let body: StatusRequest = super::body::parse_object(&body, "status change")?;
    let requested: JobStatus = body
        .status
        .parse()
        .map_err(|e: crate::state::UnknownStatus| ApiError::bad_request(e.to_string()))?;
    let change = state
        .store
        .request_job_status(&id, requested, &body.reason)
        .await
        .map_err(refused_as_conflict)?;
    tracing::info!(job = %id, %requested, settled = %change.status, reason = %body.reason, "job status changed by request");
    announce_job_change(&state, &id, &change);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v3/jobs/{id}/setpriority` `{priority}` (0..=100) → 204.
pub async fn set_job_priority(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let id = parse_uuid("job id", &id)?;
    let body: PriorityRequest = super::body::parse_object(&body, "priority change")?;
    if !(0..=100).contains(&body.priority) {
        return Err(ApiError::bad_request(format!(
            "priority must be between 0 and 100, not {}",
            body.priority
        )));
    }
    state.store.set_job_priority(&id, body.priority).await?;
    state.events.publish(Event::job(&id));
    state.dispatcher.kick();
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v3/tasks/{id}/setstatus` `{status, reason}`: requeue (`queued`) or cancel.
pub async fn set_task_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let id = parse_uuid("task id", &id)?;
    let body: StatusRequest = super::body::parse_object(&body, "status change")?;
    let requested: TaskStatus = body
        .status
        .parse()
        .map_err(|e: crate::state::UnknownStatus| ApiError::bad_request(e.to_string()))?;
    let change = state
        .store
        .request_task_status(&id, requested, &body.reason)
        .await
        .map_err(refused_as_conflict)?;
    let line = format!(
        "Task changed to status \"{}\" on request: {}",
        change.status,
        if body.reason.is_empty() {
            "no reason given"
        } else {
            &body.reason
        }
    );
    state.log_manager_line(&change.job_id, &id, &line).await;
    if let Some(abort) = &change.to_abort {
        state.dispatcher.abort_and_announce(
            &change.job_id,
            std::slice::from_ref(abort),
            "the task was canceled",
        );
    }
    state.events.publish(Event::task(&change.job_id, &id));
    match &change.job_change {
        Some(job_change) => announce_job_change(&state, &change.job_id, job_change),
        None => {
            state.events.publish(Event::job(&change.job_id));
            state.dispatcher.kick();
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v3/jobs/{id}/blocklist` → `[{worker_id, worker_name, task_type, reason}]`.
pub async fn job_blocklist(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = existing_job_id(&state, &id).await?;
    let entries: Vec<Value> = state
        .store
        .job_blocklist(&id)
        .await?
        .into_iter()
        .map(|(worker_id, worker_name, task_type, reason)| {
            json!({ "worker_id": worker_id, "worker_name": worker_name,
                    "task_type": task_type, "reason": reason })
        })
        .collect();
    Ok(Json(Value::Array(entries)))
}
