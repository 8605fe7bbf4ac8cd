//! Job and task status actions over the REST API with real workers on gRPC: cancel
//! (with AbortTask), pause/resume, requeue clearing failure lists, refused transitions.
mod common;
mod sim_worker;

use std::time::Duration;

use castanet_protocol::v1::{self, FaultClass, instruction::Kind};
use common::echo_sleep_job;
use serde_json::json;
use sim_worker::{SimWorker, start_with};
use tonic::Code;

async fn submit(m: &common::TestManager, repeats: i64) -> String {
    let (status, job) = m.post("/api/v3/jobs", &echo_sleep_job(repeats, 0)).await;
    assert_eq!(status, 200, "{job}");
    job["id"].as_str().unwrap().to_string()
}

async fn set_job_status(
    m: &common::TestManager,
    job: &str,
    status: &str,
) -> (u16, serde_json::Value) {
    m.post(
        &format!("/api/v3/jobs/{job}/setstatus"),
        &json!({ "status": status, "reason": "test" }),
    )
    .await
}

async fn job_status(m: &common::TestManager, job: &str) -> String {
    m.get(&format!("/api/v3/jobs/{job}")).await.1["status"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn cancel_aborts_the_running_task_and_a_late_update_changes_nothing() {
    let m = start_with(|_| {}).await;
    let mut w = SimWorker::connect(&m, "w").await;
    let job = submit(&m, 2).await;
    let echo = w.next_assignment().await;
    let (status, body) = set_job_status(&m, &job, "cancel-requested").await;
    assert_eq!(status, 204, "{body}");
    match w.next_instruction().await {
        Kind::AbortTask(abort) => {
            assert_eq!(abort.task_id, echo.task_id);
            assert_eq!(abort.lease_epoch, echo.lease_epoch);
        }
        other => panic!("expected AbortTask, got {other:?}"),
    }
    assert_eq!(job_status(&m, &job).await, "canceled");
    // The worker finished just before it heard: its update is refused and changes nothing.
    let late = w
        .report(&echo, v1::TaskStatus::Completed, None)
        .await
        .unwrap_err();
    assert_eq!(late.code(), Code::FailedPrecondition);
    assert!(
        late.message().contains("no longer held"),
        "{}",
        late.message()
    );
    let (_, task) = m.get(&format!("/api/v3/tasks/{}", echo.task_id)).await;
    assert_eq!(task["status"], "canceled");
    // Canceling again is refused with the reason.
    let (status, body) = set_job_status(&m, &job, "cancel-requested").await;
    assert_eq!(status, 409);
    assert!(
        body["message"].as_str().unwrap().contains("\"canceled\""),
        "{body}"
    );
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn pause_waits_for_the_running_task_and_resume_runs_the_rest() {
    let m = start_with(|_| {}).await;
    let mut w = SimWorker::connect(&m, "w").await;
    let job = submit(&m, 2).await;
    let echo = w.next_assignment().await;
    let (status, _) = set_job_status(&m, &job, "pause-requested").await;
    assert_eq!(status, 204);
    assert_eq!(
        job_status(&m, &job).await,
        "pause-requested",
        "a task still runs"
    );
    w.complete(&echo).await;
    m.wait_for_job(&job, Duration::from_secs(5), |j| j["status"] == "paused")
        .await;
    assert!(
        w.instruction_within(Duration::from_millis(200))
            .await
            .is_none(),
        "a paused job hands out nothing"
    );
    let (status, body) = set_job_status(&m, &job, "queued").await;
    assert_eq!(status, 204, "{body}");
    let first = w.next_assignment().await;
    w.complete(&first).await;
    let second = w.next_assignment().await;
    w.complete(&second).await;
    m.wait_for_job(&job, Duration::from_secs(5), |j| j["status"] == "completed")
        .await;
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn invalid_requests_are_refused_with_409_or_400_and_a_reason() {
    let m = start_with(|_| {}).await;
    let job = submit(&m, 1).await;
    let (status, body) = set_job_status(&m, &job, "completed").await;
    assert_eq!(status, 409);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("set by the manager"),
        "{body}"
    );
    let (status, body) = set_job_status(&m, &job, "runing").await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("runing"),
        "{body}"
    );
    let (status, body) = set_job_status(&m, &job, "queued").await;
    assert_eq!(status, 409, "resume needs a paused job: {body}");
    let (status, _) = m
        .post(
            &format!("/api/v3/jobs/{job}/setpriority"),
            &json!({ "priority": 101 }),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = m
        .post(
            &format!("/api/v3/jobs/{job}/setpriority"),
            &json!({ "priority": 70 }),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        m.get(&format!("/api/v3/jobs/{job}")).await.1["priority"],
        70
    );
    let (_, tasks) = m.get(&format!("/api/v3/jobs/{job}/tasks")).await;
    let task = tasks["tasks"][0]["id"].as_str().unwrap().to_string();
    let (status, body) = m
        .post(
            &format!("/api/v3/tasks/{task}/setstatus"),
            &json!({ "status": "completed" }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn user_requeue_clears_failure_lists_and_blocklist() {
    let m = start_with(|c| c.job_fail_percent = 10).await;
    let mut w = SimWorker::connect(&m, "w").await;
    let job = submit(&m, 1).await;
    let echo = w.next_assignment().await;
    w.fail(&echo, FaultClass::DiskFull).await;
    // The only worker is blocklisted: nobody is left, the job fails.
    m.wait_for_job(&job, Duration::from_secs(5), |j| j["status"] == "failed")
        .await;
    let (_, blocklist) = m.get(&format!("/api/v3/jobs/{job}/blocklist")).await;
    assert_eq!(blocklist.as_array().unwrap().len(), 1);
    let (status, body) = set_job_status(&m, &job, "requeueing").await;
    assert_eq!(status, 204, "{body}");
    let (_, blocklist) = m.get(&format!("/api/v3/jobs/{job}/blocklist")).await;
    assert_eq!(blocklist, json!([]));
    let again = w.next_assignment().await;
    assert_eq!(again.task_id, echo.task_id, "the worker may run it again");
    let (_, task) = m.get(&format!("/api/v3/tasks/{}", echo.task_id)).await;
    assert_eq!(task["failed_by_workers"], json!([]));
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn requeueing_one_task_of_a_failed_job_makes_it_runnable() {
    // Upstream leaves the task queued in a failed job forever (§15.11).
    let m = start_with(|_| {}).await;
    let mut w = SimWorker::connect(&m, "w").await;
    let job = submit(&m, 1).await;
    let echo = w.next_assignment().await;
    w.fail(&echo, FaultClass::MissingInput).await;
    m.wait_for_job(&job, Duration::from_secs(5), |j| j["status"] == "failed")
        .await;
    let (status, body) = m
        .post(
            &format!("/api/v3/tasks/{}/setstatus", echo.task_id),
            &json!({ "status": "queued", "reason": "input is there now" }),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let again = w.next_assignment().await;
    assert_eq!(again.task_id, echo.task_id);
    assert_eq!(job_status(&m, &job).await, "active");
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn deleting_a_job_aborts_its_running_task() {
    let m = start_with(|_| {}).await;
    let mut w = SimWorker::connect(&m, "w").await;
    let job = submit(&m, 1).await;
    let echo = w.next_assignment().await;
    let response = m
        .http
        .delete(format!("{}/api/v3/jobs/{job}", m.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    match w.next_instruction().await {
        Kind::AbortTask(abort) => assert_eq!(abort.task_id, echo.task_id),
        other => panic!("expected AbortTask, got {other:?}"),
    }
    let (status, _) = m.get(&format!("/api/v3/jobs/{job}")).await;
    assert_eq!(status, 404);
    m.manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn why_names_every_rule_that_blocks_a_task() {
    let m = start_with(|_| {}).await;
    let job = submit(&m, 1).await;
    let (_, tasks) = m.get(&format!("/api/v3/jobs/{job}/tasks")).await;
    let echo = tasks["tasks"][0]["id"].as_str().unwrap().to_string();
    let sleep = tasks["tasks"][1]["id"].as_str().unwrap().to_string();
    let rules = |answer: &serde_json::Value| -> Vec<String> {
        answer["blockers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["rule"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, answer) = m.get(&format!("/api/v3/tasks/{echo}/why")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(rules(&answer), ["task-type"], "no worker at all: {answer}");

    let mut w = SimWorker::connect(&m, "w").await;
    let running = w.next_assignment().await;
    assert_eq!(running.task_id, echo);
    let (_, answer) = m.get(&format!("/api/v3/tasks/{sleep}/why")).await;
    assert_eq!(rules(&answer), ["dependency", "slots-busy"], "{answer}");
    assert!(
        answer["blockers"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("echo is active")
    );
    let (_, answer) = m.get(&format!("/api/v3/tasks/{echo}/why")).await;
    assert!(
        answer["summary"]
            .as_str()
            .unwrap()
            .contains("running on worker w"),
        "{answer}"
    );

    set_job_status(&m, &job, "pause-requested").await;
    let (_, answer) = m.get(&format!("/api/v3/tasks/{sleep}/why")).await;
    assert!(
        rules(&answer).contains(&"job-status".to_string()),
        "{answer}"
    );
    assert!(
        rules(&answer).contains(&"task-status".to_string()),
        "{answer}"
    );
    m.manager.shutdown().await.unwrap();
}
