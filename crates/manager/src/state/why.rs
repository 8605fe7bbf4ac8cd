//! "Why is this task not running?": every rule that keeps a task from being handed out,
//! as a pure function of the task, its job and the farm's workers.
use serde::Serialize;

use std::collections::BTreeMap;

use super::{
    Exclusion, JobLimits, JobRequirements, JobStatus, TaskFacts, TaskStatus, WorkerCapabilities,
    WorkerFacts, exclusion, unmet_requirements,
};

/// One worker as the scheduler sees it.
#[derive(Clone, Debug)]
pub struct WorkerView {
    pub id: String,
    pub name: String,
    pub status: String,
    pub task_types: Vec<String>,
    /// Free slots when its instruction stream is open; `None` when not connected.
    pub free_slots: Option<usize>,
    /// What it reported at sign-on, and its tag names (for job requirements).
    pub capabilities: WorkerCapabilities,
}

/// The task and what the scheduler checks about it.
#[derive(Clone, Debug)]
pub struct TaskView {
    pub status: TaskStatus,
    pub task_type: String,
    pub job_status: JobStatus,
    /// Members of the job's worker tag; `None` for an untagged job.
    pub tag_members: Option<Vec<String>>,
    /// The name of the job's worker tag (for the answer).
    pub tag_name: Option<String>,
    /// Dependencies: (name, status).
    pub dependencies: Vec<(String, String)>,
    /// Workers blocklisted for this job and task type.
    pub blocklisted: Vec<String>,
    /// Workers that failed this task.
    pub failed_by: Vec<String>,
    /// Runnable tasks the scheduler picks before this one.
    pub tasks_ahead: i64,
    /// The job's minimum RAM/GPUs and required tags.
    pub requirements: JobRequirements,
    /// Job dependencies, retry backoff, resource pools and the worker limit.
    pub scheduling: SchedulingView,
}

/// What the scheduling limits say about the task (all empty: nothing limits it).
#[derive(Clone, Debug, Default)]
pub struct SchedulingView {
    /// Jobs the task's job depends on that have not completed: (description, status).
    pub waiting_for_jobs: Vec<(String, String)>,
    /// A soft-failed task waiting out its backoff: (time it may run, seconds left).
    pub retry_in: Option<(String, u64)>,
    /// Distinct workers that failed it.
    pub failures: usize,
    pub limits: JobLimits,
    /// Free units of each resource pool now.
    pub free_units: BTreeMap<String, u64>,
    /// Size of each resource pool in the manager's config.
    pub pool_sizes: BTreeMap<String, u32>,
    /// Workers running tasks of the job now.
    pub job_workers: Vec<String>,
}

/// A rule that blocks the task, with what exactly is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Blocker {
    pub rule: &'static str,
    pub detail: String,
}

fn blocker(rule: &'static str, detail: String) -> Blocker {
    Blocker { rule, detail }
}

