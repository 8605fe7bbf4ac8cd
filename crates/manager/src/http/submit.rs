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
use crate::compiler::{AuthoredTask, CompileError, CompileInput, CompileSink, CompiledJobFields};
use crate::logs::StorageRefusal;
use crate::state::JobStatus;
use crate::store::{NewJob, NewTask, format_time};
use crate::variables::Variables;

/// Flamenco's `SubmittedJob`. Unknown fields are refused: a misspelt `requirements`
/// silently dropped would hand a GPU job to any worker. Other ways of submitting (OpenJD
/// templates, `openjd.rs`) make one of these and store the job through the same path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubmittedJob {
    pub name: String,
    #[serde(rename = "type")]
    pub job_type: String,
    #[serde(default)]
    pub type_etag: Option<String>,
    pub priority: i64,
    #[serde(default)]
    pub settings: Option<Map<String, Value>>,
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
    pub submitter_platform: String,
    #[serde(default)]
    pub storage: Option<Storage>,
    #[serde(default)]
    pub worker_tag: Option<String>,
    #[serde(default)]
    pub initial_status: Option<String>,
    /// Minimum RAM/GPUs and required worker tags (a Castanet extension).
    #[serde(default)]
    pub requirements: Option<crate::state::JobRequirements>,
    /// Resource pools its tasks hold and its worker limit (a Castanet extension).
    #[serde(default)]
    pub limits: Option<crate::state::JobLimits>,
    /// Jobs that must complete before this one runs (a Castanet extension; the Blender
    /// add-on can say the same with the metadata key `depends_on`).
    #[serde(default)]
    pub depends_on: Option<Vec<String>>,
    /// Hand out every Nth task first, then the gaps (a Castanet extension; at least 2).
    #[serde(default)]
    pub preview_first_every: Option<u32>,
    /// Regroup the job's queued frames so tasks take about this long (adaptive chunking, a
    /// Castanet extension; the Blender add-on can say the same with the metadata key
    /// `target_task_minutes`).
    #[serde(default)]
    pub target_task_minutes: Option<f64>,
    /// A command line run after the job's last render task (a Castanet extension; the Blender
    /// add-on can say the same with the metadata key `on_complete`).
    #[serde(default)]
    pub on_complete: Option<String>,
}

/// The metadata key through which submitters that only send Flamenco's fields (the Blender
/// add-on) name the jobs a job depends on: job ids separated by commas or spaces.
pub const DEPENDS_ON_METADATA_KEY: &str = "depends_on";

/// The metadata key through which the Blender add-on can ask for a target task duration.
pub const TARGET_TASK_MINUTES_METADATA_KEY: &str = "target_task_minutes";

/// The metadata key through which the Blender add-on can give an on-complete command line.
pub const ON_COMPLETE_METADATA_KEY: &str = "on_complete";

/// The longest target task duration: a day. Longer would make one task of a whole shot.
const MAX_TARGET_TASK_MINUTES: f64 = 24.0 * 60.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Storage {
    #[serde(default)]
    shaman_checkout_id: Option<String>,
}

/// A submission that parsed and passed every check that needs no script.
pub(super) struct Submission {
    submitted: SubmittedJob,
    /// As submitted, with `manager` replaced by the manager's own platform.
    submitter_platform: String,
    job_id: String,
    created: chrono::DateTime<chrono::Utc>,
    initial_status: JobStatus,
    /// The worker tag the job is limited to (checked to exist).
    worker_tag: Option<String>,
    /// Checked against the configured pools.
    limits: crate::state::JobLimits,
    /// Jobs it depends on, checked to exist; from `depends_on` and the metadata key.
    depends_on: Vec<String>,
    /// Adaptive chunking's target, in seconds; from the field or the metadata key.
    target_task_seconds: Option<f64>,
    /// The on-complete command line (checked); from the field or the metadata key.
    on_complete: Option<String>,
}

fn parse(body: &[u8]) -> Result<SubmittedJob, ApiError> {
    super::body::parse_object(body, "job submission")
}

/// Parses and checks a submission, and makes the compiler's input for it.
async fn prepare(state: &AppState, body: &[u8]) -> Result<(Submission, CompileInput), ApiError> {
    prepare_submitted(state, parse(body)?).await
}

