//! Job types: runs Flamenco-compatible JavaScript job-type scripts (built-in ones embedded,
//! custom ones from a folder, reloaded on change) and turns a submitted job into tasks, commands
//! and dependencies.
//!
//! A script defines a global `JOB_TYPE` (label, description, settings) and a function
//! `compileJob(job)`. Every evaluation runs in a fresh QuickJS runtime with a memory limit and a
//! deadline, so an endless loop or runaway allocation comes back as [`CompileError::Limit`].
//!
//! - `registry`: where scripts come from, caching of their descriptions, the compile flow.
//! - `engine`: the sandbox and the JS API (`prelude.js` plus Rust helpers).
//! - `settings`: `JOB_TYPE` as the API describes it, its etag, validation of submitted settings.
//! - `authored`: checks on the tasks a script made (dependencies, cycles).
//! - `gate`: how many scripts evaluate at once; the rest wait in line.
//! - `frames`, `paths`, `shell`: pure helpers behind `frameChunker`, `path.*`, `shellSplit`.

mod authored;
mod engine;
pub mod frames;
mod gate;
pub mod on_complete;
mod paths;
mod registry;
mod settings;
mod shell;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use engine::ApprovedPass;
pub use registry::JobTypeRegistry;
pub use settings::{
    EvalInfo, JobTypeInfo, SettingSpec, SettingSubtype, SettingType, SettingVisibility,
};

/// Bounds for one script evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SandboxLimits {
    pub memory_bytes: usize,
    pub time: Duration,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            memory_bytes: 512 * 1024 * 1024,
            time: Duration::from_secs(5),
        }
    }
}

/// A submitted job, as the script's `compileJob(job)` gets to see it.
#[derive(Clone, Debug)]
pub struct CompileInput {
    pub job_id: String,
    pub name: String,
    pub job_type: String,
    pub priority: i32,
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub metadata: BTreeMap<String, String>,
    pub worker_tag: Option<String>,
    pub shaman_checkout_id: Option<String>,
    pub created: chrono::DateTime<chrono::Utc>,
    /// The job type etag the submitter saw; a different non-empty one is refused.
    pub type_etag: Option<String>,
    /// The task duration the job asks for (adaptive chunking); the script sees it as
    /// `job.targetTaskSeconds`.
    pub target_task_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CompiledJob {
    /// The validated settings (defaults filled) as the script left them.
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub metadata: BTreeMap<String, String>,
    /// Etag of the job type that compiled the job.
    pub etag: String,
    /// In the order the script added them.
    pub tasks: Vec<AuthoredTask>,
}

/// A job as its script left it, before its tasks: what
/// [`JobTypeRegistry::compile_streaming`] hands to [`CompileSink::job`].
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledJobFields {
    /// The validated settings (defaults filled) as the script left them.
    pub settings: serde_json::Map<String, serde_json::Value>,
    pub metadata: BTreeMap<String, String>,
    /// Etag of the job type that compiled the job.
    pub etag: String,
    /// How many tasks will follow.
    pub task_count: usize,
    /// The job type defines `compileApproved`: the job waits for approval after these tasks.
    pub approval_gate: bool,
    /// The command line the script gave `job.onComplete()`.
    pub on_complete: Option<String>,
}

/// Receives a job while it compiles, so storing it can start before its last task is exported.
/// An error returned here stops the compile with that error.
pub trait CompileSink {
    /// Once, after the script's `compileJob` ran.
    fn job(&mut self, job: CompiledJobFields) -> Result<(), CompileError>;
    /// Then, before the tasks, every dependency: (task uuid, uuids of the tasks it waits for).
    /// Not called when no task has dependencies (nor when the compile is going to fail).
    fn dependencies(
        &mut self,
        dependencies: Vec<(String, Vec<String>)>,
    ) -> Result<(), CompileError>;
    /// Then the tasks in job order, in batches, each with its uuid; their `dependencies` are
    /// empty (they came with [`CompileSink::dependencies`]).
    fn tasks(&mut self, tasks: Vec<AuthoredTask>) -> Result<(), CompileError>;
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuthoredTask {
    pub uuid: String,
    pub name: String,
    pub task_type: String,
    pub priority: i32,
    /// The commands as the JSON array of [`AuthoredCommand`]s the manager stores, exactly as the
    /// script's `JSON.stringify` wrote it (checked to read back); kept as text because a big job
    /// has tens of megabytes of it that are only ever stored.
    pub commands_json: String,
    /// Steps of all its commands together; a command without steps of its own counts as one.
    pub steps_total: u64,
    /// Uuids of tasks in the same job, each listed once.
    pub dependencies: Vec<String>,
    /// The frames the task renders (frame-range notation), when its script declared them: such
    /// tasks are regrouped while queued when the job has a target task duration.
    pub frames: Option<String>,
}

impl AuthoredTask {
    /// The commands, read from [`AuthoredTask::commands_json`].
    pub fn commands(&self) -> Result<Vec<AuthoredCommand>, serde_json::Error> {
        serde_json::from_str(&self.commands_json)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AuthoredCommand {
    pub name: String,
    /// A JSON object.
    pub parameters: serde_json::Value,
    pub total_step_count: u32,
}

/// Messages are returned verbatim to API clients, so each names what was wrong.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum CompileError {
    #[error("unknown job type \"{name}\"; known types: {}", list_or_none(known))]
    UnknownJobType { name: String, known: Vec<String> },

    #[error(
        "job type \"{job_type}\" has changed since the submitter fetched it (submitted etag {given}, current etag {expected}); refresh the job types and submit again"
    )]
    EtagMismatch {
        job_type: String,
        expected: String,
        given: String,
    },

    #[error("invalid job settings: {}", .0.join("; "))]
    InvalidSettings(Vec<String>),

    #[error("job type \"{job_type}\" failed{}: {message}", at_location(location))]
    Script {
        job_type: String,
        message: String,
        location: Option<String>,
    },

    #[error("job type \"{job_type}\" was stopped: {message}")]
    Limit { job_type: String, message: String },

    #[error(
        "the manager is busy: {running} job-type scripts are running and no turn came within {} s; try again",
        waited.as_secs()
    )]
    Busy {
        running: usize,
        waited: std::time::Duration,
    },

    #[error("internal job compiler error: {0}")]
    Internal(String),
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn at_location(location: &Option<String>) -> String {
    location
        .as_ref()
        .map(|location| format!(" at {location}"))
        .unwrap_or_default()
}
