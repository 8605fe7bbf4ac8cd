//! The JSON shapes of the REST API as Rust types, for the OpenAPI document. Handlers
//! build most answers with `serde_json` (see `shapes.rs`); these types describe those
//! answers field by field, with Flamenco's schema names where Flamenco has the shape.
//! Fields marked "extension" are Castanet's own. Status enums come from `crate::state`,
//! so the document lists exactly the statuses the manager knows.
// Never constructed: only the schema generator reads these types.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::state::{FarmStatus, JobStatus, TaskStatus, WorkerStatus};

/// A string enum schema holding `values`.
fn string_enum(description: &str, values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

macro_rules! status_schema {
    ($doc:ident, $status:ty, $description:literal) => {
        #[derive(Serialize)]
        pub struct $doc;
        impl PartialSchema for $doc {
            fn schema() -> RefOr<Schema> {
                string_enum($description, <$status>::ALL.iter().map(|s| s.as_str()))
            }
        }
        impl ToSchema for $doc {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($status))
            }
        }
    };
}

status_schema!(JobStatusDoc, JobStatus, "Status of a job.");
status_schema!(TaskStatusDoc, TaskStatus, "Status of a task.");
status_schema!(WorkerStatusDoc, WorkerStatus, "Status of a worker.");
status_schema!(FarmStatusDoc, FarmStatus, "Status of the whole farm.");

#[derive(Serialize, ToSchema)]
pub struct FarmStatusReport {
    pub status: FarmStatusDoc,
}

