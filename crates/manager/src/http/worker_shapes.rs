//! The answer types of workers and worker tags (`WorkerSummary`, `Worker`, `WorkerTag`),
//! built from store rows. Handlers send these types and the OpenAPI document describes
//! them, so the document is what is sent. Fields marked "extension" are Castanet's own.
use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::shapes::{TaskSummary, parse_object, task_summary};
use super::status_schemas::WorkerStatusDoc;
use crate::store::{TagRow, TaskRow, WorkerRow};

#[derive(Serialize, ToSchema)]
pub struct WorkerTag {
    /// Always in answers; optional when creating a tag (a new id is made).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

pub fn worker_tag(tag: &TagRow) -> WorkerTag {
    WorkerTag {
        id: Some(tag.id.clone()),
        name: tag.name.clone(),
        description: (!tag.description.is_empty()).then(|| tag.description.clone()),
    }
}

#[derive(Serialize, ToSchema)]
pub struct WorkerTagList {
    pub tags: Vec<WorkerTag>,
}

/// A status change asked of the worker and not yet delivered.
#[derive(Serialize, ToSchema)]
pub struct WorkerStatusChangeRequest {
    #[schema(value_type = WorkerStatusDoc)]
    pub status: String,
    pub is_lazy: bool,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerSummary {
    pub id: String,
    pub name: String,
    #[schema(value_type = WorkerStatusDoc)]
    pub status: String,
    pub version: String,
    pub can_restart: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub last_seen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_change: Option<WorkerStatusChangeRequest>,
    /// Extension: how many tasks the worker runs at once.
    pub slots: i64,
    /// Extension: whether its instruction stream is open now.
    pub connected: bool,
}

/// The worker's summary; `connected` says whether its instruction stream is open.
pub fn worker_summary(row: &WorkerRow, connected: bool) -> WorkerSummary {
    WorkerSummary {
        id: row.id.clone(),
        name: row.name.clone(),
        status: row.status.clone(),
        version: row.software_version.clone(),
        can_restart: row.can_restart,
        last_seen: row.last_seen_at.clone(),
        status_change: (!row.status_requested.is_empty()).then(|| WorkerStatusChangeRequest {
            status: row.status_requested.clone(),
            is_lazy: row.lazy_status_request,
        }),
        slots: row.slots,
        connected,
    }
}

#[derive(Serialize, ToSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerSummary>,
}

/// A task the worker runs, with its job.
#[derive(Clone, Serialize, ToSchema)]
pub struct WorkerTask {
    #[serde(flatten)]
    pub task: TaskSummary,
    pub job_id: String,
}

pub fn worker_task(row: &TaskRow) -> WorkerTask {
    WorkerTask {
        task: task_summary(row),
        job_id: row.job_id.clone(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Worker {
    #[serde(flatten)]
    pub summary: WorkerSummary,
    pub ip_address: String,
    pub platform: String,
    pub supported_task_types: Vec<String>,
    /// The first task it runs (all of them are in `tasks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<WorkerTask>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<WorkerTag>>,
    /// Extension: cores, memory, GPUs and software the worker reported.
    pub capabilities: BTreeMap<String, Value>,
    /// Extension: what the worker's own checks found wrong at its last sign-on (a storage root
    /// that is not mounted, a directory it cannot write, too little free space).
    pub self_check_problems: Vec<String>,
    /// Extension: where a worker without shared storage keeps its mirror of the farm's
    /// paths; absent for a worker on the shared storage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_mirror: Option<String>,
    /// Extension: the file transfers of a worker without shared storage (inputs downloaded,
    /// outputs uploaded, cache hits), as it last reported them; absent before its first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfers: Option<crate::transfers::WorkerTransfers>,
    /// Extension: the tasks it runs now.
    pub tasks: Vec<WorkerTask>,
}

/// The whole worker: its summary, what it reported at sign-on, its tasks and tags.
pub fn worker(
    summary: WorkerSummary,
    row: &WorkerRow,
    tasks: &[TaskRow],
    tags: &[TagRow],
    transfers: Option<crate::transfers::WorkerTransfers>,
) -> Worker {
    let tasks: Vec<WorkerTask> = tasks.iter().map(worker_task).collect();
    let mut capabilities = parse_object(&row.capabilities);
    let self_check_problems = capabilities
        .remove("self_check_problems")
        .and_then(|problems| serde_json::from_value(problems).ok())
        .unwrap_or_default();
    let storage_mirror = capabilities
        .remove("storage_mirror")
        .and_then(|mirror| mirror.as_str().map(str::to_owned));
    Worker {
        summary,
        ip_address: row.address.clone(),
        platform: row.platform.clone(),
        supported_task_types: row.task_types(),
        task: tasks.first().cloned(),
        tags: (!tags.is_empty()).then(|| tags.iter().map(worker_tag).collect()),
        capabilities,
        self_check_problems,
        storage_mirror,
        transfers,
        tasks,
    }
}
