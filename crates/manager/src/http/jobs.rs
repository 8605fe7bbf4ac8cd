//! Reading jobs and job types.
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, parse_uuid};
use super::shapes::{self, JobTasksSummary, JobsQueryResult};
use crate::AppState;
use crate::compiler::{CompileError, JobTypeInfo};
use crate::state::JobStatus;
use crate::store::{JobOrder, JobQuery};

/// Most jobs one page returns.
const MAX_PAGE: i64 = 1000;
/// Jobs per page when the client names no limit: a farm's whole history in one answer
/// would cost every careless client (and the manager) more than it shows.
const DEFAULT_PAGE: i64 = 100;

/// Runs job-type script work off the async threads (QuickJS is synchronous).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CompileError> + Send + 'static,
) -> Result<Result<T, CompileError>, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("job-type script runner failed: {e}")))
}

/// Every job type the manager knows.
#[derive(Serialize, ToSchema)]
pub struct AvailableJobTypes {
    pub job_types: Vec<JobTypeInfo>,
}

/// `GET /api/v3/jobs/types`
pub async fn job_types(State(state): State<AppState>) -> Result<Json<AvailableJobTypes>, ApiError> {
    let registry = state.job_types.clone();
    let job_types = blocking(move || registry.list()).await??;
    Ok(Json(AvailableJobTypes { job_types }))
}

/// `GET /api/v3/jobs/type/{name}`
pub async fn job_type(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<JobTypeInfo>, ApiError> {
    let registry = state.job_types.clone();
    match blocking(move || registry.get(&name)).await? {
        Ok(info) => Ok(Json(info)),
        Err(e @ CompileError::UnknownJobType { .. }) => Err(ApiError::not_found(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ListParams {
    limit: Option<i64>,
    offset: Option<i64>,
    /// Comma-separated statuses.
    status: Option<String>,
    /// Text to look for in the name, type or id.
    q: Option<String>,
    /// created | oldest | updated | priority | name
    order: Option<String>,
}

fn checked_page(
    limit: Option<i64>,
    offset: Option<i64>,
    default: i64,
) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::bad_request("offset must not be negative"));
    }
    Ok((limit, offset))
}

fn checked_statuses(statuses: impl IntoIterator<Item = String>) -> Result<Vec<String>, ApiError> {
    statuses
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<JobStatus>()
                .map(|status| status.as_str().to_string())
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .collect()
}

/// The statuses of a JSON list: each must be a job status as it is spelled, since the
/// document lists them as an enum (unlike the query string's comma list, where blanks
/// between commas are forgiven).
fn exact_statuses(statuses: Vec<String>) -> Result<Vec<String>, ApiError> {
    for status in &statuses {
        if status.parse::<JobStatus>().ok().map(|s| s.as_str()) != Some(status.as_str()) {
            return Err(ApiError::bad_request(format!(
                "status_in: \"{status}\" is not a job status"
            )));
        }
    }
    Ok(statuses)
}

async fn answer(state: &AppState, query: &JobQuery) -> Result<Json<JobsQueryResult>, ApiError> {
    let (rows, total) = state.store.query_jobs(query).await?;
    Ok(Json(JobsQueryResult {
        jobs: rows.iter().map(shapes::job).collect(),
        total,
    }))
}

/// `GET /api/v3/jobs?status=a,b&q=text&order=created&limit=&offset=` — paged, newest first.
pub async fn list_jobs(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Result<Json<JobsQueryResult>, ApiError> {
    let (limit, offset) = checked_page(params.limit, params.offset, DEFAULT_PAGE)?;
    let order = match params.order.as_deref() {
        None | Some("") => JobOrder::default(),
        Some(text) => JobOrder::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown order \"{text}\"; use created, oldest, updated, priority or name"
            ))
        })?,
    };
    let statuses = params
        .status
        .map(|s| s.split(',').map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    // SQLite's LIKE reads a pattern up to a NUL, so one would match every job.
    if params.q.as_deref().is_some_and(|q| q.contains('\0')) {
        return Err(ApiError::bad_request("q must not contain a NUL character"));
    }
    let query = JobQuery {
        statuses: checked_statuses(statuses)?,
        text: params.q,
        metadata: Vec::new(),
        order,
        limit,
        offset,
    };
    answer(&state, &query).await
}

/// Flamenco's `JobsQuery`.
#[derive(Deserialize)]
struct JobsQueryBody {
    offset: Option<i64>,
    limit: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    #[serde(default)]
    status_in: Vec<String>,
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, String>,
}

/// `POST /api/v3/jobs/query` (Flamenco's JobsQuery) → `{jobs}`.
pub async fn query_jobs(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<JobsQueryResult>, ApiError> {
    let body: JobsQueryBody = super::body::parse_object(&body, "jobs query")?;
    // Flamenco's query answers every match unless limited: up to a page.
    let (limit, offset) = checked_page(body.limit, body.offset, MAX_PAGE)?;
    let order = match body.order_by.first() {
        None => JobOrder::default(),
        Some(text) => JobOrder::parse(text)
            .ok_or_else(|| ApiError::bad_request(format!("cannot order by \"{text}\"")))?,
    };
    let query = JobQuery {
        statuses: exact_statuses(body.status_in)?,
        text: None,
        metadata: body.metadata.into_iter().collect(),
        order,
        limit,
        offset,
    };
    answer(&state, &query).await
}

/// Checks that `id` is a UUID of a stored job; returns it normalised.
pub(super) async fn existing_job_id(state: &AppState, id: &str) -> Result<String, ApiError> {
    let id = parse_uuid("job id", id)?;
    if state.store.get_job(&id).await?.is_none() {
        return Err(ApiError::not_found(format!("no job with id {id}")));
    }
    Ok(id)
}

/// `GET /api/v3/jobs/{id}`
pub async fn get_job(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<shapes::Job>, ApiError> {
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
) -> Result<Json<JobTasksSummary>, ApiError> {
    let id = existing_job_id(&state, &id).await?;
    let rows = state.store.list_job_tasks(&id).await?;
    Ok(Json(JobTasksSummary {
        tasks: rows.iter().map(shapes::task_summary).collect(),
    }))
}
