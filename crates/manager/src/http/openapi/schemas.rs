//! The JSON shapes of the REST API as Rust types, for the OpenAPI document. Jobs, tasks,
//! workers and tags are the very types the handlers send (`shapes.rs`, `worker_shapes.rs`);
//! the rest describe what handlers build, field by field, with Flamenco's schema names
//! where Flamenco has the shape.
//! Fields marked "extension" are Castanet's own. Status enums come from `crate::state`,
//! so the document lists exactly the statuses the manager knows.
// Never constructed: only the schema generator reads these types.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

pub use super::super::audit::AuditLog;
pub use super::super::configuration::{
    ManagerConfiguration, ManagerVariables, SharedStorageLocation,
};
pub use super::super::enrolment::RegistrationSecret;
pub use super::super::error::ErrorBody as Error;
pub use super::super::health::Readiness;
pub use super::super::jobs::AvailableJobTypes;
pub use super::super::last_rendered::JobLastRenderedImageInfo;
pub use super::super::last_rendered_images::JobPreviewImages;
pub use super::super::meta::{FarmStatusReport, FlamencoVersion, ManagerRole};
pub use super::super::shaman::{
    ShamanCheckoutResult, ShamanRequirementsResponse, ShamanSingleFileStatus,
};
/// The answer types handlers send (so the document is what is sent).
pub use super::super::shapes::{
    Job, JobStorageInfo, JobTasksSummary, JobsQueryResult, Task, TaskPage,
};
pub use super::super::status_schemas::{JobStatusDoc, TaskStatusDoc};
pub use super::super::task_pages::{FarmSummary, JobTaskCounts};
pub use super::super::tasks::TaskLogInfo;
pub use super::super::why::WhyNotRunning;
pub use super::super::worker_shapes::{
    Worker, WorkerList, WorkerStatusChangeRequest, WorkerTag, WorkerTagList,
};
pub use super::super::worker_status::WorkerSleepSchedule;
pub use crate::compiler::JobTypeInfo as AvailableJobType;
pub use crate::state::JobRequirements;

/// A job to compile and store. A field not listed here is refused with 400 naming it.
#[derive(Serialize, ToSchema)]
pub struct SubmittedJob {
    pub name: String,
    #[serde(rename = "type")]
    pub job_type: String,
    pub type_etag: Option<String>,
    pub priority: i32,
    pub submitter_platform: String,
    pub settings: Option<BTreeMap<String, serde_json::Value>>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub storage: Option<JobStorageInfo>,
    /// Worker tag id: only workers with this tag run the job.
    pub worker_tag: Option<String>,
    /// `queued` (default) or `paused`.
    pub initial_status: Option<String>,
    /// Extension: minimum RAM/GPUs and required worker tags.
    pub requirements: Option<JobRequirements>,
    /// Extension: resource pools its tasks hold and the most workers it may use.
    pub limits: Option<super::job_extensions::JobLimits>,
    /// Extension: ids of jobs that must complete before this one runs (the Blender add-on
    /// can name them in the metadata key `depends_on`, separated by commas or spaces).
    pub depends_on: Option<Vec<String>>,
    /// Extension: hand out every Nth task first (1, N + 1, …), then the gaps, for an early
    /// preview of the whole frame range. At least 2; absent: in order.
    pub preview_first_every: Option<u32>,
    /// Extension: adaptive chunking — tasks should take about this many minutes (more than 0,
    /// at most 1440). The job type starts from small chunks and the manager regroups the
    /// never-started queued frames as chunks finish. The job type must define
    /// `compileChunk(job, frames)` (400 otherwise); not with `preview_first_every`. The
    /// Blender add-on can send the metadata key `target_task_minutes`.
    pub target_task_minutes: Option<f64>,
    /// Extension: a command line a worker runs once the job's last render task finished (for a
    /// job with an approval gate: after the final pass), e.g. copying the frames to a review
    /// server. Split into words like a shell would (no shell runs it; unbalanced quotes are a
    /// 400); run by the worker command `exec` with `CASTANET_JOB_ID`, `CASTANET_JOB_NAME` and
    /// `CASTANET_RENDER_OUTPUT` (the folder of `render_output_path`) in its environment. The
    /// Blender add-on can send the metadata key `on_complete`; it wins over the job type
    /// script's `job.onComplete()`.
    pub on_complete: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct JobsQuery {
    pub offset: Option<i64>,
    pub limit: Option<i64>,
    /// The first entry orders: created, oldest, updated, priority or name.
    pub order_by: Option<Vec<String>>,
    pub status_in: Option<Vec<JobStatusDoc>>,
    /// Metadata key → SQL LIKE pattern.
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Serialize, ToSchema)]
pub struct JobStatusChange {
    pub status: JobStatusDoc,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct JobPriorityChange {
    /// 0..=100, higher runs sooner.
    pub priority: i32,
}

/// Neither field clears the job's tag; `id` or `name` names the worker tag.
#[derive(Serialize, ToSchema)]
pub struct JobTagChange {
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TaskStatusChange {
    /// `queued` (requeue) or `canceled`.
    pub status: TaskStatusDoc,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerTagChangeRequest {
    pub tag_ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ShamanFileSpec {
    /// SHA-256, hex.
    pub sha: String,
    pub size: i64,
    pub path: String,
}

#[derive(Serialize, ToSchema)]
pub struct ShamanRequirementsRequest {
    pub files: Vec<ShamanFileSpec>,
}

#[derive(Serialize, ToSchema)]
pub struct ShamanCheckout {
    pub files: Vec<ShamanFileSpec>,
    #[serde(rename = "checkoutPath")]
    pub checkout_path: String,
}