/// Every error answer: the HTTP status again and what was wrong.
#[derive(Serialize, ToSchema)]
pub struct Error {
    pub code: i32,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct FlamencoVersion {
    pub version: String,
    /// The Flamenco version the add-on compares with its own (configurable).
    pub shortversion: String,
    pub name: String,
    pub git: String,
    /// Extension: this manager's own version.
    pub castanet_version: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ManagerConfiguration {
    /// The job storage on the manager: `<shared storage>/jobs` with Shaman on, else the
    /// shared storage (what `{jobs}` expands to).
    #[serde(rename = "storageLocation")]
    pub storage_location: String,
    #[serde(rename = "shamanEnabled")]
    pub shaman_enabled: bool,
    #[serde(rename = "isFirstRun")]
    pub is_first_run: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SharedStorageLocation {
    /// The job storage on the asked platform: the Shaman checkout folder
    /// (`<shared storage>/jobs`) with Shaman on, else the shared storage.
    pub location: String,
    /// `users` or `workers`.
    pub audience: String,
    pub platform: String,
    #[serde(rename = "shamanEnabled")]
    pub shaman_enabled: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ManagerVariable {
    pub name: String,
    pub value: String,
    pub is_twoway: bool,
}

/// Variable name → its value on the asked platform.
#[derive(Serialize, ToSchema)]
pub struct ManagerVariables(pub BTreeMap<String, ManagerVariable>);

#[derive(Serialize, ToSchema)]
pub struct AvailableJobType {
    pub name: String,
    pub label: String,
    /// Setting definitions (key, type, subtype, default, choices, visible, …).
    pub settings: Vec<serde_json::Value>,
    pub etag: String,
    pub description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AvailableJobTypes {
    pub job_types: Vec<AvailableJobType>,
}

#[derive(Serialize, ToSchema)]
pub struct JobStorageInfo {
    /// The Shaman checkout the job's files are in, relative to the checkout root.
    pub shaman_checkout_id: Option<String>,
}

/// Extension: what a job asks of the workers that run its tasks. Unknown fields are refused.
#[derive(Serialize, ToSchema)]
pub struct JobRequirements {
    /// Minimum RAM the worker reported at sign-on, in bytes.
    pub min_ram_bytes: Option<u64>,
    /// Minimum number of GPUs the worker reported at sign-on.
    pub min_gpus: Option<u32>,
    /// Names of worker tags the worker must be a member of (all of them).
    pub required_tags: Option<Vec<String>>,
}

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
pub struct Job {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub job_type: String,
    pub type_etag: Option<String>,
    pub priority: i32,
    pub status: JobStatusDoc,
    pub activity: String,
    #[schema(format = DateTime)]
    pub created: String,
    #[schema(format = DateTime)]
    pub updated: String,
    pub steps_completed: i64,
    pub steps_total: i64,
    pub settings: BTreeMap<String, serde_json::Value>,
    pub metadata: BTreeMap<String, String>,
    pub submitter_platform: String,
    pub storage: Option<JobStorageInfo>,
    pub worker_tag: Option<String>,
    /// Set once the job's deletion was requested.
    #[schema(format = DateTime)]
    pub delete_requested_at: Option<String>,
    /// Extension: what the job asks of its workers; absent when nothing.
    pub requirements: Option<JobRequirements>,
    /// Extension: its resource pools and worker limit; absent when none.
    pub limits: Option<super::job_extensions::JobLimits>,
    /// Extension: the jobs it depends on (in the answer for one job; absent when none).
    pub depends_on: Option<Vec<String>>,
    /// Extension: every Nth task is handed out first; absent when in order.
    pub preview_first_every: Option<u32>,
    /// Extension: the task duration adaptive chunking aims at; absent when chunks stay as
    /// authored.
    pub target_task_minutes: Option<f64>,
    /// Extension: the approval gate and its review; absent for jobs whose type defines no
    /// `compileApproved(job)`.
    pub approval: Option<super::job_extensions::JobApproval>,
    /// Extension: the on-complete command line; absent when none.
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
pub struct JobsQueryResult {
    pub jobs: Vec<Job>,
    /// Extension: how many jobs match in all, for paging.
    pub total: Option<i64>,
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
pub struct TaskWorker {
    pub id: String,
    pub name: String,
    pub address: String,
}

#[derive(Serialize, ToSchema)]
pub struct TaskSummary {
    pub id: String,
    pub name: String,
    pub status: TaskStatusDoc,
    pub index_in_job: i64,
    pub priority: i64,
    pub task_type: String,
    #[schema(format = DateTime)]
    pub updated: String,
    pub steps_completed: i64,
    pub steps_total: i64,
    pub worker: Option<TaskWorker>,
    pub activity: String,
    /// Extension: progress (0..100) of the running command.
    pub progress: Option<f64>,
    /// Extension: the class of the last failure.
    pub fault_class: Option<String>,
    /// Extension: the frames of a chunk task (frame-range text, e.g. `11-20`); adaptive
    /// chunking replaces queued chunk tasks with regrouped ones.
    pub frames: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct JobTasksSummary {
    pub tasks: Vec<TaskSummary>,
}

#[derive(Serialize, ToSchema)]
pub struct Command {
    pub name: String,
    pub parameters: BTreeMap<String, serde_json::Value>,
    pub total_step_count: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Task {
    pub id: String,
    pub job_id: String,
    pub name: String,
    pub status: TaskStatusDoc,
    pub index_in_job: i64,
    pub priority: i64,
    pub task_type: String,
    pub activity: String,
    #[schema(format = DateTime)]
    pub created: String,
    #[schema(format = DateTime)]
    pub updated: String,
    #[schema(format = DateTime)]
    pub last_touched: Option<String>,
    pub steps_completed: i64,
    pub steps_total: i64,
    pub worker: Option<TaskWorker>,
    pub commands: Vec<Command>,
    pub failed_by_workers: Vec<TaskWorker>,
    /// Extension: ids of the tasks this one waits for.
    pub dependencies: Vec<String>,
    pub progress: Option<f64>,
    pub fault_class: Option<String>,
    /// Extension: the platform the commands were expanded for (`?platform=`); absent when
    /// they are as stored.
    pub expanded_for: Option<String>,
    /// Extension: a soft-failed task is not handed out before this time (its retry backoff).
    #[schema(format = DateTime)]
    pub retry_at: Option<String>,
    /// Extension: the frames of a chunk task (frame-range text, e.g. `11-20`).
    pub frames: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TaskStatusChange {
    /// `queued` (requeue) or `canceled`.
    pub status: TaskStatusDoc,
    pub reason: String,
}

#[derive(Serialize, ToSchema)]
pub struct TaskLogInfo {
    pub task_id: String,
    pub job_id: String,
    /// Where the whole log is served (under `/job-files/`).
    pub url: String,
    pub size: i64,
}

#[derive(Serialize, ToSchema)]
pub struct JobLastRenderedImageInfo {
    pub base: String,
    pub suffixes: Vec<String>,
}

/// Extension: where one job's newest preview image is.
#[derive(Serialize, ToSchema)]
pub struct JobPreviewImage {
    pub job_id: String,
    /// The image's path under `/job-files/`.
    pub image: String,
    /// When the image was last replaced (RFC 3339); append it to the URL as a cache-buster.
    pub updated: String,
}

/// Extension: the newest preview images of many jobs, newest first.
#[derive(Serialize, ToSchema)]
pub struct JobPreviewImages {
    pub images: Vec<JobPreviewImage>,
}

#[derive(Serialize, ToSchema)]
pub struct WhyBlocker {
    /// Which rule blocks the task (dependency, tag, blocklist, …).
    pub rule: String,
    pub detail: String,
}

/// Extension: why a task is not running.
#[derive(Serialize, ToSchema)]
pub struct WhyNotRunning {
    pub task_id: String,
    pub status: TaskStatusDoc,
    pub summary: String,
    pub blockers: Vec<WhyBlocker>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerStatusChangeRequest {
    pub status: WorkerStatusDoc,
    pub is_lazy: bool,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerSummary {
    pub id: String,
    pub name: String,
    pub status: WorkerStatusDoc,
    pub version: String,
    pub can_restart: bool,
    #[schema(format = DateTime)]
    pub last_seen: Option<String>,
    pub status_change: Option<WorkerStatusChangeRequest>,
    /// Extension: how many tasks the worker runs at once.
    pub slots: Option<i64>,
    /// Extension: whether its instruction stream is open now.
    pub connected: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerList {
    pub workers: Vec<WorkerSummary>,
}

/// A task of a worker, with its job.
#[derive(Serialize, ToSchema)]
pub struct WorkerTask {
    pub id: String,
    pub job_id: String,
    pub name: String,
    pub status: TaskStatusDoc,
    pub task_type: String,
    #[schema(format = DateTime)]
    pub updated: String,
}

#[derive(Serialize, ToSchema)]
pub struct Worker {
    pub id: String,
    pub name: String,
    pub status: WorkerStatusDoc,
    pub version: String,
    pub can_restart: bool,
    #[schema(format = DateTime)]
    pub last_seen: Option<String>,
    pub status_change: Option<WorkerStatusChangeRequest>,
    pub ip_address: String,
    pub platform: String,
    pub supported_task_types: Vec<String>,
    pub task: Option<WorkerTask>,
    pub tags: Option<Vec<WorkerTag>>,
    /// Extension: cores, memory, GPUs and software the worker reported.
    pub capabilities: Option<BTreeMap<String, serde_json::Value>>,
    /// Extension: the tasks it runs now.
    pub tasks: Option<Vec<WorkerTask>>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerTagChangeRequest {
    pub tag_ids: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerSleepSchedule {
    pub is_active: bool,
    /// Two-letter day tokens separated by spaces ("mo tu we"); empty means every day.
    pub days_of_week: String,
    /// `HH:MM` or empty.
    pub start_time: String,
    pub end_time: String,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerTag {
    pub id: Option<String>,
    pub name: String,
    pub description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerTagList {
    pub tags: Vec<WorkerTag>,
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
pub struct ShamanFileSpecWithStatus {
    pub sha: String,
    pub size: i64,
    pub path: String,
    /// `unknown`, `uploading` or `stored`.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct ShamanRequirementsResponse {
    pub files: Vec<ShamanFileSpecWithStatus>,
}

#[derive(Serialize, ToSchema)]
pub struct ShamanCheckout {
    pub files: Vec<ShamanFileSpec>,
    #[serde(rename = "checkoutPath")]
    pub checkout_path: String,
}

#[derive(Serialize, ToSchema)]
pub struct ShamanCheckoutResult {
    /// The checkout's path, uniquified when the asked one existed.
    #[serde(rename = "checkoutPath")]
    pub checkout_path: String,
}

#[derive(Serialize, ToSchema)]
pub struct ShamanSingleFileStatus {
    /// `unknown`, `uploading` or `stored`.
    pub status: String,
}

/// Extension: database readiness.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub database: String,
    pub migrations: i64,
    /// `ok`: the storage directory (task logs) takes files.
    pub storage: String,
}

/// Extension: one audited request.
#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    #[schema(format = DateTime)]
    pub at: String,
    pub actor: String,
    pub role: Option<String>,
    pub remote: Option<String>,
    pub method: String,
    pub path: String,
    pub status: i64,
}

#[derive(Serialize, ToSchema)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
}

/// Extension: the secret new workers register with.
#[derive(Serialize, ToSchema)]
pub struct RegistrationSecret {
    pub secret: String,
    #[schema(format = DateTime)]
    pub rotated_at: String,
}

/// Extension: one page of a job's tasks, for the dashboard.
#[derive(Serialize, ToSchema)]
pub struct TaskPage {
    pub tasks: Vec<TaskSummary>,
    /// How many tasks match the status filter.
    pub total: i64,
    pub offset: i64,
    /// Task status → how many of the job's tasks have it.
    pub status_counts: BTreeMap<String, i64>,
}

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
