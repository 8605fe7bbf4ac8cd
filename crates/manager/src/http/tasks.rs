//! Reading tasks and their logs.
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, parse_uuid};
use super::shapes;
use crate::AppState;
use crate::logs::TaskLogs;
use crate::store::TaskRow;
use crate::variables::{DARWIN, LINUX, Variables, WINDOWS, normalize_platform};

async fn find_task(state: &AppState, id: &str) -> Result<TaskRow, ApiError> {
    let id = parse_uuid("task id", id)?;
    state
        .store
        .get_task(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no task with id {id}")))
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("cannot read task log: {e}"))
}

#[derive(Deserialize)]
pub struct TaskQuery {
    /// Expand the commands' `{variables}` as a worker on this platform gets them.
    platform: Option<String>,
}

/// `GET /api/v3/tasks/{id}` — commands as stored (`{variables}` unexpanded), or with
/// `?platform=linux|windows|darwin` as a worker there receives them.
pub async fn get_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<TaskQuery>,
) -> Result<Json<shapes::Task>, ApiError> {
    let platform = match query.platform.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(given) => {
            let platform = normalize_platform(given);
            if ![LINUX, WINDOWS, DARWIN].contains(&platform.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "platform must be linux, windows or darwin, not \"{given}\""
                )));
            }
            Some(platform)
        }
    };
    let task = find_task(&state, &id).await?;
    let dependencies = state.store.task_dependencies(&task.id).await?;
    let failed_by = state.store.task_failed_by(&task.id).await?;
    let mut answer = shapes::task(&task, &dependencies, &failed_by);
    if let Some(platform) = platform {
        let variables = Variables::from_config(&state.config);
        for command in &mut answer.commands {
            let mut parameters = Value::Object(
                std::mem::take(&mut command.parameters)
                    .into_iter()
                    .collect(),
            );
            variables.expand_parameters(&platform, &mut parameters);
            if let Value::Object(expanded) = parameters {
                command.parameters = expanded.into_iter().collect();
            }
        }
        answer.expanded_for = Some(platform);
    }
    Ok(Json(answer))
}

/// Where a task's whole log can be downloaded.
#[derive(Serialize, ToSchema)]
pub struct TaskLogInfo {
    pub task_id: String,
    pub job_id: String,
    /// Where the whole log is served (under `/job-files/`).
    pub url: String,
    pub size: i64,
}

/// `GET /api/v3/tasks/{id}/log` — where to download the log, and its size; 204 when empty.
pub async fn task_log_info(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let task = find_task(&state, &id).await?;
    let Some(size) = state
        .logs
        .size(&task.job_id, &task.id)
        .await
        .map_err(io_error)?
    else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let url = format!(
        "/job-files/{}",
        TaskLogs::log_relative(&task.job_id, &task.id)
    );
    let info = TaskLogInfo {
        task_id: task.id,
        job_id: task.job_id,
        url,
        size: size as i64,
    };
    Ok(Json(info).into_response())
}

/// `GET /api/v3/tasks/{id}/logtail` — the last ≤ 2 KiB as text; 204 when empty.
pub async fn task_log_tail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let task = find_task(&state, &id).await?;
    match state
        .logs
        .tail(&task.job_id, &task.id)
        .await
        .map_err(io_error)?
    {
        Some(tail) => {
            Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], tail).into_response())
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}
