//! The follow-up of every operation is applied here, so it is tested once, against a
//! recording effector instead of the manager's event bus and dispatcher.
use std::sync::Mutex;

use super::*;
use crate::state::JobStatus;

/// Records what it was asked to do, in order; log lines for task "unwritable" fail.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
}

impl Recorder {
    fn record(&self, call: String) {
        self.calls.lock().expect("not poisoned").push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("not poisoned").clone()
    }
}

impl Effector for Recorder {
    async fn write_log_line(&self, line: &LogLine) -> Result<(), String> {
        if line.task_id == "unwritable" {
            return Err("disk full".to_string());
        }
        self.record(format!("log {} {}", line.task_id, line.text));
        Ok(())
    }

    fn publish(&self, event: Event) {
        let call = match event {
            Event::Job { job_id } => format!("event job {job_id}"),
            Event::Task { task_id, .. } => format!("event task {task_id}"),
            Event::Worker { worker_id } => format!("event worker {worker_id}"),
            Event::TaskLog { task_id, .. } => format!("event log {task_id}"),
            other => format!("event {other:?}"),
        };
        self.record(call);
    }

    fn abort(&self, abort: &Abort) {
        let tasks: Vec<&str> = abort.tasks.iter().map(|t| t.task_id.as_str()).collect();
        self.record(format!("abort {} ({})", tasks.join(","), abort.reason));
    }

    fn free_slot(&self, worker_id: &str, task_id: &str) {
        self.record(format!("free {worker_id} {task_id}"));
    }

    fn check_feasibility(&self, scope: FeasibilityScope) {
        self.record(format!("check feasibility {scope:?}"));
    }

    fn kick(&self) {
        self.record("kick".to_string());
    }
}

fn running(task_id: &str) -> TaskToAbort {
    TaskToAbort {
        task_id: task_id.to_string(),
        worker_id: "w1".to_string(),
        lease_epoch: 3,
    }
}

#[tokio::test]
async fn applies_in_order_each_event_once_and_one_kick() {
    let mut effects = Effects::new();
    effects
        .task_changed("j", "t1")
        .job_changed("j")
        .log("j", "t1", "Task failed")
        .free_slot("w1", "t1")
        .abort("j", &[running("t2")], "the task timed out")
        .check_feasibility()
        .job_changed("j")
        .kick();
    let recorder = Recorder::default();
    apply(effects, &recorder).await;
    assert_eq!(
        recorder.calls(),
        [
            "log t1 Task failed",
            "event log t1",
            "abort t2 (the task timed out)",
            "free w1 t1",
            "event task t1",
            "event job j",
            "event task t2",
            "kick",
            "check feasibility Farm",
        ]
    );
}

#[tokio::test]
async fn an_unwritable_log_line_is_skipped_and_the_rest_happens() {
    let mut effects = Effects::new();
    effects
        .log("j", "unwritable", "lost")
        .log("j", "t1", "kept")
        .job_changed("j");
    let recorder = Recorder::default();
    apply(effects, &recorder).await;
    assert_eq!(
        recorder.calls(),
        ["log t1 kept", "event log t1", "event job j"]
    );
}

#[tokio::test]
async fn requeued_tasks_get_a_line_and_an_event_each() {
    let mut effects = Effects::new();
    let requeued = [
        ("t1".to_string(), "j1".to_string()),
        ("t2".to_string(), "j2".to_string()),
    ];
    effects.requeued(&requeued, "the worker signed off");
    let recorder = Recorder::default();
    apply(effects, &recorder).await;
    assert_eq!(
        recorder.calls(),
        [
            "log t1 Task returned to the queue because the worker signed off",
            "event log t1",
            "log t2 Task returned to the queue because the worker signed off",
            "event log t2",
            "event task t1",
            "event job j1",
            "event task t2",
            "event job j2",
            "kick",
        ]
    );
    // Nothing requeued: nothing to do, not even a kick.
    let recorder = Recorder::default();
    apply(Effects::new().requeued(&[], "x").clone(), &recorder).await;
    assert!(recorder.calls().is_empty());
}

/// A failure report's requeued tasks are announced wherever the failure came from (a
/// worker's update or the task timeout): the drift this layer removes.
#[tokio::test]
async fn a_failure_report_announces_requeued_tasks_and_the_job_change() {
    let report = FailureReport {
        log_lines: vec![("t2".to_string(), "Worker w1 is blocklisted".to_string())],
        requeued: vec!["t2".to_string()],
        job_change: Some(JobChange {
            status: JobStatus::Failed,
            to_abort: vec![running("t3")],
            tasks_moved: true,
        }),
        blocklisted: true,
    };
    let mut effects = Effects::new();
    effects.failure_report("j", &report);
    let recorder = Recorder::default();
    apply(effects, &recorder).await;
    assert_eq!(
        recorder.calls(),
        [
            "log t2 Worker w1 is blocklisted",
            "event log t2",
            "abort t3 (the job got status \"failed\")",
            "event task t2",
            "event job j",
            "event task t3",
            "kick",
            // A new blocklist entry may leave other queued tasks of the job without a worker.
            "check feasibility Jobs({\"j\"})",
        ]
    );
}

#[tokio::test]
async fn merged_effects_apply_as_one() {
    let mut first = Effects::new();
    first.job_changed("j");
    let mut second = Effects::new();
    second.job_changed("j").worker_changed("w1").kick();
    first.merge(second);
    let recorder = Recorder::default();
    apply(first, &recorder).await;
    assert_eq!(recorder.calls(), ["event job j", "event worker w1", "kick"]);
}
