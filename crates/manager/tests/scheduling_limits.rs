//! Scheduling limits over real gRPC: the retry backoff after a failure, resource pools shared
//! by the farm, a job's worker limit, and what `/why` says about each.
mod common;
mod sim_worker;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use castanet_protocol::v1::FaultClass;
use common::{TestManager, echo_sleep_job};
use serde_json::{Value, json};
use sim_worker::{SimWorker, next_assignment_any, start_with};

async fn submit(m: &TestManager, job: &Value) -> String {
    let (status, answer) = m.post("/api/v3/jobs", job).await;
    assert_eq!(status, 200, "{answer}");
    answer["id"].as_str().expect("job id").to_string()
}

async fn why_rules(m: &TestManager, task_id: &str) -> Vec<(String, String)> {
    let (status, why) = m.get(&format!("/api/v3/tasks/{task_id}/why")).await;
    assert_eq!(status, 200, "{why}");
    why["blockers"]
        .as_array()
        .expect("blockers")
        .iter()
        .map(|b| {
            (
                b["rule"].as_str().unwrap_or_default().to_string(),
                b["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A queued task of the job, if it has one.
async fn queued_task_of(m: &TestManager, job_id: &str) -> Option<String> {
    let (_, tasks) = m.get(&format!("/api/v3/jobs/{job_id}/tasks")).await;
    tasks["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["status"] == "queued")
        .and_then(|t| t["id"].as_str())
        .map(str::to_string)
}

/// Fails `task` on `worker`; checks that it waits `wait` seconds and that `/why` says so.
async fn fail_and_check_backoff(
    m: &TestManager,
    worker: &mut SimWorker,
    task: &castanet_protocol::v1::AssignTask,
    failures: u64,
    wait: u64,
) -> Instant {
    let failed_at = Instant::now();
    worker.fail(task, FaultClass::NonzeroExit).await;
    let (_, shown) = m.get(&format!("/api/v3/tasks/{}", task.task_id)).await;
    assert_eq!(shown["status"], "soft-failed", "{shown}");
    assert!(shown["retry_at"].is_string(), "{shown}");
    let activity = shown["activity"].as_str().unwrap_or_default();
    assert!(
        activity.contains(&format!("retried in {wait} s")),
        "{activity}"
    );
    let rules = why_rules(m, &task.task_id).await;
    assert!(
        rules.iter().any(|(rule, detail)| rule == "retry-backoff"
            && detail.contains(&format!("failed on {failures} worker"))),
        "{rules:?}"
    );
    failed_at
}

#[tokio::test]
async fn a_failed_task_waits_out_a_doubling_backoff_shown_by_why() {
    let m = start_with(|c| {
        c.retries.backoff_base_seconds = 1;
        c.retries.backoff_cap_seconds = 60;
        c.task_fail_after_softfail_count = 5;
    })
    .await;
    let mut workers = vec![
        SimWorker::connect(&m, "a").await,
        SimWorker::connect(&m, "b").await,
        SimWorker::connect(&m, "c").await,
    ];
    submit(&m, &echo_sleep_job(0, 0)).await;
    let (first, task) = next_assignment_any(&mut workers).await;
    let failed_at = fail_and_check_backoff(&m, &mut workers[first], &task, 1, 1).await;
    // Two idle workers could take it at once; it comes only after the backoff.
    let (second, again) = next_assignment_any(&mut workers).await;
    assert_eq!(again.task_id, task.task_id);
    assert_ne!(second, first, "the worker that failed it got it back");
    assert!(
        failed_at.elapsed() >= Duration::from_secs(1),
        "{:?}",
        failed_at.elapsed()
    );

    let failed_at = fail_and_check_backoff(&m, &mut workers[second], &again, 2, 2).await;
    let (third, last) = next_assignment_any(&mut workers).await;
    assert_eq!(last.task_id, task.task_id);
    assert!(third != first && third != second);
    assert!(
        failed_at.elapsed() >= Duration::from_secs(2),
        "{:?}",
        failed_at.elapsed()
    );
    workers[third].complete(&last).await;
    let (_, shown) = m.get(&format!("/api/v3/tasks/{}", task.task_id)).await;
    assert_eq!(shown["status"], "completed", "{shown}");
    assert!(shown.get("retry_at").is_none(), "{shown}");
}

#[tokio::test]
async fn a_resource_pool_never_runs_more_tasks_than_it_holds() {
    let m = start_with(|c| {
        c.resources = BTreeMap::from([("licence".to_string(), 2)]);
    })
    .await;
    let mut workers = Vec::new();
    for name in ["w1", "w2", "w3", "w4", "w5", "w6"] {
        workers.push(SimWorker::connect(&m, name).await);
    }
    // Bad limits are refused, naming what is wrong; nothing is stored.
    for (limits, expected) in [
        (json!({ "resources": { "arnold": 1 } }), "\"arnold\""),
        (json!({ "resources": { "licence": 3 } }), "holds only 2"),
        (json!({ "max_workers": 0 }), "max_workers"),
        (json!({ "resource": { "licence": 1 } }), "resource"),
    ] {
        let mut job = echo_sleep_job(1, 0);
        job["limits"] = limits;
        let (status, answer) = m.post("/api/v3/jobs", &job).await;
        assert_eq!(status, 400, "{answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{answer}");
    }
    let mut job = echo_sleep_job(8, 0);
    job["limits"] = json!({ "resources": { "licence": 1 } });
    let job_id = submit(&m, &job).await;
    let (_, shown) = m.get(&format!("/api/v3/jobs/{job_id}")).await;
    assert_eq!(shown["limits"], json!({ "resources": { "licence": 1 } }));

    // (worker index, task) held now; checked at every assignment.
    let mut held = Vec::new();
    let mut most = 0;
    let mut completed = 0;
    while completed < 9 {
        let runnable_now = if completed == 0 { 1 } else { 9 - completed };
        while held.len() < runnable_now.min(2) {
            let (index, task) = next_assignment_any(&mut workers).await;
            held.push((index, task));
            most = most.max(held.len());
            assert!(held.len() <= 2, "{} licence tasks at once", held.len());
            let (_, pools) = m.get("/api/v3/resources").await;
            let in_use = pools["pools"][0]["in_use"].as_u64().unwrap_or(99);
            // The manager may have handed out the next one already (one round, two slots).
            assert!(in_use <= 2 && in_use as usize >= held.len(), "{pools}");
        }
        if held.len() == 2 && completed < 7 {
            let waiting = queued_task_of(&m, &job_id).await.expect("a queued task");
            let rules = why_rules(&m, &waiting).await;
            assert!(
                rules
                    .iter()
                    .any(|(rule, detail)| rule == "resource-pool" && detail.contains("\"licence\"")),
                "{rules:?}"
            );
        }
        let (index, task) = held.remove(0);
        workers[index].complete(&task).await;
        completed += 1;
    }
    assert_eq!(most, 2);
    m.wait_for_job(&job_id, Duration::from_secs(10), |j| {
        j["status"] == "completed"
    })
    .await;
    let (_, pools) = m.get("/api/v3/resources").await;
    assert_eq!(
        pools,
        json!({ "pools": [{ "name": "licence", "size": 2, "in_use": 0 }] })
    );
}

#[tokio::test]
async fn a_job_limited_to_one_worker_never_runs_on_two_at_once() {
    let m = start_with(|_| {}).await;
    let mut workers = vec![
        SimWorker::connect(&m, "a").await,
        SimWorker::connect(&m, "b").await,
    ];
    let mut job = echo_sleep_job(3, 0);
    job["limits"] = json!({ "max_workers": 1 });
    let job_id = submit(&m, &job).await;
    for _ in 0..4 {
        // Both workers are idle when a round starts, and one round hands out to both at
        // once; the round is committed before its assignments are sent, so the count read
        // now is the round's.
        let (index, task) = next_assignment_any(&mut workers).await;
        let (_, tasks) = m.get(&format!("/api/v3/jobs/{job_id}/tasks")).await;
        let running = tasks["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .filter(|t| t["status"] == "active")
            .count();
        assert_eq!(
            running, 1,
            "tasks of the job on two workers at once: {tasks}"
        );
        if let Some(waiting) = queued_task_of(&m, &job_id).await {
            let rules = why_rules(&m, &waiting).await;
            assert!(
                rules.iter().any(|(rule, _)| rule == "max-workers"),
                "{rules:?}"
            );
        }
        workers[index].complete(&task).await;
    }
    m.wait_for_job(&job_id, Duration::from_secs(10), |j| {
        j["status"] == "completed"
    })
    .await;
}

#[tokio::test]
async fn preview_first_hands_out_every_nth_task_first_then_the_gaps() {
    let m = start_with(|_| {}).await;
    let mut worker = SimWorker::connect(&m, "a").await;
    let mut job = echo_sleep_job(8, 0);
    job["preview_first_every"] = json!(1);
    let (status, answer) = m.post("/api/v3/jobs", &job).await;
    assert_eq!(status, 400, "{answer}");
    job["preview_first_every"] = json!(3);
    let job_id = submit(&m, &job).await;
    let (_, shown) = m.get(&format!("/api/v3/jobs/{job_id}")).await;
    assert_eq!(shown["preview_first_every"], 3, "{shown}");
    let mut order = Vec::new();
    for _ in 0..9 {
        let task = worker.next_assignment().await;
        order.push(task.task_name.clone());
        worker.complete(&task).await;
    }
    // Tasks 1, 4, 7 (echo, sleep-3, sleep-6) first; the task list keeps the authored order.
    assert_eq!(
        order,
        [
            "echo", "sleep-3", "sleep-6", "sleep-1", "sleep-2", "sleep-4", "sleep-5", "sleep-7",
            "sleep-8"
        ]
    );
    let (_, tasks) = m.get(&format!("/api/v3/jobs/{job_id}/tasks")).await;
    assert_eq!(tasks["tasks"][1]["name"], "sleep-1", "{tasks}");

    // A big job is renumbered in one pass (a correlated numbering took ~6 s for 4,000 tasks).
    let mut big = echo_sleep_job(20_000, 0);
    big["preview_first_every"] = json!(10);
    big["initial_status"] = json!("paused");
    let started = std::time::Instant::now();
    submit(&m, &big).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_job_whose_pool_left_the_config_is_explained_then_fails_instead_of_waiting_forever() {
    let m = start_with(|c| {
        c.resources = BTreeMap::from([("licence".to_string(), 2)]);
    })
    .await;
    let mut job = echo_sleep_job(0, 0);
    job["limits"] = json!({ "resources": { "licence": 2 } });
    let job_id = submit(&m, &job).await;
    let dir = m.dir;
    m.manager.shutdown().await.expect("manager stops");

    // The pool is gone from the config at the next start.
    let m = common::start_configured(dir, |_| {}).await;
    let task = queued_task_of(&m, &job_id).await.expect("a queued task");
    let rules = why_rules(&m, &task).await;
    assert!(
        rules.iter().any(|(rule, detail)| rule == "resource-pool"
            && detail.contains("\"licence\"")
            && detail.contains("no longer has")),
        "{rules:?}"
    );
    // Once a worker could run it, the farm-wide impossible-task check (every 30 s) fails it,
    // naming the pool.
    let _worker = SimWorker::connect(&m, "w1").await;
    m.manager
        .state
        .dispatcher
        .fail_impossible_tasks(&castanet_manager::store::FeasibilityScope::Farm)
        .await
        .expect("the farm-wide check");
    let failed = m
        .wait_for_job(&job_id, Duration::from_secs(10), |j| {
            j["status"] == "failed"
        })
        .await;
    let (_, shown) = m.get(&format!("/api/v3/tasks/{task}")).await;
    assert!(
        shown["activity"]
            .as_str()
            .is_some_and(|a| a.contains("resource pools")),
        "{shown} {failed}"
    );
}
