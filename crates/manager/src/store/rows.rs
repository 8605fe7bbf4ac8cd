//! Typed rows as read from the database.
use sqlx::FromRow;

#[derive(Clone, Debug, FromRow)]
pub struct JobRow {
    pub id: String,
    pub name: String,
    pub job_type: String,
    pub type_etag: String,
    pub priority: i64,
    pub status: String,
    pub activity: String,
    pub settings: String,
    pub metadata: String,
    pub submitter_platform: String,
    pub worker_tag_id: Option<String>,
    pub storage_checkout_id: String,
    pub steps_completed: i64,
    pub steps_total: i64,
    pub delete_requested_at: Option<String>,
    /// `JobRequirements` as JSON (`{}`: none).
    pub requirements: String,
    /// `JobLimits` as JSON (`{}`: none).
    pub limits: String,
    /// Every Nth task runs first, then the gaps (None: in order).
    pub preview_first_every: Option<i64>,
    /// The task duration it asks for (adaptive chunking), in seconds.
    pub target_task_seconds: Option<f64>,
    /// The approval gate (`state::ApprovalState`; None: the job has none), and the review:
    /// its comment, who made it and when.
    pub approval_state: Option<String>,
    pub approval_comment: Option<String>,
    pub approval_by: Option<String>,
    pub approval_at: Option<String>,
    /// The command line of the task that runs after the job's last render task.
    pub on_complete: Option<String>,
    /// The jobs it depends on; filled in by `Store::get_job` only (lists leave it empty).
    #[sqlx(skip)]
    pub depends_on: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, FromRow)]
pub struct TaskRow {
    pub id: String,
    pub job_id: String,
    pub index_in_job: i64,
    pub name: String,
    pub task_type: String,
    pub priority: i64,
    pub status: String,
    pub commands: String,
    pub worker_id: Option<String>,
    pub worker_name: Option<String>,
    pub worker_address: Option<String>,
    pub lease_epoch: i64,
    pub activity: String,
    pub progress: Option<f64>,
    pub fault_class: String,
    pub steps_completed: i64,
    pub steps_total: i64,
    pub last_touched_at: Option<String>,
    /// When a soft-failed task may run again (its retry backoff); None: at once.
    pub retry_at: Option<String>,
    /// The frames of a chunk task (adaptive chunking regroups those while queued).
    pub frames: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Columns of `TaskRow`, with the assigned worker's name and address joined in.
pub(crate) const TASK_COLUMNS: &str = "t.id, t.job_id, t.index_in_job, t.name, t.task_type, t.priority, \
     t.status, t.commands, t.worker_id, w.name AS worker_name, w.address AS worker_address, \
     t.lease_epoch, t.activity, t.progress, t.fault_class, t.steps_completed, t.steps_total, \
     t.last_touched_at, t.retry_at, t.frames, t.created_at, t.updated_at";

#[derive(Clone, Debug, FromRow)]
pub struct WorkerRow {
    pub id: String,
    pub name: String,
    pub token_hash: String,
    pub platform: String,
    pub address: String,
    pub software_version: String,
    pub status: String,
    pub status_requested: String,
    #[sqlx(try_from = "super::Flag")]
    pub lazy_status_request: bool,
    pub supported_task_types: String,
    pub slots: i64,
    pub capabilities: String,
    #[sqlx(try_from = "super::Flag")]
    pub can_restart: bool,
    pub last_update_sequence: i64,
    pub last_seen_at: Option<String>,
    pub deleted_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl WorkerRow {
    pub fn task_types(&self) -> Vec<String> {
        serde_json::from_str(&self.supported_task_types).unwrap_or_default()
    }

    /// Where a worker without shared storage mirrors the farm's paths (None: it sees the
    /// shared storage), as it said at its last sign-on.
    pub fn storage_mirror(&self) -> Option<String> {
        let capabilities: serde_json::Value =
            serde_json::from_str(&self.capabilities).unwrap_or_default();
        capabilities["storage_mirror"]
            .as_str()
            .filter(|mirror| !mirror.is_empty())
            .map(str::to_owned)
    }
}