/// Checks a submission, and makes the compiler's input for it (settings and metadata with
/// two-way variables in place).
pub(super) async fn prepare_submitted(
    state: &AppState,
    submitted: SubmittedJob,
) -> Result<(Submission, CompileInput), ApiError> {
    crate::names::check_name("job name", &submitted.name).map_err(ApiError::bad_request)?;
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
    let limits = submitted.limits.clone().unwrap_or_default().normalised();
    limits
        .check(state.store.resource_pools())
        .map_err(ApiError::bad_request)?;
    let depends_on = dependencies(state, &submitted).await?;
    if submitted.preview_first_every.is_some_and(|n| n < 2) {
        return Err(ApiError::bad_request(
            "preview_first_every must be at least 2 (leave it out to hand tasks out in order)",
        ));
    }
    let target_task_seconds = target_task_seconds(&submitted)?;
    let on_complete = on_complete_line(&submitted)?;
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
        target_task_seconds,
    };
    let submission = Submission {
        submitted,
        submitter_platform,
        job_id,
        created,
        initial_status,
        worker_tag,
        limits,
        depends_on,
        target_task_seconds,
        on_complete,
    };
    Ok((submission, input))
}

/// The target task duration in seconds (field or metadata key), checked to be a positive
/// number of minutes up to a day.
fn target_task_seconds(submitted: &SubmittedJob) -> Result<Option<f64>, ApiError> {
    let from_metadata = submitted
        .metadata
        .as_ref()
        .and_then(|m| m.get(TARGET_TASK_MINUTES_METADATA_KEY))
        .filter(|text| !text.trim().is_empty())
        .map(|text| {
            text.trim().parse::<f64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "metadata {TARGET_TASK_MINUTES_METADATA_KEY} must be a number of minutes, \
                     got \"{text}\""
                ))
            })
        })
        .transpose()?;
    let Some(minutes) = submitted.target_task_minutes.or(from_metadata) else {
        return Ok(None);
    };
    if !(minutes > 0.0 && minutes <= MAX_TARGET_TASK_MINUTES) {
        return Err(ApiError::bad_request(format!(
            "target_task_minutes must be more than 0 and at most {MAX_TARGET_TASK_MINUTES} (a \
             day), got {minutes}"
        )));
    }
    // Regrouping keeps the frames in order, which would undo preview-first's order.
    if submitted.preview_first_every.is_some() {
        return Err(ApiError::bad_request(
            "target_task_minutes and preview_first_every cannot be combined: regrouped chunks \
             run in frame order",
        ));
    }
    Ok(Some(minutes * 60.0))
}

/// The on-complete command line (field, else metadata key), checked to split into a program
/// and its arguments.
fn on_complete_line(submitted: &SubmittedJob) -> Result<Option<String>, ApiError> {
    let from_metadata = submitted
        .metadata
        .as_ref()
        .and_then(|m| m.get(ON_COMPLETE_METADATA_KEY));
    let Some(line) = submitted.on_complete.as_ref().or(from_metadata) else {
        return Ok(None);
    };
    crate::compiler::on_complete::check_on_complete(line).map_err(ApiError::bad_request)?;
    Ok(Some(line.trim().to_owned()))
}

