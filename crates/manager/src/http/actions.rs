//! Status actions on jobs and tasks (Flamenco's paths): setstatus and setpriority (the
//! blocklist lives in `blocklist`, deletion in `job_delete`). Invalid transitions are refused with
//! 409 and the reason.
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::error::{ApiError, parse_uuid};
use crate::AppState;
use crate::ops::{self, job_actions};
use crate::state::{JobStatus, TaskStatus};
use crate::store::StoreError;

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
    let (change, effects) = job_actions::set_job_status(&state.store, &id, requested, &body.reason)
        .await
        .map_err(refused_as_conflict)?;
    tracing::info!(job = %id, %requested, settled = %change.status, reason = %body.reason, "job status changed by request");
    ops::apply(effects, &state).await;
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
    let effects = job_actions::set_job_priority(&state.store, &id, body.priority).await?;
    ops::apply(effects, &state).await;
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
    let effects = job_actions::set_task_status(&state.store, &id, requested, &body.reason)
        .await
        .map_err(refused_as_conflict)?;
    ops::apply(effects, &state).await;
    Ok(StatusCode::NO_CONTENT)
}
