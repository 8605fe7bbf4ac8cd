//! Castanet's scheduling extensions: a job's dependencies on other jobs
//! (`GET|PUT /api/v3/jobs/{id}/dependencies`) and the farm's resource pools
//! (`GET /api/v3/resources`).
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, parse_uuid};
use crate::AppState;
use crate::store::StoreError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependenciesChange {
    depends_on: Vec<String>,
}

/// `GET /api/v3/jobs/{id}/dependencies` → `{job_id, status, dependencies: [{id, name,
/// status}]}`: the jobs it depends on, as they are now.
pub async fn job_dependencies(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_uuid("job id", &id)?;
    let job = state
        .store
        .get_job(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job with id {id}")))?;
    let dependencies = state.store.job_dependencies(&id).await?;
    Ok(Json(json!({
        "job_id": id,
        "status": job.status,
        "activity": job.activity,
        "dependencies": dependencies,
    })))
}

/// `PUT /api/v3/jobs/{id}/dependencies` `{depends_on: [job id, …]}` → the job. Refused
/// with 409 when the job has started or a cycle would form; 400 for unknown jobs.
pub async fn set_job_dependencies(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<super::shapes::Job>, ApiError> {
    let id = parse_uuid("job id", &id)?;
    let body: DependenciesChange = super::body::parse_object(&body, "dependencies change")?;
    let ids = existing_job_ids(&state, &body.depends_on).await?;
    let effects = crate::ops::job_actions::set_job_dependencies(&state.store, &id, &ids)
        .await
        .map_err(|e| match e {
            StoreError::Refused(m) => ApiError::new(StatusCode::CONFLICT, m),
            other => other.into(),
        })?;
    tracing::info!(job = %id, depends_on = ?ids, "job dependencies changed");
    crate::ops::apply(effects, &state).await;
    let job = state
        .store
        .get_job(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job with id {id}")))?;
    Ok(Json(super::shapes::job(&job)))
}

/// Job ids named as dependencies, each checked to be a UUID of an existing job, without
/// repeats: 400 naming the first malformed id, or every unknown one.
pub async fn existing_job_ids<'a>(
    state: &AppState,
    named: impl IntoIterator<Item = &'a String>,
) -> Result<Vec<String>, ApiError> {
    let mut ids = Vec::new();
    for id in named {
        let id = parse_uuid("depends_on", id)?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let unknown = state.store.unknown_jobs(&ids).await?;
    if !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "depends_on names job(s) that do not exist: {}",
            unknown.join(", ")
        )));
    }
    Ok(ids)
}

/// `GET /api/v3/resources` → `{pools: [{name, size, in_use}]}`.
pub async fn resource_pools(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let held = state.store.held_resource_units().await?;
    let pools: Vec<Value> = state
        .store
        .resource_pools()
        .iter()
        .map(|(name, size)| {
            json!({
                "name": name,
                "size": size,
                "in_use": held.get(name).copied().unwrap_or(0),
            })
        })
        .collect();
    Ok(Json(json!({ "pools": pools })))
}
