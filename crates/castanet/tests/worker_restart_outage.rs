//! A worker restarted during a manager outage: the log lines it could not send are spooled
//! on disk and its task's result waits in its update journal; after both come back, the
//! log arrives whole and the result is applied, once, without running the task again.
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Api, ManagerProcess, WorkerProcess, completed};
use serde_json::Value;

/// The text of every file in the worker's log spool.
fn spooled_text(data_dir: &Path) -> String {
    let Ok(entries) = std::fs::read_dir(data_dir.join("log-spool")) else {
        return String::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect()
}

fn sleep_task(tasks: &[Value]) -> Value {
    tasks
        .iter()
        .find(|t| t["name"] != "echo")
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_lines_and_result_survive_a_worker_restart_during_a_manager_outage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let address = manager.listen_address();
    let api = Api::new(&manager.url);
    let data_dir = dir.path().join("w1");
    let worker = WorkerProcess::start(&manager, &data_dir, "spooler", 1);
    let job = api.submit_echo_sleep(1, 4).await;
    api.wait_for_tasks(&job, Duration::from_secs(30), |tasks| {
        sleep_task(tasks)["status"] == "active"
    })
    .await;

    // The manager dies while the task sleeps; the line it logs at the end is spooled.
    let mut manager = manager;
    let _ = manager.child.kill();
    let _ = manager.child.wait();
    drop(manager);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !spooled_text(&data_dir).contains("slept 4s") {
        assert!(
            Instant::now() < deadline,
            "the task's last line was not spooled: {:?}",
            spooled_text(&data_dir)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The worker stops (exit 0) with the manager still away; the spool stays on disk.
    worker.stop();
    assert!(spooled_text(&data_dir).contains("slept 4s"));
    let journal = std::fs::metadata(data_dir.join("pending-updates.bin"))
        .map(|m| m.len())
        .ok();
    assert!(
        journal.unwrap_or(0) > 0,
        "the result waits in the journal: {journal:?}"
    );

    let manager = ManagerProcess::start(dir.path(), &address);
    let worker = WorkerProcess::start(&manager, &data_dir, "spooler", 1);
    api.wait_for_job(&job, Duration::from_secs(60), completed)
        .await;
    let task = sleep_task(&api.tasks(&job).await);
    assert_eq!(task["worker"]["name"], "spooler", "{task}");
    let log = api.task_log(task["id"].as_str().expect("id")).await;
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    // Its whole log arrived once, and it did not run again after the restart (a second
    // run would have logged its line again before completing).
    assert_eq!(count("slept 4s"), 1, "{log}");
    assert_eq!(spooled_text(&data_dir), "", "the spool is emptied");
    worker.stop();
    manager.stop();
}
