//! Never two live runs of one task, with real processes: a worker SIGKILLed mid-task takes
//! its command processes with it — whether it is restarted at once with the same data dir
//! or its tasks move to another worker after the worker timeout — and a long task that
//! prints nothing on a healthy worker is not timed out.
//!
//! The tasks are marker runs (`common/markers.rs`): every run's lifetime can be read back.
mod common;

use std::path::Path;
use std::time::Duration;

use common::markers::{self, now, runs};
use common::{Api, ManagerProcess, WorkerProcess, completed, render_jobs};
use serde_json::json;

/// A manager in `dir` with `config` and the marker job type.
fn start_manager(dir: &Path, config: &str) -> ManagerProcess {
    std::fs::write(
        dir.join("castanet-manager.toml"),
        // Retried at once: the tests time the second run.
        format!(
            "registration_secret = \"no-double-runs\"\n{config}\n[retries]\nbackoff_base_seconds = 0\n"
        ),
    )
    .expect("config");
    markers::install_job_type(dir);
    ManagerProcess::start(dir, "127.0.0.1:0")
}

async fn submit(api: &Api, markers: &Path, tasks: u32, ticks: u32) -> String {
    markers::submit(api, markers, "run", tasks, ticks).await
}

/// Every task ended exactly once; no run wrote anything after the next run of its task
/// started; runs without an end stopped writing right after `killed_at`.
fn assert_one_live_run_at_a_time(markers: &Path, tasks: usize, killed_at: f64) {
    let by_task = runs(markers);
    assert_eq!(by_task.len(), tasks, "{by_task:#?}");
    let faults = markers::overlaps(&by_task);
    assert!(faults.is_empty(), "{faults:#?}");
    for (task, task_runs) in &by_task {
        let ends = task_runs.iter().filter(|r| r.ended).count();
        assert_eq!(
            ends, 1,
            "{task} ran to its end {ends} times: {task_runs:#?}"
        );
        assert!(
            task_runs.len() >= 2,
            "{task} was not re-run: {task_runs:#?}"
        );
        for run in task_runs.iter().filter(|r| !r.ended) {
            // A tick is due every 0.2 s; a live run would have written well after this.
            assert!(
                run.last < killed_at + 0.5,
                "{task}: the killed run {} wrote at {:.3}, {:.3} s after the kill",
                run.pid,
                run.last,
                run.last - killed_at
            );
        }
    }
}

/// Waits until every one of `tasks` tasks has written a tick (all runs are well under way).
async fn wait_until_all_ticking(markers: &Path, tasks: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ticking = runs(markers)
            .values()
            .filter(|r| r.iter().any(|run| run.last > run.start))
            .count();
        if ticking == tasks {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the tasks never ran: {:#?}",
            runs(markers)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_and_restarted_at_once_does_not_run_its_tasks_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manager = start_manager(dir.path(), "");
    let api = Api::new(&manager.url);
    let data_dir = dir.path().join("w");
    let worker = WorkerProcess::start(&manager, &data_dir, "restarted", 2);
    api.wait_connected(1, Duration::from_secs(30)).await;
    let markers = dir.path().join("markers");
    // Two 12 s tasks, one per slot.
    let job = submit(&api, &markers, 2, 60).await;
    wait_until_all_ticking(&markers, 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let killed_at = now();
    worker.kill();
    let _worker = WorkerProcess::start(&manager, &data_dir, "restarted", 2);
    api.wait_for_job(&job, Duration::from_secs(90), completed)
        .await;
    assert_one_live_run_at_a_time(&markers, 2, killed_at);
    // Nothing of the first life is left on record (emptied record files wait for reuse).
    let records = std::fs::read_dir(data_dir.join("processes"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.metadata().is_ok_and(|m| m.len() > 0))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(records, 0, "process records left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_s_task_moves_on_after_the_worker_timeout_without_overlap() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manager = start_manager(
        dir.path(),
        "worker_timeout_seconds = 2\nstartup_grace_seconds = 0\n",
    );
    let api = Api::new(&manager.url);
    let one = WorkerProcess::start(&manager, &dir.path().join("w1"), "one", 1);
    let two = WorkerProcess::start(&manager, &dir.path().join("w2"), "two", 1);
    api.wait_connected(2, Duration::from_secs(30)).await;
    let markers = dir.path().join("markers");
    let job = submit(&api, &markers, 1, 60).await;
    wait_until_all_ticking(&markers, 1).await;
    let tasks = api.tasks(&job).await;
    let runner = tasks[0]["worker"]["name"].as_str().unwrap_or_default();
    let (victim, _survivor) = if runner == "one" {
        (one, two)
    } else {
        (two, one)
    };

    let killed_at = now();
    victim.kill();
    api.wait_for_job(&job, Duration::from_secs(90), completed)
        .await;
    assert_one_live_run_at_a_time(&markers, 1, killed_at);
    let tasks = api.tasks(&job).await;
    assert_ne!(
        tasks[0]["worker"]["name"].as_str(),
        Some(runner),
        "{tasks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_task_longer_than_the_task_timeout_completes_on_a_healthy_worker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let manager = start_manager(dir.path(), "task_timeout_seconds = 15\n");
    let api = Api::new(&manager.url);
    let _worker = WorkerProcess::start(&manager, &dir.path().join("w"), "patient", 1);
    api.wait_connected(1, Duration::from_secs(30)).await;
    let body = json!({
        "name": "silent", "type": "echo-sleep-test", "priority": 50,
        "submitter_platform": "linux",
        "settings": { "message": "quiet now", "sleep_duration_seconds": 25, "sleep_repeats": 1 },
    });
    let job = render_jobs::submit(&api, body).await;
    let done = api
        .wait_for_job(&job, Duration::from_secs(90), |j| {
            completed(j) || j["status"] == "failed"
        })
        .await;
    assert_eq!(done["status"], "completed", "{done}");
    for task in api.tasks(&job).await {
        let id = task["id"].as_str().expect("id");
        let log = api.task_log(id).await;
        assert!(!log.contains("timed out"), "{log}");
        let history = api.get(&format!("/api/v3/tasks/{id}")).await;
        assert!(
            history["failed_by_workers"]
                .as_array()
                .is_none_or(|w| w.is_empty()),
            "{history}"
        );
    }
}
