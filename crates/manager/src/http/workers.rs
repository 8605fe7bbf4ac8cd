//! Worker management reads and tag assignment under `/api/v3/worker-mgt/workers`, in
//! Flamenco's `WorkerSummary` / `Worker` shapes plus our extensions (slots, capabilities,
//! all running tasks).
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, parse_uuid};
use super::shapes;
use crate::AppState;
use crate::store::WorkerRow;

fn summary(state: &AppState, row: &WorkerRow) -> Value {
    let mut worker = json!({
        "id": row.id,
        "name": row.name,
        "status": row.status,
        "version": row.software_version,
        "can_restart": row.can_restart,
        // Extensions.
        "slots": row.slots,
        "connected": state.dispatcher.is_connected(&row.id),
    });
    if let Some(seen) = &row.last_seen_at {
        worker["last_seen"] = json!(seen);
    }
    if !row.status_requested.is_empty() {
        worker["status_change"] =
            json!({ "status": row.status_requested, "is_lazy": row.lazy_status_request });
    }
    worker
}

/// `GET /worker-mgt/workers`
pub async fn list_workers(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let rows = state.store.list_workers().await?;
    let workers: Vec<Value> = rows.iter().map(|row| summary(&state, row)).collect();
    Ok(Json(json!({ "workers": workers })))
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
) -> Result<Json<Value>, ApiError> {
    let row = find_worker(&state, &id).await?;
    let mut worker = summary(&state, &row);
    worker["ip_address"] = json!(row.address);
    worker["platform"] = json!(row.platform);
    worker["supported_task_types"] = json!(row.task_types());
    worker["capabilities"] = serde_json::from_str(&row.capabilities).unwrap_or_else(|_| json!({}));
    let tasks = state.store.worker_tasks(&row.id).await?;
    let with_job = |task: &crate::store::TaskRow| {
        let mut value = shapes::task_summary(task);
        value["job_id"] = json!(task.job_id);
        value
    };
    if let Some(task) = tasks.first() {
        worker["task"] = with_job(task);
    }
    worker["tasks"] = json!(tasks.iter().map(with_job).collect::<Vec<_>>());
    let tags = state.store.worker_tags(&row.id).await?;
    if !tags.is_empty() {
        let tags: Vec<Value> = tags
            .iter()
            .map(|t| json!({ "id": t.id, "name": t.name }))
            .collect();
        worker["tags"] = json!(tags);
    }
    Ok(Json(worker))
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