/// The jobs a submission depends on (field and metadata key together), each checked to be a
/// job id that exists.
async fn dependencies(state: &AppState, submitted: &SubmittedJob) -> Result<Vec<String>, ApiError> {
    let from_metadata = submitted
        .metadata
        .as_ref()
        .and_then(|m| m.get(DEPENDS_ON_METADATA_KEY))
        .map(|ids| {
            ids.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|id| !id.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let named: Vec<&String> = submitted
        .depends_on
        .iter()
        .flatten()
        .chain(&from_metadata)
        .collect();
    super::scheduling::existing_job_ids(state, named).await
}

fn no_tasks(job_type: &str) -> ApiError {
    ApiError::bad_request(format!(
        "job type \"{job_type}\" produced no tasks for these settings"
    ))
}

/// `POST /api/v3/jobs/check`: compiles without storing anything; 204 when it would work.
pub async fn check_job(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let (submission, input) = prepare(&state, &body).await?;
    let registry = state.job_types.clone();
    let job = tokio::task::spawn_blocking(move || registry.compile(input))
        .await
        .map_err(|e| ApiError::internal(format!("job-type script runner failed: {e}")))??;
    if job.tasks.is_empty() {
        return Err(no_tasks(&submission.submitted.job_type));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v3/jobs`: compiles and stores the job; answers with the stored `Job`. Tasks are
/// stored while the script's output is still being read (QuickJS on a blocking thread, SQLite
/// on its own), all in one transaction that commits only when the whole job compiled.
pub async fn submit_job(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<shapes::Job>, ApiError> {
    let started = std::time::Instant::now();
    let (submission, input) = prepare(&state, &body).await?;
    storage_takes_files(&state).await?;
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let registry = state.job_types.clone();
    let compiling = tokio::task::spawn_blocking(move || {
        let mut sink = ChannelSink(sender);
        let compiled = registry.compile_streaming(input, &mut sink);
        if compiled.is_ok() {
            // Nobody listening any more means storing failed; that error is reported.
            let _ = sink.0.send(Streamed::Finished);
        }
        compiled
    });
    let stored = store_while_compiling(&state, &submission, receiver).await;
    let compiled = compiling
        .await
        .map_err(|e| ApiError::internal(format!("job-type script runner failed: {e}")))?;
    // A store failure stops the compile, so it comes first; otherwise the compile's own error.
    let stored = stored?;
    compiled?;
    announce(&state, &submission, stored, started).await
}

/// Stores a job whose tasks were made without a job-type script (an OpenJD template), in
/// one transaction like a compiled one; answers with the stored `Job`.
pub(super) async fn store_authored(
    state: &AppState,
    submission: &Submission,
    fields: CompiledJobFields,
    dependencies: Vec<(String, Vec<String>)>,
    tasks: Vec<AuthoredTask>,
    started: std::time::Instant,
) -> Result<Json<shapes::Job>, ApiError> {
    storage_takes_files(state).await?;
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let sink = ChannelSink(sender);
    sink.send(Streamed::Job(fields))?;
    if !dependencies.is_empty() {
        sink.send(Streamed::Dependencies(dependencies))?;
    }
    let mut tasks = tasks.into_iter().peekable();
    while tasks.peek().is_some() {
        sink.send(Streamed::Tasks(tasks.by_ref().take(TASK_BATCH).collect()))?;
    }
    sink.send(Streamed::Finished)?;
    drop(sink);
    let stored = store_while_compiling(state, submission, receiver).await?;
    announce(state, submission, stored, started).await
}

/// Tasks per batch handed to the store by [`store_authored`].
const TASK_BATCH: usize = 1000;

/// After storing: logs the job, tells the dashboard and the dispatcher, answers with it.
async fn announce(
    state: &AppState,
    submission: &Submission,
    stored: Stored,
    started: std::time::Instant,
) -> Result<Json<shapes::Job>, ApiError> {
    let tasks = match stored {
        Stored::Job { tasks } => tasks,
        Stored::NoTasks => return Err(no_tasks(&submission.submitted.job_type)),
        Stored::Nothing => {
            return Err(ApiError::internal(
                "the job compiled, yet its tasks did not all arrive to be stored",
            ));
        }
    };
    let job_id = &submission.job_id;
    tracing::info!(
        job = %job_id,
        name = %submission.submitted.name,
        job_type = %submission.submitted.job_type,
        tasks,
        compiled_and_stored_ms = started.elapsed().as_millis() as u64,
        "job submitted"
    );
    crate::ops::apply(crate::ops::job_actions::submitted(job_id), state).await;
    let stored = state
        .store
        .get_job(job_id)
        .await?
        .ok_or_else(|| ApiError::internal("the job vanished right after it was stored"))?;
    Ok(Json(shapes::job(&stored)))
}

/// Refuses a job whose task logs could not be stored: with no room in the storage
/// directory, the workers would hold every task's output (and so its result) back.
async fn storage_takes_files(state: &AppState) -> Result<(), ApiError> {
    let Err(e) = state.logs.check_writable().await else {
        return Ok(());
    };
    let refusal = StorageRefusal::new(&e, state.logs.jobs_root(), "nothing was stored");
    let status = if refusal.full {
        StatusCode::INSUFFICIENT_STORAGE
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Err(ApiError::new(status, refusal.message))
}

/// What the compiling thread sends to the storing task.
enum Streamed {
    Job(CompiledJobFields),
    Dependencies(Vec<(String, Vec<String>)>),
    Tasks(Vec<AuthoredTask>),
    /// The whole job compiled and passed its checks: commit.
    Finished,
}

/// Hands the compiled job over to the storing task. Unbounded: a slow database must not make the
/// script run into its time limit, and the tasks are held in memory either way.
struct ChannelSink(tokio::sync::mpsc::UnboundedSender<Streamed>);

impl ChannelSink {
    fn send(&self, item: Streamed) -> Result<(), CompileError> {
        self.0
            .send(item)
            .map_err(|_| CompileError::Internal("storing the job stopped".to_owned()))
    }
}

impl CompileSink for ChannelSink {
    fn job(&mut self, job: CompiledJobFields) -> Result<(), CompileError> {
        self.send(Streamed::Job(job))
    }

    fn dependencies(
        &mut self,
        dependencies: Vec<(String, Vec<String>)>,
    ) -> Result<(), CompileError> {
        self.send(Streamed::Dependencies(dependencies))
    }

    fn tasks(&mut self, tasks: Vec<AuthoredTask>) -> Result<(), CompileError> {
        self.send(Streamed::Tasks(tasks))
    }
}

enum Stored {
    /// Committed, with this many tasks.
    Job { tasks: usize },
    /// The job compiled to no tasks; nothing was stored.
    NoTasks,
    /// The compile stopped; whatever was written is rolled back.
    Nothing,
}

/// Stores the job as it arrives from the compiling thread, committing on `Finished` only.
async fn store_while_compiling(
    state: &AppState,
    submission: &Submission,
    mut received: tokio::sync::mpsc::UnboundedReceiver<Streamed>,
) -> Result<Stored, ApiError> {
    let Some(Streamed::Job(fields)) = received.recv().await else {
        return Ok(Stored::Nothing);
    };
    if fields.task_count == 0 {
        return Ok(match received.recv().await {
            Some(Streamed::Finished) => Stored::NoTasks,
            _ => Stored::Nothing,
        });
    }
    // The submission's on-complete command line wins over the one the script gave.
    let on_complete = submission
        .on_complete
        .clone()
        .or(fields.on_complete.clone());
    let gated = fields.approval_gate;
    let settings = fields.settings.clone();
    let mut insert = state
        .store
        .begin_job_insert(&new_job(submission, fields))
        .await?;
    insert.set_review(gated, on_complete.as_deref()).await?;
    let mut tasks = 0;
    while let Some(item) = received.recv().await {
        match item {
            Streamed::Dependencies(dependencies) => {
                insert.add_dependencies(&dependencies).await?;
            }
            Streamed::Tasks(batch) => {
                tasks += batch.len();
                insert
                    .add_tasks(batch.into_iter().map(NewTask::from).collect())
                    .await?;
            }
            Streamed::Finished => {
                // A gated job gets its on-complete task with the final pass, on approval.
                if let Some(line) = on_complete.as_deref().filter(|_| !gated) {
                    let task = crate::compiler::on_complete::on_complete_task(
                        &submission.job_id,
                        &submission.submitted.name,
                        &settings,
                        line,
                    )
                    .map_err(ApiError::bad_request)?;
                    insert.add_on_complete(NewTask::from(task)).await?;
                }
                insert.commit().await?;
                return Ok(Stored::Job { tasks });
            }
            Streamed::Job(_) => break,
        }
    }
    Ok(Stored::Nothing)
}

fn new_job(submission: &Submission, fields: CompiledJobFields) -> NewJob {
    let submitted = &submission.submitted;
    NewJob {
        id: submission.job_id.clone(),
        name: submitted.name.clone(),
        job_type: submitted.job_type.clone(),
        type_etag: fields.etag,
        priority: submitted.priority,
        status: submission.initial_status.as_str().to_string(),
        settings: Value::Object(fields.settings),
        metadata: serde_json::to_value(&fields.metadata)
            .unwrap_or_else(|_| Value::Object(Map::new())),
        submitter_platform: submission.submitter_platform.clone(),
        worker_tag_id: submission.worker_tag.clone(),
        storage_checkout_id: submitted
            .storage
            .as_ref()
            .and_then(|s| s.shaman_checkout_id.clone())
            .unwrap_or_default(),
        requirements: submitted
            .requirements
            .clone()
            .unwrap_or_default()
            .normalised(),
        limits: submission.limits.clone(),
        depends_on: submission.depends_on.clone(),
        preview_first_every: submitted.preview_first_every,
        target_task_seconds: submission.target_task_seconds,
        created_at: format_time(submission.created),
    }
}
