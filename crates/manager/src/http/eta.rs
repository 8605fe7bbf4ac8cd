//! `GET /api/v3/eta`: when each unfinished job and the whole farm are expected to be done
//! (`state::eta`), with a range, from measured task durations, the connected workers that
//! can run each job and the work queued ahead of it.
use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use crate::AppState;
use crate::state::{DurationSample, Estimate, JobLimits, JobLoad, estimate};
use crate::store::format_time;

const CENTURY_SECONDS: f64 = 100.0 * 365.25 * 24.0 * 3600.0;

pub async fn eta(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
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
    let times = |fields: &mut Map<String, Value>, e: &Estimate| {
        fields.insert("finish_at".into(), json!(at(e.seconds)));
        fields.insert("earliest".into(), json!(at(e.earliest)));
        fields.insert("latest".into(), json!(at(e.latest)));
        fields.insert("remaining_seconds".into(), json!(e.seconds));
    };
    let jobs: Vec<Value> = jobs
        .into_iter()
        .map(|job| {
            let mut fields = Map::new();
            fields.insert("job_id".into(), json!(job.job_id));
            fields.insert("remaining_tasks".into(), json!(job.remaining_tasks));
            fields.insert("basis".into(), json!(job.basis));
            if let Some(e) = &job.estimate {
                times(&mut fields, e);
            }
            Value::Object(fields)
        })
        .collect();
    let mut farm_fields = Map::new();
    let remaining: u64 = loads.iter().map(JobLoad::remaining_tasks).sum();
    farm_fields.insert("remaining_tasks".into(), json!(remaining));
    match &farm {
        Some(e) => {
            times(&mut farm_fields, e);
            farm_fields.insert(
                "basis".into(),
                json!(format!(
                    "{farm_slots} connected slot(s) working through the queue"
                )),
            );
        }
        None => {
            farm_fields.insert(
                "basis".into(),
                json!(if remaining == 0 {
                    "nothing left to run"
                } else {
                    "no job can be estimated yet"
                }),
            );
        }
    }
    Ok(Json(json!({
        "computed_at": format_time(now),
        "farm": Value::Object(farm_fields),
        "jobs": jobs,
    })))
}
