//! The answer types of jobs and tasks (`Job`, `TaskSummary`, `Task`), built from store rows.
//! Handlers send these types and the OpenAPI document describes these same types, so the
//! document is what is sent. Required fields are always present; optional ones are
//! omitted when empty. Fields marked "extension" are Castanet's own.
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::status_schemas::{JobStatusDoc, TaskStatusDoc};
use crate::state::{JobLimits, JobRequirements};
use crate::store::{JobRow, TaskRow};

/// A stored JSON object (settings, metadata, capabilities); anything else reads as empty.
pub fn parse_object(text: &str) -> BTreeMap<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Where the job's files are.
#[derive(Serialize, ToSchema)]
pub struct JobStorageInfo {
    /// The Shaman checkout the job's files are in, relative to the checkout root.
    pub shaman_checkout_id: String,
}

/// Extension: where a gated job's review stands (absent for jobs without an approval gate).
#[derive(Serialize, ToSchema)]
pub struct JobApproval {
    /// `pending` (until reviewed), `approved` or `rejected`.
    pub state: String,
    /// The reviewer's comment (a rejection always has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Who reviewed: the name of the API token used; without one the request's `reviewer`,
    /// or `anonymous`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Job {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub job_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_etag: Option<String>,
    pub priority: i64,
    #[schema(value_type = JobStatusDoc)]
    pub status: String,
    pub activity: String,
    #[schema(format = DateTime)]
    pub created: String,
    #[schema(format = DateTime)]
    pub updated: String,
    pub steps_completed: i64,
    pub steps_total: i64,
    pub settings: BTreeMap<String, Value>,
    pub metadata: BTreeMap<String, String>,
    pub submitter_platform: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<JobStorageInfo>,
    /// Worker tag id: only workers with this tag run the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_tag: Option<String>,
    /// Set once the job's deletion was requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub delete_requested_at: Option<String>,
    /// Extension: what the job asks of its workers, as submitted (normalised); absent when
    /// nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirements: Option<JobRequirements>,
    /// Extension: its resource pools and worker limit; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<JobLimits>,
    /// Extension: every Nth task is handed out first; absent when in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview_first_every: Option<i64>,
    /// Extension: the task duration adaptive chunking aims at; absent when chunks stay as
    /// authored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_task_minutes: Option<f64>,
    /// Extension: the jobs it depends on (in the answer for one job; absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<String>>,
    /// Extension: the approval gate and its review; absent for jobs whose type defines no
    /// `compileApproved(job)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<JobApproval>,
    /// Extension: the on-complete command line; absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_complete: Option<String>,
}

