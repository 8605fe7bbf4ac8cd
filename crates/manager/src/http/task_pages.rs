//! Extensions for the dashboard, bounded whatever the farm's size:
//! `GET /api/v3/jobs/{id}/tasks/page?offset=&limit=&status=a,b` — one page of a job's tasks
//! (`TaskSummary` shapes) with the number matching and the job's counts per status;
//! `GET /api/v3/jobs/task-counts?ids=a,b` — task counts per status of up to 1000 jobs, for
//! the progress bars of a jobs page;
//! `GET /api/v3/farm/summary` — workers and tasks counted per status and how many workers
//! run a task now, for the status bar.
use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, parse_uuid};
use super::jobs::existing_job_id;
use super::shapes::{self, TaskPage};
use crate::AppState;
use crate::state::TaskStatus;
use crate::store::StatusCounts;

/// Most tasks one page returns.
const MAX_TASK_PAGE: i64 = 1000;

/// Extension: the farm counted per status, for the dashboard's status bar.
#[derive(Serialize, ToSchema)]
pub struct FarmSummary {
    /// Worker status → count.
    pub workers: BTreeMap<String, i64>,
    /// Workers running a task now.
    pub workers_busy: i64,
    /// Task status → count; waiting tasks of paused jobs count as `paused`.
    pub tasks: BTreeMap<String, i64>,
}

/// Extension: job id → (task status → count).
#[derive(Serialize, ToSchema)]
pub struct JobTaskCounts(pub BTreeMap<String, BTreeMap<String, i64>>);

#[derive(Deserialize)]
pub struct PageParams {
    offset: Option<i64>,
    limit: Option<i64>,
    /// Comma-separated task statuses.
    status: Option<String>,
}

fn counts_object(counts: StatusCounts) -> BTreeMap<String, i64> {
    counts.into_iter().collect()
}

/// `GET /api/v3/jobs/{id}/tasks/page`
pub async fn job_tasks_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<Json<TaskPage>, ApiError> {
    let id = existing_job_id(&state, &id).await?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_TASK_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_TASK_PAGE}"
        )));
    }
    let offset = params.offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::bad_request("offset must not be negative"));
    }
    let statuses = params
        .status
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<TaskStatus>()
                .map(|status| status.as_str().to_string())
                .map_err(|e| ApiError::bad_request(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (rows, total) = state
        .store
        .job_tasks_page(&id, &statuses, offset, limit)
        .await?;
    let counts = state.store.job_task_status_counts(&id).await?;
    Ok(Json(TaskPage {
        tasks: rows.iter().map(shapes::task_summary).collect(),
        total,
        offset,
        status_counts: counts_object(counts),
    }))
}

/// `GET /api/v3/farm/summary`
pub async fn farm_summary(State(state): State<AppState>) -> Result<Json<FarmSummary>, ApiError> {
    let workers = state.store.worker_status_counts().await?;
    let tasks = state.store.farm_task_status_counts().await?;
    let busy = state.store.busy_worker_count().await?;
    Ok(Json(FarmSummary {
        workers: counts_object(workers),
        workers_busy: busy,
        tasks: counts_object(tasks),
    }))
}

#[derive(Deserialize)]
pub struct JobIds {
    /// Comma-separated job ids.
    ids: String,
}

/// `GET /api/v3/jobs/task-counts?ids=a,b` → `{job id: {status: count}}`.
pub async fn task_counts_of_jobs(
    State(state): State<AppState>,
    Query(params): Query<JobIds>,
) -> Result<Json<JobTaskCounts>, ApiError> {
    let ids = params
        .ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|id| parse_uuid("job id", id))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.len() as i64 > MAX_TASK_PAGE {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_TASK_PAGE} job ids at once"
        )));
    }
    let mut counts: BTreeMap<String, BTreeMap<String, i64>> =
        ids.iter().map(|id| (id.clone(), BTreeMap::new())).collect();
    for (job_id, status, n) in state.store.task_counts_of_jobs(&ids).await? {
        counts.entry(job_id).or_default().insert(status, n);
    }
    Ok(Json(JobTaskCounts(counts)))
}
