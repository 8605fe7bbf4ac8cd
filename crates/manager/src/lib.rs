//! The Castanet manager: compiles jobs into tasks with JavaScript job types, stores them
//! in SQLite, pushes tasks to workers over gRPC and serves the REST API — all on one port.
pub mod background;
pub mod compiler;
pub mod config;
pub mod connections;
pub mod discovery;
pub mod events;
pub mod grpc;
pub mod http;
pub mod job_deleter;
mod log_ledger;
pub mod logs;
pub mod memory;
pub mod metrics;
pub mod monitor;
pub mod names;
pub mod notify;
pub mod ops;
pub mod preview_video;
pub mod roles;
pub mod scheduler;
pub mod server;
pub mod shaman;
pub mod state;
pub mod store;
pub mod tls;
pub mod transfers;
pub mod variables;
pub mod worker_status;

use std::sync::Arc;

pub use config::ManagerConfig;
pub use server::{ManagerError, RunningManager, start};

use compiler::JobTypeRegistry;
use events::{Event, EventBus};
use logs::TaskLogs;
use scheduler::Dispatcher;
use store::Store;

/// The manager's version, as reported to workers and API clients.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything request handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ManagerConfig>,
    pub store: Store,
    pub logs: TaskLogs,
    pub events: EventBus,
    pub dispatcher: Dispatcher,
    pub job_types: JobTypeRegistry,
    /// The upload store; None when disabled in the config.
    pub shaman: Option<shaman::Shaman>,
    /// Notification rules and the outbox's wake-up.
    pub notifier: notify::Notifier,
    /// Whether the live preview videos of render jobs are made (see `preview_video`).
    pub preview_videos: preview_video::PreviewVideos,
    /// Every background task, stopped and awaited at shutdown (see `background`).
    pub background: background::Background,
    /// One worker status request settled at a time (see `worker_status::settle`).
    pub settling: worker_status::SettleLock,
    /// Files moved for workers without shared storage (see `transfers`).
    pub transfers: transfers::Transfers,
}

impl AppState {
    /// Writes a time-stamped manager line to a task's log and announces it to log
    /// tails, like worker output; a failure is logged, not fatal.
    pub async fn log_manager_line(&self, job_id: &str, task_id: &str, line: &str) {
        match self.logs.append_manager_line(job_id, task_id, line).await {
            Ok(_) => self.events.publish(Event::task_log(job_id, task_id)),
            Err(e) => tracing::warn!("cannot write task log of {task_id}: {e}"),
        }
    }

    /// A task of `worker_id` ended: its slot is free, and a lazy status request that waited
    /// for it goes out (`ops::apply` calls this for a freed slot).
    pub fn slot_freed(&self, worker_id: &str, task_id: &str) {
        self.dispatcher.task_finished(worker_id, task_id);
        worker_status::after_task_finished(self, worker_id);
    }
}
