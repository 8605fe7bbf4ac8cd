//! A job's blocklist: `GET /api/v3/jobs/{id}/blocklist` lists it; `DELETE` lets workers try
//! task types of the job again.
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, parse_uuid};
use super::job_delete::json_body;
use super::jobs::existing_job_id;
use crate::AppState;
use crate::ops::{self, job_actions};

/// One blocklist entry (Flamenco's `JobBlocklistEntry`): this worker may not run tasks of
/// this type in the job.
#[derive(Deserialize, Serialize, utoipa::ToSchema)]
pub struct JobBlocklistEntry {
    pub worker_id: String,
    pub task_type: String,
    /// Given in answers; ignored in removal requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_name: Option<String>,
    /// Why the worker was blocklisted (a Castanet extension; ignored in removals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Body: a non-empty list of `{worker_id, task_type}` → 204; entries that are not on the
/// blocklist are ignored; 404 for an unknown job.
pub async fn remove_blocklist_entries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<Vec<JobBlocklistEntry>>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let id = parse_uuid("job id", &id)?;
    let entries = json_body(body, "blocklist entries")?;
    if entries.is_empty() {
        return Err(ApiError::bad_request(
            "no blocklist entries given: send a list of {worker_id, task_type}",
        ));
    }
    let pairs: Vec<(String, String)> = entries
        .into_iter()
        .map(|e| (e.worker_id, e.task_type))
        .collect();
    let (removed, effects) =
        job_actions::remove_blocklist_entries(&state.store, &id, &pairs).await?;
    tracing::info!(job = %id, removed, "blocklist entries removed on request");
    ops::apply(effects, &state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v3/jobs/{id}/blocklist` → every entry, with the worker's name and the reason.
pub async fn job_blocklist(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<JobBlocklistEntry>>, ApiError> {
    let id = existing_job_id(&state, &id).await?;
    let entries = state
        .store
        .job_blocklist(&id)
        .await?
        .into_iter()
        .map(
            |(worker_id, worker_name, task_type, reason)| JobBlocklistEntry {
                worker_id,
                task_type,
                worker_name: Some(worker_name),
                reason: Some(reason),
            },
        )
        .collect();
    Ok(Json(entries))
}
