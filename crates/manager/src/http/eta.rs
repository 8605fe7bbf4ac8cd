//! `GET /api/v3/eta`: when each unfinished job and the whole farm are expected to be done
//! (`state::eta`), with a range, from measured task durations, the connected workers that
//! can run each job and the work queued ahead of it.
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::AppState;
use crate::state::{DurationSample, Estimate, JobLimits, JobLoad, estimate};
use crate::store::format_time;

/// When something is expected to be done. The times are absent when no estimate can be
/// made; `basis` says why, or what the estimate rests on.
#[derive(Serialize, ToSchema)]
pub struct Completion {
    /// Tasks still to run (queued, soft-failed, running).
    pub remaining_tasks: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub finish_at: Option<String>,
    /// The range the finish time falls in (95 %, from the spread of task durations).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub earliest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub latest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remaining_seconds: Option<f64>,
    pub basis: String,
}

#[derive(Serialize, ToSchema)]
pub struct JobCompletion {
    pub job_id: String,
    #[serde(flatten)]
    pub completion: Completion,
}

/// Estimated completion of every unfinished job (in scheduling order) and of the farm.
#[derive(Serialize, ToSchema)]
pub struct CompletionEstimates {
    #[schema(format = DateTime)]
    pub computed_at: String,
    pub farm: Completion,
    pub jobs: Vec<JobCompletion>,
}

const CENTURY_SECONDS: f64 = 100.0 * 365.25 * 24.0 * 3600.0;

pub async fn eta(State(state): State<AppState>) -> Result<Json<CompletionEstimates>, ApiError> {
    let now = chrono::Utc::now();
    let capacity = state.dispatcher.connected_capacity();
    let farm_slots: u64 = capacity.iter().map(|(_, slots)| *slots as u64).sum();
    let loads: Vec<JobLoad> = state
        .store
        .eta_inputs()
        .await?
        .into_iter()
        .map(|input| {
            // Workers that support the next task's type (any worker when nothing waits).
            let able: Vec<usize> = capacity
                .iter()
                .filter(|(types, _)| {
                    input
                        .next_task_type
                        .as_ref()
                        .is_none_or(|wanted| types.contains(wanted))
                })
                .map(|(_, slots)| *slots)
                .collect();
            let slots = able.iter().sum::<usize>() as u64;
            // Unreadable limits cost only the worker limit's effect on the estimate.
            let limits = JobLimits::from_stored(&input.limits).unwrap_or_default();
            let worker_limit = limits.max_workers.map(|workers| {
                let per_worker = slots as f64 / able.len().max(1) as f64;
                (f64::from(workers) * per_worker).ceil() as u64
            });
            let pool_limit = input.next_task_type.as_ref().and_then(|task_type| {
                limits.pool_task_limit(state.store.resource_pools(), task_type)
            });
            let slot_limit = match (worker_limit, pool_limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            JobLoad {
                held: matches!(
                    input.status.as_str(),
                    "paused" | "pause-requested" | "waiting-for-dependencies"
                ),
                waiting_tasks: input.waiting,
                running_tasks: input.running,
                sample: DurationSample::predicted(&input.durations, input.waiting_mean_index),
                slots,
                slot_limit,
                job_id: input.job_id,
            }
        })
        .collect();
    let (jobs, farm) = estimate(&loads, farm_slots);
    // An estimate past a century (no worker for a job, say) is shown as a century: the time
    // stays representable.
    let at = |seconds: f64| {
        let millis = (seconds.clamp(0.0, CENTURY_SECONDS) * 1000.0).round() as i64;
        format_time(now + chrono::Duration::milliseconds(millis))
    };
    let completion = |remaining_tasks: u64, found: Option<&Estimate>, basis: String| Completion {
        remaining_tasks,
        finish_at: found.map(|e| at(e.seconds)),
        earliest: found.map(|e| at(e.earliest)),
        latest: found.map(|e| at(e.latest)),
        remaining_seconds: found.map(|e| e.seconds),
        basis,
    };
    let jobs = jobs
        .into_iter()
        .map(|job| JobCompletion {
            completion: completion(job.remaining_tasks, job.estimate.as_ref(), job.basis),
            job_id: job.job_id,
        })
        .collect();
    let remaining: u64 = loads.iter().map(JobLoad::remaining_tasks).sum();
    let basis = match &farm {
        Some(_) => format!("{farm_slots} connected slot(s) working through the queue"),
        None if remaining == 0 => "nothing left to run".to_owned(),
        None => "no job can be estimated yet".to_owned(),
    };
    Ok(Json(CompletionEstimates {
        computed_at: format_time(now),
        farm: completion(remaining, farm.as_ref(), basis),
        jobs,
    }))
}
