//! Worker status requests and sleep schedules under `/api/v3/worker-mgt/workers/{id}`:
//! `setstatus` (POST stores a lazy or forced request and delivers it when due; DELETE
//! clears a pending one) and `sleep-schedule` (GET/POST, Flamenco's shape).
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::NaiveTime;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::error::ApiError;
use crate::AppState;
use crate::ops::{self, worker_requests};
use crate::state::{WorkerStatus, parse_days};
use crate::store::SleepScheduleRow;
use crate::worker_status::{parse_requestable, settle};

use super::workers::find_worker;

/// `POST /worker-mgt/workers/{id}/setstatus {status, is_lazy}` → 204. Requesting the
/// status the worker has already clears a pending request (as upstream); `restart` needs
/// a worker that can restart (412 otherwise).
pub async fn set_worker_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let worker = find_worker(&state, &id).await?;
    let body = json_object(&body, "status change")?;
    let requested = string_field(&body, "status")?;
    let is_lazy = bool_field(&body, "is_lazy")?;
    let status = parse_requestable(requested).map_err(ApiError::bad_request)?;
    if status == WorkerStatus::Restart && !worker.can_restart {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            format!(
                "worker {} cannot restart (it did not sign on as restartable)",
                worker.name
            ),
        ));
    }
    if worker.status == status.as_str() {
        let effects = worker_requests::clear_status_request(&state, &worker.id).await?;
        ops::apply(effects, &state).await;
        return Ok(StatusCode::NO_CONTENT);
    }
    let requested =
        worker_requests::request_status(&state.store, &worker.id, status.as_str(), is_lazy).await?;
    let Some(effects) = requested else {
        return Err(ApiError::not_found(format!(
            "no worker with id {}",
            worker.id
        )));
    };
    tracing::info!(worker = %worker.name, %status, lazy = is_lazy, "worker status change requested");
    ops::apply(effects, &state).await;
    settle(&state, &worker.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /worker-mgt/workers/{id}/setstatus` → 204: the pending request is dropped
/// (a request already sent to the worker cannot be taken back).
pub async fn clear_worker_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let worker = find_worker(&state, &id).await?;
    // Work may be handed out again.
    let effects = worker_requests::clear_status_request(&state, &worker.id).await?;
    ops::apply(effects, &state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// When a worker sleeps (Flamenco's shape).
#[derive(Serialize, ToSchema)]
pub struct WorkerSleepSchedule {
    pub is_active: bool,
    /// Two-letter day tokens separated by spaces ("mo tu we"); empty means every day.
    pub days_of_week: String,
    /// `HH:MM` or empty.
    pub start_time: String,
    pub end_time: String,
}

/// `GET /worker-mgt/workers/{id}/sleep-schedule` → the schedule, or 204 when none.
pub async fn get_sleep_schedule(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let worker = find_worker(&state, &id).await?;
    Ok(match state.store.sleep_schedule(&worker.id).await? {
        Some(row) => Json(WorkerSleepSchedule {
            is_active: row.is_active,
            days_of_week: row.days_of_week,
            start_time: row.start_time,
            end_time: row.end_time,
        })
        .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// `POST /worker-mgt/workers/{id}/sleep-schedule` → 204. Days are two-letter tokens
/// (normalised to lower case), times `HH:MM` or empty; an end before the start sleeps
/// over midnight. The schedule is applied at once.
pub async fn set_sleep_schedule(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let worker = find_worker(&state, &id).await?;
    let body = json_object(&body, "sleep schedule")?;
    let is_active = bool_field(&body, "is_active")?;
    let days = parse_days(string_field(&body, "days_of_week")?)
        .map_err(|e| ApiError::bad_request(format!("days_of_week: {e}")))?;
    let day_tokens: Vec<String> = days
        .iter()
        .map(|d| d.to_string()[..2].to_ascii_lowercase())
        .collect();
    let row = SleepScheduleRow {
        worker_id: worker.id.clone(),
        is_active,
        days_of_week: day_tokens.join(" "),
        start_time: parse_time("start_time", string_field(&body, "start_time")?)?,
        end_time: parse_time("end_time", string_field(&body, "end_time")?)?,
        last_applied: String::new(),
    };
    if !row.start_time.is_empty() && row.start_time == row.end_time {
        return Err(ApiError::bad_request(format!(
            "start_time and end_time are both {}: the schedule would never sleep",
            row.start_time
        )));
    }
    let previous = state.store.sleep_schedule(&worker.id).await?;
    let effects = worker_requests::set_sleep_schedule(&state.store, &row).await?;
    ops::apply(effects, &state).await;
    crate::worker_status::apply_saved_sleep_schedule(&state, &worker.id, previous.as_ref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `HH:MM` (or `HH:MM:SS`, seconds dropped) or empty; normalised to `HH:MM`.
fn parse_time(field: &str, text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(String::new());
    }
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map(|t| t.format("%H:%M").to_string())
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{field}: \"{text}\" is not a time of day; use HH:MM (24 h) or leave it empty"
            ))
        })
}

/// The request body as a JSON object (`what` names it in the error).
fn json_object(body: &[u8], what: &str) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(ApiError::bad_request(format!(
            "the {what} must be a JSON object"
        ))),
        Err(e) => Err(ApiError::bad_request(format!(
            "the {what} is not valid JSON: {e}"
        ))),
    }
}

fn required<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a Value, ApiError> {
    body.get(field)
        .ok_or_else(|| ApiError::bad_request(format!("missing field {field}")))
}

fn string_field<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a str, ApiError> {
    required(body, field)?
        .as_str()
        .ok_or_else(|| ApiError::bad_request(format!("field {field} must be a string")))
}

fn bool_field(body: &Map<String, Value>, field: &str) -> Result<bool, ApiError> {
    required(body, field)?
        .as_bool()
        .ok_or_else(|| ApiError::bad_request(format!("field {field} must be true or false")))
}
