//! Protobuf messages into operation inputs, operation results into protobuf messages, and
//! operation errors into gRPC statuses.
use castanet_protocol::v1::{self, TaskStatus as WireTaskStatus};
use tonic::Status;

use crate::config::ManagerConfig;
use crate::ops::task_updates::TaskReport;
use crate::ops::worker_sessions::{Registration, SessionError};
use crate::state::{TaskStatus, WorkerStatus};
use crate::store::{SignOn, StoreError, WorkerRow, WorkerTaskUpdate};

/// A store error as a gRPC status. Workers retry what the manager could not store and keep
/// it meanwhile (journal, log spool).
pub fn store_status(e: StoreError) -> Status {
    match e {
        StoreError::NotFound(m) => Status::not_found(m),
        StoreError::LeaseLost(m) | StoreError::Refused(m) => Status::failed_precondition(m),
        // Workers go to the next manager of their list.
        StoreError::Standby(m) => Status::unavailable(m),
        // Workers retry an unavailable manager (another one, or this one restarted).
        StoreError::ShuttingDown => Status::unavailable(StoreError::ShuttingDown.to_string()),
        full if full.is_disk_full() => Status::resource_exhausted(format!(
            "the manager's database disk is full; nothing was stored: {full}"
        )),
        text if text.is_unstorable_text() => Status::invalid_argument(format!(
            "the request holds a NUL character, which the database cannot store: {text}"
        )),
        other => {
            tracing::error!("{other}");
            Status::internal(other.to_string())
        }
    }
}

pub fn session_status(e: SessionError) -> Status {
    match e {
        SessionError::InvalidName(message) => Status::invalid_argument(message),
        SessionError::UnknownWorker => Status::unauthenticated(e.to_string()),
        SessionError::Store(e) => store_status(e),
    }
}

/// A registration whose secret was accepted, from `address`; the worker is given `token`.
pub fn registration(body: v1::RegisterRequest, address: String, token: &str) -> Registration {
    Registration {
        name: body.name,
        platform: body.platform,
        address,
        token_hash: super::hash_token(token),
    }
}

/// What a signing-on worker says about itself, from `address`.
pub fn sign_on_info(body: v1::SignOnRequest, address: String) -> SignOn {
    let capabilities = body.capabilities.unwrap_or_default();
    SignOn {
        name: body.name.trim().to_string(),
        platform: body.platform,
        address,
        software_version: body.software_version,
        supported_task_types: body.supported_task_types,
        slots: i64::from(body.slots.max(1)),
        capabilities: serde_json::json!({
            "cpu_cores": capabilities.cpu_cores,
            "ram_bytes": capabilities.ram_bytes,
            "gpus": capabilities.gpus.iter().map(|g| serde_json::json!({
                "name": g.name, "vram_bytes": g.vram_bytes, "index": g.index,
            })).collect::<Vec<_>>(),
            "software": capabilities.software,
            "self_check_problems": self_check_problems(body.self_check_problems),
            "storage_mirror": storage_mirror(&body.storage_mirror),
        }),
        can_restart: body.can_restart,
    }
}

/// Most self-check problems kept from one sign-on, and the longest text of each: a worker
/// reports a handful of short lines; anything more is not stored.
const MAX_SELF_CHECK_PROBLEMS: usize = 20;
const MAX_SELF_CHECK_PROBLEM_CHARS: usize = 1000;

fn self_check_problems(reported: Vec<String>) -> Vec<String> {
    reported
        .into_iter()
        .take(MAX_SELF_CHECK_PROBLEMS)
        .map(|problem| problem.chars().take(MAX_SELF_CHECK_PROBLEM_CHARS).collect())
        .collect()
}

/// The longest storage mirror path kept (a real one is a directory path).
const MAX_STORAGE_MIRROR_CHARS: usize = 4096;

/// A worker's storage mirror (None: it sees the shared storage), when it is an absolute path.
fn storage_mirror(reported: &str) -> Option<String> {
    let mirror = reported.trim();
    let absolute = mirror.starts_with('/')
        || mirror.starts_with('\\')
        || mirror
            .get(1..3)
            .is_some_and(|drive| drive == ":\\" || drive == ":/");
    (absolute && mirror.chars().count() <= MAX_STORAGE_MIRROR_CHARS).then(|| mirror.to_owned())
}

/// The answer to a sign-on: the status the worker should take, the last update sequence
/// the manager applied, and the manager's keep-alive and fence timing.
pub fn sign_on_response(row: &WorkerRow, config: &ManagerConfig) -> v1::SignOnResponse {
    let requested = WorkerStatus::from_str_or_awake(&row.status_requested);
    let timing = crate::monitor::MonitorSettings::from_config(config);
    let millis = |d: std::time::Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
    v1::SignOnResponse {
        requested_status: wire_worker_status(requested) as i32,
        last_update_sequence: row.last_update_sequence as u64,
        task_keepalive_ms: millis(timing.task_keepalive()),
        fence_after_ms: millis(timing.fence_after()),
    }
}

/// The leases a reconnecting worker lists: (task id, lease epoch).
pub fn leases(listed: &[v1::TaskLease]) -> Vec<(String, i64)> {
    listed
        .iter()
        .map(|lease| (lease.task_id.clone(), lease.lease_epoch as i64))
        .collect()
}

/// `worker_id`'s report about a task.
pub fn task_report(worker_id: String, body: &v1::TaskUpdate) -> TaskReport {
    let status = match body.status() {
        WireTaskStatus::Unspecified => None,
        WireTaskStatus::Active => Some(TaskStatus::Active),
        WireTaskStatus::Completed => Some(TaskStatus::Completed),
        WireTaskStatus::Failed => Some(TaskStatus::Failed),
    };
    let failure = body.failure.clone().unwrap_or_default();
    let fault_class =
        (status == Some(TaskStatus::Failed)).then(|| failure.fault_class().api_name().to_string());
    let update = WorkerTaskUpdate {
        worker_id,
        task_id: body.task_id.clone(),
        lease_epoch: body.lease_epoch as i64,
        sequence: body.sequence as i64,
        status,
        activity: body.activity.clone(),
        steps_completed: body.steps_completed.map(i64::from),
        // The protocol says 0..100; NaN or 1e30 from a confused worker is not shown as sent.
        progress: body
            .progress_percent
            .filter(|percent| percent.is_finite())
            .map(|percent| f64::from(percent.clamp(0.0, 100.0))),
        fault_class,
        failure_message: failure.message,
    };
    TaskReport {
        update,
        last_log_lines: failure.last_log_lines,
    }
}

fn wire_worker_status(status: WorkerStatus) -> v1::WorkerStatus {
    v1::WorkerStatus::from_api_name(status.as_str()).unwrap_or(v1::WorkerStatus::Awake)
}

impl WorkerStatus {
    /// A requested status as stored ("" when none): the worker starts awake by default.
    fn from_str_or_awake(requested: &str) -> WorkerStatus {
        requested.parse().unwrap_or(WorkerStatus::Awake)
    }
}
