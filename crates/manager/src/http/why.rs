//! `GET /api/v3/tasks/{id}/why`: every rule that keeps a task from running.
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, parse_uuid};
use super::status_schemas::TaskStatusDoc;
use crate::AppState;
use crate::state::{
    Blocker, JobLimits, JobStatus, SchedulingView, TaskStatus, TaskView, WorkerView, blockers,
    free_resources,
};
use crate::store::{JobRow, StoreError, TaskRow};

/// Extension: one rule that keeps a task from running.
#[derive(Serialize, ToSchema)]
pub struct WhyBlocker {
    /// Which rule blocks the task (dependency, tag, blocklist, …).
    pub rule: &'static str,
    pub detail: String,
}

impl From<Blocker> for WhyBlocker {
    fn from(blocker: Blocker) -> Self {
        WhyBlocker {
            rule: blocker.rule,
            detail: blocker.detail,
        }
    }
}

/// Extension: why a task is not running.
#[derive(Serialize, ToSchema)]
pub struct WhyNotRunning {
    pub task_id: String,
    #[schema(value_type = TaskStatusDoc)]
    pub status: TaskStatus,
    pub summary: String,
    pub blockers: Vec<WhyBlocker>,
}

fn corrupt(e: crate::state::UnknownStatus) -> ApiError {
    StoreError::Corrupt(e.to_string()).into()
}

pub async fn why_not_running(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WhyNotRunning>, ApiError> {
    let id = parse_uuid("task id", &id)?;
    let store = &state.store;
    let task = store
        .get_task(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no task with id {id}")))?;
    let job = store
        .get_job(&task.job_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job with id {}", task.job_id)))?;
    let status: TaskStatus = task.status.parse().map_err(corrupt)?;
    if status == TaskStatus::Active {
        let worker = task.worker_name.clone().unwrap_or_default();
        return Ok(Json(WhyNotRunning {
            task_id: id,
            status,
            summary: format!("the task is running on worker {worker}"),
            blockers: Vec::new(),
        }));
    }
    let view = task_view(&state, &task, &job).await?;
    let workers = worker_views(&state).await?;
    let found = blockers(&view, &workers);
    let summary = if found.is_empty() {
        "nothing blocks it: the next free slot of an eligible worker gets it".to_string()
    } else {
        format!("{} rule(s) keep the task from running", found.len())
    };
    Ok(Json(WhyNotRunning {
        task_id: id,
        status,
        summary,
        blockers: found.into_iter().map(WhyBlocker::from).collect(),
    }))
}

/// What the scheduler checks about a task that is not running, read from the store.
pub async fn task_view(
    state: &AppState,
    task: &TaskRow,
    job: &JobRow,
) -> Result<TaskView, ApiError> {
    let store = &state.store;
    let (tag_members, tag_name) = match &job.worker_tag_id {
        Some(tag) => (
            Some(store.tag_members(tag).await?),
            store.get_tag(tag).await?.map(|t| t.name),
        ),
        None => (None, None),
    };
    let blocklisted = store
        .job_blocklist(&job.id)
        .await?
        .into_iter()
        .filter(|(_, _, task_type, _)| *task_type == task.task_type)
        .map(|(worker_id, ..)| worker_id)
        .collect();
    let failed_by = store.task_failed_by_ids(&task.id).await?;
    let scheduling = scheduling_view(state, task, job, failed_by.len()).await?;
    Ok(TaskView {
        status: task.status.parse().map_err(corrupt)?,
        task_type: task.task_type.clone(),
        job_status: job.status.parse::<JobStatus>().map_err(corrupt)?,
        tag_members,
        tag_name,
        dependencies: store
            .dependency_statuses(&task.id)
            .await?
            .into_iter()
            .map(|(_, name, status)| (name, status))
            .collect(),
        blocklisted,
        failed_by,
        tasks_ahead: store.runnable_tasks_ahead(&task.id).await?,
        requirements: store.job_requirements(&job.id).await?,
        scheduling,
    })
}

/// Every registered worker as the scheduler sees it now.
pub async fn worker_views(state: &AppState) -> Result<Vec<WorkerView>, ApiError> {
    let store = &state.store;
    let mut tag_names = store.worker_tag_names().await?;
    Ok(store
        .list_workers()
        .await?
        .into_iter()
        .map(|w| WorkerView {
            free_slots: state.dispatcher.free_slots(&w.id),
            capabilities: crate::state::WorkerCapabilities::from_stored(
                &w.capabilities,
                tag_names.remove(&w.id).unwrap_or_default(),
            ),
            task_types: w.task_types(),
            id: w.id,
            name: w.name,
            status: w.status,
        })
        .collect())
}

/// What job dependencies, the retry backoff, resource pools and the job's worker limit say.
async fn scheduling_view(
    state: &AppState,
    task: &TaskRow,
    job: &JobRow,
    failures: usize,
) -> Result<SchedulingView, ApiError> {
    let store = &state.store;
    let waiting_for_jobs = store
        .job_dependencies(&job.id)
        .await?
        .into_iter()
        .filter(|d| !d.is_completed())
        .map(|d| {
            let name = if d.name.is_empty() {
                format!("job {}", d.id)
            } else {
                format!("job \"{}\" ({})", d.name, d.id)
            };
            (name, d.status)
        })
        .collect();
    let now = chrono::Utc::now();
    let retry_in = task
        .retry_at
        .as_ref()
        .filter(|_| task.status == TaskStatus::SoftFailed.as_str())
        .and_then(|at| {
            let when = chrono::DateTime::parse_from_rfc3339(at).ok()?;
            let left = (when.with_timezone(&chrono::Utc) - now).num_milliseconds();
            (left > 0).then(|| (at.clone(), (left as u64).div_ceil(1000)))
        });
    let limits = JobLimits::from_stored(&job.limits).map_err(|e| {
        ApiError::from(StoreError::Corrupt(format!(
            "limits of job {} are unreadable: {e}",
            job.id
        )))
    })?;
    let (free_units, job_workers) = if limits.is_empty() {
        Default::default()
    } else {
        let held = store.held_resource_units().await?;
        (
            free_resources(store.resource_pools(), &held),
            store.job_worker_ids(&job.id).await?,
        )
    };
    Ok(SchedulingView {
        waiting_for_jobs,
        retry_in,
        failures,
        limits,
        free_units,
        pool_sizes: store.resource_pools().clone(),
        job_workers,
    })
}
