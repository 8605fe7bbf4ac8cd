//! A render output directory that a worker cannot write, end to end with the real Blender:
//! the worker's check before the task finds it, the worker declines the task (`self-check`,
//! naming the directory and the OS's reason) instead of failing it, the manager blocklists it
//! for the job at its request and another worker renders the frame; when no worker can write
//! there, the job fails instead of staying active. (A location that turns read-only while
//! Blender runs is still reported as `output-unwritable`: `commands/unwritable.rs`.) "Cannot write" is a read-only bind mount over the output
//! directory in the worker's own mount namespace (the other worker sees it writable), the
//! way a share mounted read-only on one render node looks.
mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::render_jobs::{make_scene, render_job, submit};
use common::{Api, ManagerProcess, WorkerProcess, completed};
use serde_json::Value;

/// Whether a private mount namespace with a read-only bind mount can be made here (root or
/// CAP_SYS_ADMIN, and `unshare` installed); probed by writing through one.
fn read_only_mounts_work(dir: &Path) -> bool {
    let probe = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind -o ro "$0" "$0" && ! touch "$0/probe" 2>/dev/null"#)
        .arg(dir)
        .output();
    probe.is_ok_and(|output| output.status.success()) && !dir.join("probe").exists()
}

/// A worker in a mount namespace of its own where `readonly` is mounted read-only. `sh`
/// execs the worker, so the child's pid is the worker's and `stop()` signals it.
fn start_walled_worker(
    manager: &ManagerProcess,
    data_dir: &Path,
    name: &str,
    readonly: &Path,
) -> WorkerProcess {
    let wrapper = [
        OsStr::new("unshare"),
        OsStr::new("-m"),
        OsStr::new("--propagation"),
        OsStr::new("private"),
        OsStr::new("sh"),
        OsStr::new("-c"),
        OsStr::new(r#"mount --bind -o ro "$0" "$0" && exec "$@""#),
        readonly.as_os_str(),
    ];
    WorkerProcess::start_wrapped(manager, data_dir, name, 1, &wrapper)
}

/// The test's output root, or `None` (the test is skipped) when no read-only mount can be
/// made here: containers and non-root users may have no mount namespaces.
fn output_root(dir: &Path) -> Option<std::path::PathBuf> {
    let out_root = dir.join("renders");
    std::fs::create_dir(&out_root).expect("mkdir");
    if read_only_mounts_work(&out_root) {
        Some(out_root)
    } else {
        eprintln!("skipped: cannot make a read-only bind mount in a private mount namespace");
        None
    }
}

async fn blocklist(api: &Api, job: &str) -> Vec<Value> {
    api.get(&format!("/api/v3/jobs/{job}/blocklist"))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The logs of the job's tasks that a worker declined after its self-check.
async fn declined_logs(api: &Api, job: &str) -> Vec<String> {
    let mut logs = Vec::new();
    for task in api.tasks(job).await {
        // A task that never ran (the preview video of a failed job) has no log.
        if task["worker"].is_null() {
            continue;
        }
        let log = api.task_log(task["id"].as_str().expect("task id")).await;
        if log.contains("The worker declined the task after its self-check") {
            logs.push(log);
        }
    }
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_one_worker_cannot_write_is_rendered_by_another() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(out_root) = output_root(dir.path()) else {
        return;
    };
    let blend = dir.path().join("tiny.blend");
    make_scene(&blend, 4, (64, 48));
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let walled = start_walled_worker(&manager, &dir.path().join("w1"), "walled", &out_root);
    let free = WorkerProcess::start(&manager, &dir.path().join("w2"), "free", 1);
    // Both connected first: the two render tasks then go out one to each worker.
    api.wait_connected(2, Duration::from_secs(30)).await;

    let job = submit(&api, render_job(&blend, &out_root, "1-2")).await;
    api.wait_for_job(&job, Duration::from_secs(90), completed)
        .await;
    for frame in 1..=2 {
        let path = out_root.join("tiny").join(format!("{frame:06}.png"));
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 0),
            "{}",
            path.display()
        );
    }
    for task in api.tasks(&job).await {
        assert_eq!(task["worker"]["name"], "free", "{task}");
    }

    // The walled worker declined, naming where it cannot write and why, and no task counts
    // a failure for it.
    let logs = declined_logs(&api, &job).await;
    assert!(!logs.is_empty(), "no task was declined");
    // The output's nearest existing directory is named: the root, or the shot's folder.
    let cannot = format!("cannot write in {}", out_root.display());
    for log in &logs {
        assert!(
            log.contains(&cannot) && log.contains("Read-only file system"),
            "{log}"
        );
    }
    for task in api.tasks(&job).await {
        let task = api
            .get(&format!(
                "/api/v3/tasks/{}",
                task["id"].as_str().expect("id")
            ))
            .await;
        assert_eq!(task["failed_by_workers"], serde_json::json!([]), "{task}");
    }
    let blocked = blocklist(&api, &job).await;
    assert!(!blocked.is_empty());
    for entry in &blocked {
        assert_eq!(entry["worker_name"], "walled", "{entry}");
        let reason = entry["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("self-check failed") && reason.contains(&cannot),
            "{entry}"
        );
    }
    assert!(
        blocked.iter().any(|entry| entry["task_type"] == "blender"),
        "{blocked:?}"
    );

    // The CLI shows why, and lets the worker try again once its mount is fixed.
    let (ok, listed, err) = common::cli(&manager.url, &["job", "blocklist", &job]);
    assert!(ok, "{err}");
    assert!(
        listed.contains("walled") && listed.contains("self-check failed"),
        "{listed}"
    );
    let (ok, said, err) = common::cli(
        &manager.url,
        &["job", "unblock", &job, "--worker", "walled"],
    );
    assert!(ok, "{err}");
    assert!(said.contains("may run its"), "{said}");
    assert!(blocklist(&api, &job).await.is_empty());
    let (ok, _, err) = common::cli(
        &manager.url,
        &["job", "unblock", &job, "--worker", "walled"],
    );
    assert!(
        !ok && err.contains("is not on the blocklist of job"),
        "{err}"
    );
    walled.stop();
    free.stop();
    manager.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_no_worker_can_write_fails_instead_of_waiting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let Some(out_root) = output_root(dir.path()) else {
        return;
    };
    let blend = dir.path().join("tiny.blend");
    make_scene(&blend, 4, (64, 48));
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let one = start_walled_worker(&manager, &dir.path().join("w1"), "walled-1", &out_root);
    let two = start_walled_worker(&manager, &dir.path().join("w2"), "walled-2", &out_root);
    api.wait_connected(2, Duration::from_secs(30)).await;

    let job = submit(&api, render_job(&blend, &out_root, "1")).await;
    let failed = api
        .wait_for_job(&job, Duration::from_secs(90), |j| {
            j["status"] == "failed" || j["status"] == "completed"
        })
        .await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let activity = failed["activity"].as_str().unwrap_or_default();
    assert!(
        activity.contains("no worker is left") && activity.contains("declined it"),
        "{failed}"
    );

    // Both workers declined the render task; it failed because nobody was left, not because
    // it failed anywhere.
    let tasks = api.tasks(&job).await;
    let render = tasks
        .iter()
        .find(|t| t["name"] == "render-1")
        .expect("the render task");
    assert_eq!(render["status"], "failed", "{render}");
    assert_eq!(render["fault_class"], "self-check", "{render}");
    let task = api
        .get(&format!(
            "/api/v3/tasks/{}",
            render["id"].as_str().expect("id")
        ))
        .await;
    assert_eq!(task["failed_by_workers"], serde_json::json!([]), "{task}");
    let logs = declined_logs(&api, &job).await;
    assert_eq!(logs.len(), 1, "one render task");
    let named = format!(
        "cannot write in {}: Read-only file system",
        out_root.display()
    );
    assert!(logs[0].contains(&named), "{}", logs[0]);
    assert_eq!(
        logs[0].matches("in this job at its own request").count(),
        2,
        "declined by both: {}",
        logs[0]
    );
    let blocked = blocklist(&api, &job).await;
    assert_eq!(blocked.len(), 2, "{blocked:?}");
    assert!(
        blocked.iter().all(|entry| entry["reason"]
            .as_str()
            .is_some_and(|r| r.contains("self-check failed"))),
        "{blocked:?}"
    );
    one.stop();
    two.stop();
    manager.stop();
}
