//! Operations: what follows a state change, in one place. Each operation makes one store
//! call and returns an [`Effects`] value — the task-log lines, events, aborts, freed slots
//! and dispatcher kick that follow it — which [`apply`] carries out. `grpc/` and `http/`
//! translate requests into operations; `monitor/` decides when its operations run.
mod effects;
pub mod job_actions;
pub mod task_updates;
pub mod timeouts;
pub mod worker_requests;
pub mod worker_sessions;

pub use effects::{Abort, Effector, Effects, LogLine, apply};
