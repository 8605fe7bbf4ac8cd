//! A worker declining a task after its self-check (fault class `self-check`) over real gRPC:
//! not a failure of the task (its failure list stays empty, nothing soft-fails), the worker
//! is blocklisted for the job's tasks of that type with its reason, the task goes back to the
//! queue and another worker runs it; when the last capable worker declines, the job fails
//! naming why instead of waiting.
mod common;
mod sim_worker;

use castanet_protocol::v1::{self, FaultClass};
use common::echo_sleep_job;
use serde_json::{Value, json};
use sim_worker::{SimWorker, next_assignment_any, start_with};

const REASON: &str = "cannot write in /renders: Read-only file system (os error 30)";

async fn decline(worker: &mut SimWorker, task: &v1::AssignTask) {
    let failure = v1::Failure {
        fault_class: FaultClass::SelfCheck as i32,
        message: REASON.into(),
        last_log_lines: Vec::new(),
    };
    worker
        .report(task, v1::TaskStatus::Failed, Some(failure))
        .await
        .expect("decline accepted");
}

async fn get(m: &common::TestManager, path: &str) -> Value {
    let (status, body) = m.get(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn a_declined_task_runs_elsewhere_without_a_failure_and_the_decliner_is_blocklisted() {
    let m = start_with(|_| {}).await;
    let mut workers = vec![
        SimWorker::connect(&m, "one").await,
        SimWorker::connect(&m, "two").await,
    ];
    let (status, job) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200, "{job}");
    let job = job["id"].as_str().expect("id").to_owned();
    let (walled, task) = next_assignment_any(&mut workers).await;
    decline(&mut workers[walled], &task).await;
    let walled_name = workers[walled].name.clone();

    // Back in the queue, or already handed to the other worker: never a failure.
    let after = get(&m, &format!("/api/v3/tasks/{}", task.task_id)).await;
    let status = after["status"].as_str().unwrap_or_default();
    assert!(
        status == "queued"
            || (status == "active" && after["worker"]["name"] != walled_name.as_str()),
        "{after}"
    );
    assert_eq!(after["failed_by_workers"], json!([]), "{after}");
    let blocklist = get(&m, &format!("/api/v3/jobs/{job}/blocklist")).await;
    assert_eq!(blocklist.as_array().map(Vec::len), Some(1), "{blocklist}");
    assert_eq!(blocklist[0]["worker_name"], walled_name.as_str());
    let reason = blocklist[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("self-check failed") && reason.contains(REASON),
        "{reason}"
    );
    let log = m
        .text(&format!("/api/v3/tasks/{}/logtail", task.task_id))
        .await;
    assert!(
        log.contains(&format!(
            "The worker declined the task after its self-check: {REASON}"
        )),
        "{log}"
    );

    // The other worker runs every task (the declined one too) and completes the job.
    let free = &mut workers[1 - walled];
    let free_name = free.name.clone();
    for _ in 0..2 {
        let next = free.next_assignment().await;
        free.complete(&next).await;
    }
    let done = m
        .wait_for_job(&job, std::time::Duration::from_secs(10), |j| {
            j["status"] == "completed"
        })
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    let after = get(&m, &format!("/api/v3/tasks/{}", task.task_id)).await;
    assert_eq!(after["worker"]["name"], free_name.as_str(), "{after}");
    assert_eq!(after["failed_by_workers"], json!([]), "{after}");
    m.manager.shutdown().await.expect("shuts down");
}

#[tokio::test]
async fn when_the_last_capable_worker_declines_the_job_fails_naming_why() {
    let m = start_with(|_| {}).await;
    let mut walled = SimWorker::connect(&m, "walled").await;
    let (status, job) = m.post("/api/v3/jobs", &echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200, "{job}");
    let job = job["id"].as_str().expect("id").to_owned();
    let task = walled.next_assignment().await;
    decline(&mut walled, &task).await;
    let failed = m
        .wait_for_job(&job, std::time::Duration::from_secs(10), |j| {
            j["status"] == "failed"
        })
        .await;
    let activity = failed["activity"].as_str().unwrap_or_default();
    assert!(
        activity.contains("no worker is left") && activity.contains(REASON),
        "{failed}"
    );
    let after = get(&m, &format!("/api/v3/tasks/{}", task.task_id)).await;
    assert_eq!(after["status"], "failed", "{after}");
    assert_eq!(after["failed_by_workers"], json!([]), "{after}");
    m.manager.shutdown().await.expect("shuts down");
}
