//! The follow-up of the session operations that is decided without the store.
use super::*;
use crate::events::Event;

fn running(task_id: &str) -> TaskToAbort {
    TaskToAbort {
        task_id: task_id.to_string(),
        worker_id: "w1".to_string(),
        lease_epoch: 2,
    }
}

fn pair(task_id: &str, job_id: &str) -> (String, String) {
    (task_id.to_string(), job_id.to_string())
}

#[test]
fn a_leaving_worker_announces_each_requeued_task_and_itself() {
    let effects = left("w1", &[pair("t1", "j1")], "the worker signed off");
    assert_eq!(effects.log_lines.len(), 1);
    assert_eq!(
        effects.log_lines[0].text,
        "Task returned to the queue because the worker signed off"
    );
    assert_eq!(
        effects.events,
        [
            Event::task("j1", "t1"),
            Event::job("j1"),
            Event::worker("w1")
        ]
    );
    assert!(effects.kick, "requeued work is dispatched again");
    assert!(effects.aborts.is_empty() && effects.freed_slots.is_empty());

    // Nothing requeued: only the worker changed.
    let effects = left("w1", &[], "the worker timed out");
    assert_eq!(effects.events, [Event::worker("w1")]);
    assert!(effects.log_lines.is_empty() && !effects.kick);
}

#[test]
fn handing_back_running_tasks_aborts_only_those_that_were_requeued() {
    // t2 ended between the read and the requeue: it is neither aborted nor announced.
    let requeued = [pair("t1", "j1"), pair("t3", "j2")];
    let effects = handed_back_running(
        &[running("t1"), running("t2"), running("t3")],
        &requeued,
        "the worker was asked to go asleep at once",
    );
    let aborted: Vec<(&str, Vec<&str>, &str)> = effects
        .aborts
        .iter()
        .map(|a| {
            let tasks = a.tasks.iter().map(|t| t.task_id.as_str()).collect();
            (a.job_id.as_str(), tasks, a.reason.as_str())
        })
        .collect();
    let reason = "the worker was asked to go asleep at once";
    assert_eq!(
        aborted,
        [("j1", vec!["t1"], reason), ("j2", vec!["t3"], reason)]
    );
    let lines: Vec<&str> = effects
        .log_lines
        .iter()
        .map(|l| l.task_id.as_str())
        .collect();
    assert_eq!(lines, ["t1", "t3"]);
    assert!(effects.events.contains(&Event::task("j2", "t3")));
    assert!(!effects.events.contains(&Event::task("j1", "t2")));
    assert!(effects.kick);
}

#[test]
fn a_connected_worker_is_announced() {
    let effects = connected("w1");
    assert_eq!(effects.events, [Event::worker("w1")]);
    assert!(!effects.kick && effects.log_lines.is_empty());
}
