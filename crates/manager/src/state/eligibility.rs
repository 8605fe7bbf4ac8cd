//! The one rule for "could worker W ever run task T": the worker supports the task's type,
//! is in the job's worker tag (when it has one), meets the job's requirements, is not
//! blocklisted for the job's tasks of that type and has not failed the task already.
//! Whether it is awake, connected or has a free slot is "right now", not "ever", and is
//! the scheduler's business. Used by the failure rules (workers left for a task, workers
//! capable of a job), the impossible-task search and "why is this task not running?";
//! the dispatch query (`store/scheduling.rs`) says the same in SQL, and a test checks
//! the two against each other on generated farms.
use super::{JobRequirements, WorkerCapabilities, unmet_requirements};

/// The rules, in the order they are checked: a worker is excluded by the first it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exclusion {
    TaskType,
    WorkerTag,
    Requirements,
    Blocklist,
    FailedBy,
}

impl Exclusion {
    /// The rule's name, as "why" answers and impossible-task failures give it.
    pub fn rule(self) -> &'static str {
        match self {
            Exclusion::TaskType => "task-type",
            Exclusion::WorkerTag => "worker-tag",
            Exclusion::Requirements => "requirements",
            Exclusion::Blocklist => "blocklist",
            Exclusion::FailedBy => "failed-by",
        }
    }
}

/// A worker as the rule sees it.
#[derive(Clone, Copy, Debug)]
pub struct WorkerFacts<'a> {
    pub id: &'a str,
    pub task_types: &'a [String],
    /// Whether it is a member of the job's worker tag (true for a job without a tag).
    pub in_job_tag: bool,
    pub capabilities: &'a WorkerCapabilities,
}

/// A task (and its job) as the rule sees it.
#[derive(Clone, Copy, Debug)]
pub struct TaskFacts<'a> {
    pub task_type: &'a str,
    pub requirements: &'a JobRequirements,
    /// Workers blocklisted for the job's tasks of this type.
    pub blocklisted: &'a [String],
    /// Workers that failed the task.
    pub failed_by: &'a [String],
}

/// The first rule that keeps `worker` from ever running `task`; None when it could.
pub fn exclusion(worker: &WorkerFacts<'_>, task: &TaskFacts<'_>) -> Option<Exclusion> {
    if !worker.task_types.iter().any(|t| t == task.task_type) {
        Some(Exclusion::TaskType)
    } else if !worker.in_job_tag {
        Some(Exclusion::WorkerTag)
    } else if !unmet_requirements(task.requirements, worker.capabilities).is_empty() {
        Some(Exclusion::Requirements)
    } else if task.blocklisted.iter().any(|w| w == worker.id) {
        Some(Exclusion::Blocklist)
    } else if task.failed_by.iter().any(|w| w == worker.id) {
        Some(Exclusion::FailedBy)
    } else {
        None
    }
}

/// Whether `worker` could run `task` (now or once it is awake and has a free slot).
pub fn could_run(worker: &WorkerFacts<'_>, task: &TaskFacts<'_>) -> bool {
    exclusion(worker, task).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_broken_rule_excludes_the_worker() {
        let gpu = WorkerCapabilities {
            ram_bytes: 8 << 30,
            gpus: 1,
            tags: vec![],
        };
        let small = WorkerCapabilities {
            ram_bytes: 1 << 30,
            gpus: 0,
            tags: vec![],
        };
        let types = ["blender".to_string()];
        let needs_gpu = JobRequirements {
            min_gpus: Some(1),
            ..JobRequirements::default()
        };
        let blocked = ["w2".to_string()];
        let failed = ["w3".to_string()];
        let task = TaskFacts {
            task_type: "blender",
            requirements: &needs_gpu,
            blocklisted: &blocked,
            failed_by: &failed,
        };
        let worker = |id, in_job_tag, capabilities| WorkerFacts {
            id,
            task_types: &types,
            in_job_tag,
            capabilities,
        };
        assert_eq!(exclusion(&worker("w1", true, &gpu), &task), None);
        assert!(could_run(&worker("w1", true, &gpu), &task));
        assert_eq!(
            exclusion(&worker("w1", false, &gpu), &task),
            Some(Exclusion::WorkerTag)
        );
        // Not in the tag and too small: the tag is named, it comes first.
        assert_eq!(
            exclusion(&worker("w1", false, &small), &task),
            Some(Exclusion::WorkerTag)
        );
        assert_eq!(
            exclusion(&worker("w1", true, &small), &task),
            Some(Exclusion::Requirements)
        );
        assert_eq!(
            exclusion(&worker("w2", true, &gpu), &task),
            Some(Exclusion::Blocklist)
        );
        assert_eq!(
            exclusion(&worker("w3", true, &gpu), &task),
            Some(Exclusion::FailedBy)
        );
        let ffmpeg = TaskFacts {
            task_type: "ffmpeg",
            ..task
        };
        assert_eq!(
            exclusion(&worker("w1", true, &gpu), &ffmpeg),
            Some(Exclusion::TaskType)
        );
        assert_eq!(Exclusion::FailedBy.rule(), "failed-by");
    }
}
