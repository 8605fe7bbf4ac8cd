//! `POST /api/v3/jobs` and `POST /api/v3/jobs/check`: parse a Flamenco `SubmittedJob`,
//! replace path prefixes by two-way variables, compile it with its job type, and (for a submission) store it with all its tasks in
//! one transaction. Any problem is a 4xx naming it, and nothing is stored.
use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::ApiError;
use super::shapes;
use crate::AppState;
use crate::compiler::{CompileInput, CompiledJob};
use crate::events::Event;
use crate::state::JobStatus;
use crate::store::{NewJob, NewTask, format_time};
use crate::variables::Variables;

/// Flamenco's `SubmittedJob`.
#[derive(Debug, Deserialize)]
struct SubmittedJob {
    name: String,
    #[serde(rename = "type")]
    job_type: String,
    #[serde(default)]
    type_etag: Option<String>,
    priority: i64,
    #[serde(default)]
    settings: Option<Map<String, Value>>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    submitter_platform: String,
    #[serde(default)]
    storage: Option<Storage>,
    #[serde(default)]
    worker_tag: Option<String>,
    #[serde(default)]
    initial_status: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Storage {
    #[serde(default)]
    shaman_checkout_id: Option<String>,
}

/// A submission that parsed, validated and compiled.
struct Compiled {
    submitted: SubmittedJob,
    /// As submitted, with `manager` replaced by the manager's own platform.
    submitter_platform: String,
    job_id: String,
    created: chrono::DateTime<chrono::Utc>,
    initial_status: JobStatus,
    /// The worker tag the job is limited to (checked to exist).
    worker_tag: Option<String>,
    job: CompiledJob,
}

fn parse(body: &[u8]) -> Result<SubmittedJob, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid job submission: {e}")))
}

async fn compile(state: &AppState, body: &[u8]) -> Result<Compiled, ApiError> {
    let submitted = parse(body)?;
    if submitted.name.trim().is_empty() {
        return Err(ApiError::bad_request("job name must not be empty"));
    }
    if submitted.job_type.trim().is_empty() {
        return Err(ApiError::bad_request("job type must not be empty"));
    }
    let priority = i32::try_from(submitted.priority).map_err(|_| {
        ApiError::bad_request(format!("priority {} is out of range", submitted.priority))
    })?;
    let initial_status = match submitted.initial_status.as_deref() {
        None | Some("") => JobStatus::Queued,
        Some(text) => {
            let status: JobStatus = text
                .parse()
                .map_err(|e| ApiError::bad_request(format!("initial_status: {e}")))?;
            if !status.is_valid_initial() {
                return Err(ApiError::bad_request(format!(
                    "initial_status must be \"queued\" or \"paused\", not \"{status}\""
                )));
            }
            status
        }
    };
    let worker_tag = match submitted.worker_tag.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(tag) => {
            let id = super::error::parse_uuid("worker tag", tag)?;
            if state.store.get_tag(&id).await?.is_none() {
                return Err(ApiError::bad_request(format!(
                    "unknown worker tag \"{tag}\"; see GET /api/v3/worker-mgt/tags"
                )));
            }
            Some(id)
        }
    };
    // Paths under a two-way variable's value are stored as `{name}/…`, so every worker can
    // get them in its own notation.
    let variables = Variables::from_config(&state.config);
    let submitter_platform = if submitted.submitter_platform.eq_ignore_ascii_case("manager") {
        variables.manager_platform().to_owned()
    } else {
        submitted.submitter_platform.clone()
    };
    let mut settings = submitted.settings.clone().unwrap_or_default();
    let mut metadata = submitted.metadata.clone().unwrap_or_default();
    variables.replace_two_way(&submitter_platform, &mut settings, &mut metadata);

    let job_id = uuid::Uuid::new_v4().to_string();
    let created = chrono::Utc::now();
    let input = CompileInput {
        job_id: job_id.clone(),
        name: submitted.name.clone(),
        job_type: submitted.job_type.clone(),
        priority,
        settings,
        metadata,
        worker_tag: worker_tag.clone(),
        shaman_checkout_id: submitted
            .storage
            .as_ref()
            .and_then(|s| s.shaman_checkout_id.clone()),
        created,
        type_etag: submitted.type_etag.clone(),
    };
    let registry = state.job_types.clone();
    let job = tokio::task::spawn_blocking(move || registry.compile(input))
        .await
        .map_err(|e| ApiError::internal(format!("job-type script runner failed: {e}")))??;
    if job.tasks.is_empty() {
        return Err(ApiError::bad_request(format!(
            "job type \"{}\" produced no tasks for these settings",
            submitted.job_type
        )));
    }
    Ok(Compiled {
        submitted,
        submitter_platform,
        job_id,
        created,
        initial_status,
        worker_tag,
        job,
    })
}

/// `POST /api/v3/jobs/check`: compiles without storing anything; 204 when it would work.
pub async fn check_job(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    compile(&state, &body).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v3/jobs`: compiles and stores the job; answers with the stored `Job`.
pub async fn submit_job(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let compiled = compile(&state, &body).await?;
    let (job, tasks) = to_rows(&compiled);
    state.store.insert_job(&job, &tasks).await?;
    tracing::info!(job = %job.id, name = %job.name, job_type = %job.job_type, tasks = tasks.len(), "job submitted");
    state.events.publish(Event::job(&job.id));
    state.dispatcher.kick();
    let stored = state
        .store
        .get_job(&job.id)
        .await?
        .ok_or_else(|| ApiError::internal("the job vanished right after it was stored"))?;
    Ok(Json(shapes::job(&stored)))
}

fn to_rows(compiled: &Compiled) -> (NewJob, Vec<NewTask>) {
    let submitted = &compiled.submitted;
    let job = NewJob {
        id: compiled.job_id.clone(),
        name: submitted.name.clone(),
        job_type: submitted.job_type.clone(),
        type_etag: compiled.job.etag.clone(),
        priority: submitted.priority,
        status: compiled.initial_status.as_str().to_string(),
        settings: Value::Object(compiled.job.settings.clone()),
        metadata: serde_json::to_value(&compiled.job.metadata)
            .unwrap_or_else(|_| Value::Object(Map::new())),
        submitter_platform: compiled.submitter_platform.clone(),
        worker_tag_id: compiled.worker_tag.clone(),
        storage_checkout_id: submitted
            .storage
            .as_ref()
            .and_then(|s| s.shaman_checkout_id.clone())
            .unwrap_or_default(),
        created_at: format_time(compiled.created),
    };
    let tasks = compiled
        .job
        .tasks
        .iter()
        .map(|task| NewTask {
            id: task.uuid.clone(),
            name: task.name.clone(),
            task_type: task.task_type.clone(),
            priority: i64::from(task.priority),
            commands: serde_json::to_value(&task.commands).unwrap_or_else(|_| Value::Array(vec![])),
            // A command without its own steps counts as one step when it finishes.
            steps_total: task
                .commands
                .iter()
                .map(|c| i64::from(c.total_step_count.max(1)))
                .sum(),
            dependencies: task.dependencies.clone(),
        })
        .collect();
    (job, tasks)
}
