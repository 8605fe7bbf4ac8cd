//! Reading jobs and job types.
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, parse_uuid};
use super::shapes;
use crate::AppState;
use crate::compiler::CompileError;

/// Most jobs one page returns.
const MAX_PAGE: i64 = 1000;

/// Runs job-type script work off the async threads (QuickJS is synchronous).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CompileError> + Send + 'static,
) -> Result<Result<T, CompileError>, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("job-type script runner failed: {e}")))
}

/// `GET /api/v3/jobs/types`
pub async fn job_types(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let registry = state.job_types.clone();
    let types = blocking(move || registry.list()).await??;
    Ok(Json(json!({ "job_types": types })))
}

/// `GET /api/v3/jobs/type/{name}`
pub async fn job_type(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let registry = state.job_types.clone();
    match blocking(move || registry.get(&name)).await? {
        Ok(info) => Ok(Json(json!(info))),
        Err(e @ CompileError::UnknownJobType { .. }) => Err(ApiError::not_found(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /api/v3/jobs?limit=&offset=` — newest first, paged.
pub async fn list_jobs(
    State(state): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<Value>, ApiError> {
    let limit = page.limit.unwrap_or(MAX_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let offset = page.offset.unwrap_or(0).max(0);
    let rows = state.store.list_jobs(limit, offset).await?;
    let jobs: Vec<Value> = rows.iter().map(shapes::job).collect();
    Ok(Json(json!({ "jobs": jobs })))
}

/// `GET /api/v3/jobs/{id}`
pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_uuid("job id", &id)?;
    let row = state
        .store
        .get_job(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job with id {id}")))?;
    Ok(Json(shapes::job(&row)))
}

/// `GET /api/v3/jobs/{id}/tasks`
pub async fn job_tasks(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_uuid("job id", &id)?;
    if state.store.get_job(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no job with id {id}")));
    }
    let rows = state.store.list_job_tasks(&id).await?;
    let tasks: Vec<Value> = rows.iter().map(shapes::task_summary).collect();
    Ok(Json(json!({ "tasks": tasks })))
}