/// Metadata is a string map; a value stored as another JSON type is sent as its JSON text.
fn metadata(text: &str) -> BTreeMap<String, String> {
    parse_object(text)
        .into_iter()
        .map(|(key, value)| match value {
            Value::String(text) => (key, text),
            other => (key, other.to_string()),
        })
        .collect()
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

pub fn job(row: &JobRow) -> Job {
    // Stored normalised by the submission; an unreadable one is left out, not invented.
    let requirements = serde_json::from_str::<JobRequirements>(&row.requirements)
        .ok()
        .filter(|r| *r != JobRequirements::default());
    let limits = serde_json::from_str::<JobLimits>(&row.limits)
        .ok()
        .filter(|l| !l.is_empty());
    let approval = row.approval_state.as_ref().map(|state| JobApproval {
        state: state.clone(),
        comment: row.approval_comment.clone(),
        by: row.approval_by.clone(),
        at: row.approval_at.clone(),
    });
    Job {
        id: row.id.clone(),
        name: row.name.clone(),
        job_type: row.job_type.clone(),
        type_etag: non_empty(&row.type_etag),
        priority: row.priority,
        status: row.status.clone(),
        activity: row.activity.clone(),
        created: row.created_at.clone(),
        updated: row.updated_at.clone(),
        steps_completed: row.steps_completed,
        steps_total: row.steps_total,
        settings: parse_object(&row.settings),
        metadata: metadata(&row.metadata),
        submitter_platform: row.submitter_platform.clone(),
        storage: non_empty(&row.storage_checkout_id)
            .map(|shaman_checkout_id| JobStorageInfo { shaman_checkout_id }),
        worker_tag: row.worker_tag_id.clone(),
        delete_requested_at: row.delete_requested_at.clone(),
        requirements,
        limits,
        preview_first_every: row.preview_first_every,
        target_task_minutes: row.target_task_seconds.map(|seconds| seconds / 60.0),
        depends_on: (!row.depends_on.is_empty()).then(|| row.depends_on.clone()),
        approval,
        on_complete: row.on_complete.clone(),
    }
}

/// The worker a task runs on (or ran on last).
#[derive(Clone, Serialize, ToSchema)]
pub struct TaskWorker {
    pub id: String,
    pub name: String,
    pub address: String,
}

fn task_worker(row: &TaskRow) -> Option<TaskWorker> {
    let id = row.worker_id.as_ref()?;
    Some(TaskWorker {
        id: id.clone(),
        name: row.worker_name.clone().unwrap_or_default(),
        address: row.worker_address.clone().unwrap_or_default(),
    })
}

#[derive(Clone, Serialize, ToSchema)]
pub struct TaskSummary {
    pub id: String,
    pub name: String,
    #[schema(value_type = TaskStatusDoc)]
    pub status: String,
    pub index_in_job: i64,
    pub priority: i64,
    pub task_type: String,
    #[schema(format = DateTime)]
    pub updated: String,
    pub steps_completed: i64,
    pub steps_total: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<TaskWorker>,
    pub activity: String,
    /// Extension: progress (0..100) of the running command; 100 once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    /// Extension: the class of the last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_class: Option<String>,
    /// Extension: the frames of a chunk task (frame-range text, e.g. `11-20`); adaptive
    /// chunking replaces queued chunk tasks with regrouped ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<String>,
}

/// A completed task is done entirely, whatever its last progress report said.
fn progress(row: &TaskRow) -> Option<f64> {
    if row.status == "completed" {
        Some(100.0)
    } else {
        row.progress
    }
}

pub fn task_summary(row: &TaskRow) -> TaskSummary {
    TaskSummary {
        id: row.id.clone(),
        name: row.name.clone(),
        status: row.status.clone(),
        index_in_job: row.index_in_job,
        priority: row.priority,
        task_type: row.task_type.clone(),
        updated: row.updated_at.clone(),
        steps_completed: row.steps_completed,
        steps_total: row.steps_total,
        worker: task_worker(row),
        activity: row.activity.clone(),
        progress: progress(row),
        fault_class: non_empty(&row.fault_class),
        frames: row.frames.clone(),
    }
}

/// One command of a task, as the job type authored it.
#[derive(Serialize, ToSchema)]
pub struct Command {
    pub name: String,
    pub parameters: BTreeMap<String, Value>,
    pub total_step_count: i64,
}

/// A whole task: its summary plus the job, times, commands, dependencies and failures.
#[derive(Serialize, ToSchema)]
pub struct Task {
    #[serde(flatten)]
    pub summary: TaskSummary,
    pub job_id: String,
    #[schema(format = DateTime)]
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub last_touched: Option<String>,
    pub commands: Vec<Command>,
    pub failed_by_workers: Vec<TaskWorker>,
    /// Extension: ids of the tasks this one waits for.
    pub dependencies: Vec<String>,
    /// Extension: the platform the commands were expanded for (`?platform=`); absent when
    /// they are as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expanded_for: Option<String>,
    /// Extension: a soft-failed task is not handed out before this time (its retry backoff).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub retry_at: Option<String>,
}

/// The stored commands; a command that does not read as one is left out (and logged).
fn commands(row: &TaskRow) -> Vec<Command> {
    #[derive(serde::Deserialize)]
    struct Stored {
        name: String,
        #[serde(default)]
        parameters: BTreeMap<String, Value>,
        #[serde(default)]
        total_step_count: i64,
    }
    let stored: Vec<Value> = serde_json::from_str(&row.commands).unwrap_or_default();
    stored
        .into_iter()
        .filter_map(|command| match serde_json::from_value::<Stored>(command) {
            Ok(c) => Some(Command {
                name: c.name,
                parameters: c.parameters,
                total_step_count: c.total_step_count,
            }),
            Err(e) => {
                tracing::warn!(task = %row.id, "a stored command is unreadable: {e}");
                None
            }
        })
        .collect()
}

/// A whole task: the summary plus commands, job, timestamps, dependencies, failures
/// (`failed_by`: id, name, address of each worker that failed it).
pub fn task(
    row: &TaskRow,
    dependencies: &[String],
    failed_by: &[(String, String, String)],
) -> Task {
    Task {
        summary: task_summary(row),
        job_id: row.job_id.clone(),
        created: row.created_at.clone(),
        last_touched: row.last_touched_at.clone(),
        commands: commands(row),
        failed_by_workers: failed_by
            .iter()
            .map(|(id, name, address)| TaskWorker {
                id: id.clone(),
                name: name.clone(),
                address: address.clone(),
            })
            .collect(),
        dependencies: dependencies.to_vec(),
        expanded_for: None,
        retry_at: row.retry_at.clone().filter(|_| row.status == "soft-failed"),
    }
}

#[derive(Serialize, ToSchema)]
pub struct JobsQueryResult {
    pub jobs: Vec<Job>,
    /// Extension: how many jobs match in all, for paging.
    pub total: i64,
}

#[derive(Serialize, ToSchema)]
pub struct JobTasksSummary {
    pub tasks: Vec<TaskSummary>,
}

/// Extension: one page of a job's tasks, with counts for the status filter.
#[derive(Serialize, ToSchema)]
pub struct TaskPage {
    pub tasks: Vec<TaskSummary>,
    /// How many tasks match the status filter.
    pub total: i64,
    pub offset: i64,
    /// Task status → how many of the job's tasks have it.
    pub status_counts: BTreeMap<String, i64>,
}
