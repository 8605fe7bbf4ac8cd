//! `POST /api/v3/jobs/openjd`: an Open Job Description job template plus parameter values
//! becomes a job of type `openjd`. The template is expanded by `castanet-openjd`; each of its
//! tasks becomes a Castanet task of type `openjd` with one `openjd-run` command, and waits
//! for every task of the steps its step depends on. The job is checked and stored exactly
//! like a submitted one (`submit.rs`); a template or value the crate refuses is a 400 with
//! its message.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::submit::{SubmittedJob, prepare_submitted, store_authored};
use crate::AppState;
use crate::compiler::{AuthoredCommand, AuthoredTask, CompiledJobFields};

/// The job type (and task type) of jobs made from OpenJD templates.
pub const OPENJD_TYPE: &str = "openjd";

/// The command every OpenJD task runs.
pub const OPENJD_COMMAND: &str = "openjd-run";

/// Priority when the submission names none (that of a job-type script's tasks too).
const DEFAULT_PRIORITY: i64 = 50;

/// Most task-to-task dependencies one template may make (a step of N tasks waiting for a
/// step of M tasks makes N × M of them).
const MAX_DEPENDENCY_LINKS: usize = 2_000_000;

/// The request body. Unknown fields are refused, as for `POST /api/v3/jobs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenJdSubmission {
    /// The template, YAML or JSON text.
    template: String,
    /// Values of the template's job parameters; the rest take their defaults.
    #[serde(default)]
    parameters: BTreeMap<String, Value>,
    /// Replaces the template's (resolved) job name.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    priority: Option<i64>,
    #[serde(default)]
    worker_tag: Option<String>,
    #[serde(default)]
    submitter_platform: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    initial_status: Option<String>,
    #[serde(default)]
    requirements: Option<crate::state::JobRequirements>,
    #[serde(default)]
    limits: Option<crate::state::JobLimits>,
    #[serde(default)]
    depends_on: Option<Vec<String>>,
    #[serde(default)]
    preview_first_every: Option<u32>,
    /// A command line run after every task of the job (the on-complete task).
    #[serde(default)]
    on_complete: Option<String>,
}

/// `POST /api/v3/jobs/openjd`: answers with the stored `Job`.
pub async fn submit_openjd(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<super::shapes::Job>, ApiError> {
    let started = std::time::Instant::now();
    let request: OpenJdSubmission = super::body::parse_object(&body, "OpenJD submission")?;
    // Pure CPU work, bounded by the crate's task limit; off the async threads all the same.
    let template = request.template.clone();
    let values = request.parameters.clone();
    let job = tokio::task::spawn_blocking(move || castanet_openjd::expand(&template, &values))
        .await
        .map_err(|e| ApiError::internal(format!("expanding the template failed: {e}")))?
        .map_err(|e| ApiError::bad_request(format!("OpenJD template: {e}")))?;
    let submitted = SubmittedJob {
        name: request.name.clone().unwrap_or_else(|| job.name.clone()),
        job_type: OPENJD_TYPE.to_owned(),
        type_etag: None,
        priority: request.priority.unwrap_or(DEFAULT_PRIORITY),
        settings: Some(settings(&job)),
        metadata: request.metadata,
        submitter_platform: request
            .submitter_platform
            .unwrap_or_else(|| "manager".to_owned()),
        storage: None,
        worker_tag: request.worker_tag,
        initial_status: request.initial_status,
        requirements: request.requirements,
        limits: request.limits,
        depends_on: request.depends_on,
        preview_first_every: request.preview_first_every,
        target_task_minutes: None,
        on_complete: request.on_complete,
    };
    let (submission, input) = prepare_submitted(&state, submitted).await?;
    let (tasks, dependencies) = tasks(&job)?;
    let fields = CompiledJobFields {
        settings: input.settings,
        metadata: input.metadata,
        etag: String::new(),
        task_count: tasks.len(),
        approval_gate: false,
        on_complete: None,
    };
    store_authored(&state, &submission, fields, dependencies, tasks, started).await
}

/// What the job page shows as the job's settings: every parameter's value and the steps.
fn settings(job: &castanet_openjd::Job) -> Map<String, Value> {
    let parameters: Map<String, Value> = job
        .parameters
        .iter()
        .map(|p| (p.name.clone(), Value::String(p.value.clone())))
        .collect();
    let steps: Vec<Value> = job
        .steps
        .iter()
        .map(|s| json!({"name": s.name, "tasks": s.tasks.len(), "depends_on": s.dependencies}))
        .collect();
    let mut settings = Map::new();
    settings.insert("openjd_parameters".into(), Value::Object(parameters));
    settings.insert("openjd_steps".into(), Value::Array(steps));
    settings
}

/// The job's tasks in step order, and (task, tasks it waits for) for every task of a step
/// with dependencies.
type TasksAndLinks = (Vec<AuthoredTask>, Vec<(String, Vec<String>)>);

fn tasks(job: &castanet_openjd::Job) -> Result<TasksAndLinks, ApiError> {
    let mut uuids_by_step: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut tasks = Vec::with_capacity(job.task_count());
    for step in &job.steps {
        let mut uuids = Vec::with_capacity(step.tasks.len());
        for task in &step.tasks {
            let uuid = uuid::Uuid::new_v4().to_string();
            uuids.push(uuid.clone());
            tasks.push(AuthoredTask {
                uuid,
                name: task_name(&task.name),
                task_type: OPENJD_TYPE.to_owned(),
                priority: DEFAULT_PRIORITY as i32,
                commands_json: commands_json(task)?,
                steps_total: 1,
                dependencies: Vec::new(),
                frames: None,
            });
        }
        uuids_by_step.insert(&step.name, uuids);
    }
    let mut links = Vec::new();
    let mut count = 0usize;
    for step in job.steps.iter().filter(|s| !s.dependencies.is_empty()) {
        let waits_for: Vec<String> = step
            .dependencies
            .iter()
            .flat_map(|d| uuids_by_step.get(d.as_str()).into_iter().flatten().cloned())
            .collect();
        for uuid in uuids_by_step.get(step.name.as_str()).into_iter().flatten() {
            count = count.saturating_add(waits_for.len());
            if count > MAX_DEPENDENCY_LINKS {
                return Err(ApiError::bad_request(format!(
                    "OpenJD template: its step dependencies would link more than \
                     {MAX_DEPENDENCY_LINKS} pairs of tasks; make the steps smaller"
                )));
            }
            links.push((uuid.clone(), waits_for.clone()));
        }
    }
    Ok((tasks, links))
}

/// The task's one `openjd-run` command, as the JSON the store keeps.
fn commands_json(task: &castanet_openjd::Task) -> Result<String, ApiError> {
    let files: Vec<Value> = task
        .files
        .iter()
        .map(|f| {
            json!({"name": f.name, "filename": f.filename, "data": f.data, "runnable": f.runnable})
        })
        .collect();
    let mut parameters = json!({
        "command": task.action.command,
        "args": task.action.args,
        "files": files,
    });
    if let (Some(seconds), Some(map)) = (task.action.timeout_seconds, parameters.as_object_mut()) {
        map.insert("timeout_seconds".into(), json!(seconds));
    }
    let command = AuthoredCommand {
        name: OPENJD_COMMAND.to_owned(),
        parameters,
        total_step_count: 1,
    };
    serde_json::to_string(&[command])
        .map_err(|e| ApiError::internal(format!("cannot write a task's commands: {e}")))
}

/// Task names follow the job-name rules: no control characters (a task parameter value may
/// hold a newline), at most the names' length.
fn task_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(crate::names::MAX_NAME_CHARS)
        .collect()
}
