//! End to end with real processes: `castanet manager` and `castanet worker` on loopback.
mod common;

use std::time::Duration;

use common::{Api, ManagerProcess, WorkerProcess, completed};
use serde_json::Value;

fn assignments(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("Task assigned to worker"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_run_a_40_task_job_once_each_with_readable_logs() {
    let dir = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let one = WorkerProcess::start(&manager, &dir.path().join("w1"), "worker-one", 2);
    let two = WorkerProcess::start(&manager, &dir.path().join("w2"), "worker-two", 2);
    // Both must be connected before the job arrives, or one fast worker may run it all.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let workers = api.get("/api/v3/worker-mgt/workers").await;
        let connected = workers["workers"].as_array().map_or(0, |all| {
            all.iter().filter(|w| w["connected"] == true).count()
        });
        if connected == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "workers did not connect: {workers}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let job = api.submit_echo_sleep(39, 0).await;
    api.wait_for_job(&job, Duration::from_secs(60), completed)
        .await;

    let tasks = api.tasks(&job).await;
    assert_eq!(tasks.len(), 40);
    let mut workers_used = std::collections::HashSet::new();
    for task in &tasks {
        assert_eq!(task["status"], "completed", "{task}");
        let id = task["id"].as_str().unwrap();
        let log = api.task_log(id).await;
        assert_eq!(assignments(&log), 1, "task {id} ran exactly once:\n{log}");
        if task["name"] == "echo" {
            assert!(
                log.contains("hello from e2e"),
                "echo output in the log:\n{log}"
            );
        } else {
            assert!(log.contains("slept"), "sleep output in the log:\n{log}");
        }
        workers_used.insert(
            task["worker"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(
        workers_used.len(),
        2,
        "both workers took part: {workers_used:?}"
    );

    one.stop();
    two.stop();
    let workers = api.get("/api/v3/jobs").await;
    assert_eq!(workers["jobs"].as_array().map(Vec::len), Some(1));
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_manager_has_every_job_and_its_worker_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let address = manager.listen_address();
    let api = Api::new(&manager.url);
    let job = api.submit_echo_sleep(4, 0).await;
    let before_job = api.get(&format!("/api/v3/jobs/{job}")).await;
    let before_tasks = api.tasks(&job).await;
    let secret = manager.secret.clone();
    manager.stop();

    // Same database, same port; a worker started while the manager was down connects
    // once it is back.
    let worker = WorkerProcess::start_with(
        &format!("http://{address}"),
        &secret,
        &dir.path().join("w"),
        "late-worker",
        1,
    );
    let manager = ManagerProcess::start(dir.path(), &address);
    let after_job = api.get(&format!("/api/v3/jobs/{job}")).await;
    assert_eq!(after_job, before_job, "the job is unchanged by the restart");
    assert_eq!(api.tasks(&job).await, before_tasks, "all tasks are there");

    api.wait_for_job(&job, Duration::from_secs(60), completed)
        .await;
    worker.stop();
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_task_comes_back_and_the_farm_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let victim_dir = dir.path().join("victim");
    let victim = WorkerProcess::start(&manager, &victim_dir, "victim", 1);
    let job = api.submit_echo_sleep(4, 2).await;

    // Wait until the victim is in the middle of a sleep task, then kill it.
    let tasks = api
        .wait_for_tasks(&job, Duration::from_secs(30), |tasks| {
            tasks
                .iter()
                .any(|t| t["status"] == "active" && t["name"] != "echo")
        })
        .await;
    let killed_task = tasks
        .iter()
        .find(|t| t["status"] == "active" && t["name"] != "echo")
        .and_then(|t| t["id"].as_str())
        .unwrap()
        .to_string();
    victim.kill();

    // The same worker comes back (same credentials) and a second one joins.
    let victim = WorkerProcess::start(&manager, &victim_dir, "victim", 1);
    let helper = WorkerProcess::start(&manager, &dir.path().join("helper"), "helper", 1);
    api.wait_for_job(&job, Duration::from_secs(90), completed)
        .await;

    let task = api.get(&format!("/api/v3/tasks/{killed_task}")).await;
    assert_eq!(task["status"], "completed");
    let log = api.task_log(&killed_task).await;
    assert_eq!(
        assignments(&log),
        2,
        "run once before the kill and once after:\n{log}"
    );
    assert!(
        log.contains("reconnected without it"),
        "the hand-back is logged:\n{log}"
    );
    let workers: Vec<Value> = api.tasks(&job).await;
    assert!(workers.iter().all(|t| t["status"] == "completed"));
    victim.stop();
    helper.stop();
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_the_manager_forgot_registers_again() {
    let first_dir = tempfile::tempdir().unwrap();
    let worker_dir = first_dir.path().join("w");
    let first = ManagerProcess::start(first_dir.path(), "127.0.0.1:0");
    let worker = WorkerProcess::start(&first, &worker_dir, "forgotten", 1);
    let api = Api::new(&first.url);
    let job = api.submit_echo_sleep(1, 0).await;
    api.wait_for_job(&job, Duration::from_secs(30), completed)
        .await;
    worker.stop();
    let secret = first.secret.clone();
    first.stop();

    // A brand-new manager (empty database) with the same secret: the stored credentials
    // are unknown there, so the worker registers anew and works.
    let second_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        second_dir.path().join("castanet-manager.toml"),
        format!("registration_secret = \"{secret}\"\n"),
    )
    .unwrap();
    let second = ManagerProcess::start(second_dir.path(), "127.0.0.1:0");
    let worker = WorkerProcess::start(&second, &worker_dir, "forgotten", 1);
    let api = Api::new(&second.url);
    let job = api.submit_echo_sleep(1, 0).await;
    api.wait_for_job(&job, Duration::from_secs(30), completed)
        .await;
    worker.stop();
    second.stop();
}
