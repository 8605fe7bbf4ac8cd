//! A frozen worker (SIGSTOP) keeps its TCP connection open; the manager's HTTP/2 keep-alive
//! pings go unanswered, the connection closes and the worker timeout moves its task to another
//! worker long before the task timeout (issue 23, item 4).
mod common;

use std::time::{Duration, Instant};

use common::{Api, ManagerProcess, WorkerProcess, completed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_worker_loses_its_task_well_before_the_task_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Worker timeout 4 s: pings every second, unanswered after one more.
    std::fs::write(
        dir.path().join("castanet-manager.toml"),
        "registration_secret = \"frozen-test\"\n\
         worker_timeout_seconds = 4\n\
         task_timeout_seconds = 300\n\
         startup_grace_seconds = 0\n",
    )
    .expect("config");
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let one = WorkerProcess::start(&manager, &dir.path().join("w1"), "worker-one", 1);
    let two = WorkerProcess::start(&manager, &dir.path().join("w2"), "worker-two", 1);
    api.wait_connected(2, Duration::from_secs(30)).await;

    let job = api.submit_echo_sleep(1, 6).await;
    let tasks = api
        .wait_for_tasks(&job, Duration::from_secs(30), |tasks| {
            tasks
                .iter()
                .any(|t| t["name"] == "sleep-1" && t["status"] == "active")
        })
        .await;
    let sleeping = tasks
        .iter()
        .find(|t| t["name"] == "sleep-1")
        .cloned()
        .unwrap_or_default();
    let task_id = sleeping["id"].as_str().expect("task id").to_owned();
    let (frozen, other) = if sleeping["worker"]["name"] == "worker-one" {
        (&one, "worker-two")
    } else {
        (&two, "worker-one")
    };

    let frozen_at = Instant::now();
    common::signal(&frozen.child, libc::SIGSTOP);
    api.wait_for_tasks(&job, Duration::from_secs(60), |tasks| {
        tasks
            .iter()
            .any(|t| t["id"] == task_id.as_str() && t["worker"]["name"] == other)
    })
    .await;
    let moved_after = frozen_at.elapsed();
    assert!(
        moved_after < Duration::from_secs(60),
        "moved after {moved_after:?}; the task timeout is 300 s"
    );
    api.wait_for_job(&job, Duration::from_secs(60), completed)
        .await;
    let log = api.task_log(&task_id).await;
    assert!(log.contains("timed out"), "the log says why:\n{log}");

    // SIGKILL ends a stopped process too.
    one.kill();
    two.kill();
    manager.stop();
}