fn names(workers: &[&WorkerView]) -> String {
    workers
        .iter()
        .map(|w| w.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every rule that currently blocks the task (empty when it is about to be handed out).
pub fn blockers(task: &TaskView, workers: &[WorkerView]) -> Vec<Blocker> {
    let mut found = Vec::new();
    if !task.status.is_runnable() {
        found.push(blocker(
            "task-status",
            format!(
                "the task is {}; only queued and soft-failed tasks are handed out",
                task.status
            ),
        ));
    }
    if !task.job_status.is_schedulable() {
        found.push(blocker(
            "job-status",
            format!(
                "the job is {}; only queued and active jobs run",
                task.job_status
            ),
        ));
    }
    for (name, status) in &task.dependencies {
        if status != TaskStatus::Completed.as_str() {
            found.push(blocker(
                "dependency",
                format!("dependency {name} is {status}, not completed"),
            ));
        }
    }
    found.extend(scheduling_blockers(task, workers));
    // Each worker's first broken rule (`state::eligibility`); the answer names the rule
    // that got furthest when none is left, and the blocklist and failures that cost workers.
    let facts = TaskFacts {
        task_type: &task.task_type,
        requirements: &task.requirements,
        blocklisted: &task.blocklisted,
        failed_by: &task.failed_by,
    };
    let mut excluded: BTreeMap<Exclusion, Vec<&WorkerView>> = BTreeMap::new();
    let mut fresh: Vec<&WorkerView> = Vec::new();
    for worker in workers {
        let in_job_tag = task
            .tag_members
            .as_ref()
            .is_none_or(|members| members.contains(&worker.id));
        let view = WorkerFacts {
            id: &worker.id,
            task_types: &worker.task_types,
            in_job_tag,
            capabilities: &worker.capabilities,
        };
        match exclusion(&view, &facts) {
            None => fresh.push(worker),
            Some(rule) => excluded.entry(rule).or_default().push(worker),
        }
    }
    let furthest = excluded.keys().next_back().copied();
    let reached = |rule: Exclusion| !fresh.is_empty() || furthest.is_some_and(|f| f > rule);
    if !reached(Exclusion::TaskType) {
        found.push(blocker(
            "task-type",
            format!("no worker supports task type \"{}\"", task.task_type),
        ));
        return found;
    }
    if !reached(Exclusion::WorkerTag) {
        let tag = task.tag_name.as_deref().unwrap_or("?");
        let detail = if task.tag_members.as_ref().is_some_and(Vec::is_empty) {
            format!(
                "the job's worker tag \"{tag}\" has no workers: add workers to it, or clear \
                 the job's tag"
            )
        } else {
            format!(
                "no worker in the job's worker tag \"{tag}\" supports task type \"{}\"",
                task.task_type
            )
        };
        found.push(blocker("worker-tag", detail));
        return found;
    }
    if !reached(Exclusion::Requirements) {
        let details: Vec<String> = excluded[&Exclusion::Requirements]
            .iter()
            .map(|w| {
                let unmet = unmet_requirements(&task.requirements, &w.capabilities);
                format!("{} ({})", w.name, unmet.join("; "))
            })
            .collect();
        found.push(blocker(
            "requirements",
            format!(
                "no worker that may run it meets the job's requirements: {}",
                details.join(", ")
            ),
        ));
        return found;
    }
    if let Some(blocked) = excluded.get(&Exclusion::Blocklist) {
        found.push(blocker(
            "blocklist",
            format!(
                "blocklisted for this job's {} tasks on: {}",
                task.task_type,
                names(blocked)
            ),
        ));
    }
    if let Some(failed) = excluded.get(&Exclusion::FailedBy) {
        found.push(blocker(
            "failed-by",
            format!("already failed on: {}", names(failed)),
        ));
    }
    if fresh.is_empty() {
        found.push(blocker(
            "no-worker-left",
            "no worker is left that may run it".into(),
        ));
        return found;
    }
    let (awake, away): (Vec<&WorkerView>, Vec<&WorkerView>) = fresh
        .into_iter()
        .partition(|w| w.status == "awake" && w.free_slots.is_some());
    if awake.is_empty() {
        let away: Vec<String> = away
            .iter()
            .map(|w| {
                let status = if w.status.is_empty() {
                    "never signed on"
                } else {
                    &w.status
                };
                let link = if w.free_slots.is_some() {
                    ""
                } else {
                    ", not connected"
                };
                format!("{} ({status}{link})", w.name)
            })
            .collect();
        found.push(blocker(
            "no-awake-worker",
            format!(
                "no eligible worker is awake and connected: {}",
                away.join(", ")
            ),
        ));
        return found;
    }
    if awake.iter().all(|w| w.free_slots == Some(0)) {
        found.push(blocker(
            "slots-busy",
            format!(
                "all slots are busy on the eligible workers: {}",
                names(&awake)
            ),
        ));
    }
    if found.is_empty() && task.tasks_ahead > 0 {
        found.push(blocker(
            "queue-order",
            format!(
                "{} runnable task(s) come first (higher priority or older)",
                task.tasks_ahead
            ),
        ));
    }
    found
}

/// Job dependencies, retry backoff, resource pools and the job's worker limit.
fn scheduling_blockers(task: &TaskView, workers: &[WorkerView]) -> Vec<Blocker> {
    let view = &task.scheduling;
    let mut found = Vec::new();
    for (job, status) in &view.waiting_for_jobs {
        let detail = if matches!(status.as_str(), "failed" | "canceled" | "deleted") {
            format!(
                "the job is on hold: it depends on {job}, which is {status}; requeue that job, \
                 or change this job's dependencies"
            )
        } else {
            format!("the job depends on {job}, which is {status}, not completed")
        };
        found.push(blocker("job-dependency", detail));
    }
    if let Some((at, seconds)) = &view.retry_in {
        found.push(blocker(
            "retry-backoff",
            format!(
                "the task failed on {} worker(s) and waits before it is retried: not before \
                 {at} (in {seconds} s)",
                view.failures
            ),
        ));
    }
    if view.limits.holds_resources(&task.task_type) {
        for (pool, &count) in &view.limits.resources {
            let free = view.free_units.get(pool).copied().unwrap_or(0);
            match view.pool_sizes.get(pool) {
                None => found.push(blocker(
                    "resource-pool",
                    format!(
                        "each task of the job holds {count} unit(s) of pool \"{pool}\", which \
                         the manager's config no longer has; add it back or the job fails"
                    ),
                )),
                Some(&size) if size < count => found.push(blocker(
                    "resource-pool",
                    format!(
                        "each task of the job holds {count} unit(s) of pool \"{pool}\", which \
                         the manager's config now sizes at {size}; grow it or the job fails"
                    ),
                )),
                Some(_) if free < u64::from(count) => found.push(blocker(
                    "resource-pool",
                    format!(
                        "each task of the job holds {count} unit(s) of pool \"{pool}\", and \
                         {free} are free; the rest are held by running tasks"
                    ),
                )),
                Some(_) => {}
            }
        }
    }
    if let Some(max) = view.limits.max_workers
        && view.job_workers.len() >= max as usize
    {
        let running: Vec<&WorkerView> = workers
            .iter()
            .filter(|w| view.job_workers.contains(&w.id))
            .collect();
        if running.iter().all(|w| w.free_slots.unwrap_or(0) == 0) {
            found.push(blocker(
                "max-workers",
                format!(
                    "the job may use at most {max} worker(s) at once; {} run its tasks and \
                     have no free slot",
                    names(&running)
                ),
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(id: &str, status: &str, types: &[&str], free: Option<usize>) -> WorkerView {
        WorkerView {
            id: id.into(),
            name: id.into(),
            status: status.into(),
            task_types: types.iter().map(|t| t.to_string()).collect(),
            free_slots: free,
            capabilities: WorkerCapabilities::default(),
        }
    }

    fn queued() -> TaskView {
        TaskView {
            status: TaskStatus::Queued,
            task_type: "blender".into(),
            job_status: JobStatus::Active,
            tag_members: None,
            tag_name: None,
            dependencies: vec![],
            blocklisted: vec![],
            failed_by: vec![],
            tasks_ahead: 0,
            requirements: JobRequirements::default(),
            scheduling: SchedulingView::default(),
        }
    }

    #[test]
    fn a_worker_tag_without_workers_is_named() {
        let free = worker("a", "awake", &["blender"], Some(1));
        let empty = TaskView {
            tag_members: Some(vec![]),
            tag_name: Some("gpu-nodes".into()),
            ..queued()
        };
        let found = blockers(&empty, std::slice::from_ref(&free));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].detail.contains("\"gpu-nodes\" has no workers"),
            "{found:?}"
        );
        let elsewhere = TaskView {
            tag_members: Some(vec!["b".into()]),
            ..empty
        };
        let found = blockers(&elsewhere, &[free]);
        assert!(
            found[0]
                .detail
                .contains("tag \"gpu-nodes\" supports task type \"blender\""),
            "{found:?}"
        );
    }

    fn rules(task: &TaskView, workers: &[WorkerView]) -> Vec<&'static str> {
        blockers(task, workers)
            .into_iter()
            .map(|b| b.rule)
            .collect()
    }

    #[test]
    fn each_blocking_rule_is_named() {
        let free = worker("a", "awake", &["blender"], Some(1));
        let cases: Vec<(TaskView, Vec<WorkerView>, Vec<&str>)> = vec![
            (queued(), vec![free.clone()], vec![]),
            (
                TaskView {
                    job_status: JobStatus::Paused,
                    ..queued()
                },
                vec![free.clone()],
                vec!["job-status"],
            ),
            (
                TaskView {
                    dependencies: vec![("render".into(), "active".into())],
                    ..queued()
                },
                vec![free.clone()],
                vec!["dependency"],
            ),
            (
                queued(),
                vec![worker("a", "awake", &["ffmpeg"], Some(1))],
                vec!["task-type"],
            ),
            (
                TaskView {
                    tag_members: Some(vec!["b".into()]),
                    ..queued()
                },
                vec![free.clone()],
                vec!["worker-tag"],
            ),
            (
                TaskView {
                    requirements: JobRequirements {
                        min_gpus: Some(1),
                        ..Default::default()
                    },
                    ..queued()
                },
                vec![free.clone()],
                vec!["requirements"],
            ),
            (
                TaskView {
                    blocklisted: vec!["a".into()],
                    ..queued()
                },
                vec![free.clone()],
                vec!["blocklist", "no-worker-left"],
            ),
            (
                TaskView {
                    failed_by: vec!["a".into()],
                    ..queued()
                },
                vec![free.clone(), worker("b", "asleep", &["blender"], Some(1))],
                vec!["failed-by", "no-awake-worker"],
            ),
            (
                queued(),
                vec![worker("a", "offline", &["blender"], None)],
                vec!["no-awake-worker"],
            ),
            (
                queued(),
                vec![worker("a", "awake", &["blender"], Some(0))],
                vec!["slots-busy"],
            ),
            (
                TaskView {
                    tasks_ahead: 3,
                    ..queued()
                },
                vec![free.clone()],
                vec!["queue-order"],
            ),
        ];
        for (task, workers, want) in cases {
            assert_eq!(rules(&task, &workers), want, "{task:?}");
        }
    }

    #[test]
    fn the_details_name_the_workers() {
        let task = TaskView {
            blocklisted: vec!["a".into(), "b".into()],
            ..queued()
        };
        let workers = [
            worker("a", "awake", &["blender"], Some(1)),
            worker("b", "awake", &["blender"], Some(1)),
        ];
        let found = blockers(&task, &workers);
        assert_eq!(
            found[0].detail,
            "blocklisted for this job's blender tasks on: a, b"
        );
    }
}
