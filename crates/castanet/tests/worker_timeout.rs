//! Worker timeout with real processes: a worker killed with SIGKILL mid-task goes to
//! `error`, its task is requeued and completed by the other worker, and the killed worker
//! recovers from `error` when it starts again.
mod common;

use std::time::{Duration, Instant};

use common::{Api, ManagerProcess, WorkerProcess, completed};
use serde_json::Value;

async fn worker_status(api: &Api, name: &str) -> String {
    let workers = api.get("/api/v3/worker-mgt/workers").await;
    workers["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|w| w["name"] == name)
        .and_then(|w| w["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

async fn wait_for_worker_status(api: &Api, name: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = worker_status(api, name).await;
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "worker {name} is {status:?}, not {want:?}, after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_times_out_its_task_moves_on_and_it_recovers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("castanet-manager.toml"),
        "registration_secret = \"timeout-test\"\n\
         worker_timeout_seconds = 1\n\
         startup_grace_seconds = 0\n",
    )
    .unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let one = WorkerProcess::start(&manager, &dir.path().join("w1"), "worker-one", 1);
    let two = WorkerProcess::start(&manager, &dir.path().join("w2"), "worker-two", 1);
    wait_for_worker_status(&api, "worker-one", "awake").await;
    wait_for_worker_status(&api, "worker-two", "awake").await;

    // Two 3-second sleep tasks after the echo: one runs on each worker.
    let job = api.submit_echo_sleep(2, 3).await;
    let tasks = api
        .wait_for_tasks(&job, Duration::from_secs(30), |tasks| {
            tasks.iter().filter(|t| t["status"] == "active").count() == 2
        })
        .await;
    let on_one: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["status"] == "active" && t["worker"]["name"] == "worker-one")
        .collect();
    assert_eq!(on_one.len(), 1, "worker-one runs one task: {tasks:?}");
    let killed_task = on_one[0]["id"].as_str().unwrap().to_string();

    one.kill(); // SIGKILL: no sign-off, the connection just drops
    wait_for_worker_status(&api, "worker-one", "error").await;
    api.wait_for_job(&job, Duration::from_secs(60), completed)
        .await;
    let task = api.get(&format!("/api/v3/tasks/{killed_task}")).await;
    assert_eq!(task["worker"]["name"], "worker-two", "{task}");
    let log = api.task_log(&killed_task).await;
    assert!(log.contains("timed out"), "the log says why:\n{log}");

    // The killed worker starts again with its identity and leaves `error`.
    let again = WorkerProcess::start(&manager, &dir.path().join("w1"), "worker-one", 1);
    wait_for_worker_status(&api, "worker-one", "awake").await;
    again.stop();
    two.stop();
    manager.stop();
}
