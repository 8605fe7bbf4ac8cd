//! Worker management reads and tag assignment under `/api/v3/worker-mgt/workers`, in
//! Flamenco's `WorkerSummary` / `Worker` shapes plus our extensions (slots, capabilities,
//! all running tasks).
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::error::{ApiError, parse_uuid};
use super::worker_shapes::{Worker, WorkerList, WorkerSummary, worker, worker_summary};
use crate::AppState;
use crate::store::WorkerRow;

fn summary(state: &AppState, row: &WorkerRow) -> WorkerSummary {
    worker_summary(row, state.dispatcher.is_connected(&row.id))
}

/// `GET /worker-mgt/workers`
pub async fn list_workers(State(state): State<AppState>) -> Result<Json<WorkerList>, ApiError> {
    let rows = state.store.list_workers().await?;
    let workers = rows.iter().map(|row| summary(&state, row)).collect();
    Ok(Json(WorkerList { workers }))
}

/// The worker `id` names, unless it is unknown or deleted (404).
pub(super) async fn find_worker(state: &AppState, id: &str) -> Result<WorkerRow, ApiError> {
    let id = parse_uuid("worker id", id)?;
    state
        .store
        .get_worker(&id)
        .await?
        .filter(|w| w.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found(format!("no worker with id {id}")))
}

/// `GET /worker-mgt/workers/{id}`
pub async fn get_worker(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Worker>, ApiError> {
    let row = find_worker(&state, &id).await?;
    let tasks = state.store.worker_tasks(&row.id).await?;
    let tags = state.store.worker_tags(&row.id).await?;
    let transfers = state.transfers.worker_totals(&row.id);
    Ok(Json(worker(
        summary(&state, &row),
        &row,
        &tasks,
        &tags,
        transfers,
    )))
}

#[derive(Deserialize)]
struct TagIds {
    tag_ids: Vec<String>,
}

/// `POST /worker-mgt/workers/{id}/settags {tag_ids}` — replaces the worker's tags.
/// Unknown tag ids are refused (naming them) rather than silently dropped.
pub async fn set_worker_tags(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let worker = find_worker(&state, &id).await?;
    let body: TagIds = super::body::parse_object(&body, "tag list")?;
    let mut unknown = Vec::new();
    let mut ids = Vec::new();
    for tag in &body.tag_ids {
        let id = parse_uuid("tag id", tag)?;
        match state.store.get_tag(&id).await? {
            Some(_) => ids.push(id),
            None => unknown.push(tag.clone()),
        }
    }
    if !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "unknown worker tags: {}",
            unknown.join(", ")
        )));
    }
    let effects =
        crate::ops::worker_requests::set_worker_tags(&state.store, &worker.id, &ids).await?;
    crate::ops::apply(effects, &state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /worker-mgt/workers/{id}` — the worker's token stops working at once, its
/// instruction stream is closed and its running tasks return to the queue.
pub async fn delete_worker(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let worker = find_worker(&state, &id).await?;
    let reason = "the worker was deleted";
    let deleted = crate::ops::worker_sessions::delete_worker(&state, &worker.id, reason).await?;
    let Some(effects) = deleted else {
        return Err(ApiError::not_found(format!(
            "no worker with id {}",
            worker.id
        )));
    };
    crate::ops::apply(effects, &state).await;
    tracing::info!(worker = %worker.name, "worker deleted");
    Ok(StatusCode::NO_CONTENT)
}
