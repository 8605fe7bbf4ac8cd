//! Sequence numbers are checked per task: a worker sends the updates of different tasks
//! concurrently, so they may arrive out of order, and each is applied exactly once.
mod common;

use std::time::Duration;

use castanet_protocol::v1;
use common::{authed, echo_sleep_job, misc_sign_on, next_assignment, start};
use tonic::Code;

fn completed(task: &v1::AssignTask, sequence: u64) -> v1::TaskUpdate {
    v1::TaskUpdate {
        task_id: task.task_id.clone(),
        lease_epoch: task.lease_epoch,
        sequence,
        status: v1::TaskStatus::Completed as i32,
        activity: Some("Completed".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn updates_of_two_tasks_arriving_out_of_order_are_both_applied_once() {
    let m = start().await;
    let mut worker = m.connect(misc_sign_on("two-slots", 2)).await;
    let (_, job) = m.post("/api/v3/jobs", &echo_sleep_job(2, 0)).await;
    let job_id = job["id"].as_str().expect("job id").to_string();
    let (id, token) = (worker.id.clone(), worker.token.clone());

    // The echo task first; its completion frees the two sleep tasks.
    let echo = next_assignment(&mut worker.stream).await;
    let ack = worker
        .client
        .update_task(authed(completed(&echo, 1), &id, &token))
        .await
        .expect("applied")
        .into_inner();
    assert!(ack.applied);
    let first = next_assignment(&mut worker.stream).await;
    let second = next_assignment(&mut worker.stream).await;

    // Numbered 3 and 2, delivered in that order (as concurrent calls may arrive).
    let ack = worker
        .client
        .update_task(authed(completed(&second, 3), &id, &token))
        .await
        .expect("applied")
        .into_inner();
    assert!(ack.applied);
    let ack = worker
        .client
        .update_task(authed(completed(&first, 2), &id, &token))
        .await
        .expect("applied, though its number is below one applied before")
        .into_inner();
    assert!(ack.applied, "a lower number of another task is no retry");
    // Retries of both are acknowledged and change nothing.
    for (task, sequence) in [(&first, 2), (&second, 3)] {
        let ack = worker
            .client
            .update_task(authed(completed(task, sequence), &id, &token))
            .await
            .expect("a retry is acknowledged")
            .into_inner();
        assert!(!ack.applied);
    }
    let job = m
        .wait_for_job(&job_id, Duration::from_secs(5), |j| {
            j["status"] == "completed"
        })
        .await;
    assert_eq!(job["status"], "completed");

    // Another worker quoting a number the task has seen is refused, not told "applied".
    let mut other = m.connect(misc_sign_on("other", 1)).await;
    let refused = other
        .client
        .update_task(authed(completed(&first, 1), &other.id, &other.token))
        .await
        .expect_err("not this worker's task");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    drop(other.stream);
    m.manager.shutdown().await.expect("clean shutdown");
}
