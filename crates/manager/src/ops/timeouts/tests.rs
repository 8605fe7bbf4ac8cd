//! The follow-up of a task timeout, decided without the store.
use super::*;
use crate::events::Event;
use crate::state::JobStatus;
use crate::store::{FailureReport, JobChange, TaskToAbort};

fn stale() -> StaleTask {
    StaleTask {
        task_id: "t1".into(),
        job_id: "j".into(),
        task_type: "misc".into(),
        worker_id: "w1".into(),
        worker_name: "node-1".into(),
        lease_epoch: 5,
        last_touched_at: "2026-12-05T00:00:00.000Z".into(),
    }
}

fn abort_of(task_id: &str, worker_id: &str) -> TaskToAbort {
    TaskToAbort {
        task_id: task_id.into(),
        worker_id: worker_id.into(),
        lease_epoch: 5,
    }
}

#[test]
fn the_timed_out_line_names_the_worker_and_the_timeout() {
    let line = timed_out_line(&stale(), Duration::from_secs(600));
    assert_eq!(
        line,
        "Task timed out: it was assigned to worker node-1 (w1), but had no update since \
         2026-12-05T00:00:00.000Z (task_timeout 600 s); it counts as a failure of that worker"
    );
}

/// The drift this layer fixed: tasks the failure rules requeued (the worker got
/// blocklisted) are announced after a timeout, as after a failure the worker reports.
#[test]
fn a_timeout_aborts_the_task_and_announces_what_the_failure_rules_did() {
    let timed_out = TimedOutTask {
        stale: stale(),
        abort: abort_of("t1", "w1"),
        report: FailureReport {
            log_lines: vec![("t2".into(), "Task requeued because …".into())],
            requeued: vec!["t2".into()],
            job_change: Some(JobChange {
                status: JobStatus::Failed,
                to_abort: vec![abort_of("t3", "w2")],
                tasks_moved: false,
            }),
            blocklisted: false,
        },
    };
    let effects = timed_out_effects(&timed_out, "Task timed out: …".into());
    let lines: Vec<(&str, &str)> = effects
        .log_lines
        .iter()
        .map(|l| (l.task_id.as_str(), l.text.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            ("t1", "Task timed out: …"),
            ("t2", "Task requeued because …")
        ]
    );
    let aborts: Vec<(&str, &str)> = effects
        .aborts
        .iter()
        .map(|a| (a.tasks[0].task_id.as_str(), a.reason.as_str()))
        .collect();
    assert_eq!(
        aborts,
        [
            ("t1", "the task timed out"),
            ("t3", "the job got status \"failed\"")
        ]
    );
    for event in [
        Event::task("j", "t1"),
        Event::task("j", "t2"),
        Event::task("j", "t3"),
        Event::job("j"),
    ] {
        assert!(
            effects.events.contains(&event),
            "{event:?} in {:?}",
            effects.events
        );
    }
    assert!(effects.kick, "the requeued task can be dispatched");
    assert!(effects.freed_slots.is_empty(), "the abort frees the slot");
}
