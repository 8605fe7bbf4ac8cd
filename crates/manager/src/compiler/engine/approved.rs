//! The approval gate's second run of a job-type script: `compileApproved(job)` authors the final
//! pass of a job whose preview pass was approved, exported and checked like `compileJob`'s tasks.
use super::{JobFields, Sandbox, ScriptEvent, ScriptSource};
use crate::compiler::{AuthoredTask, CompileError, SandboxLimits};

/// What `compileApproved(job)` authored for a gated job's final pass.
pub struct ApprovedPass {
    /// With their dependencies (on each other) filled in, in the order the script added them.
    pub tasks: Vec<AuthoredTask>,
    /// The command line the script gave `job.onComplete()`, if it did.
    pub on_complete: Option<String>,
}

/// Evaluates the script and has its `compileApproved(job)` author the final pass of a job whose
/// preview pass was approved, exported and checked like `compileJob`'s tasks.
pub(crate) fn compile_approved(
    source: &ScriptSource<'_>,
    limits: SandboxLimits,
    job: JobFields,
) -> Result<ApprovedPass, CompileError> {
    Sandbox::new(source, limits)?.run(|session| {
        let task_count: u32 = session.call("runCompileApproved", (job.json, job.created_millis))?;
        let mut tasks = Vec::new();
        let mut dependencies = std::collections::HashMap::new();
        let mut on_complete = None;
        session.export(task_count, "", &mut |event| {
            match event {
                ScriptEvent::Job { on_complete: c, .. } => on_complete = c,
                ScriptEvent::Dependencies(list) => dependencies.extend(list),
                ScriptEvent::Tasks(batch) => tasks.extend(batch),
            }
            Ok(())
        })?;
        for task in &mut tasks {
            if let Some(list) = dependencies.remove(&task.uuid) {
                task.dependencies = list;
            }
        }
        Ok(ApprovedPass { tasks, on_complete })
    })
}
