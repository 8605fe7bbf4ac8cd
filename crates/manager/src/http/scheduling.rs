//! Castanet's scheduling extensions: a job's dependencies on other jobs
//! (`GET|PUT /api/v3/jobs/{id}/dependencies`) and the farm's resource pools
//! (`GET /api/v3/resources`).
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, parse_uuid};
use super::status_schemas::JobStatusDoc;
use crate::AppState;
use crate::store::{Dependency, StoreError};

/// Extension: the jobs a job waits for. An empty list removes every dependency.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = JobDependenciesChange)]
pub struct DependenciesChange {
    depends_on: Vec<String>,
}

/// A job another job depends on, as it is now.
#[derive(Serialize, ToSchema)]
pub struct JobDependency {
    pub id: String,
    /// Empty when the job was deleted.
    pub name: String,
    /// The job's status, or `deleted`.
    pub status: String,
}

impl From<Dependency> for JobDependency {
    fn from(dependency: Dependency) -> Self {
        JobDependency {
            id: dependency.id,
            name: dependency.name,
            status: dependency.status,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct JobDependencies {
    pub job_id: String,
    #[schema(value_type = JobStatusDoc)]
    pub status: String,
    /// What it waits for, or why it is on hold.
    pub activity: String,
    pub dependencies: Vec<JobDependency>,
}

/// A counted resource pool of the farm.
#[derive(Serialize, ToSchema)]
pub struct ResourcePool {
    pub name: String,
    /// Units the pool holds (from the manager's config).
    pub size: u32,
    /// Units held by running tasks now.
    pub in_use: u64,
}

#[derive(Serialize, ToSchema)]
pub struct ResourcePools {
    pub pools: Vec<ResourcePool>,
}

/// `GET /api/v3/jobs/{id}/dependencies`: the jobs it depends on, as they are now.
pub async fn job_dependencies(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<JobDependencies>, ApiError> {
    let id = parse_uuid("job id", &id)?;
    let job = state
        .store
        .get_job(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job with id {id}")))?;
    let dependencies = state.store.job_dependencies(&id).await?;
    Ok(Json(JobDependencies {
        job_id: id,
        status: job.status,
        activity: job.activity,
        dependencies: dependencies.into_iter().map(JobDependency::from).collect(),
    }))
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

/// `GET /api/v3/resources`
pub async fn resource_pools(
    State(state): State<AppState>,
) -> Result<Json<ResourcePools>, ApiError> {
    let held = state.store.held_resource_units().await?;
    let pools = state
        .store
        .resource_pools()
        .iter()
        .map(|(name, size)| ResourcePool {
            name: name.clone(),
            size: *size,
            in_use: held.get(name).copied().unwrap_or(0),
        })
        .collect();
    Ok(Json(ResourcePools { pools }))
}
