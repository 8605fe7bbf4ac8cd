//! The Castanet worker: registers with a manager, signs on, receives tasks over the
//! instruction stream, runs their commands, and streams progress, logs and results back.
//!
//! The binary calls [`run`] with a [`WorkerConfig`] and a shutdown token.

pub mod backoff;
mod client;
mod commands;
mod config;
mod credentials;
mod error;
pub mod failover;
mod gpu;
mod journal;
mod leftovers;
mod logs;
mod platform;
mod preview;
mod process;
mod progress;
mod runner;
mod self_check;
mod session;
mod slot_gpus;
mod system;
mod timings;
mod tls;
mod transfer;
mod upstream;

pub use client::is_transient;
pub use config::{
    DEFAULT_TASK_TYPES, NoSharedStorage, WorkerConfig, default_data_dir, normalise_manager_url,
};
pub use credentials::{CREDENTIALS_FILE, Credentials, CredentialsError};
pub use error::WorkerError;
pub use self_check::{Check, MachineReport, run_machine_checks};
pub use session::{RESTART_EXIT_CODE, WorkerExit};
pub use slot_gpus::{SlotChoice, SlotGpus, SlotGpusSyntaxError};
pub use tls::{Fingerprint, ManagerTrust, TrustError};

/// Runs the worker until `shutdown` is cancelled (or the manager sends it offline): then
/// it aborts the running tasks without reporting them, signs off (the manager hands the
/// tasks back to the queue) and returns `Ok`.
pub async fn run(
    config: WorkerConfig,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(), WorkerError> {
    session::run(config, shutdown).await
}

/// Like [`run`], and says why the worker stopped: after a `restart` request the process
/// should exit with [`RESTART_EXIT_CODE`] (see [`WorkerExit::exit_code`]).
pub async fn run_to_exit(
    config: WorkerConfig,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<WorkerExit, WorkerError> {
    session::run_to_exit(config, shutdown).await
}
