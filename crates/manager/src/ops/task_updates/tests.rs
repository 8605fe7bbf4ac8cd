//! The follow-up of a worker's report for each kind of store outcome.
use super::*;
use crate::events::Event;
use crate::state::JobStatus;
use crate::store::{FailureReport, TaskToAbort};

fn report(status: Option<TaskStatus>) -> TaskReport {
    TaskReport {
        update: WorkerTaskUpdate {
            worker_id: "w1".into(),
            task_id: "t1".into(),
            lease_epoch: 1,
            sequence: 7,
            status,
            fault_class: (status == Some(TaskStatus::Failed)).then(|| "nonzero-exit".into()),
            failure_message: "exit code 3".into(),
            ..Default::default()
        },
        last_log_lines: vec!["line a".into(), "line b".into()],
    }
}

fn applied() -> TaskUpdateOutcome {
    TaskUpdateOutcome {
        applied: true,
        job_id: "j".into(),
        ..Default::default()
    }
}

#[test]
fn a_keepalive_or_a_repeated_update_has_no_follow_up() {
    let keepalive = update_effects(&report(None), &applied());
    assert!(keepalive.events.is_empty() && keepalive.log_lines.is_empty() && !keepalive.kick);

    let repeated = TaskUpdateOutcome {
        applied: false,
        ..applied()
    };
    let effects = update_effects(&report(Some(TaskStatus::Completed)), &repeated);
    assert!(effects.events.is_empty() && effects.freed_slots.is_empty());
}

#[test]
fn progress_announces_the_task_and_job_only() {
    let mut progress = report(None);
    progress.update.progress = Some(40.0);
    let effects = update_effects(&progress, &applied());
    assert_eq!(effects.events, [Event::task("j", "t1"), Event::job("j")]);
    assert!(effects.freed_slots.is_empty() && !effects.kick);
}

#[test]
fn a_completion_frees_the_slot() {
    let outcome = TaskUpdateOutcome {
        task_finished: true,
        ..applied()
    };
    let effects = update_effects(&report(Some(TaskStatus::Completed)), &outcome);
    assert_eq!(effects.freed_slots, [("w1".to_string(), "t1".to_string())]);
    assert_eq!(effects.events, [Event::task("j", "t1"), Event::job("j")]);
    assert!(effects.kick);
    assert!(effects.log_lines.is_empty());
}

#[test]
fn a_failure_logs_the_workers_words_then_what_the_failure_rules_did() {
    let running = TaskToAbort {
        task_id: "t3".into(),
        worker_id: "w2".into(),
        lease_epoch: 4,
    };
    let outcome = TaskUpdateOutcome {
        task_finished: true,
        job_status: Some(JobStatus::Failed),
        to_abort: vec![running.clone()],
        failure: Some(FailureReport {
            log_lines: vec![("t2".into(), "Task requeued because …".into())],
            requeued: vec!["t2".into()],
            job_change: Some(JobChange {
                status: JobStatus::Failed,
                to_abort: vec![running],
                tasks_moved: false,
            }),
            blocklisted: false,
        }),
        ..applied()
    };
    let effects = update_effects(&report(Some(TaskStatus::Failed)), &outcome);
    let lines: Vec<(&str, &str)> = effects
        .log_lines
        .iter()
        .map(|l| (l.task_id.as_str(), l.text.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (
                "t1",
                "Task failed (nonzero-exit): exit code 3\n    line a\n    line b"
            ),
            ("t2", "Task requeued because …"),
        ]
    );
    // The job's change aborts its running task once, with the job's new status as reason.
    assert_eq!(effects.aborts.len(), 1);
    assert_eq!(effects.aborts[0].reason, "the job got status \"failed\"");
    assert_eq!(effects.freed_slots, [("w1".to_string(), "t1".to_string())]);
    for event in [
        Event::task("j", "t2"),
        Event::task("j", "t3"),
        Event::task("j", "t1"),
        Event::job("j"),
    ] {
        assert!(
            effects.events.contains(&event),
            "{event:?} in {:?}",
            effects.events
        );
    }
}

#[test]
fn a_job_change_without_a_failure_report_still_aborts_the_swept_tasks() {
    let running = TaskToAbort {
        task_id: "t3".into(),
        worker_id: "w2".into(),
        lease_epoch: 4,
    };
    let outcome = TaskUpdateOutcome {
        task_finished: true,
        job_status: Some(JobStatus::Canceled),
        to_abort: vec![running],
        ..applied()
    };
    let effects = update_effects(&report(Some(TaskStatus::Completed)), &outcome);
    assert_eq!(effects.aborts.len(), 1);
    assert_eq!(effects.aborts[0].reason, "the job got status \"canceled\"");
    assert!(effects.events.contains(&Event::task("j", "t3")));
}
